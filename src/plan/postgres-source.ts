import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { DuckDBConnection } from '@duckdb/node-api';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { sqlIdentifier, sqlString } from '../data/sql.js';
import { LocalFileError, SourceError } from '../errors.js';
import { localFileError } from '../stage/local-file.js';

/** A PostgreSQL query as a DataFrame-mode source. */
export interface PostgresSource {
  /** Connection URL, e.g. `postgres://user@host:5432/db`. */
  postgres: string;
  /** The query whose rows are partitioned. */
  query: string;
}

/**
 * Reads a PostgreSQL query once into a DuckDB temporary table, keeping its column types: the
 * column types come from PostgreSQL's description of the query, the rows from one
 * `COPY (query) TO STDOUT (FORMAT csv)` — PostgreSQL's fastest way out — which DuckDB parses
 * in parallel with the types given, never guessed.
 */
export async function loadPostgresSource(connection: DuckDBConnection, source: PostgresSource, table: string): Promise<void> {
  const client = await connect(source.postgres);
  const file = join(tmpdir(), `dpf-postgres-${process.pid}-${randomBytes(4).toString('hex')}.csv`);
  try {
    const fields = await describe(client, source.query);
    await pipeline(client.query(copyTo(`COPY (SELECT * FROM (${source.query}) AS dpf_source) TO STDOUT WITH (FORMAT csv)`)), createWriteStream(file)).catch((error: unknown) => {
      // The local copy's failure (a full disk), not the server's: name the file.
      const cause = error as NodeJS.ErrnoException;
      throw cause.syscall === 'write' || cause.path === file ? localFileError(file, error, 'temporary') : error;
    });
    const columns = fields.map((field, i) => `${sqlString(`c${i}`)}: 'VARCHAR'`).join(', ');
    const selects = fields.map((field, i) => `${castFromText(`c${i}`, field)} AS ${sqlIdentifier(field.name)}`).join(', ');
    await connection.run(
      `CREATE TEMP TABLE ${sqlIdentifier(table)} AS SELECT ${selects} FROM read_csv(${sqlString(file)}, header = false, auto_detect = false, ` +
        `columns = {${columns}}, quote = '"', escape = '"', allow_quoted_nulls = false)`,
    );
  } catch (error) {
    if (error instanceof SourceError || error instanceof LocalFileError) throw error;
    throw new SourceError(`Reading the PostgreSQL source failed: ${(error as Error).message}`, { cause: error });
  } finally {
    await client.end().catch(() => undefined);
    await rm(file, { force: true });
  }
}

/** A connected client, or a SourceError that says the server cannot be reached. */
export async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
    return client;
  } catch (error) {
    await client.end().catch(() => undefined);
    throw new SourceError(`Cannot connect to PostgreSQL at ${redact(url)}: ${(error as Error).message}; check the URL and that the server is running`, {
      cause: error,
    });
  }
}

/** A connection URL with its password hidden, for messages. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(an invalid URL)';
  }
}

async function describe(client: pg.Client, query: string): Promise<pg.FieldDef[]> {
  try {
    const result = await client.query(`SELECT * FROM (${query}) AS dpf_source LIMIT 0`);
    return result.fields;
  } catch (error) {
    throw new SourceError(`PostgreSQL refused the source query: ${(error as Error).message}`, { cause: error });
  }
}

/** A SQL expression turning PostgreSQL's CSV text of a column into the column's DuckDB type. */
function castFromText(column: string, field: pg.FieldDef): string {
  const value = sqlIdentifier(column);
  switch (field.dataTypeID) {
    case 16: // bool
      return `(${value} = 't')`;
    case 17: // bytea, as \x followed by hex
      return `from_hex(substr(${value}, 3))`;
    default:
      return `CAST(${value} AS ${duckdbTypeOf(field)})`;
  }
}

function duckdbTypeOf(field: pg.FieldDef): string {
  switch (field.dataTypeID) {
    case 20:
      return 'BIGINT';
    case 21:
      return 'SMALLINT';
    case 23:
    case 26: // oid
      return 'INTEGER';
    case 700:
      return 'FLOAT';
    case 701:
      return 'DOUBLE';
    case 1700: {
      // numeric(p, s): the type modifier is ((p << 16) | s) + 4; unconstrained numeric has -1.
      if (field.dataTypeModifier < 4) return 'DOUBLE';
      const precision = ((field.dataTypeModifier - 4) >> 16) & 0xffff;
      const scale = (field.dataTypeModifier - 4) & 0xffff;
      return precision <= 38 ? `DECIMAL(${precision}, ${scale})` : 'DOUBLE';
    }
    case 1082:
      return 'DATE';
    case 1083:
      return 'TIME';
    case 1114:
      return 'TIMESTAMP';
    case 1184:
      return 'TIMESTAMPTZ';
    case 2950:
      return 'UUID';
    default:
      return 'VARCHAR'; // text, varchar, char, json, enums, … keep their text
  }
}
