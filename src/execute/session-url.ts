import { basename } from 'node:path';
import type { SessionTarget } from '../model/run-spec.js';

/**
 * Database URLs without their secrets, for everything that is written down: a run records the
 * database its sessions write to, but not the password — anyone who can read a stage (a shared
 * bucket, a dashboard) must not learn it. The driver hands its workers the full URL in memory;
 * a process that resumes the run gives its own (or libpq's `PGPASSWORD`/`PGPASSFILE` supply it).
 */
const SECRET_PARAMETERS = /^(password|sslpassword|sslkey|sslcert|passfile)$/i;

/** A PostgreSQL URL without its password or any other credential parameter. */
export function redactDatabaseUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Not a URL we can take apart: keep nothing of it that could be a secret (all up to the last @).
    return url.replace(/\/\/.*@/, '//');
  }
  parsed.password = '';
  for (const name of [...parsed.searchParams.keys()]) if (SECRET_PARAMETERS.test(name)) parsed.searchParams.delete(name);
  return parsed.toString();
}

/** The session target as a run records it: without credentials, and the stage's own DuckDB file by its name only. */
export function storedSessionTarget(target: SessionTarget): SessionTarget {
  if (target.kind === 'postgres') return { kind: 'postgres', url: redactDatabaseUrl(target.url) };
  if (target.kind === 'duckdb' && target.inStage === true) return { kind: 'duckdb', path: basename(target.path), inStage: true };
  return target;
}

/** Whether two session targets name the same database (credentials aside). */
export function sameSessionDatabase(a: SessionTarget, b: SessionTarget): boolean {
  return JSON.stringify(storedSessionTarget(a)) === JSON.stringify(storedSessionTarget(b));
}

/** A session target for messages. */
export function describeSessionTarget(target: SessionTarget): string {
  if (target.kind === 'none') return 'no session database';
  return target.kind === 'duckdb' ? `the DuckDB file ${target.path}` : `PostgreSQL ${redactDatabaseUrl(target.url)}`;
}
