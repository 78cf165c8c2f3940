import type { SerializedError } from '../errors.js';
import { attemptToken, type Checkpoint, type JournalRecord, type PartitionRecord, type SnapshotPartition, type StartRecord } from '../model/journal.js';
import type { ArtifactRef, LogRef } from '../model/refs.js';
import { FORMATS } from '../model/stored-json.js';
import type { Stage } from '../stage/stage.js';
import { finishedRunStatus, isFinalPartitionStatus, PartitionStatus, RunStatus } from '../status.js';
import { damagedSegment, missingSegments, type ReadSegment } from './journal.js';

const NO_ARTIFACTS: readonly ArtifactRef[] = Object.freeze([]);

/** One partition's state as the journal tells it. */
export interface PartitionState {
  status: PartitionStatus;
  attempts: number;
  error: SerializedError | undefined;
  startedAt: number | undefined;
  finishedAt: number | undefined;
  numRows: number | undefined;
  /**
   * The attempt the last record was about: by dispatch number under the driver whose lease token
   * is `dispatchOwner` (see {@link tokenOf}), or by whole token (an adopted attempt, a checkpoint).
   */
  dispatch: number | undefined;
  dispatchOwner: string | undefined;
  token: string | undefined;
  /** DONE: where its artifacts are. */
  artifacts: readonly ArtifactRef[] | undefined;
  /** Where each attempt's log is, in order. */
  logs: LogRef[];
  /**
   * Dispatched and not finished: the worker it went to, and its place in the order that worker
   * runs its tasks (see {@link RunState}). RUNNING when it is the first of them, else PENDING.
   */
  worker: number | undefined;
  place: number | undefined;
}

/** What readers are told of a damaged segment at the tail of a driver's records (the same words from every reader). */
export function tornTailNote(stage: Stage, segment: { path: string; reason: string }): string {
  return `skipped the journal segment ${stage.describe(segment.path)}: ${segment.reason}, the tail of a driver that stopped while writing it`;
}

/** The token of the attempt a partition's last record was about. */
export function tokenOf(partition: PartitionState): string | undefined {
  if (partition.token !== undefined) return partition.token;
  return partition.dispatch === undefined || partition.dispatchOwner === undefined ? undefined : attemptToken(partition.dispatchOwner, partition.dispatch);
}

/** The partitions dispatched to one worker and not finished, in the order it runs them (entries whose place no longer matches have left). */
interface WorkerQueue {
  indices: number[];
  places: number[];
  head: number;
}

/** A partition changed status: what `run.on('partition', …)` receives. */
export interface PartitionEvent {
  partitionId: string;
  status: PartitionStatus;
  attempt: number;
  error?: SerializedError;
}

/**
 * The state of a run, folded from its journal. This is the one place a partition's status
 * changes: the driver applies the records it has just made durable, a restored run applies the
 * segments it reads — both through {@link RunState.apply}.
 *
 * RUNNING means running: a worker is sent batches of tasks ahead of time and runs them one after
 * another, so of the partitions dispatched to one worker only the first it has not finished is
 * RUNNING; the others are PENDING (waiting in the worker) until the one before them finishes.
 */
export class RunState {
  readonly partitions: PartitionState[] = [];
  status: RunStatus = RunStatus.IN_PROGRESS;
  /** The epoch of the run's current owner: records of older epochs are not applied. */
  epoch = 0;
  /** The current owner's lease token (the writer of its segments). */
  owner: string | undefined;
  /** The current owner's start record. */
  start: StartRecord | undefined;
  startedAt: number | undefined;
  finishedAt: number | undefined;
  cancelRequested = false;
  /** What a reader should know: notes the drivers recorded, and segments the fold skipped. */
  readonly notes: string[] = [];
  private readonly counts = new Map<PartitionStatus, number>();
  private readonly queues = new Map<number, WorkerQueue>();
  private nextPlace = 0;
  /** Workers whose first task finished in the records being applied: their next one starts. */
  private readonly advanced = new Map<number, number>();

  constructor(partitionCount: number) {
    this.grow(partitionCount);
  }

  /** Makes room for partitions added by a resumed run. */
  grow(partitionCount: number): void {
    while (this.partitions.length < partitionCount) {
      this.partitions.push({
        status: PartitionStatus.PENDING,
        attempts: 0,
        error: undefined,
        startedAt: undefined,
        finishedAt: undefined,
        numRows: undefined,
        dispatch: undefined,
        dispatchOwner: undefined,
        token: undefined,
        artifacts: undefined,
        logs: [],
        worker: undefined,
        place: undefined,
      });
      this.bump(PartitionStatus.PENDING, 1);
    }
  }

