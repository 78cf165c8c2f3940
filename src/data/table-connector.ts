import type { Readable } from 'node:stream';
import type { RecordBatch, Schema, Table } from 'apache-arrow';
import type { BatchOptions, ColumnValues, DataConnector } from './data-connector.js';
import type { FeatureDtype, FeatureOptions, Features } from './features.js';
import { loadFeatures, loadTableValues } from './lazy-modules.js';
import type { WholeRead } from './memory-budget.js';
import type { Columnar } from './table-values.js';

/**
 * What both connectors share: records and columns are views of `toArrow()`. Each whole-partition
 * read is refused (memory-budget.ts) when the partition would not fit in the worker's memory.
 */
export abstract class TableConnector implements DataConnector {
  abstract readonly path: string | undefined;
  /** Rows seen by the last full read, so the partition's details can report them. */
  rowsRead: number | undefined;

  abstract toArrow(): Promise<Table>;
  abstract batches(options?: BatchOptions): AsyncIterable<RecordBatch>;
  abstract numRows(): Promise<number>;
  abstract schema(): Promise<Schema>;
  abstract bytes(): Promise<Buffer>;
  abstract stream(): Readable;
  abstract localPath(): Promise<string>;

  /** Lets go of what reading cost (a downloaded file); called when the attempt ends. */
  async dispose(): Promise<void> {}

  async toRecords(): Promise<Record<string, unknown>[]> {
    const columnar = await this.columnar('toRecords');
    return (await loadTableValues()).tableToRecords(columnar);
  }

  async toColumns(): Promise<Record<string, ColumnValues>> {
    const columnar = await this.columnar('toColumns');
    return (await loadTableValues()).tableToColumns(columnar);
  }

  async toFeatures<D extends FeatureDtype = 'float64'>(options: FeatureOptions<D>): Promise<Features<D>> {
    const { readFeatures } = await loadFeatures();
    const features = await readFeatures(options, {
      what: this.description,
      schema: () => this.schema(),
      knownRows: () => this.knownRows(),
      batches: (columns) => this.columnBatches(columns),
    });
    this.rowsRead = features.numRows + features.droppedRows;
    return features as Features<D>;
  }

  /** The partition, as errors name it. */
  protected abstract readonly description: string;

  /** The partition's rows when they are known without reading them. */
  protected abstract knownRows(): Promise<number | undefined>;

  /** The partition's batches, holding at least `columns` (a reader that can leaves the others out). */
  protected abstract columnBatches(columns: readonly string[]): AsyncIterable<RecordBatch>;

  /**
   * The data as columns for `read` — a Table, or a single batch where building a Table would
   * only cost time — refused when it and what `read` builds from it would not fit in memory.
   */
  protected abstract columnar(read: WholeRead): Promise<Columnar>;
}
