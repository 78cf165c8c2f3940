import type * as Arrow from 'apache-arrow';
import type { Data, Field, RecordBatch, Schema, Table, Vector } from 'apache-arrow';
import { StageDamagedError } from '../errors.js';
import { FORMATS, parseStored, type StoredHeader } from '../model/stored-json.js';
import { joinStagePath, type Stage } from '../stage/stage.js';
import { loadArrow } from './lazy-modules.js';

/**
 * DataFrame mode's planned input: the source's rows sorted by the partition key, written once as
 * Arrow IPC stream files ("segments") of bounded size under the run's `_dpf/input/`, with a
 * manifest of where each segment starts. A partition is a row range `[start, start + rows)`; a
 * worker reads the segments that hold it (keeping the last two in memory, so neighbouring small
 * partitions cost one read) and slices its rows out without copying them.
 */

/** Where the segments of a run's input start, in rows. */
export interface InputManifest extends StoredHeader<'input'> {
  rows: number;
  /** `bytes`: the segment's size, checked on reading (a cut-short or replaced segment is an error). */
  segments: Array<{ file: string; firstRow: number; rows: number; bytes: number }>;
  /** Every row is written (a run's input is written while its first partitions already run). */
  complete: boolean;
  /**
   * The partition columns, when they are not in the segments: an Arrow IPC file of the partition
   * keys in the rows' order, with each key's row count after its key columns, and where each
   * column goes among the segments' columns. Each partition's rows get their key columns from
   * its key's row (constant-column.ts).
   */
  keys?: { file: string; columns: Array<{ name: string; index: number }> };
}

export const MANIFEST_FILE = 'manifest.json';
/**
 * Segment sizes grow from this (partitions in the first segments can start while the rest is
 * still being written) to {@link LARGEST_SEGMENT_BYTES} (bounding what a worker holds in memory).
 */
const FIRST_SEGMENT_BYTES = 2 * 1024 * 1024;
const LARGEST_SEGMENT_BYTES = 64 * 1024 * 1024;
/**
 * What a worker keeps decoded: the segments it read last, up to this many bytes (and always the
 * last two). A run whose input is all written before it starts (a queue run, a resume) visits
 * segments in the schedule's order, largest partitions first, so a cache of two segments was
 * read again and again (W1 through the queue: 1 ms per partition instead of 64 µs); W1's and
 * W2's whole inputs fit. Big partitions stream through batches(), whose segments are at most
 * 64 MiB: two of them fill the budget, as before.
 */
const CACHE_BYTES = 128 * 1024 * 1024;
const MIN_CACHED_SEGMENTS = 2;

/**
 * Writes sorted batches into segments. After each segment the manifest is rewritten and
 * `onWritten` told how many rows are now readable; `finish` marks the input complete.
 */
export class SegmentWriter {
  private pending: RecordBatch[] = [];
  private pendingBytes = 0;
  private pendingRows = 0;
  private segmentBytes = FIRST_SEGMENT_BYTES;
  private readonly manifest: InputManifest = { dpf: 'input', format: FORMATS.input, rows: 0, segments: [], complete: false };

  constructor(
    private readonly stage: Stage,
    private readonly folder: string,
    private readonly onWritten: (rows: number) => void = () => undefined,
  ) {}

  /**
   * Writes the partition keys (`batches`: the key columns, then anything, then each key's row
   * count as the last column) and records that the segments leave the key columns out; they go at
   * `columns[i].index` of a batch's columns. Called before any segment.
   */
  async writeKeys(batches: readonly RecordBatch[], columns: Array<{ name: string; index: number }>): Promise<void> {
    const { RecordBatchStreamWriter } = await loadArrow();
    const file = 'keys.arrows';
    const path = joinStagePath(this.folder, file);
    if ((await this.stage.create(path, RecordBatchStreamWriter.writeAll(batches as RecordBatch[]).toUint8Array(true))) === undefined) {
      throw new Error(`${this.stage.describe(path)} already exists: another driver wrote this run's input`);
    }
    this.manifest.keys = { file, columns };
  }