  /** How many partitions are in a status. */
  count(status: PartitionStatus): number {
    return this.counts.get(status) ?? 0;
  }

  get ended(): boolean {
    return this.status !== RunStatus.IN_PROGRESS;
  }

  /**
   * Applies segments read from the stage, in order, with the journal's rules:
   * - a segment of another run (an overwritten run's late writer), of an older epoch than the
   *   current owner's, or of the current epoch by another writer, is skipped: it was written by a
   *   driver that had lost the run;
   * - a segment starting a newer epoch must begin with that epoch's start record;
   * - a damaged segment is skipped only when the next owner's start record says it skipped it as
   *   the torn tail of the driver before (it was never part of the run); a damaged last segment is
   *   left for the next read; any other damaged segment is an error naming it;
   * - segments must follow each other slot by slot from `expectedSeq`: a missing slot before a
   *   segment of this run is an error; before another run's segment (an overwritten run's late
   *   writer took a slot ahead) the fold stops there until the slot is filled.
   * Returns how many segments it took, in order; the rest are for a later read.
   */
  applySegments(
    stage: Stage,
    segments: readonly ReadSegment[],
    run: string,
    expectedSeq: number,
    onRecord?: (records: readonly JournalRecord[]) => void,
    onPartition?: (index: number, record: PartitionRecord) => void,
  ): number {
    let expected = expectedSeq;
    for (let n = 0; n < segments.length; n++) {
      const segment = segments[n]!;
      if (segment.seq > expected) {
        if (!segment.ok || segment.header.run !== run) return n;
        missingSegments(stage, segment, expected);
      }
      expected = segment.seq + 1;
      if (!segment.ok) {
        const next = segments.slice(n + 1).find((later) => later.ok);
        if (next === undefined) return n;
        const start = next.ok ? next.records[0] : undefined;
        if (next.ok && next.header.run === run && start?.t === 'start' && start.skipped?.includes(segment.seq) === true) {
          this.note(tornTailNote(stage, segment));
          continue;
        }
        damagedSegment(stage, segment);
      }
      const { header, records } = segment;
      const where = stage.describe(segment.path);
      if (header.run !== run) {
        this.note(`skipped the journal segment ${where}: it belongs to an earlier run of this id that was overwritten`);
        continue;
      }
      if (header.epoch < this.epoch || (header.epoch === this.epoch && header.writer !== this.owner)) {
        this.note(`skipped the journal segment ${where}: its driver (epoch ${header.epoch}) had lost the run to epoch ${this.epoch}`);
        continue;
      }
      if (header.epoch > this.epoch) {
        const first = records[0];
        if (first?.t !== 'start' || first.epoch !== header.epoch || first.owner !== header.writer) {
          this.note(`skipped the journal segment ${where}: epoch ${header.epoch} without its start record`);
          continue;
        }
      }
      this.apply(records, onPartition);
      onRecord?.(records);
    }
    return segments.length;
  }

  /**
   * Applies journal records; calls `onPartition` for each partition change (a partition that
   * starts because the one before it in its worker finished included).
   */
  apply(records: readonly JournalRecord[], onPartition?: (index: number, record: PartitionRecord) => void): void {
    for (const record of records) {
      switch (record.t) {
        case 'partition':
          this.ranInQueue(record, onPartition);
          this.leaveWorker(record.i, record.at);
          this.applyPartition(record);
          onPartition?.(record.i, record);
          break;
        case 'running':
          for (let k = 0; k < record.i.length; k++) {
            const index = record.i[k]!;
            this.grow(index + 1);
            this.leaveWorker(index, record.at);
            const runsNow = record.w === undefined || this.enqueue(record.w, index);
            const entry: PartitionRecord = { t: 'partition', i: index, s: runsNow ? PartitionStatus.RUNNING : PartitionStatus.PENDING, a: record.a[k]!, at: record.at, d: record.d[k]! };
            this.applyPartition(entry);
            if (runsNow) onPartition?.(entry.i, entry);
          }
          break;
        case 'start':
          // What the drivers before dispatched runs no more (the new driver's records say what becomes of it).
          this.clearWorkers();
          this.grow(record.partitions);
          this.epoch = record.epoch;
          this.owner = record.owner;
          // A cancel-only driver runs nothing: what the run ran with stays as it was.
          this.start = record.purpose === 'cancel' && this.start !== undefined ? { ...this.start, ...record } : record;
          this.status = RunStatus.IN_PROGRESS;
          this.startedAt = record.at;
          this.finishedAt = undefined;
          this.cancelRequested = false;
          break;
        case 'cancel':
          this.cancelRequested = true;
          break;
        case 'end':
          this.status = record.status;
          this.finishedAt = record.at;
          break;
        case 'note':
          this.notes.push(record.message);
          break;
      }
    }
    this.startNextTasks(onPartition);
  }

