import type { Readable } from 'node:stream';
import type { RecordBatch, Schema, Table } from 'apache-arrow';
import { DataFormatError } from '../errors.js';
import type { BatchOptions, ColumnValues, DataConnector } from './data-connector.js';
import type { InputReader } from './input-segments.js';
import { loadArrow, loadTableValues } from './lazy-modules.js';

/**
 * DataFrame mode's {@link DataConnector}: the partition's rows of the run's planned input, read
 * only when asked, as slices of the stored Arrow batches (no copy, column types as in the source,
 * the partition column included).
 */
export class RowsConnector implements DataConnector {
  readonly path = undefined;
  rowsRead: number | undefined;

  constructor(
    private readonly input: InputReader,
    private readonly start: number,
    private readonly rows: number,
  ) {}

  async toArrow(): Promise<Table> {
    const { Table } = await loadArrow();
    const batches: RecordBatch[] = [];
    for await (const batch of this.input.rows(this.start, this.rows)) batches.push(batch);
    this.rowsRead = this.rows;
    return batches.length === 0 ? new Table(await this.schema()) : new Table(batches);
  }

  async *batches(options: BatchOptions = {}): AsyncGenerator<RecordBatch> {
    const size = options.batchSize;
    for await (const batch of this.input.rows(this.start, this.rows)) {
      if (size === undefined || batch.numRows <= size) {
        yield batch;
        continue;
      }
      for (let from = 0; from < batch.numRows; from += size) yield batch.slice(from, Math.min(batch.numRows, from + size));
    }
    this.rowsRead = this.rows;
  }

  async toRecords(): Promise<Record<string, unknown>[]> {
    const table = await this.toArrow();
    return (await loadTableValues()).tableToRecords(table);
  }

  async toColumns(): Promise<Record<string, ColumnValues>> {
    const table = await this.toArrow();
    return (await loadTableValues()).tableToColumns(table);
  }

  async numRows(): Promise<number> {
    return this.rows;
  }

  schema(): Promise<Schema> {
    return this.input.schema();
  }

  bytes(): Promise<Buffer> {
    return Promise.reject(notAFile());
  }

  stream(): Readable {
    throw notAFile();
  }
}

function notAFile(): DataFormatError {
  return new DataFormatError('bytes() and stream() read the file of a stage-mode partition; a DataFrame-mode partition is rows: use toArrow(), batches() or toRecords()');
}
