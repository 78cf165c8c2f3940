import { appendFileSync, closeSync, mkdirSync, openSync, readSync } from 'node:fs';
import { dirname } from 'node:path';
import { format } from 'node:util';

/** What an attempt's log came to: bytes held in memory, or a file it was spooled to. */
export type CapturedLog = { bytes: Buffer } | { file: string; length: number };

/** An attempt holds at most this much of its log in memory; more goes to its spool file. */
const IN_MEMORY_BYTES = 256 * 1024;
/** A line longer than this (output without a newline) is cut into lines of this length. */
const LONGEST_LINE = 64 * 1024;

/**
 * Captures what a partition function writes — `context.log`, `console.*`, `process.stdout` and
 * `process.stderr` — line by line with timestamps, for the partition's `partition.log`.
 *
 * Memory stays bounded however much an attempt prints: lines are held up to 256 KiB, then
 * appended to the attempt's spool file (a local file the driver also reads when the worker dies);
 * past `limit` bytes lines are counted but dropped, and the log ends with a line saying how much
 * was dropped (see `ExecutionOptions.maxLogBytes`).
 *
 * A worker runs one partition at a time, so the worker's streams are patched once and route to
 * the capture of the attempt that is running; output outside any attempt (a module's top level)
 * goes to the real streams. Output a native addon writes straight to file descriptor 1 or 2 is
 * not seen.
 */
export class LogCapture {
  private lines: string[] = [];
  /** Bytes of `lines` (each with its newline). */
  private held = 0;
  /** Bytes kept in all (held and spooled). */
  private kept = 0;
  private spooled = 0;
  private dropped = { bytes: 0, lines: 0 };
  private readonly partial = { stdout: '', stderr: '' };
  private keptLines = 0;

  constructor(
    private readonly attempt: number,
    /** The most bytes of log kept. */
    private readonly limit: number,
    /** Where lines beyond what memory holds go (named, and created, when first needed: most attempts never spool). */
    private readonly spoolPath: () => string,
  ) {}

  private spoolName: string | undefined;
  private get spoolFile(): string {
    this.spoolName ??= this.spoolPath();
    return this.spoolName;
  }

  /** Records text written to a stream; complete lines are kept, a trailing fragment waits for its end. */
  write(stream: 'stdout' | 'stderr' | 'log', text: string): void {
    if (stream === 'log') {
      for (const line of text.split('\n')) this.push('log', line);
      return;
    }
    const pending = this.partial[stream] + text;
    const lines = pending.split('\n');
    let rest = lines.pop()!;
    for (const line of lines) this.push(stream, line);
    while (rest.length > LONGEST_LINE) {
      this.push(stream, rest.slice(0, LONGEST_LINE));
      rest = rest.slice(LONGEST_LINE);
    }
    this.partial[stream] = rest;
  }

  /**
   * Ends the log (any unfinished line, then the line saying what was dropped) and says where it
   * is: in memory when it stayed small, else in its spool file, complete (the caller stores the
   * file, then deletes it). Lines written after it make a new piece, which the next call returns.
   */
  finish(): CapturedLog {
    this.close();
    if (this.spooled === 0) {
      const bytes = Buffer.from(this.lines.length === 0 ? '' : this.lines.join(''));
      this.lines = [];
      this.held = 0;
      return { bytes };
    }
    this.spill();
    const length = this.spooled;
    // What is written after this (an attempt's last line, when storing failed) is a new piece.
    this.spooled = 0;
    return { file: this.spoolFile, length };
  }

  /** Lines kept so far: a reader of {@link LogCapture.tail} knows whether there is more. */
  get linesKept(): number {
    return this.keptLines;
  }

