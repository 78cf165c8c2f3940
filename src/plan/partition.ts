import { InvalidOptionError } from '../errors.js';
import type { StoredKey } from './partition-keys.js';

/**
 * A planned partition and the task descriptor that runs one attempt of it. Both are plain,
 * serialisable data: a descriptor runs the same in a local worker thread, a child process, or on
 * another machine, and nothing a worker needs lives only in the driver's memory.
 */

/** Where a partition's data is. */
export type PartitionInput =
  /** Stage mode: one file. `path` is absolute (a local path today). */
  | { kind: 'file'; path: string }
  /** DataFrame mode: rows `[start, start + rows)` of the run's sorted input. */
  | { kind: 'rows'; start: number; rows: number };

/** The typed value of a partition's key: what DataFrame mode's `context.partitionKey` gives. */
export type PartitionKey = string | number | bigint | boolean | Date | null | readonly PartitionKey[];

/** One partition as planned: what it is called, where its data is, how big it is. */
export interface PlannedPartition {
  /** The partition id: the file path relative to the input location, or the key as text. */
  id: string;
  /** Its folder inside the run (the encoded id). */
  folder: string;
  /** Bytes (stage mode) or rows (DataFrame mode): large partitions are scheduled first. */
  size: number;
  input: PartitionInput;
  /** DataFrame mode: the typed key, in its JSON-safe form. */
  key?: StoredKey;
}

/** Everything a worker needs to run one attempt of one partition. */
export interface TaskDescriptor {
  /** The partition's position in the run's partition list. */
  index: number;
  id: string;
  folder: string;
  input: PartitionInput;
  key?: StoredKey;
  /** 1 for the first attempt; attempts keep counting across resumed runs. */
  attempt: number;
  /**
   * Files of an earlier, interrupted attempt may be in the partition's folder: clear them before
   * committing. False for a first attempt in a fresh run, which saves a directory listing.
   */
  clearFolder: boolean;
}

/** The partitions named by `ids`, in that order; refuses ids the run does not have. */
export function choosePartitions<T extends { id: string }>(partitions: readonly T[], ids: readonly string[]): T[] {
  const byId = new Map(partitions.map((partition) => [partition.id, partition]));
  const unknown = ids.filter((id) => !byId.has(id));
  if (unknown.length > 0) {
    const listed = unknown.slice(0, 5).map((id) => JSON.stringify(id)).join(', ');
    throw new InvalidOptionError('partitionIds', `names ${unknown.length} partition(s) the run does not have: ${listed}`);
  }
  return [...new Set(ids)].map((id) => byId.get(id)!);
}
