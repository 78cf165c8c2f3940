import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type DataType, type Table, TimeUnit, Type } from 'apache-arrow';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { plainColumn } from '../data/table-values.js';
import { sqlIdentifier } from '../data/sql.js';
import type { SessionTransaction } from './sql-session.js';

/**
 * PostgreSQL sessions of one worker: a small pool, one connection and one transaction per
 * attempt. Rows are appended with `COPY … FROM STDIN (FORMAT csv)`; a missing table is created
 * first on a separate connection, under an advisory lock, so concurrent partitions creating the
 * same table do not collide and the creation does not hold their transactions up.
 */
export class PostgresSessions {
  private readonly pool: pg.Pool;

  constructor(url: string) {
    this.pool = new pg.Pool({
      connectionString: url,
      max: 4,
      application_name: 'dpf',
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
    return {
      dialect: 'postgres',
      query: async (sql, params) => (await client.query(sql, params as unknown[])).rows as Record<string, unknown>[],
      append: async (table, rows) => {
        await this.createTable(table, rows);
        await copyRows(client, table, rows);
        return rows.numRows;
      },
      end: async (commit) => {
        if (ended) return;
        ended = true;
        try {
          await client.query(commit ? 'COMMIT' : 'ROLLBACK');
          client.release();
        } catch (error) {
          client.release(error as Error);
          throw error;
        }
      },
    };
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private async createTable(table: string, rows: Table): Promise<void> {
    const columns = rows.schema.fields.map((field) => `${sqlIdentifier(field.name)} ${postgresTypeOf(field.type as DataType)}`).join(', ');
    const client = await this.pool.connect();
    try {
      await client.query('SELECT pg_advisory_lock(hashtext($1))', [table]);
      try {
        await client.query(`CREATE TABLE IF NOT EXISTS ${qualified(table)} (${columns})`);
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtext($1))', [table]);
      }
    } finally {
      client.release();
    }
  }
}

async function copyRows(client: pg.PoolClient, table: string, rows: Table): Promise<void> {
  const names = rows.schema.fields.map((field) => sqlIdentifier(field.name)).join(', ');
  const columns = rows.schema.fields.map((_, i) => plainColumn(rows.getChildAt(i)!));
  const chunkRows = 4096;
  async function* csv(): AsyncGenerator<string> {
    for (let start = 0; start < rows.numRows; start += chunkRows) {
      let text = '';
      for (let row = start; row < Math.min(rows.numRows, start + chunkRows); row++) {
        text += columns.map((column) => csvField(column[row])).join(',') + '\n';
      }
      yield text;
    }
  }
  await pipeline(Readable.from(csv()), client.query(copyFrom(`COPY ${qualified(table)} (${names}) FROM STDIN WITH (FORMAT csv)`)));
}

/** One value in PostgreSQL's CSV: empty for NULL, everything else quoted. */
function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text: string;
  if (value instanceof Date) text = value.toISOString();
  else if (Buffer.isBuffer(value)) text = `\\x${value.toString('hex')}`;
  else if (typeof value === 'object') text = JSON.stringify(value, (_, inner: unknown) => (typeof inner === 'bigint' ? inner.toString() : inner));
  else text = String(value);
  return `"${text.replace(/"/g, '""')}"`;
}

function qualified(table: string): string {
  return table.split('.').map(sqlIdentifier).join('.');
}

function postgresTypeOf(type: DataType): string {
  switch (type.typeId) {
    case Type.Int: {
      const bitWidth = (type as unknown as { bitWidth: number }).bitWidth;
      return bitWidth <= 16 ? 'smallint' : bitWidth === 32 ? 'integer' : 'bigint';
    }
    case Type.Float:
      return (type as unknown as { precision: number }).precision === 1 ? 'real' : 'double precision';
    case Type.Decimal: {
      const { precision, scale } = type as unknown as { precision: number; scale: number };
      return `numeric(${precision}, ${scale})`;
    }
    case Type.Bool:
      return 'boolean';
    case Type.Date:
      return (type as unknown as { unit: number }).unit === 0 ? 'date' : 'timestamp';
    case Type.Timestamp:
      return (type as unknown as { timezone?: string | null }).timezone ? 'timestamptz' : 'timestamp';
    case Type.Time:
      return (type as unknown as { unit: TimeUnit }).unit === TimeUnit.SECOND ? 'time(0)' : 'time';
    case Type.Binary:
    case Type.LargeBinary:
      return 'bytea';
    case Type.Struct:
    case Type.List:
    case Type.Map:
      return 'jsonb';
    default:
      return 'text';
  }
}
