import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import type { LocalCopy, Stage } from '../stage/stage.js';
import type { RecordBatch, Schema, Table } from 'apache-arrow';
import { DataFormatError } from '../errors.js';
import type { BatchOptions } from './data-connector.js';
import { TableConnector } from './table-connector.js';
import { csvBufferBytes } from './duckdb-settings.js';
import { duckdbReader, type TableFormat, tableFormatOf } from './file-format.js';
import { loadArrow, loadDuckDBEngine } from './lazy-modules.js';
import { arrowBudgetBytes, checkFitsInMemory, type WholeRead } from './memory-budget.js';
import { sqlIdentifier } from './sql.js';
import type { Columnar } from './table-values.js';

/** Rows per Arrow batch when none is asked for: big enough to amortise, small enough to stay bounded. */
const DEFAULT_BATCH_ROWS = 65_536;
/** Files up to this size are read whole in one go by toArrow(); bigger ones are streamed. */
const MATERIALIZE_BYTES = 32 * 1024 * 1024;

/**
 * Stage mode's {@link DataConnector}: one file. Parquet, CSV and JSON are read by the worker's
 * embedded DuckDB; Arrow IPC by apache-arrow. Any file can be read as bytes or a stream.
 *
 * A file on S3 (`path` is its `s3://bucket/key` URL) is read straight from the store by `bytes()`
 * and `stream()`; the tabular methods and `localPath()` download it once into the attempt's
 * scratch folder (DuckDB reads local files), and the download is deleted when the attempt ends.
 */
export class FileConnector extends TableConnector {
  readonly path: string;
  private cachedRows: number | undefined;
  private download: Promise<LocalCopy> | undefined;

  constructor(
    path: string,
    /** Where a remote file is downloaded to. */
    private readonly scratch?: string,
  ) {
    super();
    this.path = path;
  }

  /** The file on this machine: itself, or a download of a remote one. */
  async localPath(): Promise<string> {
    if (!this.path.startsWith('s3://')) return this.path;
    this.download ??= remoteFile(this.path).then(async ({ stage, key }) => {
      const copy = await stage.localCopy(key);
      if (copy === undefined) throw new DataFormatError(`${this.path} does not exist (any more) on S3`);
      return copy;
    });
    return (await this.download).path;
  }

  override async dispose(): Promise<void> {
    const download = this.download;
    this.download = undefined;
    if (download !== undefined) await (await download.catch(() => undefined))?.release();
  }

  toArrow(): Promise<Table> {
    return this.readTable('toArrow');
  }

  protected override columnar(read: WholeRead): Promise<Columnar> {
    return this.readTable(read);
  }

  /**
   * The whole file as a Table, for `read`: refused when it would not fit in memory. An Arrow file
   * is its size in memory; DuckDB's formats are compressed or text, and a small file can decode
   * to far more than its size (a Parquet file of 300 KB to 1.5 GB of one repeated value), so
   * their Arrow data is counted as it is converted, batch by batch, and the read stops once it
   * passes the worker's budget — files up to {@link MATERIALIZE_BYTES} as well as streamed ones.
   * (Parquet's metadata cannot tell the size first: its "uncompressed" sizes are of the encoded
   * pages, 17 KB for 2 GB of one dictionary-encoded string.)
   */
  private async readTable(read: WholeRead): Promise<Table> {
    const format = this.format();
    const { Table, tableFromIPC } = await loadArrow();
    let table: Table;
    const path = await this.localPath();
    const size = (await stat(path)).size;
    if (format === 'arrow') {
      await checkFitsInMemory(this.path, read, { arrowBytes: size });
      table = tableFromIPC(await readFile(path));
    } else {
      const { queryAsArrow, streamQueryAsArrow } = await loadDuckDBEngine();
      const sql = this.selectAll(format, path);
      // A small file is materialised by DuckDB in one go (no round trip per chunk), a big one streamed.
      const source = size <= MATERIALIZE_BYTES ? queryAsArrow(sql, DEFAULT_BATCH_ROWS) : streamQueryAsArrow(sql, DEFAULT_BATCH_ROWS);
      const budget = arrowBudgetBytes();
      const batches: RecordBatch[] = [];
      let bytes = 0;
      let rows = 0;
      for await (const batch of this.readFailingClearly(source)) {
        batches.push(batch);
        bytes += batch.data.byteLength;
        rows += batch.numRows;
        // Past the budget: refused (it throws), and what was read is let go.
        if (bytes > budget) await checkFitsInMemory(this.path, read, { rows, arrowBytes: bytes, stopped: true });
      }
      table = new Table(batches);
    }
    await checkFitsInMemory(this.path, read, { rows: table.numRows, arrowBytes: arrowBytesOf(table), schema: table.schema });
    this.rowsRead = table.numRows;
    return table;
  }

  async *batches(options: BatchOptions = {}): AsyncGenerator<RecordBatch> {
    const format = this.format();
    const batchRows = options.batchSize ?? DEFAULT_BATCH_ROWS;
    const path = await this.localPath();
    const source = format === 'arrow' ? readArrowBatches(path) : (await loadDuckDBEngine()).streamQueryAsArrow(this.selectAll(format, path), batchRows);
    let rows = 0;
    for await (const batch of this.readFailingClearly(source)) {
      rows += batch.numRows;
      yield batch;
    }
    this.rowsRead = rows;
  }


  protected override get description(): string {
    return this.path;
  }

  /** Known without reading the rows: counted before, or from a Parquet file's metadata. */
  protected override async knownRows(): Promise<number | undefined> {
    if (this.cachedRows !== undefined) return this.cachedRows;
    return this.format() === 'parquet' ? this.numRows() : undefined;
  }

