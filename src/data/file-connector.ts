import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { RecordBatch, Schema, Table } from 'apache-arrow';
import { DataFormatError } from '../errors.js';
import type { BatchOptions } from './data-connector.js';
import { TableConnector } from './table-connector.js';
import { duckdbReader, type TableFormat, tableFormatOf } from './file-format.js';
import { loadArrow, loadDuckDBEngine } from './lazy-modules.js';

/** Rows per Arrow batch when none is asked for: big enough to amortise, small enough to stay bounded. */
const DEFAULT_BATCH_ROWS = 65_536;
/** Files up to this size are read whole in one go by toArrow(); bigger ones are streamed. */
const MATERIALIZE_BYTES = 32 * 1024 * 1024;

/**
 * Stage mode's {@link DataConnector}: one file. Parquet, CSV and JSON are read by the worker's
 * embedded DuckDB; Arrow IPC by apache-arrow. Any file can be read as bytes or a stream.
 */
export class FileConnector extends TableConnector {
  readonly path: string;
  private cachedRows: number | undefined;

  constructor(path: string) {
    super();
    this.path = path;
  }

  async toArrow(): Promise<Table> {
    const format = this.format();
    const { Table, tableFromIPC } = await loadArrow();
    let table: Table;
    if (format === 'arrow') {
      table = tableFromIPC(await readFile(this.path));
    } else {
      const { queryAsArrow, streamQueryAsArrow } = await loadDuckDBEngine();
      let batches: RecordBatch[] = [];
      if ((await stat(this.path)).size <= MATERIALIZE_BYTES) {
        batches = await queryAsArrow(this.selectAll(format), DEFAULT_BATCH_ROWS).catch((error: unknown) => {
          throw this.unreadable(error);
        });
      } else {
        for await (const batch of this.readFailingClearly(streamQueryAsArrow(this.selectAll(format), DEFAULT_BATCH_ROWS))) batches.push(batch);
      }
      table = new Table(batches);
    }
    this.rowsRead = table.numRows;
    return table;
  }

  async *batches(options: BatchOptions = {}): AsyncGenerator<RecordBatch> {
    const format = this.format();
    const batchRows = options.batchSize ?? DEFAULT_BATCH_ROWS;
    const source = format === 'arrow' ? readArrowBatches(this.path) : (await loadDuckDBEngine()).streamQueryAsArrow(this.selectAll(format), batchRows);
    let rows = 0;
    for await (const batch of this.readFailingClearly(source)) {
      rows += batch.numRows;
      yield batch;
    }
    this.rowsRead = rows;
  }


  async numRows(): Promise<number> {
    if (this.cachedRows !== undefined) return this.cachedRows;
    const format = this.format();
    if (format === 'arrow') {
      let rows = 0;
      for await (const batch of readArrowBatches(this.path)) rows += batch.numRows;
      this.cachedRows = rows;
    } else {
      const { withReadConnection } = await loadDuckDBEngine();
      this.cachedRows = await withReadConnection(async (connection) => {
        const reader = await connection.runAndReadAll(`SELECT count(*)::BIGINT AS n FROM ${duckdbReader(format, this.path)}`);
        return Number(reader.getRowsJS()[0]![0]);
      }).catch((error: unknown) => {
        throw this.unreadable(error);
      });
    }
    return this.cachedRows;
  }

  async schema(): Promise<Schema> {
    const format = this.format();
    if (format === 'arrow') {
      const { RecordBatchReader } = await loadArrow();
      const reader = await RecordBatchReader.from(createReadStream(this.path));
      await reader.open();
      const schema = reader.schema;
      await reader.cancel();
      return schema;
    }
    return (await loadDuckDBEngine()).querySchema(this.selectAll(format)).catch((error: unknown) => {
      throw this.unreadable(error);
    });
  }

  bytes(): Promise<Buffer> {
    return readFile(this.path);
  }

  stream(): Readable {
    return createReadStream(this.path);
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

  private selectAll(format: Exclude<TableFormat, 'arrow'>): string {
    return `SELECT * FROM ${duckdbReader(format, this.path)}`;
  }

  private async *readFailingClearly(source: AsyncIterable<RecordBatch>): AsyncGenerator<RecordBatch> {
    try {
      yield* source;
    } catch (error) {
      throw this.unreadable(error);
    }
  }

  private unreadable(error: unknown): DataFormatError {
    return new DataFormatError(`cannot read ${this.path} as a table: ${(error as Error).message}`, { cause: error });
  }
}

async function* readArrowBatches(path: string): AsyncGenerator<RecordBatch> {
  const { RecordBatchReader } = await loadArrow();
  const reader = await RecordBatchReader.from(createReadStream(path));
  for await (const batch of reader) yield batch;
}
