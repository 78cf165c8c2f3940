import type { LogRef } from './refs.js';
import type { ModuleReference, ResolvedExecutionOptions, SessionTarget } from './run-spec.js';

/**
 * What travels through the queue (Redis, by BullMQ) between a run's driver and `dpf worker`
 * processes: plain JSON, the same on every machine. Nothing secret is in it — the session
 * database without its password (each worker's PGPASSWORD or ~/.pgpass supplies it), the stage
 * by its location (each worker's own credentials open it).
 */

/** The queue a run uses: its Redis (without a password, as a run records it) and the queue's name. */
export interface QueueTarget {
  url: string;
  name: string;
}

/** What every batch of one run shares: enough for a worker that never saw the run to run its partitions. */
export interface QueuedRun {
  stage: string;
  caseInsensitive: boolean;
  runId: string;
  uid: string;
  /** The driver's epoch and lease token: attempt tokens are `{tokenPrefix}.{dispatch}`; commits of an older epoch are refused. */
  epoch: number;
  tokenPrefix: string;
  partitionList: number;
  /** DataFrame mode: the folder of the run's planned rows. */
  inputFolder: string | undefined;
  module: ModuleReference;
  session: SessionTarget;
  /** The run's execution options (a worker may run it with another `isolation`: `dpf worker --isolation`). */
  options: ResolvedExecutionOptions;
}

/** A job of the tasks queue: a batch of one run's tasks, packed (index, attempt, dispatch, …). */
export interface TaskJobData {
  run: QueuedRun;
  tasks: number[];
}

/** A job of the drivers queue: drive the run `runId` on `stage` (take its lease, run its partitions through the queue). */
export interface DriveJobData {
  stage: string;
  runId: string;
  uid: string;
  /** Drives of it that failed (for another reason than another driver holding the run). */
  failures?: number;
}

/** A task whose worker handed it back without running it (the run is stopping, the worker is leaving, its stage writes fail). */
export interface HandedBack {
  /** Packed (index, attempt, dispatch) triples. */
  tasks: number[];
  /** Why, for the run's journal (a worker that leaves because its stage writes fail says so). */
  reason: string;
}

/** The loss of a worker's local pool slot that held the job's tasks (crash, OOM, timeout), as the worker saw it. */
export interface QueuedLoss {
  /** The task it was running: (index, attempt, dispatch). */
  running: [number, number, number] | undefined;
  startedAt: number;
  /** Packed (index, attempt, dispatch) triples it had not started. */
  unstarted: number[];
  cause: 'crash' | 'timeout' | 'killed' | 'stopped';
  description: string;
  beforeReady: boolean;
  at: number;
  logs: LogRef[];
}