  /**
   * The last `maxBytes` (about) of what the attempt logged so far, whole lines — what a watcher
   * of a running attempt sees (see PartitionAttempt's live log). Reads the end of the spool file
   * when lines went there.
   */
  tail(maxBytes: number): string {
    let text = this.lines.join('');
    if (this.spooled > 0 && Buffer.byteLength(text) < maxBytes) {
      const want = Math.min(this.spooled, maxBytes - Buffer.byteLength(text));
      const spooled = readTail(this.spoolFile, this.spooled, want);
      text = spooled + text;
    }
    const bytes = Buffer.from(text);
    if (bytes.byteLength <= maxBytes) return text;
    const cut = bytes.subarray(bytes.byteLength - maxBytes).toString('utf8');
    return cut.slice(cut.indexOf('\n') + 1);
  }

  /** Ends the log and puts all of it in the spool file, synchronously: the worker is exiting. */
  spillAll(): void {
    this.close();
    this.spill();
  }

  /** Ends any unfinished line, then adds the line saying what was dropped. */
  private close(): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.partial[stream] !== '') this.push(stream, this.partial[stream]);
      this.partial[stream] = '';
    }
    if (this.dropped.lines > 0) {
      const { bytes, lines } = this.dropped;
      this.dropped = { bytes: 0, lines: 0 };
      this.append(this.line('dpf', `log truncated: ${bytes} more bytes (${lines} lines) dropped after the first ${this.limit} bytes (maxLogBytes)`));
    }
  }

  /** Appends the lines held in memory to the spool file (synchronously, so the order is kept). */
  private spill(): void {
    if (this.lines.length === 0) return;
    mkdirSync(dirname(this.spoolFile), { recursive: true });
    appendFileSync(this.spoolFile, this.lines.join(''));
    this.spooled += this.held;
    this.lines = [];
    this.held = 0;
  }

  private push(stream: string, text: string): void {
    const line = this.line(stream, text);
    const bytes = Buffer.byteLength(line);
    // Once a line does not fit, nothing after it is kept: the log is its first bytes, no gaps.
    if (this.dropped.lines > 0 || this.kept + bytes > this.limit) {
      this.dropped.bytes += bytes;
      this.dropped.lines++;
      return;
    }
    this.kept += bytes;
    this.keptLines++;
    this.append(line);
  }

  private append(line: string): void {
    this.lines.push(line);
    this.held += Buffer.byteLength(line);
    if (this.held > IN_MEMORY_BYTES) this.spill();
  }

  private line(stream: string, text: string): string {
    return `${new Date().toISOString()} [attempt ${this.attempt}] [${stream}] ${text}\n`;
  }
}

/** The last `length` of the first `size` bytes of a file, from a line's start. */
function readTail(path: string, size: number, length: number): string {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const read = readSync(fd, buffer, 0, length, size - length);
    const text = buffer.subarray(0, read).toString('utf8');
    return length < size ? text.slice(text.indexOf('\n') + 1) : text;
  } finally {
    closeSync(fd);
  }
}

let active: LogCapture | undefined;
let installed = false;

/**
 * Routes the worker's stdout and stderr to the active capture. When the worker is ending abruptly
 * (`process.exit`), what the running attempt logged so far goes to its spool file, where the
 * driver finds it, so its last words are not lost.
 */
export function installLogCapture(): void {
  if (installed) return;
  installed = true;
  for (const stream of ['stdout', 'stderr'] as const) {
    const target = process[stream];
    const original = target.write.bind(target) as (...args: unknown[]) => boolean;
    target.write = ((chunk: unknown, ...rest: unknown[]) => {
      if (active === undefined) return original(chunk, ...rest);
      active.write(stream, typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
      const callback = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined;
      callback?.();
      return true;
    }) as typeof target.write;
  }
  process.on('exit', () => {
    if (active === undefined) return;
    try {
      active.spillAll();
    } catch {
      // The worker is going away; losing its last lines must not keep it alive.
    }
  });
}

/** Makes `capture` the destination of the worker's output until {@link endCapture}. */
export function beginCapture(capture: LogCapture): void {
  active = capture;
}

export function endCapture(): void {
  active = undefined;
}

/** Formats arguments the way `console.log` does. */
export function formatLogArguments(args: readonly unknown[]): string {
  return format(...(args as [unknown, ...unknown[]]));
}
