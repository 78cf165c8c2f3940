import type { DuckDBSettings } from '../data/duckdb-settings.js';
import type { SerializedError } from '../errors.js';
import type { TaskDescriptor } from '../plan/partition.js';
import type { ModuleReference } from './partition-module.js';

/**
 * The messages between the driver's pool and a worker (thread or child process). Plain data, so
 * the same protocol works over `postMessage` and over a process's IPC channel.
 *
 * driver → worker: `setup` once, then `run` batches of tasks and `abort` at cancel or fail-fast.
 * worker → driver: `ready` (or `setup-failed`), then `results` as tasks finish.
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
}

export interface RunBatchMessage {
  type: 'run';
  tasks: TaskDescriptor[];
}

/** Stops the running task (its signal fires) and drops the rest of the batch. */
export interface AbortMessage {
  type: 'abort';
  reason: 'cancel' | 'fail-fast';
}

export type DriverMessage = WorkerSetup | RunBatchMessage | AbortMessage;

/** How one attempt ended, seen from the worker. `SKIPPED`: dropped by an abort before it started. */
export interface TaskOutcome {
  index: number;
  attempt: number;
  status: 'DONE' | 'FAILED' | 'CANCELLED' | 'SKIPPED';
  startedAt: number;
  finishedAt: number;
  numRows?: number;
  error?: SerializedError;
}

export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'setup-failed'; error: SerializedError }
  | { type: 'results'; outcomes: TaskOutcome[]; batchDone: boolean };
