import type { SerializedError } from '../errors.js';
import type { PackedArtifact } from '../stage/artifact-pack.js';
import { finishedRunStatus, isFinalPartitionStatus, PartitionStatus, RunStatus } from '../status.js';
import type { JournalRecord } from './journal.js';

/** One partition's state as the journal tells it. */
export interface PartitionState {
  status: PartitionStatus;
  attempts: number;
  error: SerializedError | undefined;
  startedAt: number | undefined;
  finishedAt: number | undefined;
  numRows: number | undefined;
  /** Where its small artifacts are packed (see artifact-pack.ts). */
  packed: readonly PackedArtifact[] | undefined;
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
 * records it reads — both through {@link RunState.apply}.
 */
export class RunState {
  readonly partitions: PartitionState[] = [];
  status: RunStatus = RunStatus.IN_PROGRESS;
  generation = 0;
  startedAt: number | undefined;
  finishedAt: number | undefined;
  cancelRequested = false;
  private readonly counts = new Map<PartitionStatus, number>();

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
        packed: undefined,
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

  /** Applies journal records; calls `onPartition` for each partition change. */
  apply(records: readonly JournalRecord[], onPartition?: (index: number, record: Extract<JournalRecord, { t: 'partition' }>) => void): void {
    for (const record of records) {
      switch (record.t) {
        case 'partition': {
          this.grow(record.i + 1);
          const partition = this.partitions[record.i]!;
          this.bump(partition.status, -1);
          this.bump(record.s, 1);
          partition.status = record.s;
          partition.attempts = Math.max(partition.attempts, record.a);
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
          if (record.s === PartitionStatus.DONE) partition.packed = record.packed;
          onPartition?.(record.i, record);
          break;
        }
        case 'running':
          for (let k = 0; k < record.i.length; k++) {
            const entry = { t: 'partition' as const, i: record.i[k]!, s: PartitionStatus.RUNNING, a: record.a[k]!, at: record.at };
            this.apply([entry], onPartition);
          }
          break;
        case 'start':
          this.grow(record.partitions);
          this.generation = record.generation;
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
      }
    }
  }

  /** The status the run ends with now that no partition is left to run. */
  finalStatus(): RunStatus {
    return finishedRunStatus(this.count(PartitionStatus.DONE), this.partitions.length, this.cancelRequested);
  }

  private bump(status: PartitionStatus, delta: number): void {
    this.counts.set(status, (this.counts.get(status) ?? 0) + delta);
  }
}
