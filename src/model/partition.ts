/**
 * Partitions as planned and stored in a run's partition list (`_dpf/partitions/…`). Plain,
 * serialisable data: a worker on any machine reads the list and runs any partition of it.
 */

/** Where a partition's data is. */
export type PartitionInput =
  /** Stage mode: one file, by its absolute local path or its `s3://bucket/key` URL. */
  | { kind: 'file'; path: string }
  /** DataFrame mode: rows `[start, start + rows)` of the run's sorted input. */
  | { kind: 'rows'; start: number; rows: number };

/** The typed value of a partition's key: what DataFrame mode's `context.partitionKey` gives. */
export type PartitionKey = string | number | bigint | boolean | Date | null | readonly PartitionKey[];

/** A key as JSON can hold it: bigints and dates tagged. */
export type StoredKey = string | number | boolean | null | { bigint: string } | { date: string } | StoredKey[];

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
