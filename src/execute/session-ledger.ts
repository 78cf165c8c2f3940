import type { CommittedAttempt } from '../model/refs.js';

/**
 * Exactly-once rows through `context.withSession`. An attempt's transaction also writes one row
 * of the ledger table, in the same database and the same transaction as its rows:
 *
 *   dpf_attempt_commits (run_uid, partition) primary key, with the attempt, its token, the
 *   driver's epoch and what the attempt left on the stage (artifacts and log: a CommittedAttempt)
 *
 * so the database itself says which attempt of a partition committed. The rows of a partition
 * therefore land once: a second attempt that reaches its commit (a retry after its worker died
 * past the commit, a re-run after the driver was killed between the database's commit and the
 * journal's, an attempt of a replaced driver) finds the ledger row, rolls its own writes back, and
 * the partition is recorded DONE with the attempt that did commit ("adopted"). A resumed run
 * first adopts every committed attempt the journal does not know, without running them again.
 *
 *   dpf_run_epochs (run_uid) primary key, epoch
 *
 * fences attempts of replaced drivers: a resume raises its run's epoch there first, and a commit
 * under an older epoch is refused.
 */
export const LEDGER_TABLE = 'dpf_attempt_commits';
export const EPOCH_TABLE = 'dpf_run_epochs';

/** What an attempt commits with its rows. */
export interface LedgerCommit {
  runUid: string;
  epoch: number;
  partition: number;
  partitionId: string;
  entry: CommittedAttempt;
}

export type CommitResult = { committed: true } | { adopted: CommittedAttempt };

/** The tables, in SQL both PostgreSQL and DuckDB accept. */
export const LEDGER_DDL = [
  `CREATE TABLE IF NOT EXISTS ${LEDGER_TABLE} (run_uid VARCHAR NOT NULL, partition INTEGER NOT NULL, partition_id VARCHAR NOT NULL, ` +
    'attempt INTEGER NOT NULL, token VARCHAR NOT NULL, epoch INTEGER NOT NULL, manifest VARCHAR NOT NULL, ' +
    'committed_at TIMESTAMP DEFAULT current_timestamp, PRIMARY KEY (run_uid, partition))',
  `CREATE TABLE IF NOT EXISTS ${EPOCH_TABLE} (run_uid VARCHAR PRIMARY KEY, epoch INTEGER NOT NULL)`,
];

/** The driver's side of the ledger: fencing older drivers, and finding committed attempts. */
export interface SessionLedger {
  /** Raises the run's epoch in the database: attempts of older drivers can no longer commit. */
  fence(runUid: string, epoch: number): Promise<void>;
  /** Every attempt of the run that committed, by partition index. */
  committed(runUid: string): Promise<Map<number, CommittedAttempt>>;
  close(): Promise<void>;
}
