import { AsyncLocalStorage } from 'node:async_hooks';
import type { PartitionFunction } from './partition-module.js';
import type { PartitionAttempt } from './partition-runner.js';

/**
 * Errors that escape a partition function — a promise it rejected and nobody awaited, a throw in
 * a timer or an event handler it left behind — reach the worker's `unhandledRejection` and
 * `uncaughtException` handlers long after the function's stack is gone, maybe while another
 * partition runs. They are attributed by async context: every callback and promise the function
 * creates carries the scope of its attempt (AsyncLocalStorage), and Node runs both handlers in
 * the context of the promise that was rejected or of the callback that threw.
 *
 * - Raised while the attempt's function runs — up to and including the turn of the event loop in
 *   which it returns, when Node reports the rejections it left unhandled — it fails that attempt,
 *   as an exception in a task does in Ray or pytest.
 * - Raised after that (a timer that fires later, work left running after a timeout), the
 *   attempt's outcome stands — it cannot be made FAILED after the fact, and its status does not
 *   depend on how long its commit takes — and the error is reported against its partition on
 *   the driver's stderr.
 * - Raised by code of no attempt (the module's top level, a resource made there), it fails no
 *   partition either and is reported as such.
 *
 * A worker in which either of the last two happened still runs code of an ended attempt: it is
 * not reused by another run.
 */

/** The attempt a piece of partition code belongs to. */
interface AttemptScope {
  attempt: PartitionAttempt;
  runId: string;
  /** The function has returned (or thrown): errors from now on come after its attempt. */
  returned: boolean;
}

const scopes = new AsyncLocalStorage<AttemptScope>();

/** Whose an escaped error is: the attempt whose code raised it (none: code of no attempt). */
export interface EscapedErrorOwner {
  runId: string;
  attempt: PartitionAttempt;
  /** Its function is still running (the error fails the attempt, unless it was stopped already). */
  running: boolean;
}

/**
 * `fn`, running in the scope of the attempt `running()` returns (the worker's current one). A
 * successful return waits one turn of the event loop first: Node reports a rejection nobody
 * handled once the microtasks have run, and one the function left behind must fail its attempt,
 * not slip past it.
 */
export function attributed(fn: PartitionFunction, runId: string, running: () => PartitionAttempt | undefined): PartitionFunction {
  return async (data, context) => {
    const scope: AttemptScope = { attempt: running()!, runId, returned: false };
    try {
      const result: unknown = await scopes.run(scope, () => fn(data, context));
      await new Promise<void>((resolve) => setImmediate(resolve));
      return result;
    } finally {
      scope.returned = true;
    }
  };
}

/** Whose an error that escaped is, seen from the handler Node called with it; `current` is the worker's running attempt. */
export function ownerOfEscaped(current: PartitionAttempt | undefined): EscapedErrorOwner | undefined {
  const scope = scopes.getStore();
  if (scope === undefined) return undefined;
  return { runId: scope.runId, attempt: scope.attempt, running: !scope.returned && scope.attempt === current };
}
