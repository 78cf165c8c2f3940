/**
 * The heavy parts of the data path — apache-arrow and the embedded DuckDB take about 200 ms each
 * to load — are imported on first use, so a worker whose partitions never read a table, and the
 * CLI, start in a few milliseconds.
 */
import type * as Arrow from 'apache-arrow';
import type * as ArrowToDuckDB from './arrow-to-duckdb.js';
import type * as DuckDBEngine from './duckdb-engine.js';
import type * as TableValues from './table-values.js';

export const loadArrow = (): Promise<typeof Arrow> => import('apache-arrow');
export const loadDuckDBEngine = (): Promise<typeof DuckDBEngine> => import('./duckdb-engine.js');
export const loadTableValues = (): Promise<typeof TableValues> => import('./table-values.js');
export const loadArrowToDuckDB = (): Promise<typeof ArrowToDuckDB> => import('./arrow-to-duckdb.js');
