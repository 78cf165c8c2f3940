import type { Readable } from 'node:stream';
import type { RecordBatch, Schema, Table } from 'apache-arrow';
import type { FeatureDtype, FeatureOptions, Features } from './features.js';

/** A column of {@link DataConnector.toColumns}: a typed array for numbers, a plain array otherwise. */
export type ColumnValues =
  | Float64Array
  | Float32Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint32Array
  | Uint16Array
  | Uint8Array
  | BigInt64Array
  | BigUint64Array
  | unknown[];

/** Options of {@link DataConnector.batches}. */
export interface BatchOptions {
  /**
   * About how many rows each batch holds (the last one fewer).
   * @defaultValue 65536
   */
  batchSize?: number;
}

/**
 * A partition's data, read lazily: nothing is read until a method asks for it. Stage mode gives
 * one file; DataFrame mode gives the partition's rows. The tabular methods read Parquet, CSV
 * (`.csv`, `.tsv`), JSON (`.json` arrays, `.ndjson`/`.jsonl` lines; `.gz` too) and Arrow IPC
 * (`.arrow`, `.arrows`, `.feather`) files.
 *
 * @example
 * ```ts
 * export default async function process(data: DataConnector, context: PartitionContext) {
 *   let rows = 0;
 *   for await (const batch of data.batches()) rows += batch.numRows; // bounded memory
 *   await context.uploadToStage({ rows }, 'rows.json');
 * }
 * ```
 */
export interface DataConnector {
  /**
   * The whole partition as an apache-arrow Table, with its column types kept. Like
   * {@link DataConnector.toRecords} and {@link DataConnector.toColumns}, it fails with a
   * `PartitionTooLargeError` when the partition would not fit in the worker's memory
   * (`executionOptions.memoryLimitMb`): read such a partition with {@link DataConnector.batches}.
   */
  toArrow(): Promise<Table>;
  /** The partition as Arrow record batches, read incrementally so memory stays bounded. */
  batches(options?: BatchOptions): AsyncIterable<RecordBatch>;
  /**
   * The rows as plain objects. Dates and timestamps become `Date`s, decimals numbers, structs
   * and maps objects, lists arrays, binary `Buffer`s, intervals `{ months, days, nanoseconds }`;
   * 64-bit integers are numbers when every value of the column fits in a double exactly,
   * `bigint`s otherwise (inside lists, structs and maps: each value on its own). Exact values —
   * decimals, timestamps' microseconds — are in {@link DataConnector.toArrow}.
   */
  toRecords(): Promise<Record<string, unknown>[]>;
  /**
   * The columns by name. Numeric columns are typed arrays (a column with nulls becomes a
   * `Float64Array` with `NaN` for null, as pandas does); 64-bit integers follow the rule of
   * {@link DataConnector.toRecords}; other columns are plain arrays.
   */
  toColumns(): Promise<Record<string, ColumnValues>>;
  /**
   * Numeric columns as a row-major matrix and a target vector, what JavaScript ML libraries take
   * (`features.toArrays()` for mljs's `train(x, y)`; `features.data`, a `Float64Array` or
   * `Float32Array`, for TensorFlow.js or ONNX Runtime). Integers, floats, decimals and booleans
   * become numbers (see {@link FeatureOptions.features}); the columns are checked before any row
   * is read — a missing or non-numeric one fails with a `FeatureColumnError` that names it — and a
   * null fails too, or drops its row with `nulls: 'drop'`. Only the matrix is held whole (the
   * rows are read batch by batch; a Parquet file's other columns not at all); it must fit in the
   * worker's memory like {@link DataConnector.toArrow}'s table.
   *
   * @example
   * ```ts
   * const { data: x, target: y, numRows, numFeatures } = await data.toFeatures({ features: ['price', 'promo'], target: 'units' });
   * ```
   */
  toFeatures<D extends FeatureDtype = 'float64'>(options: FeatureOptions<D>): Promise<Features<D>>;
  /** How many rows the partition has (from file metadata where the format keeps it). */
  numRows(): Promise<number>;
  /** The partition's Arrow schema, without reading its rows. */
  schema(): Promise<Schema>;
  /**
   * Stage mode: the partition's file — its absolute path, or for a file on S3 its `s3://bucket/key`
   * URL; undefined in DataFrame mode.
   */
  readonly path: string | undefined;
  /** Stage mode: the raw bytes of the file, for any kind of file (read straight from S3 for a remote one). */
  bytes(): Promise<Buffer>;
  /** Stage mode: the file as a byte stream, for files too big to hold in memory. */
  stream(): Readable;
  /**
   * Stage mode: a path on this machine to hand to a library that wants a file: the file itself,
   * or for a file on S3 a download into the attempt's scratch folder, deleted when the attempt ends.
   */
  localPath(): Promise<string>;
}
