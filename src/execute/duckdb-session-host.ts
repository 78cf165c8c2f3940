import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { Table } from 'apache-arrow';
import { loadArrow, loadArrowToDuckDB } from '../data/lazy-modules.js';
import { AttemptEndedError, LeaseLostError, serializeError, type SerializedError, SessionDatabaseError } from '../errors.js';
import { foreignHandleCount } from '../data/open-file-handles.js';
import type { CommittedAttempt } from '../model/refs.js';
import type { SessionRequest } from './protocol.js';
import { type CommitResult, EPOCH_TABLE, LEDGER_DDL, LEDGER_TABLE, type LedgerCommit, type SessionLedger } from './session-ledger.js';

/** One host per DuckDB file in a process: two DuckDB instances on one file lose each other's writes. */
const hosts = new Map<string, { host: DuckDBSessionHost; users: number }>();

/**
 * The DuckDB database file that `context.withSession` writes to, served by the driver.
 *
 * A DuckDB file can be written by one process only, so workers (threads or processes alike) send
 * their session's statements here; each attempt gets its own connection and transaction, which
 * DuckDB runs side by side (appends to one table from many transactions do not conflict), and
 * which ends when the attempt does: committed on success with its ledger row (session-ledger.ts),
 * rolled back otherwise — also when its worker dies. Commits are taken one at a time, so the
 * ledger check and the commit cannot interleave with another attempt's. Every run of a process
 * that writes to the same file shares one host ({@link DuckDBSessionHost.acquire}).
 */
export class DuckDBSessionHost implements SessionLedger {
  private instance: Promise<DuckDBInstance> | undefined;
  private readonly transactions = new Map<string, Promise<DuckDBConnection>>();
  /** Attempts whose transaction was rolled back (they failed, or their worker died): they may do nothing more. */
  private readonly rolledBack = new Set<string>();
  private committing: Promise<unknown> = Promise.resolve();
  /**
   * Each attempt's statements, commit and rollback run one after another: a rollback waits for
   * the statement in progress and no statement runs after it — a DuckDB connection whose
   * transaction ended would run it in autocommit mode, committing the rows of an attempt that
   * ended (its worker died while its append was on the way).
   */
  private readonly queues = new Map<string, Promise<unknown>>();

  private constructor(private readonly path: string) {}

  /** The process's host of a DuckDB file; {@link DuckDBSessionHost.release} it when the run ends. */
  static acquire(path: string): DuckDBSessionHost {
    let entry = hosts.get(path);
    if (entry === undefined) {
      entry = { host: new DuckDBSessionHost(path), users: 0 };
      hosts.set(path, entry);
    }
    entry.users++;
    return entry.host;
  }

  /**
   * Refuses, before a run starts, a DuckDB file that another database instance of this process
   * has open — the user's own `DuckDBInstance`, an `ATTACH` — while dpf's host does not: two
   * instances on one file lose each other's writes (the file ends as one of them last wrote it),
   * and DuckDB's file lock cannot see it, as it is per process. Another process holding the file
   * is left to DuckDB's lock, which refuses dpf's open with that process's pid.
   */
  static checkNotOpenElsewhere(path: string): void {
    const open = foreignHandleCount(path);
    const ours = hosts.get(path)?.host.instance !== undefined ? 1 : 0;
    if (open !== undefined && open > ours) throw openElsewhere(path);
  }

  /** Lets go of the host; the last run to release it closes the file. */
  async release(): Promise<void> {
    const entry = hosts.get(this.path);
    if (entry === undefined || entry.host !== this) return this.close();
    if (--entry.users > 0) return;
    hosts.delete(this.path);
    await this.close();
  }

  /** Serves one request; resolves with what the worker gets back. */
  async handle(request: SessionRequest): Promise<{ value?: unknown; error?: SerializedError }> {
    try {
      switch (request.op) {
        case 'query':
          return {
            value: await this.inTurn(request.attempt, async () => {
              const connection = await this.transaction(request.attempt);
              return (await connection.runAndReadAll(request.sql, request.params as never)).getRowObjectsJS();
            }),
          };
        case 'append': {
          const [{ tableFromIPC }, { appendArrowTable }] = await Promise.all([loadArrow(), loadArrowToDuckDB()]);
          const table = tableFromIPC(request.ipc);
          await this.createTable(request.table, table);
          await this.inTurn(request.attempt, async () => appendArrowTable(await this.transaction(request.attempt), request.table, table, { create: false }));
          return { value: table.numRows };
        }
        case 'commit':
          return { value: await this.inTurn(request.attempt, () => this.commit(request.attempt, request)) };
        case 'rollback':
          await this.rollback([request.attempt]);
          return {};
      }
    } catch (error) {
      return { error: serializeError(error) };
    }
  }

  /** Runs `fn` after everything the attempt asked before it (see {@link DuckDBSessionHost.queues}). */
  private inTurn<T>(attempt: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(attempt) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const settled = next.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(attempt, settled);
    // Forget an attempt's queue once it is idle.
    void settled.then(() => {
      if (this.queues.get(attempt) === settled) this.queues.delete(attempt);
    });
    return next;
  }

  /** Rolls back what attempts left open (their worker died, or the run is over); they can commit nothing after. */
  async rollback(attempts: Iterable<string> = [...this.transactions.keys()]): Promise<void> {
    for (const attempt of attempts) {
      // Marked at once: a statement queued after this will not start; the one running finishes first.
      this.rolledBack.add(attempt);
      await this.inTurn(attempt, () => this.end(attempt, false)).catch(() => undefined);
    }
  }

