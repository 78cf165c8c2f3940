import { DPFError } from '../errors.js';
import { loadArrow } from '../data/lazy-modules.js';
import type { SessionRequest, SessionResultMessage, WorkerMessage } from './protocol.js';
import type { CommitResult } from './session-ledger.js';
import type { SessionTransaction } from './sql-session.js';

/**
 * A worker's side of DuckDB sessions: statements go to the driver, which owns the database file
 * (see DuckDBSessionHost), and their results come back.
 */
export class DuckDBSessionClient {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();

  constructor(private readonly send: (message: WorkerMessage) => void) {}

  /** Delivers the driver's answer to a request. */
  receive(message: SessionResultMessage): void {
    const waiting = this.pending.get(message.id);
    if (waiting === undefined) return;
    this.pending.delete(message.id);
    if (message.error === undefined) {
      waiting.resolve(message.value);
      return;
    }
    const error = new DPFError(message.error.message);
    error.name = message.error.name;
    if (message.error.stack !== undefined) error.stack = message.error.stack;
    waiting.reject(error);
  }

  async begin(attempt: string): Promise<SessionTransaction> {
    return {
      dialect: 'duckdb',
      query: async (sql, params) => (await this.request({ op: 'query', attempt, sql, params })) as Record<string, unknown>[],
      append: async (table, rows) => {
        const { tableToIPC } = await loadArrow();
        return (await this.request({ op: 'append', attempt, table, ipc: tableToIPC(rows, 'stream') })) as number;
      },
      commit: async (ledger) => (await this.request({ op: 'commit', attempt, ...ledger })) as CommitResult,
      rollback: async () => {
        await this.request({ op: 'rollback', attempt });
      },
    };
  }

  private request(request: SessionRequest): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.send({ type: 'session', id, request });
    });
  }
}
