import { isArrowTable, recordsToTable } from '../data/records.js';
import { AttemptEndedError } from '../errors.js';
import type { SessionTransaction, SqlSession } from './sql-session.js';

/** Opens the transaction of one attempt on the worker's session database. */
export interface SessionProvider {
  begin(attempt: string): Promise<SessionTransaction>;
}

/**
 * The sessions of one attempt: opened on the first `withSession`, shared by every later call of
 * the attempt, ended with the attempt — committed when it succeeded, rolled back otherwise.
 */
export class AttemptSession {
  private transaction: Promise<SessionTransaction> | undefined;
  private ended = false;

  constructor(
    private readonly provider: SessionProvider,
    private readonly attempt: string,
  ) {}

  async withSession<T>(fn: (session: SqlSession) => T | Promise<T>): Promise<T> {
    if (this.ended) throw new AttemptEndedError('withSession was called after the attempt ended; await it inside the function');
    this.transaction ??= this.provider.begin(this.attempt);
    const transaction = await this.transaction;
    const session: SqlSession = {
      dialect: transaction.dialect,
      query: async <R>(sql: string, params: readonly unknown[] = []) => (await transaction.query(sql, params)) as R[],
      append: async (table, rows) => transaction.append(table, isArrowTable(rows) ? rows : await recordsToTable(rows)),
    };
    return fn(session);
  }

  /** Commits or rolls back what the attempt wrote; nothing when it opened no session. */
  async end(commit: boolean): Promise<void> {
    this.ended = true;
    if (this.transaction === undefined) return;
    const transaction = await this.transaction.catch(() => undefined);
    await transaction?.end(commit);
  }
}