  async fence(runUid: string, epoch: number): Promise<void> {
    await this.withConnection(async (connection) => {
      await connection.run(
        `INSERT INTO ${EPOCH_TABLE} (run_uid, epoch) VALUES ($1, $2) ON CONFLICT (run_uid) DO UPDATE SET epoch = greatest(${EPOCH_TABLE}.epoch, EXCLUDED.epoch)`,
        [runUid, epoch],
      );
    });
  }

  async committed(runUid: string): Promise<Map<number, CommittedAttempt>> {
    return this.withConnection(async (connection) => {
      const reader = await connection.runAndReadAll(`SELECT partition, manifest FROM ${LEDGER_TABLE} WHERE run_uid = $1`, [runUid]);
      return new Map(reader.getRowObjectsJS().map((row) => [Number(row.partition), JSON.parse(String(row.manifest)) as CommittedAttempt]));
    });
  }

  async close(): Promise<void> {
    await this.rollback();
    if (this.instance !== undefined) (await this.instance.catch(() => undefined))?.closeSync();
    this.instance = undefined;
  }

  /** Commits one attempt with its ledger row, or adopts the attempt of the partition that committed first. */
  private commit(attempt: string, ledger: LedgerCommit): Promise<CommitResult> {
    const result = this.committing.then(async (): Promise<CommitResult> => {
      const existing = await this.withConnection(async (connection) => {
        const fence = await connection.runAndReadAll(`SELECT epoch FROM ${EPOCH_TABLE} WHERE run_uid = $1`, [ledger.runUid]);
        const epoch = fence.getRowsJS()[0]?.[0];
        if (epoch !== undefined && Number(epoch) > ledger.epoch) {
          throw new LeaseLostError(`the run was taken over by a newer driver (epoch ${String(epoch)}); this attempt of epoch ${ledger.epoch} may not commit`);
        }
        const rows = await connection.runAndReadAll(`SELECT manifest FROM ${LEDGER_TABLE} WHERE run_uid = $1 AND partition = $2`, [ledger.runUid, ledger.partition]);
        const manifest = rows.getRowsJS()[0]?.[0];
        return manifest === undefined ? undefined : (JSON.parse(String(manifest)) as CommittedAttempt);
      });
      if (existing !== undefined) {
        await this.end(attempt, false);
        return { adopted: existing };
      }
      // The transaction holding the attempt's rows, not a new empty one (see transaction()).
      const connection = await this.transaction(attempt);
      await connection.run(
        `INSERT INTO ${LEDGER_TABLE} (run_uid, partition, partition_id, attempt, token, epoch, manifest) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [ledger.runUid, ledger.partition, ledger.partitionId, ledger.entry.attempt, ledger.entry.token, ledger.epoch, JSON.stringify(ledger.entry)],
      );
      await this.end(attempt, true);
      return { committed: true };
    });
    this.committing = result.catch(() => undefined);
    return result.catch(async (error: unknown) => {
      await this.end(attempt, false).catch(() => undefined);
      throw error;
    });
  }

  private database(): Promise<DuckDBInstance> {
    this.instance ??= import('@duckdb/node-api').then(async ({ DuckDBInstance }) => {
      // Opened by another instance of this process since the run started (see checkNotOpenElsewhere).
      if ((foreignHandleCount(this.path) ?? 0) > 0) throw openElsewhere(this.path);
      const instance = await DuckDBInstance.create(this.path);
      const connection = await instance.connect();
      try {
        for (const ddl of LEDGER_DDL) await connection.run(ddl);
      } finally {
        connection.closeSync();
      }
      return instance;
    });
    this.instance.catch(() => (this.instance = undefined));
    return this.instance;
  }

  private async withConnection<T>(fn: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
    const connection = await (await this.database()).connect();
    try {
      return await fn(connection);
    } finally {
      connection.closeSync();
    }
  }

  private transaction(attempt: string): Promise<DuckDBConnection> {
    // An attempt whose transaction was rolled back (its worker died while its commit waited, say)
    // must not go on in a fresh one: its rows are gone, and a commit would record none.
    if (this.rolledBack.has(attempt)) {
      return Promise.reject(new AttemptEndedError('withSession: the attempt\'s transaction was rolled back (its worker died, or it failed); nothing of it is committed'));
    }
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
    if (!commit) this.rolledBack.add(attempt);
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
    await this.withConnection(async (connection) => {
      const exists = await connection.runAndReadAll('SELECT count(*) AS n FROM duckdb_tables() WHERE table_name = $1', [name]);
      if (Number(exists.getRowsJS()[0]![0]) > 0) return;
      await appendArrowTable(connection, name, table.slice(0, 0), { create: true }).catch(async (error: unknown) => {
        // Another attempt created it between the check and here.
        const again = await connection.runAndReadAll('SELECT count(*) AS n FROM duckdb_tables() WHERE table_name = $1', [name]);
        if (Number(again.getRowsJS()[0]![0]) === 0) throw error;
      });
    });
  }
}

function openElsewhere(path: string): SessionDatabaseError {
  return new SessionDatabaseError(
    `The session database ${path} is open in this process by another DuckDB instance (a DuckDBInstance of your own, or an ATTACH): ` +
      'two instances on one file lose each other\'s writes, so dpf does not write to it. Close that instance (closeSync()) before the run, ' +
      'and open it again once run.wait() has returned; or give the DPF another sessionDatabase',
  );
}
