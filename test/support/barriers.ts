/**
 * Barriers for partition functions, in place of sleeps: code for a module's function body (with
 * `context` in scope) that waits for a marker file or for the partition's signal. Marker files are
 * seen alike by the test, by worker threads and by child processes (memory is not shared across
 * processes, so Atomics would not reach them).
 *
 * Every wait is bounded, only so that a barrier that never opens fails the attempt with a message
 * saying which, instead of hanging the test; the bound never orders anything.
 */

/** How long a partition waits at a barrier before it gives up and fails its attempt. */
export const BARRIER_TIMEOUT_MS = 45_000;

/** Code that waits until `check` (a JavaScript expression) is true, polling. */
export function until(check: string, what: string): string {
  return `await (async () => {
    const deadline = Date.now() + ${BARRIER_TIMEOUT_MS};
    while (!(${check})) {
      if (Date.now() > deadline) throw new Error(${JSON.stringify(`barrier never opened: ${what}`)});
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();`;
}

/** Code that waits until the file `path` exists (the test, or another partition, creates it). */
export function untilFile(path: string): string {
  return `${until(`(await import('node:fs')).existsSync(${JSON.stringify(path)})`, `${path} exists`)}`;
}

/**
 * Code that waits until the partition's signal aborts (cancel, fail-fast, timeout), then throws
 * its reason, as a function that honours its signal does. Nothing else ends the wait: should the
 * abort never come, the attempt fails after the bound with "never aborted".
 */
export const UNTIL_ABORTED = `await new Promise((resolve, reject) => {
    const bound = setTimeout(() => reject(new Error('never aborted')), ${BARRIER_TIMEOUT_MS});
    const stop = () => { clearTimeout(bound); reject(context.signal.reason); };
    if (context.signal.aborted) stop();
    else context.signal.addEventListener('abort', stop, { once: true });
  });`;

/** Code that creates the marker `{folder}/{partition id}`: this partition has started. */
export function markStarted(folder: string): string {
  return `{
    const fs = await import('node:fs');
    fs.mkdirSync(${JSON.stringify(folder)}, { recursive: true });
    fs.writeFileSync(${JSON.stringify(folder)} + '/' + encodeURIComponent(context.partitionId), '');
  }`;
}

/** Code that is true once `count` partitions have created their markers in `folder`. */
export function startedAtLeast(folder: string, count: number): string {
  return `((await import('node:fs')).existsSync(${JSON.stringify(folder)}) && (await import('node:fs')).readdirSync(${JSON.stringify(folder)}).length >= ${count})`;
}
