import type { DuckDBSettings } from '../data/duckdb-settings.js';
import type { SerializedError } from '../errors.js';
import type { PackedArtifact } from '../stage/artifact-pack.js';
import type { ModuleReference } from './partition-module.js';

/**
 * The messages between the driver's pool and a worker (thread or child process). Plain data, so
 * the same protocol works over `postMessage` and over a process's IPC channel.
 *
 * driver → worker: `setup` once, then `run` batches of tasks and `abort` at cancel or fail-fast.
 * worker → driver: `ready` (or `setup-failed`), then `results` as tasks finish.
 * DuckDB sessions: the worker sends `session` requests, the driver answers `session-result`.
 */

/** What every task of a run shares; sent to a worker once. */
export interface WorkerSetup {
  type: 'setup';
  /** The stage's local folder. */
  stageLocation: string;
  runId: string;
  module: ModuleReference;
  timeoutMs: number | undefined;
  duckdb: DuckDBSettings;
  /** Pack small artifacts (see artifact-pack.ts). */
  packArtifacts: boolean;
  /** The run was resumed: partition folders may hold files of interrupted attempts. */
  resumed: boolean;
  /**
   * Threads: memory shared with the driver where the worker notes the task it is running (its
   * index at byte 0, an Int32, -1 between tasks; its start at byte 8, a Float64 of epoch ms), so
   * the driver knows which partition a dying or blocked worker was on although successes are
   * reported in batches. Processes report every outcome at once instead.
   */
  running: SharedArrayBuffer | undefined;
  /** Where `context.withSession` connects. */
  session: SessionTarget;
}

/** The database of `context.withSession`: a DuckDB file the driver serves, or PostgreSQL by URL. */
export type SessionTarget = { kind: 'duckdb'; path: string } | { kind: 'postgres'; url: string };

/** A statement of an attempt's DuckDB session, sent to the driver. `attempt` names the transaction. */
export type SessionRequest =
  | { op: 'query'; attempt: string; sql: string; params: readonly unknown[] }
  | { op: 'append'; attempt: string; table: string; ipc: Uint8Array }
  | { op: 'end'; attempt: string; commit: boolean };

export interface SessionResultMessage {
  type: 'session-result';
  id: number;
  value?: unknown;
  error?: SerializedError;
}

/**
 * A batch of tasks, each `(partition index, attempt)` — all a worker needs, since it reads the
 * run's partition list (ids, folders, inputs, keys) from the stage once. Packed in one Int32Array
 * (index, attempt, index, attempt, …) so dispatching thousands of tiny partitions costs one small
 * copy, not thousands of objects.
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

export type DriverMessage = WorkerSetup | RunBatchMessage | AbortMessage | SessionResultMessage;

/** How one attempt ended, seen from the worker. `SKIPPED`: dropped by an abort before it started. */
export interface TaskOutcome {
  index: number;
  attempt: number;
  status: 'DONE' | 'FAILED' | 'CANCELLED' | 'SKIPPED';
  startedAt: number;
  finishedAt: number;
  numRows?: number;
  error?: SerializedError;
  /** DONE: where the attempt's small artifacts were packed. */
  packed?: PackedArtifact[];
  /**
   * The attempt was stopped from outside (timeout, cancel, an escaped error) while its function
   * may still be running: the worker must not be reused by another run.
   */
  orphaned?: boolean;
}

export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'setup-failed'; error: SerializedError }
  | { type: 'results'; outcomes: TaskOutcome[]; batchDone: boolean }
  | { type: 'session'; id: number; request: SessionRequest };
