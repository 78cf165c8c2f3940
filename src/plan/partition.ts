/**
 * A planned partition and the task descriptor that runs one attempt of it. Both are plain,
 * serialisable data: a descriptor runs the same in a local worker thread, a child process, or on
 * another machine, and nothing a worker needs lives only in the driver's memory.
 */

/** Where a partition's data is. */
export type PartitionInput =
  /** Stage mode: one file. `path` is absolute (a local path today). */
  { kind: 'file'; path: string };

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
}

/** Everything a worker needs to run one attempt of one partition. */
export interface TaskDescriptor {
  /** The partition's position in the run's partition list. */
  index: number;
  id: string;
  folder: string;
  input: PartitionInput;
  /** 1 for the first attempt; attempts keep counting across resumed runs. */
  attempt: number;
  /**
   * Files of an earlier, interrupted attempt may be in the partition's folder: clear them before
   * committing. False for a first attempt in a fresh run, which saves a directory listing.
   */
  clearFolder: boolean;
}