  /** The status the run ends with now that no partition is left to run. */
  finalStatus(): RunStatus {
    return finishedRunStatus(this.count(PartitionStatus.DONE), this.partitions.length, this.cancelRequested);
  }

  /** The state as a checkpoint after segment `seq`. */
  checkpoint(run: string, seq: number): Checkpoint {
    return {
      dpf: 'checkpoint',
      format: FORMATS.checkpoint,
      run,
      seq,
      epoch: this.epoch,
      owner: this.owner ?? '',
      status: this.status,
      ...(this.startedAt !== undefined ? { startedAt: this.startedAt } : {}),
      ...(this.finishedAt !== undefined ? { finishedAt: this.finishedAt } : {}),
      cancelRequested: this.cancelRequested,
      ...(this.start !== undefined ? { start: this.start } : {}),
      partitions: this.partitions.map((partition) => {
        const stored: SnapshotPartition = { s: partition.status, a: partition.attempts };
        if (partition.error !== undefined) stored.error = partition.error;
        if (partition.startedAt !== undefined) stored.from = partition.startedAt;
        if (partition.finishedAt !== undefined) stored.at = partition.finishedAt;
        if (partition.numRows !== undefined) stored.rows = partition.numRows;
        const token = tokenOf(partition);
        if (token !== undefined) stored.k = token;
        if (partition.artifacts !== undefined) stored.art = [...partition.artifacts];
        if (partition.logs.length > 0) stored.log = partition.logs;
        if (partition.worker !== undefined) stored.w = [partition.worker, partition.place!];
        return stored;
      }),
      notes: [...this.notes],
    };
  }

  /** The state a checkpoint holds. */
  static fromCheckpoint(checkpoint: Checkpoint): RunState {
    const state = new RunState(0);
    state.epoch = checkpoint.epoch;
    state.owner = checkpoint.owner === '' ? undefined : checkpoint.owner;
    state.status = checkpoint.status;
    state.startedAt = checkpoint.startedAt;
    state.finishedAt = checkpoint.finishedAt;
    state.cancelRequested = checkpoint.cancelRequested;
    state.start = checkpoint.start;
    state.notes.push(...checkpoint.notes);
    for (const stored of checkpoint.partitions) {
      state.partitions.push({
        status: stored.s,
        attempts: stored.a,
        error: stored.error,
        startedAt: stored.from,
        finishedAt: stored.at,
        numRows: stored.rows,
        dispatch: undefined,
        dispatchOwner: undefined,
        token: stored.k,
        artifacts: stored.art,
        logs: stored.log ?? [],
        worker: undefined,
        place: undefined,
      });
      state.bump(stored.s, 1);
    }
    const queued = state.partitions.flatMap((_, index) => {
      const w = checkpoint.partitions[index]!.w;
      return w === undefined ? [] : [{ index, worker: w[0], place: w[1] }];
    });
    for (const { index, worker, place } of queued.sort((a, b) => a.place - b.place)) {
      state.nextPlace = place;
      state.enqueue(worker, index);
    }
    return state;
  }

  /** Records a note of the reader's (not in the journal). */
  note(message: string): void {
    if (!this.notes.includes(message)) this.notes.push(message);
  }

  private applyPartition(record: PartitionRecord): void {
    this.grow(record.i + 1);
    const partition = this.partitions[record.i]!;
    this.bump(partition.status, -1);
    this.bump(record.s, 1);
    partition.status = record.s;
    partition.attempts = Math.max(partition.attempts, record.a);
    if (record.k !== undefined) {
      partition.token = record.k;
      partition.dispatch = undefined;
    } else if (record.d !== undefined) {
      partition.token = undefined;
      partition.dispatch = record.d;
      partition.dispatchOwner = this.owner;
    }
    if (record.s === PartitionStatus.RUNNING) {
      partition.startedAt = record.at;
      partition.finishedAt = undefined;
    } else if (isFinalPartitionStatus(record.s)) {
      if (record.from !== undefined) partition.startedAt = record.from;
      partition.finishedAt = record.at;
    }
    if (record.rows !== undefined) partition.numRows = record.rows;
    if (record.error !== undefined) partition.error = record.error;
    else if (record.s === PartitionStatus.DONE) partition.error = undefined;
    // A partition's artifacts are those of its DONE attempt; one that runs again has none yet.
    partition.artifacts = record.s === PartitionStatus.DONE ? (record.art ?? NO_ARTIFACTS) : undefined;
    if (record.log !== undefined) partition.logs.push(...record.log);
  }

