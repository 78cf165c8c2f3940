import type { Readable } from 'node:stream';
import type { RecordBatch, Schema, Table } from 'apache-arrow';
import { DataFormatError } from '../errors.js';
import type { BatchOptions } from './data-connector.js';
import { TableConnector } from './table-connector.js';
import type { InputReader } from './input-segments.js';
import { loadArrow } from './lazy-modules.js';
import type { Columnar } from './table-values.js';

/**
 * DataFrame mode's {@link DataConnector}: the partition's rows of the run's planned input, read
 * only when asked, as slices of the stored Arrow batches (no copy, column types as in the source,
 * the partition column included).
 */
export class RowsConnector extends TableConnector {
  readonly path = undefined;

  constructor(
    private readonly input: InputReader,
    private readonly start: number,
    private readonly rows: number,
  ) {
    super();
  }

  async toArrow(): Promise<Table> {
    const { Table } = await loadArrow();
    const batches = await this.readBatches();
    return batches.length === 0 ? new Table(await this.schema()) : new Table(batches);
  }

  protected override async columnar(): Promise<Columnar> {
    const batches = await this.readBatches();
    return batches.length === 1 ? batches[0]! : this.toArrow();
  }

  private async readBatches(): Promise<RecordBatch[]> {
    const batches: RecordBatch[] = [];
    for await (const batch of this.input.rows(this.start, this.rows)) batches.push(batch);
    this.rowsRead = this.rows;
    return batches;
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

  localPath(): Promise<string> {
    return Promise.reject(notAFile());
  }
}

function notAFile(): DataFormatError {
  return new DataFormatError('bytes(), stream() and localPath() read the file of a stage-mode partition; a DataFrame-mode partition is rows: use toArrow(), batches() or toRecords()');
}
