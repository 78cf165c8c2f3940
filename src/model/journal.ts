import type { QueueTarget } from './queue-job.js';
import type { SerializedError } from '../errors.js';
import type { PartitionStatus, RunStatus } from '../status.js';
import type { ArtifactRef, LogRef } from './refs.js';
import type { ModuleReference, ResolvedExecutionOptions, SessionTarget } from './run-spec.js';
import type { StoredHeader } from './stored-json.js';

/**
 * The run's journal: every status change, in numbered, write-once segments
 * `_dpf/journal/{seq}.ndjson`, each created only if absent (Delta Lake's log of numbered commits).
 * A segment is the header line, its records one per line, and a trailer line with the record count
 * and a CRC-32 of everything before it, so a cut-short or altered segment is recognised.
 *
 * The segment's slot number is what fences a driver: a driver writes slot n + 1 only after its slot
 * n, so once another driver has put its start record in the next slot, a replaced driver can
 * write nothing more (its next create fails and it stops). Readers fold the segments in order
 * (RunState.apply) and skip what a fenced-out writer or an earlier run of the same id left.
 */
export interface SegmentHeader extends StoredHeader<'journal'> {
  /** The run's uid (RunSpec.uid). */
  run: string;
  seq: number;
  /** The writer's epoch (its lease's fencing token). */
  epoch: number;
  /** The writer's lease owner token. */
  writer: string;
}

export interface SegmentTrailer {
  end: number;
  crc: number;
}

/** A driver took the run (a new run, a resume, or a cancel of an abandoned run) under `epoch`. */
export interface StartRecord {
  t: 'start';
  epoch: number;
  owner: string;
  pid: number;
  host: string;
  at: number;
  /** How many partitions the run has from now on. */
  partitions: number;
  /** The partition list in force: `_dpf/partitions/{list}.json`. */
  list: number;
  /** DataFrame mode: the run's planned rows are in `_dpf/input/{input}/`. */
  input?: number;
  /** How many partitions this driver runs. */
  todo: number;
  /** What the driver runs with (absent for `purpose: 'cancel'`, which runs nothing). */
  module?: ModuleReference;
  options?: ResolvedExecutionOptions;
  /** The session database, without credentials. */
  session?: SessionTarget;
  /**
   * `cancel`: a driver that only records the cancellation of an abandoned run. `submit`: the run
   * was put on a queue; a `dpf worker` that takes its drive job drives it (with a start of its own).
   */
  purpose?: 'cancel' | 'submit';
  /** A queue run: the queue its partitions go through (and its drivers come from). */
  queue?: QueueTarget;
  /**
   * Damaged segments right before this start that its driver skipped, as the torn tail of the
   * driver before it (never part of the run). Readers skip exactly these; damage anywhere else is
   * an error.
   */
  skipped?: number[];
}

/** An attempt's token: its driver's lease token and its dispatch number (see TaskDescriptor.token). */
export function attemptToken(owner: string, dispatch: number): string {
  return `${owner}.${dispatch.toString(36)}`;
}

/** A partition changed status. `at`: when; `from`: when its attempt started (final records). */
export interface PartitionRecord {
  t: 'partition';
  i: number;
  s: PartitionStatus;
  a: number;
  at: number;
  from?: number;
  rows?: number;
  error?: SerializedError;
  /**
   * The attempt this record is about, by its dispatch number: its token is the segment writer's
   * lease token and this number (`{writer}.{d in base 36}`, see plan/partition.ts attemptToken).
   */
  d?: number;
  /** An attempt of another driver (an adopted one), by its whole token. */
  k?: string;
  /** DONE: the partition's artifacts. */
  art?: ArtifactRef[];
  /** The logs of the attempts this record ends (usually one). */
  log?: LogRef[];
  /** DONE by adopting an attempt the session database had committed (its driver died before recording it). */
  adopted?: true;
}

export type JournalRecord =
  | StartRecord
  | PartitionRecord
  /**
   * A batch of partitions went to a worker, with their attempts and tokens. `w` names the worker:
   * it runs its tasks one at a time, in the order they were sent, so only the first it has not
   * finished is RUNNING, the others wait in it. Without `w` (journals before it), all are RUNNING.
   */
  | { t: 'running'; i: number[]; a: number[]; d: number[]; at: number; w?: number }
  /** Someone asked the run to stop. */
  | { t: 'cancel'; at: number }
  /** The driver finished the run with this status. */
  | { t: 'end'; epoch: number; at: number; status: RunStatus }
  /** Something a reader of the run should know (a partition re-run because its artifact was gone). */
  | { t: 'note'; at: number; message: string };

/** One partition's state in a checkpoint. */
export interface SnapshotPartition {
  s: PartitionStatus;
  a: number;
  /** The attempt's token. */
  error?: SerializedError;
  from?: number;
  at?: number;
  rows?: number;
  k?: string;
  art?: ArtifactRef[];
  log?: LogRef[];
  /** Dispatched and not finished: the worker it went to, and its place in that worker's queue. */
  w?: [worker: number, place: number];
}

/**
 * `_dpf/checkpoints/{seq}.json`: the run's state folded up to segment `seq`, so a reader of a long
 * run starts there instead of at segment 0.
 */
export interface Checkpoint extends StoredHeader<'checkpoint'> {
  run: string;
  seq: number;
  epoch: number;
  owner: string;
  status: RunStatus;
  startedAt?: number;
  finishedAt?: number;
  cancelRequested: boolean;
  start?: StartRecord;
  partitions: SnapshotPartition[];
  notes: string[];
}
