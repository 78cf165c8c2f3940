import { readFile, writeFile } from 'node:fs/promises';
import { extname } from 'node:path';
import type { Table } from 'apache-arrow';
import { FileConnector } from '../data/file-connector.js';
import { isArrowTable, recordsToTable } from '../data/records.js';
import { loadArrow, loadArrowToDuckDB, loadDuckDBEngine, loadTableValues } from '../data/lazy-modules.js';
import { sqlIdentifier, sqlString } from '../data/sql.js';
import { SerializationError } from '../errors.js';
import { temporaryFile } from './stored-ref.js';

/**
 * How `uploadToStage` writes a value and how artifacts are read back when no custom function is
 * given, chosen by the file's extension:
 *
 * | extension | written from | read back as |
 * | --- | --- | --- |
 * | `.json` | any JSON-able value (an Arrow table becomes its rows; bigints numbers or text) | the parsed value |
 * | `.ndjson`, `.jsonl` | an array of records or an Arrow table | an array of records |
 * | `.parquet`, `.csv` | an Arrow table or an array of records | an Arrow table |
 * | `.arrow`, `.feather` (file), `.arrows` (stream) | an Arrow table or an array of records | an Arrow table |
 * | `.txt`, `.log`, `.md` | a string (other values through `String`) | a string |
 * | anything | a `Buffer`/`Uint8Array` or a string, as raw bytes | a `Buffer` |
 */

/** A function that writes `value` to the local file `path` (Snowflake DPF's `write_function`). */
export type WriteFunction = (value: unknown, path: string) => unknown;
/** A function that reads the local file `path` (Snowflake DPF's `read_function`). */
export type ReadFunction<T> = (path: string) => T | Promise<T>;

const TEXT_EXTENSIONS = new Set(['.txt', '.log', '.md']);
/** Formats read through DuckDB, which wants a file. */
const READ_AS_TABLE_FROM_FILE = new Set(['.parquet', '.csv', '.tsv']);

/** Whether an artifact of this name is kept as raw bytes, both ways (its extension names no format of dpf's). */
export function keepsRawBytes(name: string): boolean {
  const extension = extname(name).toLowerCase();
  return !['.json', '.ndjson', '.jsonl', '.arrow', '.feather', '.arrows'].includes(extension) && !READ_AS_TABLE_FROM_FILE.has(extension) && !TEXT_EXTENSIONS.has(extension);
}

/** Writes a value to a local file in the format its name's extension chooses. */
export async function writeArtifactFile(value: unknown, name: string, path: string): Promise<void> {
  const bytes = await encodeArtifact(value, name);
  if (bytes !== undefined) return writeFile(path, bytes);
  const extension = extname(name).toLowerCase();
  return writeThroughDuckDB(await tableOf(value, name), path, extension === '.parquet' ? 'PARQUET' : 'CSV');
}

/**
 * The bytes of a value in the format its name's extension chooses, made in memory; undefined for
 * the formats DuckDB writes to a file (Parquet, CSV).
 */
export async function encodeArtifact(value: unknown, name: string): Promise<Uint8Array | undefined> {
  const extension = extname(name).toLowerCase();
  switch (extension) {
    case '.json':
      return Buffer.from(toJson(await plainTables(value)));
    case '.ndjson':
    case '.jsonl':
      return Buffer.from((await recordsOf(value, name)).map((record) => toJson(record) + '\n').join(''));
    case '.parquet':
    case '.csv':
      return undefined;
    case '.arrow':
    case '.feather':
    case '.arrows': {
      const { tableToIPC } = await loadArrow();
      return tableToIPC(await tableOf(value, name), extension === '.arrows' ? 'stream' : 'file');
    }
  }
  if (typeof value === 'string') return Buffer.from(value);
  if (value instanceof Uint8Array) return value;
  if (TEXT_EXTENSIONS.has(extension)) return Buffer.from(String(value));
  throw new SerializationError(
    `dpf has no default way to write ${describeValue(value)} to "${name}"; pass { writeFunction: (value, path) => … } ` +
      'or use an extension it knows (.json, .parquet, .csv, .arrow, .txt)',
  );
}

/** Reads a local artifact file in the format its name's extension says. */
export async function readArtifactFile(path: string, name: string): Promise<unknown> {
  if (READ_AS_TABLE_FROM_FILE.has(extname(name).toLowerCase())) return new FileConnector(path).toArrow();
  return decodeArtifact(await readFile(path), name);
}

/**
 * Reads an artifact's bytes (a packed artifact) in the format its name's extension says. `where`
 * names the artifact in the error when its bytes are not in that format.
 */
export async function decodeArtifact(bytes: Buffer, name: string, where = `"${name}"`): Promise<unknown> {
  const extension = extname(name).toLowerCase();
  switch (extension) {
    case '.json':
      return parseJson(bytes.toString('utf8'), where);
    case '.ndjson':
    case '.jsonl':
      return bytes
        .toString('utf8')
        .split('\n')
        .map((line, index) => ({ line, index }))
        .filter(({ line }) => line.trim() !== '')
        .map(({ line, index }) => parseJson(line, where, index + 1));
    case '.arrow':
    case '.feather':
    case '.arrows':
      return (await loadArrow()).tableFromIPC(bytes);
  }
  if (READ_AS_TABLE_FROM_FILE.has(extension)) {
    return withTemporaryFile(bytes, name, (path) => new FileConnector(path).toArrow());
  }
  if (TEXT_EXTENSIONS.has(extension)) return bytes.toString('utf8');
  return bytes;
}