  async add(batch: RecordBatch): Promise<void> {
    if (batch.numRows === 0) return;
    this.pending.push(batch);
    this.pendingBytes += batch.data.byteLength;
    this.pendingRows += batch.numRows;
    if (this.pendingBytes >= this.segmentBytes) {
      await this.flush();
      this.segmentBytes = Math.min(LARGEST_SEGMENT_BYTES, this.segmentBytes * 2);
    }
  }

  async finish(): Promise<InputManifest> {
    await this.flush();
    this.manifest.complete = true;
    await this.writeManifest();
    return this.manifest;
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const { RecordBatchStreamWriter } = await loadArrow();
    const file = `segment-${String(this.manifest.segments.length).padStart(5, '0')}.arrows`;
    const bytes = RecordBatchStreamWriter.writeAll(this.pending).toUint8Array(true);
    const path = joinStagePath(this.folder, file);
    if ((await this.stage.create(path, bytes)) === undefined) throw new Error(`${this.stage.describe(path)} already exists: another driver wrote this run's input`);
    this.manifest.segments.push({ file, firstRow: this.manifest.rows, rows: this.pendingRows, bytes: bytes.byteLength });
    this.manifest.rows += this.pendingRows;
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingRows = 0;
    await this.writeManifest();
    this.onWritten(this.manifest.rows);
  }

  private async writeManifest(): Promise<void> {
    await this.stage.put(joinStagePath(this.folder, MANIFEST_FILE), JSON.stringify(this.manifest));
  }
}

/** The manifest of a run's input, or undefined when it has none. */
export async function readInputManifest(stage: Stage, folder: string): Promise<InputManifest | undefined> {
  const path = joinStagePath(folder, MANIFEST_FILE);
  const object = await stage.get(path);
  return object === undefined ? undefined : parseStored<InputManifest>(object.bytes.toString('utf8'), stage.describe(path), 'input', DAMAGED_INPUT);
}

const DAMAGED_INPUT = "the run's planned input is damaged: run it again with onExistingArtifacts: 'overwrite'";

/**
 * Rows `[from, to)` of a batch, zero-copy. apache-arrow's `RecordBatch.slice` re-validates the
 * schema and rebuilds the struct on every call (tens of microseconds); a slice of a valid batch
 * needs neither, so the sliced batch is assembled from the sliced struct data directly.
 */
export function sliceBatch(batch: RecordBatch, from: number, to: number): RecordBatch {
  const sliced = Object.create(Object.getPrototypeOf(batch) as object) as Record<string, unknown>;
  sliced.schema = batch.schema;
  sliced.data = batch.data.slice(from, to - from);
  sliced._metadata = (batch as unknown as { _metadata: unknown })._metadata;
  return sliced as unknown as RecordBatch;
}

interface LoadedSegment {
  batches: RecordBatch[];
  /** Row at which each batch starts, within the segment. */
  starts: number[];
  schema: Schema;
  /** Its size as stored (its decoded batches are views over these bytes). */
  bytes: number;
}

/** Reads row ranges of a run's planned input, for the partitions a worker runs. */
export class InputReader {
  private manifest: Promise<InputManifest> | undefined;
  /** Decoded segments, least recently used first, with their sizes once loaded. */
  private readonly segments = new Map<string, { loaded: Promise<LoadedSegment>; bytes: number }>();
  private cachedBytes = 0;
  private keys: Promise<PartitionKeys> | undefined;

  constructor(
    private readonly stage: Stage,
    private readonly folder: string,
  ) {}