  /** Puts a dispatched partition last in its worker's queue; whether it is the first there (it runs now). */
  private enqueue(worker: number, index: number): boolean {
    let queue = this.queues.get(worker);
    if (queue === undefined) {
      queue = { indices: [], places: [], head: 0 };
      this.queues.set(worker, queue);
    }
    const runsNow = this.firstOf(queue) === undefined;
    const place = this.nextPlace++;
    queue.indices.push(index);
    queue.places.push(place);
    const partition = this.partitions[index]!;
    partition.worker = worker;
    partition.place = place;
    return runsNow;
  }

  /** A partition's attempt is over (or it went to a worker again): it leaves its worker's queue. */
  private leaveWorker(index: number, at: number): void {
    const partition = this.partitions[index];
    if (partition?.worker === undefined) return;
    const worker = partition.worker;
    partition.worker = undefined;
    partition.place = undefined;
    if (!this.advanced.has(worker)) this.advanced.set(worker, at);
  }

  /** Once records are applied: the first task left in each worker that finished one is RUNNING. */
  private startNextTasks(onPartition: ((index: number, record: PartitionRecord) => void) | undefined): void {
    for (const [worker, at] of this.advanced) {
      const queue = this.queues.get(worker);
      const next = queue === undefined ? undefined : this.firstOf(queue);
      if (next !== undefined) this.markRunning(next, at, onPartition);
    }
    this.advanced.clear();
  }

  /**
   * A partition waiting in its worker's queue ended having run (the records of the one before it
   * and its own came together): it was RUNNING in between, and a watcher is told so first.
   */
  private ranInQueue(record: PartitionRecord, onPartition: ((index: number, record: PartitionRecord) => void) | undefined): void {
    // A failed attempt to be retried (PENDING with its error) ran too.
    const ran = record.s === PartitionStatus.DONE || record.s === PartitionStatus.FAILED || record.s === PartitionStatus.INTERNAL_ERROR || (record.s === PartitionStatus.PENDING && record.error !== undefined);
    if (ran && this.partitions[record.i]?.worker !== undefined) this.markRunning(record.i, record.from ?? record.at, onPartition);
  }

  /** A PENDING partition in a worker's queue starts. */
  private markRunning(index: number, at: number, onPartition: ((index: number, record: PartitionRecord) => void) | undefined): void {
    const partition = this.partitions[index]!;
    if (partition.status !== PartitionStatus.PENDING) return;
    this.bump(PartitionStatus.PENDING, -1);
    this.bump(PartitionStatus.RUNNING, 1);
    partition.status = PartitionStatus.RUNNING;
    partition.startedAt = at;
    partition.finishedAt = undefined;
    onPartition?.(index, { t: 'partition', i: index, s: PartitionStatus.RUNNING, a: partition.attempts, at });
  }

  /** The first partition still in a worker's queue (dropping those that left). */
  private firstOf(queue: WorkerQueue): number | undefined {
    while (queue.head < queue.indices.length) {
      const index = queue.indices[queue.head]!;
      if (this.partitions[index]?.place === queue.places[queue.head]) {
        if (queue.head > 1024 && queue.head * 2 > queue.indices.length) {
          queue.indices.splice(0, queue.head);
          queue.places.splice(0, queue.head);
          queue.head = 0;
        }
        return index;
      }
      queue.head++;
    }
    queue.indices.length = 0;
    queue.places.length = 0;
    queue.head = 0;
    return undefined;
  }

  private clearWorkers(): void {
    for (const queue of this.queues.values()) {
      for (const index of queue.indices) {
        const partition = this.partitions[index];
        if (partition !== undefined) {
          partition.worker = undefined;
          partition.place = undefined;
        }
      }
    }
    this.queues.clear();
    this.advanced.clear();
  }

  private bump(status: PartitionStatus, delta: number): void {
    this.counts.set(status, (this.counts.get(status) ?? 0) + delta);
  }
}
