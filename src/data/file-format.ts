import { basename } from 'node:path';
import { sqlString } from './sql.js';

/** The tabular formats dpf reads and writes, named by file extension. */
export type TableFormat = 'parquet' | 'csv' | 'json' | 'ndjson' | 'arrow';

const EXTENSIONS: ReadonlyArray<[string, TableFormat]> = [
  ['.parquet', 'parquet'],
  ['.pq', 'parquet'],
  ['.csv', 'csv'],
  ['.tsv', 'csv'],
  ['.json', 'json'],
  ['.ndjson', 'ndjson'],
  ['.jsonl', 'ndjson'],
  ['.arrow', 'arrow'],
  ['.arrows', 'arrow'],
  ['.feather', 'arrow'],
  ['.ipc', 'arrow'],
];

/** The format of a file from its name (a trailing `.gz` or `.zst` is looked through), or undefined. */
export function tableFormatOf(path: string): TableFormat | undefined {
  const name = basename(path).toLowerCase().replace(/\.(gz|zst)$/, '');
  return EXTENSIONS.find(([extension]) => name.endsWith(extension))?.[1];
}

/** How a worker's DuckDB reads files. */
export interface ReaderOptions {
  /** `read_csv`'s `buffer_size` in bytes (see `csvBufferBytes` in duckdb-settings.ts); undefined: DuckDB's default. */
  csvBufferBytes?: number | undefined;
}

/** The DuckDB table function call that reads a file of this format (not Arrow, which apache-arrow reads). */
export function duckdbReader(format: Exclude<TableFormat, 'arrow'>, path: string, options: ReaderOptions = {}): string {
  switch (format) {
    case 'parquet':
      return `read_parquet(${sqlString(path)})`;
    case 'csv':
      return `read_csv(${sqlString(path)}${options.csvBufferBytes !== undefined ? `, buffer_size = ${options.csvBufferBytes}` : ''})`;
    case 'json':
      return `read_json(${sqlString(path)})`;
    case 'ndjson':
      return `read_json(${sqlString(path)}, format = 'newline_delimited')`;
  }
}
