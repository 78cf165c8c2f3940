import type { Readable } from 'node:stream';
import type { RecordBatch, Schema, Table } from 'apache-arrow';
import { DataFormatError } from '../errors.js';
import type { BatchOptions } from './data-connector.js';
import { TableConnector } from './table-connector.js';
import type { InputReader } from './input-segments.js';
import { loadArrow } from './lazy-modules.js';
import { checkFitsInMemory, type WholeRead } from './memory-budget.js';
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
    /** The partition's id, as errors name it. */
    private readonly partitionId: string,
  ) {
    super();
  }

  async toArrow(): Promise<Table> {
    return this.table(await this.readBatches('toArrow'));
  }

  protected override async columnar(read: WholeRead): Promise<Columnar> {
    const batches = await this.readBatches(read);
    return batches.length === 1 ? batches[0]! : this.table(batches);
  }

  private async table(batches: RecordBatch[]): Promise<Table> {
    const { Table } = await loadArrow();
    return batches.length === 0 ? new Table(await this.schema()) : new Table(batches);
  }

  /** The partition's batches, all read — once the manifest says they fit in memory for `read`. */
  private async readBatches(read: WholeRead): Promise<RecordBatch[]> {
    const arrowBytes = await this.input.bytesOf(this.start, this.rows);
    // The schema (for the estimate of the values records and columns build) only where it counts.
    const schema = read === 'toArrow' ? undefined : await this.schema();
    await checkFitsInMemory(`partition "${this.partitionId}"`, read, { rows: this.rows, arrowBytes, ...(schema !== undefined ? { schema } : {}) });
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

  protected override get description(): string {
    return `partition "${this.partitionId}"`;
  }

  protected override async knownRows(): Promise<number> {
    return this.rows;
  }

  protected override columnBatches(): AsyncIterable<RecordBatch> {
    return this.input.rows(this.start, this.rows);
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
