import type { DPFRun } from '../run/dpf-run.js';
import { PartitionStatus, RunStatus } from '../status.js';
import { displayId, displayText, formatCount, shellWord } from './display-text.js';
import { countsText } from './format-status.js';
import { textTable } from './text-table.js';

/** Failed partitions the summary lists; `dpf status` shows the rest. */
const LISTED_FAILURES = 10;

/** Exit codes of a command interrupted by a signal, as shells report them (128 + the signal's number). */
const SIGNAL_EXIT: Record<'SIGINT' | 'SIGTERM', number> = { SIGINT: 130, SIGTERM: 143 };

/**
 * Stops a run on SIGINT (Ctrl-C) or SIGTERM: the run is cancelled — running partitions are
 * aborted, finished ones keep their results — and the command then exits with the signal's code.
 * A second signal quits at once (the run is then left to a resume). Installed before the run
 * starts: a signal that comes while it is being planned ends the process at once (a run whose
 * creation stopped is replaced by the next start of its id).
 */
export class RunInterrupts {
  private run: DPFRun | undefined;
  /** The first signal received, if any. */
  signal: 'SIGINT' | 'SIGTERM' | undefined;
  private readonly handler = (signal: 'SIGINT' | 'SIGTERM'): void => this.onSignal(signal);

  constructor(private readonly command: string) {
    process.on('SIGINT', this.handler);
    process.on('SIGTERM', this.handler);
  }

  /** The run to cancel on a signal; one that came while it started cancels it now. */
  attach(run: DPFRun): void {
    this.run = run;
    if (this.signal !== undefined) void this.stop(run, this.signal);
  }

  /** The exit code for a run that ended with `status`: 0 only for SUCCESS; a signal's own code when interrupted. */
  exitCode(status: RunStatus | undefined): number {
    if (this.signal !== undefined) return SIGNAL_EXIT[this.signal];
    return status === RunStatus.SUCCESS ? 0 : 1;
  }

  dispose(): void {
    process.off('SIGINT', this.handler);
    process.off('SIGTERM', this.handler);
  }

  private onSignal(signal: 'SIGINT' | 'SIGTERM'): void {
    if (this.signal !== undefined) {
      process.stderr.write(`\n${this.command}: ${signal} again: quitting at once; the run is left unfinished (resume it, or \`dpf rerun ${this.run?.runId ?? 'RUN'} --failed\`)\n`);
      process.exit(SIGNAL_EXIT[signal]);
    }
    this.signal = signal;
    if (this.run === undefined) process.exit(SIGNAL_EXIT[signal]);
    void this.stop(this.run, signal);
  }

  private async stop(run: DPFRun, signal: string): Promise<void> {
    // A run this process drives says so itself on Ctrl-C, while it is waited on (DPFRun.wait listens for SIGINT too).
    const said = signal === 'SIGINT' && process.listeners('SIGINT').some((listener) => listener !== this.handler);
    if (!said) process.stderr.write(`\n${this.command}: ${signal}: cancelling run "${run.runId}" — running partitions are stopped, finished ones keep their results (${signal} again to quit at once)\n`);
    await run.cancel().catch((error: unknown) => process.stderr.write(`${this.command}: cancelling run "${run.runId}" failed: ${(error as Error).message}\n`));
  }
}

/**
 * Waits for a run with its progress bar on stderr, then prints its summary on stdout: its status
 * and counts, the partitions that failed and why, and how to rerun them. Returns the exit code.
 */
export async function followRun(run: DPFRun, interrupts: RunInterrupts, stageFlag: string): Promise<number> {
  interrupts.attach(run);
  const started = Date.now();
  const status = await run.wait({ showProgress: true });
  process.stdout.write(runSummary(run, status, (Date.now() - started) / 1000, stageFlag));
  return interrupts.exitCode(status);
}

/** What `dpf run` and `dpf rerun` print once the run has ended. */
export function runSummary(run: DPFRun, status: RunStatus, seconds: number, stageFlag: string): string {
  const counts = run.statusCounts();
  const lines = [`run ${run.runId}: ${status} — ${formatCount(run.numPartitions)} partition(s)${run.numPartitions > 0 ? `: ${countsText(counts)}` : ''} (${seconds.toFixed(1)} s)`];
  const failedStatuses = new Set([PartitionStatus.FAILED, PartitionStatus.INTERNAL_ERROR]);
  const { details, matching } = run.selectPartitions(failedStatuses, LISTED_FAILURES);
  if (matching > 0) {
    lines.push('failed:');
    const rows = details.map((partition) => [
      displayId(partition.partitionId),
      partition.status,
      `${partition.attempts} attempt(s)`,
      partition.error === undefined ? '' : displayText(`${partition.error.name}: ${partition.error.message.split('\n')[0]}`),
    ]);
    lines.push(...textTable(['PARTITION', 'STATUS', 'ATTEMPTS', 'ERROR'], rows).map((line) => `  ${line}`));
    if (matching > details.length) lines.push(`  … and ${formatCount(matching - details.length)} more: dpf status ${run.runId} --status FAILED,INTERNAL_ERROR${stageFlag}`);
    lines.push(`its log: dpf logs ${run.runId} ${shellWord(displayId(details[0]!.partitionId))}${stageFlag}`);
  }
  if (status !== RunStatus.SUCCESS) {
    const left = (counts.get(PartitionStatus.FAILED) ?? 0) + (counts.get(PartitionStatus.INTERNAL_ERROR) ?? 0) + (counts.get(PartitionStatus.CANCELLED) ?? 0) + (counts.get(PartitionStatus.PENDING) ?? 0);
    lines.push(`rerun the ${formatCount(left)} partition(s) not DONE, keeping the DONE ones: dpf rerun ${run.runId} --failed${stageFlag}`);
  } else {
    lines.push(`results: dpf status ${run.runId}${stageFlag}, dpf export ${run.runId} --out DIR${stageFlag}`);
  }
  return `${lines.join('\n')}\n`;
}
