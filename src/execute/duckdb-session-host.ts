import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { Table } from 'apache-arrow';
import { loadArrow, loadArrowToDuckDB } from '../data/lazy-modules.js';
import { serializeError, type SerializedError } from '../errors.js';
import type { SessionRequest } from './protocol.js';

/**
 * The DuckDB database file that `context.withSession` writes to, served by the driver.
 *
 * A DuckDB file can be written by one process only, so workers (threads or processes alike) send
 * their session's statements here; each attempt gets its own connection and transaction, which
 * DuckDB runs side by side (appends to one table from many transactions do not conflict), and
 * which ends when the attempt does: committed on success, rolled back otherwise — also when its
 * worker dies.
 */
export class DuckDBSessionHost {
  private instance: Promise<DuckDBInstance> | undefined;
  private readonly transactions = new Map<string, Promise<DuckDBConnection>>();

  constructor(private readonly path: string) {}

  /** Serves one request; resolves with what the worker gets back. */
  async handle(request: SessionRequest): Promise<{ value?: unknown; error?: SerializedError }> {
    try {
      switch (request.op) {
        case 'query': {
          const connection = await this.transaction(request.attempt);
          const reader = await connection.runAndReadAll(request.sql, request.params as never);
          return { value: reader.getRowObjectsJS() };
        }
        case 'append': {
          const [{ tableFromIPC }, { appendArrowTable }] = await Promise.all([loadArrow(), loadArrowToDuckDB()]);
          const table = tableFromIPC(request.ipc);
          await this.createTable(request.table, table);
          await appendArrowTable(await this.transaction(request.attempt), request.table, table, { create: false });
          return { value: table.numRows };
        }
        case 'end':
          await this.end(request.attempt, request.commit);
          return {};
      }
    } catch (error) {
      return { error: serializeError(error) };
    }
  }

  /** Rolls back what attempts left open (their worker died, or the run is over). */
  async rollback(attempts: Iterable<string> = [...this.transactions.keys()]): Promise<void> {
    for (const attempt of attempts) await this.end(attempt, false).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.rollback();
    if (this.instance !== undefined) (await this.instance).closeSync();
    this.instance = undefined;
  }

  private database(): Promise<DuckDBInstance> {
    this.instance ??= import('@duckdb/node-api').then(({ DuckDBInstance }) => DuckDBInstance.create(this.path));
    return this.instance;
  }

  private transaction(attempt: string): Promise<DuckDBConnection> {
    let connection = this.transactions.get(attempt);
    if (connection === undefined) {
      connection = this.database().then(async (database) => {
        const opened = await database.connect();
        await opened.run('BEGIN TRANSACTION');
        return opened;
      });
      this.transactions.set(attempt, connection);
    }
    return connection;
  }

  private async end(attempt: string, commit: boolean): Promise<void> {
    const pending = this.transactions.get(attempt);
    if (pending === undefined) return;
    this.transactions.delete(attempt);
    const connection = await pending;
    try {
      await connection.run(commit ? 'COMMIT' : 'ROLLBACK');
    } finally {
      connection.closeSync();
    }
  }

  /** Creates a missing table outside any attempt's transaction, so concurrent creators do not conflict. */
  private async createTable(name: string, table: Table): Promise<void> {
    const { appendArrowTable } = await loadArrowToDuckDB();
    const connection = await (await this.database()).connect();
    try {
      const exists = await connection.runAndReadAll('SELECT count(*) AS n FROM duckdb_tables() WHERE table_name = $1', [name]);
      if (Number(exists.getRowsJS()[0]![0]) > 0) return;
      await appendArrowTable(connection, name, table.slice(0, 0), { create: true }).catch(async (error: unknown) => {
        // Another attempt created it between the check and here.
        const again = await connection.runAndReadAll('SELECT count(*) AS n FROM duckdb_tables() WHERE table_name = $1', [name]);
        if (Number(again.getRowsJS()[0]![0]) === 0) throw error;
      });
    } finally {
      connection.closeSync();
    }
  }
}
