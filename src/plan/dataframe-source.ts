import type { DuckDBConnection } from '@duckdb/node-api';
import type { Table } from 'apache-arrow';
import { loadArrowToDuckDB } from '../data/lazy-modules.js';
import { isArrowTable, recordsToTable } from '../data/records.js';
import { sqlIdentifier, sqlString } from '../data/sql.js';
import { InvalidOptionError, SourceError } from '../errors.js';
import { describe } from '../validate.js';
import type { PostgresSource } from './postgres-source.js';

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
    // With a database, `sales.csv` may be its schema `sales`'s table `csv`.
    const path = database !== undefined && TABLE_NAME.test(source.trim()) ? undefined : filePathOf(source.trim());
    if (path !== undefined) {
      throw new InvalidOptionError(
        'source',
        `"${source.trim()}" is a file path, not SQL; to partition the file, give the SQL that reads it: source: "SELECT * FROM ${sqlString(path)}"`,
      );
    }
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

/** The source as a relation of the planning DuckDB. */
export interface SourceRelation {
  /** What to select from: `(…user SQL…)`, a quoted table name, or the table a non-SQL source was loaded into. */
  relation: string;
  /** A statement that selects it alone: the user's own SQL when the source is SQL, so DuckDB's errors quote what the user wrote. */
  statement: string;
}

/**
 * Makes the source queryable in the planning DuckDB, reading it once; returns the relation to
 * select from.
 */
export async function relationOf(connection: DuckDBConnection, source: DataFrameSource): Promise<SourceRelation> {
  if (typeof source === 'string') {
    const trimmed = source.trim().replace(/;\s*$/, '');
    if (TABLE_NAME.test(trimmed)) {
      const relation = trimmed.split('.').map(sqlIdentifier).join('.');
      return { relation, statement: `SELECT * FROM ${relation}` };
    }
    // The closing parenthesis on a line of its own: SQL that ends with a -- comment stays whole.
    return { relation: `(${trimmed}\n)`, statement: trimmed };
  }
  if (isPostgres(source)) {
    // Loaded on use: pg is not imported by runs that never read PostgreSQL.
    const { loadPostgresSource } = await import('./postgres-source.js');
    await loadPostgresSource(connection, source, LOADED);
    return { relation: sqlIdentifier(LOADED), statement: `SELECT * FROM ${sqlIdentifier(LOADED)}` };
  }
  const table = Array.isArray(source) ? await recordsToTable(source as ReadonlyArray<Record<string, unknown>>) : (source as Table);
  const { appendArrowTable } = await loadArrowToDuckDB();
  await appendArrowTable(connection, LOADED, table, { create: 'temporary' });
  return { relation: sqlIdentifier(LOADED), statement: `SELECT * FROM ${sqlIdentifier(LOADED)}` };
}

/**
 * The column names and DuckDB types of the source; SourceError when DuckDB cannot bind it. The
 * user's statement is prepared as written (not inside a wrapper of dpf's), so an error points into
 * the user's own SQL.
 */
export async function describeRelation(connection: DuckDBConnection, source: SourceRelation): Promise<Array<{ name: string; type: string }>> {
  let prepared;
  try {
    prepared = await connection.prepare(source.statement);
  } catch (error) {
    // Some queries are read as several statements on their own yet make one subquery (PIVOT).
    const wrapped = await connection.runAndReadAll(`DESCRIBE SELECT * FROM ${source.relation} AS source`).catch(() => undefined);
    if (wrapped !== undefined) return wrapped.getRowObjectsJS().map((row) => ({ name: String(row.column_name), type: String(row.column_type) }));
    throw new SourceError(`The source cannot be read: ${(error as Error).message}`, { cause: error });
  }
  try {
    const { StatementType } = await import('@duckdb/node-api');
    if (prepared.statementType !== StatementType.SELECT) {
      throw new SourceError(`The source must be a query that returns rows (SELECT …, FROM …), not a ${StatementType[prepared.statementType]} statement: ${shortened(source.statement)}`);
    }
    return Array.from({ length: prepared.columnCount }, (_, i) => ({ name: prepared.columnName(i), type: prepared.columnType(i).toString() }));
  } finally {
    prepared.destroySync();
  }
}

/** File extensions DuckDB reads as tables, optionally compressed. */
const DATA_FILE = /\.(parquet|csv|tsv|json|ndjson|jsonl|arrow|feather|xlsx|txt)(\.(gz|zst))?$/i;

/**
 * The path a source names when it is a bare file path or glob (`data/x.parquet`, `'sales/*.csv'`)
 * rather than SQL: one word, quoted or not, with a path separator, a glob or a data file's extension.
 */
function filePathOf(source: string): string | undefined {
  const unquoted = /^'([^']+)'$/.exec(source)?.[1] ?? /^"([^"]+)"$/.exec(source)?.[1] ?? source;
  if (/\s/.test(unquoted)) return undefined;
  return /[/\\*?]/.test(unquoted) || DATA_FILE.test(unquoted) ? unquoted : undefined;
}

function isPostgres(source: unknown): source is PostgresSource {
  return source !== null && typeof source === 'object' && 'postgres' in source;
}
