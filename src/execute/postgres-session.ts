import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type DataType, type Table, Type } from 'apache-arrow';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { sqlIdentifier } from '../data/sql.js';
import { AttemptEndedError, LeaseLostError } from '../errors.js';
import type { CommittedAttempt } from '../model/refs.js';
import { EPOCH_TABLE, LEDGER_DDL, LEDGER_TABLE, type CommitResult, type LedgerCommit, type SessionLedger } from './session-ledger.js';
import type { SessionTransaction } from './sql-session.js';

const ENDED = 'withSession: the attempt has ended (it timed out, was cancelled or failed), so its session is closed and this statement was not run';

/**
 * PostgreSQL sessions of one worker: a small pool, one connection and one transaction per
 * attempt. Rows are appended with `COPY … FROM STDIN (FORMAT csv)`, each cell's exact value
 * (see {@link postgresTypeOf} for the column types); a missing table is created
 * first on a separate connection, under an advisory lock, so concurrent partitions creating the
 * same table do not collide and the creation does not hold their transactions up. An attempt
 * commits with its ledger row (session-ledger.ts): exactly once per partition.
 */
export class PostgresSessions {
  private readonly pool: pg.Pool;
  private ledgerReady: Promise<void> | undefined;

  constructor(url: string) {
    this.pool = new pg.Pool({
      connectionString: url,
      max: 4,
      // Connections say they are dpf's, unless the URL names them (…?application_name=nightly-load).
      application_name: applicationName(url, 'dpf'),
      // Idle connections close soon: a worker waiting for its next run should not hold them.
      idleTimeoutMillis: 2_000,
      allowExitOnIdle: true,
      // 64-bit integers as bigint rather than text.
      types: { getTypeParser: (oid: number, format?: string) => (oid === 20 ? (value: string) => BigInt(value) : pg.types.getTypeParser(oid, format as 'text')) },
    });
    // An idle client that loses its server must not crash the worker.
    this.pool.on('error', () => undefined);
  }

  async begin(): Promise<SessionTransaction> {
    const client = await this.pool.connect();
    await client.query('BEGIN');
    let ended = false;
    // Once the attempt ended, its connection may serve another attempt: a function still running
    // (timed out, cancelled) must not write through it into that attempt's transaction.
    const open = (): pg.PoolClient => {
      if (ended) throw new AttemptEndedError(ENDED);
      return client;
    };
    return {
      dialect: 'postgres',
      query: async (sql, params) => (await open().query(sql, params as unknown[])).rows as Record<string, unknown>[],
      append: async (table, rows) => {
        open();
        await this.createTable(table, rows);
        await copyRows(open(), table, rows);
        return rows.numRows;
      },
      commit: async (ledger) => {
        if (ended) throw new Error('the attempt\'s transaction has ended');
        ended = true;
        try {
          await this.createLedger();
          const result = await commitWithLedger(client, ledger);
          client.release();
          return result;
        } catch (error) {
          await client.query('ROLLBACK').catch(() => undefined);
          client.release(error as Error);
          throw error;
        }
      },
      rollback: async () => {
        if (ended) return;
        ended = true;
        try {
          await client.query('ROLLBACK');
          client.release();
        } catch (error) {
          client.release(error as Error);
          throw error;
        }
      },
    };
  }