  /** The rows `[start, start + count)` as batches (slices of the stored ones, not copies; their partition columns built). */
  async *rows(start: number, count: number): AsyncGenerator<RecordBatch> {
    const end = start + count;
    const manifest = await this.manifestWith(end);
    const keys = manifest.keys === undefined ? undefined : await this.partitionKeys(manifest);
    for (const segment of manifest.segments) {
      const segmentEnd = segment.firstRow + segment.rows;
      if (segmentEnd <= start || segment.firstRow >= end) continue;
      const loaded = await this.segment(segment.file);
      for (let i = 0; i < loaded.batches.length; i++) {
        const batchStart = segment.firstRow + loaded.starts[i]!;
        const batch = loaded.batches[i]!;
        const batchEnd = batchStart + batch.numRows;
        if (batchEnd <= start || batchStart >= end) continue;
        const from = Math.max(start, batchStart) - batchStart;
        const to = Math.min(end, batchEnd) - batchStart;
        const rows = from === 0 && to === batch.numRows ? batch : sliceBatch(batch, from, to);
        yield keys === undefined ? rows : keys.withKeys(rows, start);
      }
    }
  }

  /**
   * About how many bytes the rows `[start, start + count)` take in memory, read: their share of
   * the segments that hold them (decoded segments are views over their stored bytes), from the
   * manifest alone.
   */
  async bytesOf(start: number, count: number): Promise<number> {
    const end = start + count;
    let bytes = 0;
    for (const segment of (await this.manifestWith(end)).segments) {
      const overlap = Math.min(end, segment.firstRow + segment.rows) - Math.max(start, segment.firstRow);
      if (overlap > 0) bytes += (segment.bytes * overlap) / segment.rows;
    }
    return Math.round(bytes);
  }

  /** The schema of the input (all segments share it), with its partition columns. */
  async schema(): Promise<Schema> {
    const manifest = await this.readManifest();
    const stored = (await this.segment(manifest.segments[0]!.file)).schema;
    return manifest.keys === undefined ? stored : (await this.partitionKeys(manifest)).schemaOf(stored);
  }

  /** The partition keys of an input whose segments leave the partition columns out, read once. */
  private partitionKeys(manifest: InputManifest): Promise<PartitionKeys> {
    this.keys ??= (async () => {
      const { file, columns } = manifest.keys!;
      const path = joinStagePath(this.folder, file);
      const object = await this.stage.get(path);
      const where = this.stage.describe(path);
      if (object === undefined) throw new StageDamagedError(where, `${where} is missing: ${DAMAGED_INPUT}`);
      const [arrow, { constantColumn }] = await Promise.all([loadArrow(), import('./constant-column.js')]);
      return new PartitionKeys(arrow, arrow.tableFromIPC(object.bytes), columns, constantColumn);
    })();
    return this.keys;
  }

  /** The manifest, read again if rows up to `end` were written since this worker last looked (the driver only sends partitions already written). */
  private async manifestWith(end: number): Promise<InputManifest> {
    const manifest = await this.readManifest();
    if (manifest.rows >= end || manifest.complete) return manifest;
    this.manifest = undefined;
    return this.readManifest();
  }

  private readManifest(): Promise<InputManifest> {
    this.manifest ??= readInputManifest(this.stage, this.folder).then((manifest) => {
      const where = this.stage.describe(joinStagePath(this.folder, MANIFEST_FILE));
      if (manifest === undefined) throw new StageDamagedError(where, `${where} is missing: ${DAMAGED_INPUT}`);
      return manifest;
    });
    return this.manifest;
  }

  private segment(file: string): Promise<LoadedSegment> {
    const cached = this.segments.get(file);
    if (cached !== undefined) {
      // Most recently used last.
      this.segments.delete(file);
      this.segments.set(file, cached);
      return cached.loaded;
    }
    const entry = { loaded: this.load(file), bytes: 0 };
    this.segments.set(file, entry);
    entry.loaded.then(
      (segment) => {
        if (this.segments.get(file) !== entry) return;
        entry.bytes = segment.bytes;
        this.cachedBytes += segment.bytes;
        this.evict();
      },
      () => {
        if (this.segments.get(file) === entry) this.segments.delete(file);
      },
    );
    return entry.loaded;
  }

