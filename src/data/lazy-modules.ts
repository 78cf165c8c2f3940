/**
 * The heavy parts of the data path — apache-arrow and the embedded DuckDB take about 200 ms each
 * to load — are imported on first use, so a worker whose partitions never read a table, and the
 * CLI, start in a few milliseconds. Each import is kept: a dynamic `import()` of a loaded module
 * still costs tenths of a millisecond, which partitions of a hundred rows would pay every time.
 */
import type * as Arrow from 'apache-arrow';
import type * as ArrowToDuckDB from './arrow-to-duckdb.js';
import type * as DuckDBEngine from './duckdb-engine.js';
import type * as FeaturesModule from './features.js';
import type * as TableValues from './table-values.js';

function once<T>(load: () => Promise<T>): () => Promise<T> {
  let loaded: Promise<T> | undefined;
  return () => (loaded ??= load());
}

export const loadArrow = once((): Promise<typeof Arrow> => import('apache-arrow'));
export const loadDuckDBEngine = once((): Promise<typeof DuckDBEngine> => import('./duckdb-engine.js'));
export const loadTableValues = once((): Promise<typeof TableValues> => import('./table-values.js'));
export const loadArrowToDuckDB = once((): Promise<typeof ArrowToDuckDB> => import('./arrow-to-duckdb.js'));
export const loadFeatures = once((): Promise<typeof FeaturesModule> => import('./features.js'));
