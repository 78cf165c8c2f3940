import { PartitionTimeoutError, type SerializedError, WorkerCrashError } from '../errors.js';
import type { LogRef } from '../model/refs.js';
import type { TaskOutcome } from './protocol.js';

/**
 * The executor contract: how the run policy (run-policy.ts: schedule, attempt ledger, retries with
 * backoff, fail-fast, cancel, blame) drives a transport that runs partitions somewhere — the local
 * pool (local-pool.ts: threads or child processes on this machine) or the queue
 * (queue/queue-executor.ts: BullMQ jobs taken by `dpf worker` processes on any machine).
 *
 * An executor only starts workers, takes batches of tasks when it has room for them, aborts, and
 * reports what became of each task: an outcome, or the loss of the worker that held it. It never
 * decides whether a partition is retried, failed or done; the policy never knows where a task ran.
 */

/** One attempt of one partition, as it travels to a worker: the partition's index in the run's list, the attempt number, the dispatch number (the attempt's token is the driver's lease token and it). */
export interface Task {
  index: number;
  attempt: number;
  dispatch: number;
}

/** Packs tasks as (index, attempt, dispatch) triples (protocol.ts RunBatchMessage): one small copy for thousands of tiny partitions. */
export function packTasks(tasks: readonly Task[]): Int32Array {
  const packed = new Int32Array(tasks.length * 3);
  for (let i = 0; i < tasks.length; i++) {
    const task = tasks[i]!;
    packed[i * 3] = task.index;
    packed[i * 3 + 1] = task.attempt;
    packed[i * 3 + 2] = task.dispatch;
  }
  return packed;
}

/** Why a worker was lost with tasks it had not reported. */
export type LossCause =
  /** It died by itself: a crash, `process.exit`, out of memory. The running task is blamed. */
  | 'crash'
  /** It blocked past `timeoutMs` and was terminated. The running task is FAILED with a timeout. */
  | 'timeout'
  /** It was killed from outside (SIGKILL, SIGTERM, SIGINT) or its machine went away (a stalled queue job). */
  | 'killed'
  /** It was stopped because the run is stopping (cancel, fail-fast): the running task is CANCELLED. */
  | 'stopped';

/**
 * A worker that went away: with the tasks it held and had not reported, or with none (a worker
 * that dies before it is ready holds none, and still counts against the module).
 */
export interface WorkerLoss {
  /** The task it was running, if it was known to be running one. */
  running: Task | undefined;
  /** When that task started, as far as the executor knows. */
  startedAt: number;
  /** When the worker was found gone: the running attempt's end. */
  at: number;
  /** Tasks it held and never started (or whose outcomes died with it): they run again, same attempt. */
  unstarted: Task[];
  cause: LossCause;
  /** What happened, for the running task's error (`the worker running partition "x" died: {description}`). */
  description: string;
  /** The worker had not finished loading the partition module: repeated, it means the module cannot run in a worker. */
  beforeReady: boolean;
  /**
   * The log of the running attempt that the executor stored (what it wrote as it died, and why:
   * the line `{ISO time} [attempt n] [dpf] {lossError's message}` unless it was stopped). Stored
   * before the loss is reported, so it is in the attempt's folder before the policy clears that.
   */
  logs: LogRef[];
}

/**
 * The error a loss fails its running task with: a timeout, or the worker's death; none when it
 * was stopped (the task is CANCELLED). The executor writes its message to the attempt's log, the
 * policy records it.
 */
export function lossError(loss: Pick<WorkerLoss, 'cause' | 'description'>, partitionId: string, timeoutMs: number | undefined): Error | undefined {
  switch (loss.cause) {
    case 'stopped':
      return undefined;
    case 'timeout':
      return new PartitionTimeoutError(`partition "${partitionId}" ran longer than timeoutMs (${timeoutMs} ms) and blocked its worker, which was terminated`);
    default:
      return new WorkerCrashError(`the worker running partition "${partitionId}" died: ${loss.description}`);
  }
}

/** How the policy and an executor talk: the executor calls these. */
export interface ExecutorHost {
  /**
   * The next batch of tasks for one of `slots` batch slots (every worker's batches in flight
   * together), each with its attempt and dispatch number assigned; empty when nothing is ready.
   * The executor calls it whenever it has room; after an empty answer it waits for `wake()`.
   */
  take(slots: number): Task[];
  /**
   * Tasks waiting to be taken (those waiting for their input included): the local pool lets a
   * worker hold a second batch only while plenty are left.
   */
  readonly queued: number;
  /**
   * A batch from `take` began on worker `worker` (a number the executor gives each worker, or each
   * job). It also says that workers can load the module: deaths before ready count in a row
   * between batches started.
   */
  started(tasks: readonly Task[], at: number, worker: number): void;
  /**
   * Attempts ended (in the order each worker ran them). Each outcome names its task by index and
   * dispatch; one of a task the policy no longer holds (already counted lost) is ignored.
   */
  outcomes(outcomes: readonly TaskOutcome[]): void;
  /**
   * A worker went away. Its unstarted tasks run again (same attempt; cancelled when stopping), its
   * running one is blamed by `cause`; tasks the policy no longer holds are ignored.
   */
  lost(loss: WorkerLoss): void;
  /** No worker can run the run at all (the module fails to load in workers): every partition not done fails with this error. */
  unusable(error: SerializedError): void;
  /** Something a reader of the run should know (a worker refused its partitions, the queue lost its jobs): a note in the run's journal. */
  note(message: string): void;
  /** Writing to the stage failed in a worker: the run stops (see ExecutionReporter.stageFailed). */
  stageFailed(error: SerializedError): void;
}

/** Starts workers and runs the batches the policy gives it. */
export interface Executor {
  /** Starts the workers; from now on the executor calls `host.take` whenever it has room. */
  start(host: ExecutorHost): void;
  /** Tasks became ready (a retry is due, input was written, a lost worker's tasks came back): take more if there is room. */
  wake(): void;
  /**
   * The run is stopping: running attempts are aborted through their signal, held tasks reported
   * unstarted or lost (with cause `'stopped'` from now on), no more taken.
   */
  abort(reason: 'cancel' | 'fail-fast'): void;
  /**
   * The run ended (every partition has a final status): release or stop the workers; the host
   * hears nothing more. `detached`: the run goes on under another driver (this one handed it
   * over): what runs elsewhere is left running, for that driver to settle.
   */
  close(detached?: boolean): Promise<void>;
}
