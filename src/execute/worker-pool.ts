import { createHash } from 'node:crypto';
import { WorkerHandle, type WorkerSpawnOptions } from './worker-handle.js';

/** How long an idle worker thread waits for the next run before it exits. */
const IDLE_MS = 10_000;

/**
 * Worker threads outlive the run that started them: when a run ends, its healthy idle threads
 * wait here (not keeping the process alive) for the next run with the same spawn options, which
 * then skips the thread start, the imports and the JIT warm-up — much of the cost of a short run.
 * A run may also ask for threads early (`prewarm`) so they start while the run is being planned.
 * Child processes (`isolation: 'process'`) are never kept: a fresh process per run is the point.
 *
 * The spawn options include the driver's environment: a worker started under another
 * `process.env` (a variable changed between runs) is not reused, so what a run's partitions see
 * never depends on whether a worker happened to be waiting. Nor is one that ran an attempt whose
 * code is still running (it raised an error after the attempt ended).
 */
class WorkerPool {
  private readonly idle = new Map<string, Array<{ handle: WorkerHandle; timer: NodeJS.Timeout }>>();

  /** An idle worker with these options, or a new one. */
  acquire(options: WorkerSpawnOptions): WorkerHandle {
    const waiting = this.idle.get(keyOf(options));
    for (let entry = waiting?.pop(); entry !== undefined; entry = waiting?.pop()) {
      clearTimeout(entry.timer);
      if (!entry.handle.reusable) {
        void entry.handle.terminate();
        continue;
      }
      entry.handle.keepAlive(true);
      return entry.handle;
    }
    return new WorkerHandle(options);
  }

  /** Takes back a healthy worker that finished its run; it exits if no run wants it soon. */
  release(handle: WorkerHandle): void {
    if (handle.options.isolation !== 'thread' || !handle.reusable) {
      void handle.terminate();
      return;
    }
    handle.attach(undefined, undefined);
    handle.keepAlive(false);
    const key = keyOf(handle.options);
    const waiting = this.idle.get(key) ?? [];
    const entry = {
      handle,
      timer: setTimeout(() => {
        const index = waiting.indexOf(entry);
        if (index >= 0) waiting.splice(index, 1);
        void handle.terminate();
      }, IDLE_MS),
    };
    entry.timer.unref();
    waiting.push(entry);
    this.idle.set(key, waiting);
  }

  /** Starts worker threads ahead of a run, so they boot while it is planned. */
  prewarm(options: WorkerSpawnOptions, count: number): void {
    if (options.isolation !== 'thread') return;
    const waiting = this.idle.get(keyOf(options))?.length ?? 0;
    for (let i = waiting; i < count; i++) this.release(new WorkerHandle(options));
  }
}

function keyOf(options: WorkerSpawnOptions): string {
  const environment = Object.entries(options.environment).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const fingerprint = createHash('sha256').update(JSON.stringify(environment)).digest('base64url');
  return JSON.stringify([options.isolation, options.memoryLimitMb ?? null, options.env, options.duckdb, fingerprint]);
}

export const workerPool = new WorkerPool();