  /** The ledger's tables, created once per pool (outside the attempts' transactions, under an advisory lock). */
  private createLedger(): Promise<void> {
    this.ledgerReady ??= withAdvisoryLock(this.pool, LEDGER_TABLE, async (client) => {
      for (const ddl of LEDGER_DDL) await client.query(ddl);
    });
    this.ledgerReady.catch(() => (this.ledgerReady = undefined));
    return this.ledgerReady;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private async createTable(table: string, rows: Table): Promise<void> {
    const columns = rows.schema.fields.map((field) => `${sqlIdentifier(field.name)} ${postgresTypeOf(field.type as DataType)}`).join(', ');
    await withAdvisoryLock(this.pool, table, (client) => client.query(`CREATE TABLE IF NOT EXISTS ${qualified(table)} (${columns})`));
  }
}

/**
 * In the attempt's open transaction: refuses a commit under an epoch older than the run's (its
 * driver was replaced), then writes the ledger row; when another attempt's row is there, rolls
 * back and returns that attempt instead.
 */
async function commitWithLedger(client: pg.PoolClient, ledger: LedgerCommit): Promise<CommitResult> {
  const fence = await client.query<{ epoch: number }>(`SELECT epoch FROM ${EPOCH_TABLE} WHERE run_uid = $1 FOR SHARE`, [ledger.runUid]);
  const current = fence.rows[0]?.epoch;
  if (current !== undefined && current > ledger.epoch) {
    throw new LeaseLostError(`the run was taken over by a newer driver (epoch ${current}); this attempt of epoch ${ledger.epoch} may not commit`);
  }
  const inserted = await client.query(
    `INSERT INTO ${LEDGER_TABLE} (run_uid, partition, partition_id, attempt, token, epoch, manifest) VALUES ($1, $2, $3, $4, $5, $6, $7) ` +
      'ON CONFLICT (run_uid, partition) DO NOTHING RETURNING token',
    [ledger.runUid, ledger.partition, ledger.partitionId, ledger.entry.attempt, ledger.entry.token, ledger.epoch, JSON.stringify(ledger.entry)],
  );
  if (inserted.rowCount === 1) {
    await client.query('COMMIT');
    return { committed: true };
  }
  await client.query('ROLLBACK');
  const existing = await client.query<{ manifest: string }>(`SELECT manifest FROM ${LEDGER_TABLE} WHERE run_uid = $1 AND partition = $2`, [ledger.runUid, ledger.partition]);
  return { adopted: JSON.parse(existing.rows[0]!.manifest) as CommittedAttempt };
}

async function withAdvisoryLock<T>(pool: pg.Pool, name: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [name]);
    try {
      return await fn(client);
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [name]);
    }
  } finally {
    client.release();
  }
}

/** The driver's side of the PostgreSQL ledger (one short connection per call). */
export class PostgresLedger implements SessionLedger {
  private readonly pool: pg.Pool;

  constructor(url: string) {
    // A server that does not answer is an error after 10 s, not a run that waits for ever.
    this.pool = new pg.Pool({ connectionString: url, max: 1, application_name: applicationName(url, 'dpf driver'), idleTimeoutMillis: 1_000, allowExitOnIdle: true, connectionTimeoutMillis: 10_000 });
    this.pool.on('error', () => undefined);
  }

  /** Connects and makes sure the ledger's tables are there: what a run needs of the database before it starts. */
  async check(): Promise<void> {
    await this.ensureTables();
  }

  async fence(runUid: string, epoch: number): Promise<void> {
    await this.ensureTables();
    await this.pool.query(
      `INSERT INTO ${EPOCH_TABLE} (run_uid, epoch) VALUES ($1, $2) ON CONFLICT (run_uid) DO UPDATE SET epoch = GREATEST(${EPOCH_TABLE}.epoch, EXCLUDED.epoch)`,
      [runUid, epoch],
    );
  }

