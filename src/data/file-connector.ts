import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { type RecordBatch, RecordBatchReader, type Schema, Table, tableFromIPC } from 'apache-arrow';
import { DataFormatError } from '../errors.js';
import type { BatchOptions, ColumnValues, DataConnector } from './data-connector.js';
import { DEFAULT_BATCH_ROWS, querySchema, streamQueryAsArrow, withDuckDB } from './duckdb-engine.js';
import { duckdbReader, type TableFormat, tableFormatOf } from './file-format.js';
import { tableToColumns, tableToRecords } from './table-values.js';

/**
 * Stage mode's {@link DataConnector}: one file. Parquet, CSV and JSON are read by the worker's
 * embedded DuckDB; Arrow IPC by apache-arrow. Any file can be read as bytes or a stream.
 */
export class FileConnector implements DataConnector {
  readonly path: string;
  /** Rows seen by the last full read, so the partition's details can report them. */
  rowsRead: number | undefined;
  private cachedRows: number | undefined;

  constructor(path: string) {
    this.path = path;
  }

  async toArrow(): Promise<Table> {
    const format = this.format();
    const table =
      format === 'arrow' ? tableFromIPC(await readFile(this.path)) : new Table(await collect(streamQueryAsArrow(this.selectAll(format))));
    this.rowsRead = table.numRows;
    return table;
  }

  async *batches(options: BatchOptions = {}): AsyncGenerator<RecordBatch> {
    const format = this.format();
    const batchRows = options.batchSize ?? DEFAULT_BATCH_ROWS;
    let rows = 0;
    const source = format === 'arrow' ? readArrowBatches(this.path) : streamQueryAsArrow(this.selectAll(format), batchRows);
    for await (const batch of source) {
      rows += batch.numRows;
      yield batch;
    }
    this.rowsRead = rows;
  }

  async toRecords(): Promise<Record<string, unknown>[]> {
    return tableToRecords(await this.toArrow());
  }

  async toColumns(): Promise<Record<string, ColumnValues>> {
    return tableToColumns(await this.toArrow());
  }

  async numRows(): Promise<number> {
    if (this.cachedRows !== undefined) return this.cachedRows;
    const format = this.format();
    if (format === 'arrow') {
      let rows = 0;
      for await (const batch of readArrowBatches(this.path)) rows += batch.numRows;
      this.cachedRows = rows;
    } else {
      this.cachedRows = await withDuckDB(async (connection) => {
        const reader = await connection.runAndReadAll(`SELECT count(*)::BIGINT AS n FROM ${duckdbReader(format, this.path)}`);
        return Number(reader.getRowsJS()[0]![0]);
      });
    }
    return this.cachedRows;
  }

  async schema(): Promise<Schema> {
    const format = this.format();
    if (format === 'arrow') {
      const reader = await RecordBatchReader.from(createReadStream(this.path));
      await reader.open();
      const schema = reader.schema;
      await reader.cancel();
      return schema;
    }
    return querySchema(this.selectAll(format));
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
}

async function* readArrowBatches(path: string): AsyncGenerator<RecordBatch> {
  const reader = await RecordBatchReader.from(createReadStream(path));
  for await (const batch of reader) yield batch;
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}
