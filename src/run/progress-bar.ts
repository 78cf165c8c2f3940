import { PartitionStatus } from '../status.js';
import type { RunState } from './run-state.js';

const WIDTH = 30;

/**
 * A progress bar on stderr: redrawn in place on a terminal, a plain line at every tenth of the
 * run otherwise (so logs of CI jobs stay readable).
 */
export class ProgressBar {
  private readonly startedAt = Date.now();
  private readonly tty = process.stderr.isTTY === true;
  private lastTenth = -1;
  private lastLine = '';

  constructor(
    private readonly runId: string,
    private readonly state: RunState,
  ) {}

  render(final: boolean): void {
    const total = this.state.partitions.length;
    const done = this.state.count(PartitionStatus.DONE);
    const failed = this.state.count(PartitionStatus.FAILED) + this.state.count(PartitionStatus.INTERNAL_ERROR);
    const cancelled = this.state.count(PartitionStatus.CANCELLED);
    const finished = done + failed + cancelled;
    const running = this.state.count(PartitionStatus.RUNNING);
    const fraction = total === 0 ? 1 : finished / total;
    const filled = Math.round(fraction * WIDTH);
    const seconds = ((Date.now() - this.startedAt) / 1000).toFixed(1);
    const line =
      `${this.runId} [${'█'.repeat(filled)}${'░'.repeat(WIDTH - filled)}] ${finished}/${total}` +
      ` · ${done} done · ${failed} failed${cancelled > 0 ? ` · ${cancelled} cancelled` : ''} · ${running} running · ${seconds}s`;
    if (this.tty) {
      process.stderr.write(`\r${line}\u001b[K${final ? '\n' : ''}`);
      return;
    }
    const tenth = Math.floor(fraction * 10);
    if ((tenth > this.lastTenth || final) && line !== this.lastLine) {
      this.lastTenth = tenth;
      this.lastLine = line;
      process.stderr.write(line + '\n');
    }
  }
}