  /** Drops the least recently used segments while the cache is over its budget, keeping the last two. */
  private evict(): void {
    while (this.cachedBytes > CACHE_BYTES && this.segments.size > MIN_CACHED_SEGMENTS) {
      const [file, oldest] = this.segments.entries().next().value!;
      this.segments.delete(file);
      this.cachedBytes -= oldest.bytes;
    }
  }

  private async load(file: string): Promise<LoadedSegment> {
    const { tableFromIPC } = await loadArrow();
    const path = joinStagePath(this.folder, file);
    const object = await this.stage.get(path);
    const where = this.stage.describe(path);
    if (object === undefined) throw new StageDamagedError(where, `${where} is missing: ${DAMAGED_INPUT}`);
    const expected = (await this.readManifest()).segments.find((segment) => segment.file === file)?.bytes;
    if (expected !== undefined && object.bytes.length !== expected) throw new StageDamagedError(where, `${where} holds ${object.bytes.length} bytes, not ${expected}: ${DAMAGED_INPUT}`);
    const table = tableFromIPC(object.bytes);
    const starts: number[] = [];
    let row = 0;
    for (const batch of table.batches) {
      starts.push(row);
      row += batch.numRows;
    }
    return { batches: table.batches, starts, schema: table.schema, bytes: object.bytes.length };
  }
}

/** The partition keys of an input, and how a batch of a partition's rows gets its partition columns. */
class PartitionKeys {
  /** Row at which each key's rows start. */
  private readonly starts: Float64Array;
  /** The key columns, by where they go among a batch's columns. */
  private readonly columns: Array<{ field: Field; index: number; values: Vector }>;
  private readonly schemas = new WeakMap<Schema, Schema>();

  constructor(
    private readonly arrow: typeof Arrow,
    table: Table,
    columns: Array<{ name: string; index: number }>,
    private readonly constantColumn: (source: Vector, row: number, length: number) => Data,
  ) {
    // The keys file holds the key columns first, in the manifest's order.
    this.columns = columns
      .map(({ name, index }, i) => ({ field: table.schema.fields[i]!.clone({ name }), index, values: table.getChildAt(i)! }))
      .sort((a, b) => a.index - b.index);
    const counts = table.getChildAt(table.numCols - 1)!;
    this.starts = new Float64Array(table.numRows);
    let start = 0;
    for (let row = 0; row < table.numRows; row++) {
      this.starts[row] = start;
      start += Number(counts.get(row) as bigint);
    }
  }

  /** The stored schema with the partition columns where they belong. */
  schemaOf(stored: Schema): Schema {
    let schema = this.schemas.get(stored);
    if (schema === undefined) {
      const fields = [...stored.fields];
      // In increasing order of their places, each goes where it ends up.
      for (const { field, index } of this.columns) fields.splice(index, 0, field);
      schema = new this.arrow.Schema(fields, stored.metadata);
      this.schemas.set(stored, schema);
    }
    return schema;
  }

  /** A batch of rows from `start` on, all of one partition, with its partition columns. */
  withKeys(batch: RecordBatch, start: number): RecordBatch {
    const row = this.keyRow(start);
    const schema = this.schemaOf(batch.schema);
    const children = [...batch.data.children];
    for (const { index, values } of this.columns) children.splice(index, 0, this.constantColumn(values, row, batch.numRows));
    const { makeData, RecordBatch: Batch, Struct } = this.arrow;
    return new Batch(schema, makeData({ type: new Struct(schema.fields), length: batch.numRows, nullCount: 0, children }));
  }

  /** The key whose rows hold `start`: the last key starting at or before it. */
  private keyRow(start: number): number {
    let low = 0;
    let high = this.starts.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (this.starts[middle]! <= start) low = middle;
      else high = middle - 1;
    }
    return low;
  }
}
