import { existsSync } from 'node:fs';
import { SessionDatabaseError } from '../errors.js';
import type { SessionTarget } from '../model/run-spec.js';
import { DuckDBSessionHost } from './duckdb-session-host.js';
import { describeSessionTarget } from './session-url.js';
import type { SessionLedger } from './session-ledger.js';

/** The session database's side a driver holds: the DuckDB host it serves, and the ledger it asks. */
export interface DriverSessions {
  /** Serves DuckDB sessions (a DuckDB target). */
  host: DuckDBSessionHost | undefined;
  /** The ledger of committed attempts; undefined without a session database. */
  ledger: SessionLedger | undefined;
  close(): Promise<void>;
}

/** Opens what the driver of a run needs of its session database (lazily: nothing connects yet). */
export async function openDriverSessions(target: SessionTarget): Promise<DriverSessions> {
  if (target.kind === 'none') return { host: undefined, ledger: undefined, close: async () => {} };
  if (target.kind === 'duckdb') {
    const host = DuckDBSessionHost.acquire(target.path);
    // A file that does not exist holds no committed attempt; asking must not create it.
    const ledger: SessionLedger = {
      fence: async (uid, at) => (existsSync(target.path) ? host.fence(uid, at) : undefined),
      committed: async (uid) => (existsSync(target.path) ? host.committed(uid) : new Map()),
      close: async () => {},
    };
    return { host, ledger, close: () => host.release() };
  }
  const { PostgresLedger } = await import('./postgres-session.js');
  const ledger = new PostgresLedger(target.url);
  return { host: undefined, ledger, close: () => ledger.close() };
}

/**
 * Checks, before any work, that the run's session database can be used: PostgreSQL is reached
 * and holds (or takes) the ledger's tables — a missing database or a refused login is one clear
 * error here, not every partition failing and retrying; a DuckDB file is not open in another
 * DuckDB instance of this process. Throws {@link SessionDatabaseError}.
 */
export async function checkSessionDatabase(target: SessionTarget): Promise<void> {
  if (target.kind === 'duckdb') return DuckDBSessionHost.checkNotOpenElsewhere(target.path);
  if (target.kind !== 'postgres') return;
  const { PostgresLedger } = await import('./postgres-session.js');
  const ledger = new PostgresLedger(target.url);
  try {
    await ledger.check();
  } catch (error) {
    throw new SessionDatabaseError(
      `The session database (${describeSessionTarget(target)}) cannot be used: ${(error as Error).message}; check sessionDatabase (and PGPASSWORD), or leave it out to write to {stage}/dpf.duckdb`,
      { cause: error },
    );
  } finally {
    await ledger.close().catch(() => undefined);
  }
}