  async committed(runUid: string): Promise<Map<number, CommittedAttempt>> {
    await this.ensureTables();
    const rows = await this.pool.query<{ partition: number; manifest: string }>(`SELECT partition, manifest FROM ${LEDGER_TABLE} WHERE run_uid = $1`, [runUid]);
    return new Map(rows.rows.map((row) => [row.partition, JSON.parse(row.manifest) as CommittedAttempt]));
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private ensureTables(): Promise<void> {
    return withAdvisoryLock(this.pool, LEDGER_TABLE, async (client) => {
      for (const ddl of LEDGER_DDL) await client.query(ddl);
    });
  }
}

function applicationName(url: string, fallback: string): string {
  try {
    return new URL(url).searchParams.get('application_name') ?? fallback;
  } catch {
    return fallback;
  }
}

async function copyRows(client: pg.PoolClient, table: string, rows: Table): Promise<void> {
  const { postgresEncoder } = await import('./postgres-values.js');
  const names = rows.schema.fields.map((field) => sqlIdentifier(field.name)).join(', ');
  const encoders = rows.schema.fields.map((field) => postgresEncoder(field.type as DataType, postgresForm(field.type as DataType)));
  const chunkRows = 4096;
  async function* csv(): AsyncGenerator<string> {
    for (const batch of rows.batches) {
      const columns = rows.schema.fields.map((_, i) => batch.getChildAt(i)!.data[0]!);
      for (let start = 0; start < batch.numRows; start += chunkRows) {
        let text = '';
        for (let row = start; row < Math.min(batch.numRows, start + chunkRows); row++) {
          text += columns.map((data, c) => csvField(encoders[c]!(data, row))).join(',') + '\n';
        }
        yield text;
      }
    }
  }
  await pipeline(Readable.from(csv()), client.query(copyFrom(`COPY ${qualified(table)} (${names}) FROM STDIN WITH (FORMAT csv)`)));
}

/** One value in PostgreSQL's CSV: empty for NULL, everything else quoted. */
function csvField(text: string | undefined): string {
  return text === undefined ? '' : `"${text.replace(/"/g, '""')}"`;
}

function qualified(table: string): string {
  return table.split('.').map(sqlIdentifier).join('.');
}

/**
 * The PostgreSQL column type of an Arrow type. Where PostgreSQL has no equal, arrays or `jsonb`:
 *
 * | Arrow | PostgreSQL |
 * | --- | --- |
 * | Int8, Int16 / Int32 / Int64 | smallint / integer / bigint |
 * | Uint8 / Uint16 / Uint32 / Uint64 | smallint / integer / bigint / numeric(20, 0) |
 * | Float32 / Float64 | real / double precision |
 * | Decimal(p, s) | numeric(p, s) |
 * | Bool, Utf8, Binary | boolean, text, bytea |
 * | Date / Time / Interval | date / time / interval |
 * | Timestamp / with a time zone | timestamp / timestamptz |
 * | List or FixedSizeList of a scalar type | an array of it (`integer[]`, `text[]`, …) |
 * | Struct, Map, List of lists/structs/maps | jsonb (PostgreSQL arrays are rectangular, composites need a type) |
 * | Null, Dictionary, others | text |
 */
function postgresTypeOf(type: DataType): string {
  switch (type.typeId) {
    case Type.Int: {
      const { bitWidth, isSigned } = type as unknown as { bitWidth: number; isSigned: boolean };
      const width = isSigned ? bitWidth : bitWidth * 2;
      return width <= 16 ? 'smallint' : width === 32 ? 'integer' : width === 64 ? 'bigint' : 'numeric(20, 0)';
    }
    case Type.Float:
      return (type as unknown as { precision: number }).precision === 2 ? 'double precision' : 'real';
    case Type.Decimal: {
      const { precision, scale } = type as unknown as { precision: number; scale: number };
      return `numeric(${precision}, ${scale})`;
    }
    case Type.Bool:
      return 'boolean';
    case Type.Date:
      return 'date';
    case Type.Timestamp:
      return (type as unknown as { timezone?: string | null }).timezone ? 'timestamptz' : 'timestamp';
    case Type.Time:
      return 'time';
    case Type.Interval:
      return 'interval';
    case Type.Binary:
    case Type.LargeBinary:
    case Type.FixedSizeBinary:
      return 'bytea';
    case Type.List:
    case Type.LargeList:
    case Type.FixedSizeList:
      return postgresForm(type) === 'array' ? `${postgresTypeOf(type.children[0]!.type as DataType)}[]` : 'jsonb';
    case Type.Struct:
    case Type.Map:
      return 'jsonb';
    default:
      return 'text';
  }
}

/** How a column's cells are written: as scalars, as array literals, or as JSON. */
function postgresForm(type: DataType): 'scalar' | 'array' | 'json' {
  switch (type.typeId) {
    case Type.List:
    case Type.LargeList:
    case Type.FixedSizeList:
      return postgresForm(type.children[0]!.type as DataType) === 'scalar' ? 'array' : 'json';
    case Type.Struct:
    case Type.Map:
      return 'json';
    default:
      return 'scalar';
  }
}