/** JSON text of an artifact, parsed; a SerializationError naming the artifact when it is not JSON. */
export function parseJson(text: string, where: string, line?: number): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new SerializationError(
      `${where} is not valid JSON${line === undefined ? '' : ` (line ${line})`}: ${(error as Error).message}; ` +
        'it was altered or damaged since dpf wrote it, or written in another format by a writeFunction (read it with a readFunction)',
      { cause: error },
    );
  }
}

/** Runs `fn` on a temporary local file holding `bytes` (for read functions that want a path). */
export async function withTemporaryFile<T>(bytes: Uint8Array, name: string, fn: (path: string) => T | Promise<T>): Promise<T> {
  const copy = await temporaryFile(bytes, name);
  try {
    return await fn(copy.path);
  } finally {
    await copy.release();
  }
}

/** JSON text of a value, with what JSON cannot hold made plain: bigints, Maps, Sets, typed arrays. */
export function toJson(value: unknown): string {
  // A replacer makes JSON.stringify several times slower; most values never need it.
  const text = needsReplacer(value, 0) ? JSON.stringify(value, (_, inner: unknown) => {
    if (typeof inner === 'bigint') return Number.isSafeInteger(Number(inner)) ? Number(inner) : inner.toString();
    if (inner instanceof Map) return Object.fromEntries(inner);
    if (inner instanceof Set) return [...inner];
    if (ArrayBuffer.isView(inner) && !(inner instanceof DataView)) return Array.from(inner as unknown as ArrayLike<number>);
    return inner;
  }) : JSON.stringify(value);
  if (text === undefined) throw new SerializationError(`${describeValue(value)} cannot be written as JSON`);
  return text;
}

/** An Arrow table given for a JSON file becomes its rows. */
async function plainTables(value: unknown): Promise<unknown> {
  return isArrowTable(value) ? (await loadTableValues()).tableToRecords(value) : value;
}

async function tableOf(value: unknown, name: string): Promise<Table> {
  if (isArrowTable(value)) return value;
  const { RecordBatch, Table } = await loadArrow();
  if (value instanceof RecordBatch) return new Table(value);
  if (Array.isArray(value) && value.every((row) => row !== null && typeof row === 'object' && !Array.isArray(row))) {
    return recordsToTable(value as Record<string, unknown>[]);
  }
  throw new SerializationError(`"${name}" is written from an Arrow table or an array of records, not ${describeValue(value)}`);
}

async function recordsOf(value: unknown, name: string): Promise<unknown[]> {
  if (isArrowTable(value)) return (await loadTableValues()).tableToRecords(value);
  if (Array.isArray(value)) return value;
  throw new SerializationError(`"${name}" is written from an array of records or an Arrow table, not ${describeValue(value)}`);
}

let scratchTables = 0;

async function writeThroughDuckDB(table: Table, path: string, format: 'PARQUET' | 'CSV'): Promise<void> {
  const tableName = `dpf_artifact_${process.pid}_${scratchTables++}`;
  const [{ withDuckDB }, { appendArrowTable }, { Type }] = await Promise.all([loadDuckDBEngine(), loadArrowToDuckDB(), loadArrow()]);
  const nested = new Set<number>([Type.List, Type.LargeList, Type.FixedSizeList, Type.Struct, Type.Map]);
  await withDuckDB(async (connection) => {
    await appendArrowTable(connection, tableName, table, { create: 'temporary' });
    try {
      const options = format === 'CSV' ? '(FORMAT CSV, HEADER)' : '(FORMAT PARQUET)';
      await connection.run(`COPY ${format === 'CSV' ? csvSelect(table, tableName, nested) : sqlIdentifier(tableName)} TO ${sqlString(path)} ${options}`);
    } finally {
      await connection.run(`DROP TABLE ${sqlIdentifier(tableName)}`);
    }
  });
}

/**
 * CSV is text, and has no nested values: a list, struct or map column is written as its JSON
 * (`["a",null]`, `{"x":1}`), which reads back as text (parse it, or `::JSON` in DuckDB). Scalars
 * are DuckDB's text of them, and read back as the types DuckDB's CSV reader detects. Arrow
 * artifacts keep every type; Parquet ones every value, a few types changed (README, `uploadToStage`).
 */
function csvSelect(table: Table, tableName: string, nested: ReadonlySet<number>): string {
  const columns = table.schema.fields.map((field) => {
    const name = sqlIdentifier(field.name);
    return nested.has(field.type.typeId) ? `to_json(${name}) AS ${name}` : name;
  });
  return `(SELECT ${columns.join(', ')} FROM ${sqlIdentifier(tableName)})`;
}

/** Whether a value holds something plain JSON.stringify gets wrong (bigints, Maps, Sets, typed arrays). */
function needsReplacer(value: unknown, depth: number): boolean {
  if (typeof value === 'bigint') return true;
  if (value === null || typeof value !== 'object') return false;
  if (depth > 64 || value instanceof Map || value instanceof Set || ArrayBuffer.isView(value)) return true;
  if (value instanceof Date) return false;
  if (Array.isArray(value)) {
    for (const item of value) if (needsReplacer(item, depth + 1)) return true;
    return false;
  }
  for (const key in value) if (needsReplacer((value as Record<string, unknown>)[key], depth + 1)) return true;
  return false;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return `a ${value.constructor?.name ?? 'object'}`;
  return `a ${typeof value}`;
}
