import type { DuckDBSettings } from '../data/duckdb-settings.js';
import type { SerializedError } from '../errors.js';
import type { ArtifactRef, CommittedAttempt, LogRef } from '../model/refs.js';
import type { ModuleReference, SessionTarget } from '../model/run-spec.js';
import type { Task } from './executor.js';

export type { SessionTarget };

/**
 * The messages between the driver's pool and a worker (thread or child process). Plain data, so
 * the same protocol works over `postMessage` and over a process's IPC channel.
 *
 * driver → worker: `setup` once, then `run` batches of tasks and `abort` at cancel or fail-fast.
 * worker → driver: `ready` (or `setup-failed`), then `results` as tasks finish; `escaped-error`
 * at any time.
 * DuckDB sessions: the worker sends `session` requests, the driver answers `session-result`.
 */

/** Who dispatches a run's attempts, and where its partitions are: what workers need to run its tasks. */
export interface RunAttempts {
  /** The run's uid and the driver's epoch: session commits record them, and are refused under an older epoch. */
  runUid: string;
  epoch: number;
  /** The driver's lease token: attempt tokens are `{tokenPrefix}.{dispatch}`. */
  tokenPrefix: string;
  /** The partition list to read (`_dpf/partitions/{list}.json`). */
  partitionList: number;
  /** DataFrame mode: the folder of the run's planned rows. */
  inputFolder: string | undefined;
  /**
   * A folder on this machine for the run's files in transit (uploads before they are stored,
   * downloads of remote input, the log of an attempt whose worker is dying); its owner removes it.
   */
  scratch: string;
  module: ModuleReference;
}

/** What every task of a run shares; sent to a worker once. */
export interface WorkerSetup extends RunAttempts {
  type: 'setup';
  /** The stage: its absolute folder, or `s3://bucket/prefix` (the worker opens it itself). */
  stageLocation: string;
  caseInsensitive: boolean;
  runId: string;
  timeoutMs: number | undefined;
  duckdb: DuckDBSettings;
  /** The worker's memory limit in MiB (ExecutionOptions.memoryLimitMb), which whole-partition reads must fit in. */
  memoryLimitMb: number | undefined;
  /** Pack small artifacts (see artifact-pack.ts). */
  packArtifacts: boolean;
  /** The most log an attempt keeps (ExecutionOptions.maxLogBytes). */
  maxLogBytes: number;
  /**
   * Threads: memory shared with the driver where the worker notes the task it is running (its
   * index at byte 0, an Int32, -1 between tasks; its start at byte 8, a Float64 of epoch ms), so
   * the driver knows which partition a dying or blocked worker was on although successes are
   * reported in batches. Processes report every outcome at once instead.
   */
  running: SharedArrayBuffer | undefined;
  /** Where `context.withSession` connects; a PostgreSQL URL with its credentials (in memory only). */
  session: SessionTarget;
}

/**
 * A statement of an attempt's DuckDB session, sent to the driver. `attempt` (the attempt's token)
 * names the transaction. `commit` ends it: the rows and the attempt's ledger entry commit
 * together (or, when another attempt of the partition committed first, nothing does and that one
 * is returned); `rollback` drops them.
 */
export type SessionRequest =
  | { op: 'query'; attempt: string; sql: string; params: readonly unknown[] }
  | { op: 'append'; attempt: string; table: string; ipc: Uint8Array }
  | { op: 'commit'; attempt: string; runUid: string; epoch: number; partition: number; partitionId: string; entry: CommittedAttempt }
  | { op: 'rollback'; attempt: string };

export interface SessionResultMessage {
  type: 'session-result';
  id: number;
  value?: unknown;
  error?: SerializedError;
}

/**
 * A batch of tasks (executor.ts Task: partition index, attempt, dispatch) — all a worker needs,
 * since it reads the run's partition list (ids, folders, inputs, keys) from the stage once, and an
 * attempt's token is the driver's prefix and the dispatch number. Packed in one Int32Array by
 * packTasks (index, attempt, dispatch, index, …) so dispatching thousands of tiny partitions costs
 * one small copy, not thousands of objects.
 */
export interface RunBatchMessage {
  type: 'run';
  tasks: Int32Array;
}

/** Stops the running task (its signal fires) and drops the rest of the batch. */
export interface AbortMessage {
  type: 'abort';
  reason: 'cancel' | 'fail-fast';
}

/** Skips the tasks held and not started (they are reported SKIPPED at once, ahead of the running one's outcome); the running one goes on to its end. */
export interface DrainMessage {
  type: 'drain';
}

export type DriverMessage = WorkerSetup | RunBatchMessage | AbortMessage | DrainMessage | SessionResultMessage;

/**
 * How one attempt ended, seen from the worker. `SKIPPED`: dropped by an abort before it started.
 * It names its task (index, attempt, dispatch) exactly: the dispatch tells it from another
 * attempt of the partition sent since (a task of a dead worker sent again under the same attempt).
 */
export interface TaskOutcome extends Task {
  /** A DONE adopted from the session ledger: the committed attempt's token (the driver knows its own). */
  token?: string;
  status: 'DONE' | 'FAILED' | 'CANCELLED' | 'SKIPPED';
  startedAt: number;
  finishedAt: number;
  numRows?: number;
  error?: SerializedError;
  /** DONE: where the attempt's artifacts are. */
  artifacts?: ArtifactRef[];
  /** Where the attempt's log is (and, when adopted, the committed attempt's). */
  logs?: LogRef[];
  /** DONE by adopting the attempt the session database had committed. */
  adopted?: true;
  /**
   * The attempt was stopped from outside (timeout, cancel, an escaped error) while its function
   * may still be running: the worker must not be reused by another run.
   */
  orphaned?: boolean;
}

/**
 * An error escaped partition code when no attempt of it was running to fail (see
 * escaped-errors.ts): the driver reports it on its stderr, naming the partition whose code raised
 * it (none: code of no attempt), and does not reuse the worker.
 */
export interface EscapedErrorMessage {
  type: 'escaped-error';
  error: SerializedError;
  partition?: { runId: string; id: string; attempt: number };
}

export type WorkerMessage =
  | { type: 'ready' }
  | EscapedErrorMessage
  | { type: 'setup-failed'; error: SerializedError }
  | { type: 'results'; outcomes: TaskOutcome[]; batchDone: boolean }
  | { type: 'session'; id: number; request: SessionRequest };
