import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { format } from 'node:util';

/**
 * Captures what a partition function writes — `context.log`, `console.*`, `process.stdout` and
 * `process.stderr` — line by line with timestamps, for the partition's `partition.log`.
 *
 * A worker runs one partition at a time, so the worker's streams are patched once and route to
 * the capture of the attempt that is running; output outside any attempt (a module's top level)
 * goes to the real streams. Output a native addon writes straight to file descriptor 1 or 2 is
 * not seen.
 */
export class LogCapture {
  private readonly lines: string[] = [];
  private readonly partial = { stdout: '', stderr: '' };

  constructor(private readonly attempt: number) {}

  /** Records text written to a stream; complete lines are kept, a trailing fragment waits for its end. */
  write(stream: 'stdout' | 'stderr' | 'log', text: string): void {
    if (stream === 'log') {
      for (const line of text.split('\n')) this.push('log', line);
      return;
    }
    const pending = this.partial[stream] + text;
    const lines = pending.split('\n');
    this.partial[stream] = lines.pop()!;
    for (const line of lines) this.push(stream, line);
  }

  /** Whether nothing at all was written. */
  get empty(): boolean {
    return this.lines.length === 0 && this.partial.stdout === '' && this.partial.stderr === '';
  }

  /** The captured text, ending any unfinished line; empty when nothing was written. */
  text(): string {
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.partial[stream] !== '') this.push(stream, this.partial[stream]);
      this.partial[stream] = '';
    }
    return this.lines.length === 0 ? '' : this.lines.join('\n') + '\n';
  }

  private push(stream: string, line: string): void {
    this.lines.push(`${new Date().toISOString()} [attempt ${this.attempt}] [${stream}] ${line}`);
  }
}

let active: LogCapture | undefined;
let installed = false;

/**
 * Routes the worker's stdout and stderr to the active capture. `onExit` writes what the running
 * attempt logged so far when the worker is ending abruptly (`process.exit`), so its last words
 * are not lost.
 */
export function installLogCapture(onExit: (capture: LogCapture) => string | undefined): void {
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
      const path = onExit(active);
      if (path === undefined) return;
      mkdirSync(dirname(path), { recursive: true });
      appendFileSync(path, active.text());
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