  /** DuckDB reads only `columns` (of Parquet, only their column chunks); an Arrow file is read whole, batch by batch. */
  protected override async *columnBatches(columns: readonly string[]): AsyncGenerator<RecordBatch> {
    const format = this.format();
    const path = await this.localPath();
    if (format === 'arrow') {
      yield* readArrowBatches(path);
      return;
    }
    const { queryAsArrow, streamQueryAsArrow } = await loadDuckDBEngine();
    const sql = `SELECT ${columns.map(sqlIdentifier).join(', ')} FROM ${this.reader(format, path)}`;
    const size = (await stat(path)).size;
    yield* this.readFailingClearly(size <= MATERIALIZE_BYTES ? queryAsArrow(sql, DEFAULT_BATCH_ROWS) : streamQueryAsArrow(sql, DEFAULT_BATCH_ROWS));
  }

  async numRows(): Promise<number> {
    if (this.cachedRows !== undefined) return this.cachedRows;
    const format = this.format();
    const path = await this.localPath();
    if (format === 'arrow') {
      let rows = 0;
      for await (const batch of readArrowBatches(path)) rows += batch.numRows;
      this.cachedRows = rows;
    } else {
      const { withReadConnection } = await loadDuckDBEngine();
      this.cachedRows = await withReadConnection(async (connection) => {
        const reader = await connection.runAndReadAll(`SELECT count(*)::BIGINT AS n FROM ${this.reader(format, path)}`);
        return Number(reader.getRowsJS()[0]![0]);
      }).catch((error: unknown) => {
        throw this.unreadable(error);
      });
    }
    return this.cachedRows;
  }

  async schema(): Promise<Schema> {
    const format = this.format();
    const path = await this.localPath();
    if (format === 'arrow') {
      const { RecordBatchReader } = await loadArrow();
      const reader = await RecordBatchReader.from(createReadStream(path));
      await reader.open();
      const schema = reader.schema;
      await reader.cancel();
      return schema;
    }
    return (await loadDuckDBEngine()).querySchema(this.selectAll(format, path)).catch((error: unknown) => {
      throw this.unreadable(error);
    });
  }

  async bytes(): Promise<Buffer> {
    if (!this.path.startsWith('s3://')) return readFile(this.path);
    const { stage, key } = await remoteFile(this.path);
    const object = await stage.get(key);
    if (object === undefined) throw new DataFormatError(`${this.path} does not exist (any more) on S3`);
    return object.bytes;
  }

  stream(): Readable {
    if (!this.path.startsWith('s3://')) return createReadStream(this.path);
    // The store answers asynchronously: the stream fills once the download has started.
    const out = new PassThrough();
    this.localPath().then(
      (path) => createReadStream(path).on('error', (error) => out.destroy(error)).pipe(out),
      (error: unknown) => out.destroy(error as Error),
    );
    return out;
  }

  private format(): TableFormat {
    const format = tableFormatOf(this.path);
    if (format === undefined) {
      throw new DataFormatError(
        `${this.path} is not a table dpf can read (Parquet, CSV, JSON, NDJSON or Arrow IPC, by extension); ` +
          'read it with data.bytes() or data.stream() instead',
      );
    }
    return format;
  }

  private selectAll(format: Exclude<TableFormat, 'arrow'>, path: string): string {
    return `SELECT * FROM ${this.reader(format, path)}`;
  }

  /** The table function that reads the file, with buffers that fit this worker's DuckDB. */
  private reader(format: Exclude<TableFormat, 'arrow'>, path: string): string {
    return duckdbReader(format, path, { csvBufferBytes: csvBufferBytes() });
  }

  private async *readFailingClearly(source: AsyncIterable<RecordBatch>): AsyncGenerator<RecordBatch> {
    try {
      yield* source;
    } catch (error) {
      throw this.unreadable(error);
    }
  }

  private unreadable(error: unknown): DataFormatError {
    return new DataFormatError(`cannot read ${this.path} as a table: ${clipLines((error as Error).message)}`, { cause: error });
  }
}

/** Longest line of DuckDB's message kept in an error's. */
const MESSAGE_LINE_CHARS = 1_000;

/**
 * A message with its long lines cut: DuckDB quotes the line of a CSV it could not read ("Original
 * Line: …"), which can be megabytes that would bury what the error says and fill the run's journal.
 */
function clipLines(message: string): string {
  return message
    .split('\n')
    .map((line) => (line.length > MESSAGE_LINE_CHARS ? `${line.slice(0, MESSAGE_LINE_CHARS)}… (${line.length.toLocaleString('en')} characters)` : line))
    .join('\n');
}

function arrowBytesOf(table: Table): number {
  let bytes = 0;
  for (const batch of table.batches) bytes += batch.data.byteLength;
  return bytes;
}

async function* readArrowBatches(path: string): AsyncGenerator<RecordBatch> {
  const { RecordBatchReader } = await loadArrow();
  const reader = await RecordBatchReader.from(createReadStream(path));
  for await (const batch of reader) yield batch;
}

/** The stage (an S3 bucket's root) and key of a remote file's URL. */
async function remoteFile(url: string): Promise<{ stage: Stage; key: string }> {
  const [{ S3Stage }, { parseS3Location }] = await Promise.all([import('../stage/s3-stage.js'), import('../stage/s3-location.js')]);
  const { bucket, prefix } = parseS3Location(url, 'path');
  return { stage: new S3Stage({ bucket, prefix: '' }), key: prefix };
}
