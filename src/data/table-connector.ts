import type { Readable } from 'node:stream';
import type { RecordBatch, Schema, Table } from 'apache-arrow';
import type { BatchOptions, ColumnValues, DataConnector } from './data-connector.js';
import { loadTableValues } from './lazy-modules.js';

/** What both connectors share: records and columns are views of `toArrow()`. */
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

  async toRecords(): Promise<Record<string, unknown>[]> {
    const table = await this.toArrow();
    return (await loadTableValues()).tableToRecords(table);
  }

  async toColumns(): Promise<Record<string, ColumnValues>> {
    const table = await this.toArrow();
    return (await loadTableValues()).tableToColumns(table);
  }
}
