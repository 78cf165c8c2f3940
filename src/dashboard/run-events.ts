import { RunStatus } from '../status.js';
import type { RunSummary } from './api-types.js';
import type { RunCache } from './run-cache.js';
import { runSummary } from './run-summary.js';

/** How often a watched run is read again. */
const WATCH_MS = 300;

/** What a client of a run's event stream is told. */
export interface RunEventListener {
  summary(summary: RunSummary): void;
  end(summary: RunSummary): void;
}

interface Watch {
  listeners: Set<RunEventListener>;
  timer: NodeJS.Timeout | undefined;
  /** The last summary sent, without its duration (which changes on every look). */
  last: string | undefined;
  latest: RunSummary | undefined;
  reading: boolean;
}

/**
 * The runs' event streams: one timer per watched run, whatever the number of clients, reading
 * the run every 300 ms while someone listens and telling every listener when its summary
 * changed, and when the run ended. The timer stops with the last listener.
 */
export class RunEvents {
  private readonly watches = new Map<string, Watch>();

  constructor(private readonly cache: RunCache) {}

  /** Starts telling `listener` about the run (its current summary first); returns what stops it. */
  async listen(runId: string, listener: RunEventListener): Promise<() => void> {
    let watch = this.watches.get(runId);
    if (watch === undefined) {
      watch = { listeners: new Set(), timer: undefined, last: undefined, latest: undefined, reading: false };
      this.watches.set(runId, watch);
    }
    const run = await this.cache.get(runId);
    const summary = run === undefined ? undefined : runSummary(run);
    watch.listeners.add(listener);
    if (summary !== undefined) {
      // What every listener has been told, unless it already differs (the next look tells them all then).
      watch.last ??= JSON.stringify({ ...summary, durationMs: 0 });
      listener.summary(summary);
      if (summary.status !== RunStatus.IN_PROGRESS) listener.end(summary);
    }
    const current = watch;
    if (current.timer === undefined && current.listeners.size > 0) current.timer = setInterval(() => void this.look(runId, current), WATCH_MS);
    return () => {
      current.listeners.delete(listener);
      if (current.listeners.size === 0) this.stop(runId, current);
    };
  }

  /** Stops every watch (the server closes). */
  close(): void {
    for (const [runId, watch] of this.watches) this.stop(runId, watch);
  }

  /** How many runs are watched now (for tests: timers stop with their last listener). */
  get watching(): number {
    return this.watches.size;
  }

  private stop(runId: string, watch: Watch): void {
    if (watch.timer !== undefined) clearInterval(watch.timer);
    watch.timer = undefined;
    if (this.watches.get(runId) === watch) this.watches.delete(runId);
  }

  private async look(runId: string, watch: Watch): Promise<void> {
    if (watch.reading) return;
    watch.reading = true;
    try {
      const run = await this.cache.get(runId);
      if (run === undefined) return;
      const summary = runSummary(run);
      const key = JSON.stringify({ ...summary, durationMs: 0 });
      if (key !== watch.last) {
        watch.last = key;
        for (const listener of watch.listeners) listener.summary(summary);
      }
      if (summary.status !== RunStatus.IN_PROGRESS) {
        for (const listener of watch.listeners) listener.end(summary);
        watch.listeners.clear();
        this.stop(runId, watch);
      }
    } catch {
      // A read that failed (the stage briefly unreachable): the next look tries again.
    } finally {
      watch.reading = false;
    }
  }
}
