import type { Table } from 'apache-arrow';
import type { CommitResult, LedgerCommit } from './session-ledger.js';

/**
 * A SQL session a partition function gets from `context.withSession(fn)`: DuckDB (the embedded
 * default, a database file) or PostgreSQL, as the DPF's `sessionDatabase` says.
 *
 * Everything one attempt does through its sessions is one transaction, committed only when the
 * attempt succeeds — a failed, timed-out or cancelled attempt leaves no row behind — and many
 * partitions may write to the same table at once.
 *
 * @example
 * ```ts
 * await context.withSession(async (session) => {
 *   await session.append('predictions', await data.toArrow());
 *   const [{ n }] = await session.query('SELECT count(*) AS n FROM predictions');
 * });
 * ```
 */
export interface SqlSession {
  /** Which database this is: the SQL dialect to write. */
  readonly dialect: 'duckdb' | 'postgres';
  /**
   * Runs one SQL statement and returns its rows as plain objects. Parameters are `$1`, `$2`, …
   * in both dialects.
   */
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /**
   * Appends rows — an apache-arrow Table or an array of records — to a table, creating it from the
   * rows' column types when it does not exist (the creation itself is not undone by a failed
   * attempt). PostgreSQL receives them through one COPY, not row-by-row INSERTs. Returns how many
   * rows were appended.
   */
  append(table: string, rows: Table | ReadonlyArray<Record<string, unknown>>): Promise<number>;
}

/** The backend of one attempt's transaction. */
export interface SessionTransaction {
  readonly dialect: SqlSession['dialect'];
  query(sql: string, params: readonly unknown[]): Promise<Record<string, unknown>[]>;
  append(table: string, rows: Table): Promise<number>;
  /**
   * Commits the attempt's writes together with its ledger entry (see session-ledger.ts), or —
   * when another attempt of the partition committed first — rolls them back and returns that
   * one. Gives the connection back either way.
   */
  commit(ledger: LedgerCommit): Promise<CommitResult>;
  /** Rolls back, and gives the connection back. */
  rollback(): Promise<void>;
}
