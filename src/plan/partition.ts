import { InvalidOptionError } from '../errors.js';
import type { PartitionInput, StoredKey } from '../model/partition.js';

/**
 * The task descriptor that runs one attempt of a planned partition (model/partition.ts): plain,
 * serialisable data that runs the same in a local worker thread, a child process, or on another
 * machine; nothing a worker needs lives only in the driver's memory.
 */

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
   * The attempt's own identity, its token, is its driver's lease token `owner` and its dispatch
   * number (model/journal.ts attemptToken): unique across attempts, retries, drivers and runs. Its
   * staged files, its session transaction and its DONE record carry it; only an attempt its run's
   * current owner dispatched can commit.
   */
  owner: string;
  dispatch: number;
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
