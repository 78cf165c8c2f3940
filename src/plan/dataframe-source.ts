import type { DuckDBConnection } from '@duckdb/node-api';
import type { Table } from 'apache-arrow';
import { loadArrowToDuckDB } from '../data/lazy-modules.js';
import { isArrowTable, recordsToTable } from '../data/records.js';
import { sqlIdentifier } from '../data/sql.js';
import { InvalidOptionError, SourceError } from '../errors.js';
import { describe } from '../validate.js';
import { loadPostgresSource, type PostgresSource } from './postgres-source.js';

/**
 * What DataFrame mode partitions:
 * - SQL text in DuckDB's dialect (`SELECT * FROM 'sales/*.parquet'`, `FROM read_csv('x.csv')`);
 * - a table name in the DuckDB database file given as `database`;
 * - an apache-arrow `Table`;
 * - an array of plain records;
 * - `{ postgres: 'postgres://…', query: 'SELECT …' }`.
 */
export type DataFrameSource = string | Table | ReadonlyArray<Record<string, unknown>> | PostgresSource;

/** The temporary DuckDB table a non-SQL source is loaded into. */
const LOADED = 'dpf_source';
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}$/;

/** A short description of a source, for the run's spec and messages. */
export function describeSource(source: DataFrameSource): string {
  if (typeof source === 'string') return shortened(withoutSecrets(source));
  if (isPostgres(source)) return `PostgreSQL query: ${shortened(withoutSecrets(source.query))}`;
  if (Array.isArray(source)) return `${source.length} records`;
  return `an Arrow table of ${(source as Table).numRows} rows`;
}

function shortened(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/**
 * SQL as a run records it, without the secrets it may name: the password of a URL
 * (`postgres://user:secret@host/db`), `password=…` of a libpq connection string, and the
 * credentials of a signed URL (`X-Amz-Signature=…`, `sig=…`, `token=…`).
 */
function withoutSecrets(sql: string): string {
  return sql
    .replace(/([a-z][a-z0-9+.-]*:\/\/[^\s:@/'"]+):[^\s@'"]*@/gi, '$1@')
    .replace(/\b(password|passwd|pwd|secret|token|sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token)(\s*=\s*)('[^']*'|"[^"]*"|[^\s&'";)]+)/gi, '$1$2***');
}

/** Checks the source's kind before any work; throws InvalidOptionError naming what is accepted. */
export function checkSource(source: unknown, database: string | undefined): DataFrameSource {
  if (typeof source === 'string') {
    if (source.trim() === '') throw new InvalidOptionError('source', 'must not be empty; give SQL text such as "SELECT * FROM \'sales.parquet\'"');
    if (TABLE_NAME.test(source.trim()) && database === undefined) {
      throw new InvalidOptionError(
        'source',
        `"${source}" reads as a table name, but no database is set; pass database: './warehouse.duckdb', or give SQL such as SELECT * FROM 'sales.parquet'`,
      );
    }
    return source;
  }
  if (Array.isArray(source)) {
    if (!source.every((row) => row !== null && typeof row === 'object' && !Array.isArray(row))) {
      throw new InvalidOptionError('source', 'an array source must hold plain objects, one per row');
    }
    return source as Array<Record<string, unknown>>;
  }
  if (isPostgres(source)) {
    if (typeof source.postgres !== 'string' || !/^postgres(ql)?:\/\//.test(source.postgres)) {
      throw new InvalidOptionError('source.postgres', 'expected a connection URL such as postgres://user@127.0.0.1:5432/db');
    }
    if (typeof source.query !== 'string' || source.query.trim() === '') throw new InvalidOptionError('source.query', 'expected the SQL query to partition');
    return source;
  }
  if (isArrowTable(source)) return source;
  throw new InvalidOptionError(
    'source',
    `cannot partition ${describe(source)}; give SQL text, a table name (with database), an apache-arrow Table, an array of records, or { postgres, query }`,
  );
}

/**
 * Makes the source queryable in the planning DuckDB, reading it once; returns the SQL of the
 * relation to select from.
 */
export async function relationOf(connection: DuckDBConnection, source: DataFrameSource): Promise<string> {
  if (typeof source === 'string') {
    const trimmed = source.trim().replace(/;\s*$/, '');
    // The closing parenthesis on a line of its own: SQL that ends with a -- comment stays whole.
    return TABLE_NAME.test(trimmed) ? trimmed.split('.').map(sqlIdentifier).join('.') : `(${trimmed}\n)`;
  }
  if (isPostgres(source)) {
    await loadPostgresSource(connection, source, LOADED);
    return sqlIdentifier(LOADED);
  }
  const table = Array.isArray(source) ? await recordsToTable(source as ReadonlyArray<Record<string, unknown>>) : (source as Table);
  const { appendArrowTable } = await loadArrowToDuckDB();
  await appendArrowTable(connection, LOADED, table, { create: 'temporary' });
  return sqlIdentifier(LOADED);
}

/** The column names and DuckDB types of the source relation; SourceError when DuckDB cannot bind it. */
export async function describeRelation(connection: DuckDBConnection, relation: string): Promise<Array<{ name: string; type: string }>> {
  try {
    const reader = await connection.runAndReadAll(`DESCRIBE SELECT * FROM ${relation} AS source`);
    return reader.getRowObjectsJS().map((row) => ({ name: String(row.column_name), type: String(row.column_type) }));
  } catch (error) {
    throw new SourceError(`The source cannot be read: ${(error as Error).message}`, { cause: error });
  }
}

function isPostgres(source: unknown): source is PostgresSource {
  return source !== null && typeof source === 'object' && 'postgres' in source;
}
