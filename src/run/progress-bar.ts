import { PartitionStatus } from '../status.js';
import type { RunState } from './run-state.js';

/** The bar's width when the terminal has room for it; it shrinks to {@link NARROWEST_BAR} before anything else goes. */
const WIDEST_BAR = 30;
const NARROWEST_BAR = 10;
/** A run id shortened to fit keeps at least this many characters before the bar goes. */
const SHORTEST_RUN_ID_WITH_BAR = 12;
/** The width assumed for a terminal that does not say its own. */
const DEFAULT_COLUMNS = 80;

/** Where the bar is drawn: stderr, or anything that writes text and may say it is a terminal. */
export interface ProgressStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  /** The terminal's width; read at every redraw, so a resized terminal is followed. */
  readonly columns?: number;
}

/**
 * A progress bar on stderr: redrawn in place on a terminal, a plain line at every tenth of the
 * run otherwise (so logs of CI jobs stay readable).
 *
 * On a terminal every line is narrower than the terminal: a line that reached the last column
 * would wrap, and the next `\r` would redraw only its second half, leaving the first behind. What
 * does not fit goes, least useful first: the bar narrows, then the elapsed time, the running and
 * done counts go, a long run id is shortened, and at last the bar goes.
 */
export class ProgressBar {
  private readonly startedAt = Date.now();
  private readonly tty: boolean;
  private lastTenth = -1;
  private lastLine = '';

  constructor(
    private readonly runId: string,
    private readonly state: RunState,
    private readonly stream: ProgressStream = process.stderr,
  ) {
    this.tty = stream.isTTY === true;
  }

  render(final: boolean): void {
    const total = this.state.partitions.length;
    const done = this.state.count(PartitionStatus.DONE);
    const failed = this.state.count(PartitionStatus.FAILED) + this.state.count(PartitionStatus.INTERNAL_ERROR);
    const cancelled = this.state.count(PartitionStatus.CANCELLED);
    const finished = done + failed + cancelled;
    const running = this.state.count(PartitionStatus.RUNNING);
    const fraction = total === 0 ? 1 : finished / total;
    const parts: LineParts = {
      runId: this.runId,
      fraction,
      count: `${finished}/${total}`,
      details: [
        { text: `${done} done`, drop: 3 },
        { text: `${failed} failed` },
        ...(cancelled > 0 ? [{ text: `${cancelled} cancelled` }] : []),
        { text: `${running} running`, drop: 2 },
        { text: `${((Date.now() - this.startedAt) / 1000).toFixed(1)}s`, drop: 1 },
      ],
    };
    if (this.tty) {
      const columns = this.stream.columns !== undefined && this.stream.columns > 0 ? this.stream.columns : DEFAULT_COLUMNS;
      this.stream.write(`\r${fitLine(parts, columns - 1)}\u001b[K${final ? '\n' : ''}`);
      return;
    }
    const line = drawLine(parts, WIDEST_BAR, Infinity);
    const tenth = Math.floor(fraction * 10);
    if ((tenth > this.lastTenth || final) && line !== this.lastLine) {
      this.lastTenth = tenth;
      this.lastLine = line;
      this.stream.write(line + '\n');
    }
  }
}

/** What a progress line says; a detail with `drop` may be left out, lowest `drop` first. */
interface LineParts {
  runId: string;
  fraction: number;
  count: string;
  details: { text: string; drop?: number }[];
}

/** The most informative line of at most `width` characters. */
function fitLine(parts: LineParts, width: number): string {
  for (let bar = WIDEST_BAR; bar >= NARROWEST_BAR; bar--) {
    const line = drawLine(parts, bar, Infinity);
    if (length(line) <= width) return line;
  }
  const droppable = parts.details.filter((detail) => detail.drop !== undefined).sort((a, b) => a.drop! - b.drop!);
  let fewer = parts;
  for (const dropped of droppable) {
    fewer = { ...fewer, details: fewer.details.filter((detail) => detail !== dropped) };
    const line = drawLine(fewer, NARROWEST_BAR, Infinity);
    if (length(line) <= width) return line;
  }
  // Then a long run id gives way, down to a few characters (with the bar, then without it), and
  // at last the line is cut.
  for (const [bar, shortest] of [[NARROWEST_BAR, SHORTEST_RUN_ID_WITH_BAR], [0, 4]] as const) {
    const rest = length(drawLine(fewer, bar, Infinity)) - length(parts.runId);
    if (width - rest >= shortest) return drawLine(fewer, bar, width - rest);
  }
  return truncate(drawLine(fewer, 0, 4), width);
}

function drawLine(parts: LineParts, barWidth: number, runIdWidth: number): string {
  const filled = Math.round(parts.fraction * barWidth);
  const bar = barWidth === 0 ? '' : ` [${'█'.repeat(filled)}${'░'.repeat(barWidth - filled)}]`;
  return `${truncate(parts.runId, runIdWidth)}${bar} ${parts.count}${parts.details.map((detail) => ` · ${detail.text}`).join('')}`;
}

/** Characters as a terminal counts them (code points; wide East Asian characters are not told apart). */
function length(text: string): number {
  return [...text].length;
}

function truncate(text: string, width: number): string {
  if (length(text) <= width) return text;
  return [...text].slice(0, Math.max(0, width - 1)).join('') + '…';
}
