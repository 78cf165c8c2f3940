/**
 * Ctrl-C (SIGINT) while this process waits on runs it drives: each run is stopped cleanly — its
 * running attempts cancelled, its state written, its lease released — so that nothing is left
 * looking RUNNING and a resume can start at once; then the process ends as interrupted, as it
 * would have without dpf. A second Ctrl-C quits at once.
 *
 * When the program listens for SIGINT itself, dpf still stops its runs but leaves the ending of
 * the process to the program: `wait()` returns the runs' status (CANCELLED).
 */

/** The runs being waited on: each function stops its run and resolves once it is stopped. */
const waiting = new Set<() => Promise<void>>();
/** The stopping under way after a first Ctrl-C. */
let stopping: Promise<void> | undefined;

function onInterrupt(): void {
  if (stopping !== undefined) return quit();
  const alone = process.listenerCount('SIGINT') === 1;
  stopping = Promise.allSettled([...waiting].map((stop) => stop())).then(() => {
    stopping = undefined;
    if (alone) quit();
    else if (waiting.size === 0) process.off('SIGINT', onInterrupt);
  });
}

/** Ends the process as the default SIGINT action does, unless the program listens for SIGINT itself. */
function quit(): void {
  process.off('SIGINT', onInterrupt);
  if (process.listenerCount('SIGINT') === 0) process.kill(process.pid, 'SIGINT');
}

/**
 * Calls `stop` on Ctrl-C until the returned function is called (when the wait is over).
 * The process ends as interrupted once every interrupted run has stopped; a wait that was
 * interrupted awaits {@link interruptHandled} before it returns, so the program's code after it
 * does not run first.
 */
export function stopOnInterrupt(stop: () => Promise<void>): () => void {
  waiting.add(stop);
  if (!process.listeners('SIGINT').includes(onInterrupt)) process.on('SIGINT', onInterrupt);
  return () => {
    waiting.delete(stop);
    if (waiting.size === 0 && stopping === undefined) process.off('SIGINT', onInterrupt);
  };
}

/** Resolves once a Ctrl-C has been handled: every interrupted run stopped (and, when dpf ends the process, never). */
export function interruptHandled(): Promise<void> {
  return stopping ?? Promise.resolve();
}
