import { isArrowTable, recordsToTable } from '../data/records.js';
import { AttemptEndedError } from '../errors.js';
import type { CommitResult, LedgerCommit } from './session-ledger.js';
import type { SessionTransaction, SqlSession } from './sql-session.js';

/** Opens the transaction of one attempt on the worker's session database. */
export interface SessionProvider {
  /** `attempt`: the attempt's token, which names its transaction. */
  begin(attempt: string): Promise<SessionTransaction>;
}

/**
 * The sessions of one attempt: opened on the first `withSession`, shared by every later call of
 * the attempt, ended with the attempt — committed with its ledger entry when it succeeded, rolled
 * back otherwise.
 */
export class AttemptSession {
  private transaction: Promise<SessionTransaction> | undefined;
  private ended = false;

  constructor(
    private readonly provider: SessionProvider | undefined,
    private readonly attempt: string,
  ) {}

  /** Whether the attempt opened a session (its commit then goes through the ledger). */
  get opened(): boolean {
    return this.transaction !== undefined;
  }

  async withSession<T>(fn: (session: SqlSession) => T | Promise<T>): Promise<T> {
    if (this.ended) throw new AttemptEndedError('withSession was called after the attempt ended; await it inside the function');
    if (this.provider === undefined) {
      throw new AttemptEndedError(
        'withSession needs a session database, and this run has none: a stage on S3 has no folder for the default DuckDB file; ' +
          "pass sessionDatabase (a DuckDB file path or a postgres:// URL) to new DPF(…, { stage, sessionDatabase })",
      );
    }
    this.transaction ??= this.provider.begin(this.attempt);
    const transaction = await this.transaction;
    // A function still running after its attempt ended (timed out, cancelled) writes nothing more.
    const open = (): SessionTransaction => {
      if (this.ended) throw new AttemptEndedError('withSession: the attempt has ended (it timed out, was cancelled or failed), so its session is closed and this statement was not run');
      return transaction;
    };
    const session: SqlSession = {
      dialect: transaction.dialect,
      query: async <R>(sql: string, params: readonly unknown[] = []) => (await open().query(sql, params)) as R[],
      append: async (table, rows) => {
        const arrow = isArrowTable(rows) ? rows : await recordsToTable(rows);
        return open().append(table, arrow);
      },
    };
    return fn(session);
  }

  /** Commits what the attempt wrote with its ledger entry; undefined when it opened no session. */
  async commit(ledger: LedgerCommit): Promise<CommitResult | undefined> {
    this.ended = true;
    if (this.transaction === undefined) return undefined;
    const transaction = await this.transaction;
    return transaction.commit(ledger);
  }

  /** Rolls back what the attempt wrote; nothing when it opened no session. */
  async rollback(): Promise<void> {
    this.ended = true;
    if (this.transaction === undefined) return;
    const transaction = await this.transaction.catch(() => undefined);
    await transaction?.rollback();
  }
}
