import { randomBytes } from 'node:crypto';
import type { DuckDBConnection } from '@duckdb/node-api';
import { type DataType, type RecordBatch, Type, type Vector } from 'apache-arrow';
import { SegmentWriter } from '../data/input-segments.js';
import { holdingOwnHandles } from '../data/open-file-handles.js';
import { loadDuckDBEngine } from '../data/lazy-modules.js';
import { sqlIdentifier, sqlString } from '../data/sql.js';
import { InvalidOptionError, SourceError } from '../errors.js';
import { encodePartitionFolder } from '../stage/partition-folder.js';
import type { Stage } from '../stage/stage.js';
import { type DataFrameSource, describeRelation, relationOf } from './dataframe-source.js';
import type { PartitionKey, PlannedPartition } from '../model/partition.js';
import { choosePartitions } from './partition.js';
import { partitionIdOf, storeKey, uniqueIds } from './partition-keys.js';

/** What DataFrame mode plans from. */
export interface DataFramePlanRequest {
  source: DataFrameSource;
  /** The partition columns, as the user named them. */
  partitionBy: readonly string[];
  /** Columns that order the rows within each partition (`DESC` allowed after a name). */
  orderBy: readonly string[];
  /** The columns the function is given besides the partition columns (undefined: all of them). */
  columns: readonly string[] | undefined;
  /** A DuckDB database file the source's SQL or table name reads from. */
  database: string | undefined;
  /** Keep only these partitions (ids as a run reports them). */
  partitionIds: readonly string[] | undefined;
  caseInsensitive: boolean;
}

/** The plan: the partitions, the partition columns as the source spells them, and the rows to write. */
export interface DataFramePlan {
  partitions: PlannedPartition[];
  partitionBy: string[];
  rows: number;
  /** The columns kept besides the partition columns, as the source spells them (undefined: all). */
  columns: string[] | undefined;
  input: PlannedInput;
}

/**
 * The source's rows, read and sorted by the plan and held by DuckDB until they are written to the
 * run's input — while the run already executes the partitions whose rows are written.
 */
export interface PlannedInput {
  /** Writes the rows as segments to `folder`, telling `onWritten` how many rows are readable after each. */
  write(stage: Stage, folder: string, onWritten: (rows: number) => void, signal: AbortSignal): Promise<void>;
  /** Lets go of the sorted rows (always call it, written or not). */
  dispose(): Promise<void>;
}

/** Rows per Arrow batch of the planned input. */
const BATCH_ROWS = 65_536;
const SORTED = 'dpf_sorted';

/**
 * DataFrame mode's plan, in the driver's own DuckDB: the source is read once into a temporary
 * table sorted by the partition columns; one GROUP BY over it gives every distinct key (NULL
 * included) with its row count, so each partition is a row range of the sorted data. Writing the
 * sorted rows to the run's input as Arrow segments is left to {@link PlannedInput.write}, so the
 * run can start on the first segments while the rest is written. Workers never query the source.
 */
export async function planDataFramePartitions(request: DataFramePlanRequest): Promise<DataFramePlan> {
  const { connect } = await loadDuckDBEngine();
  // The process's own DuckDB; the temporary table lives in this connection until it is disposed.
  const connection = await connect();
  const database = `dpf_database_${randomBytes(4).toString('hex')}`;
  let releaseAttached = (): void => undefined;
  const dispose = async (): Promise<void> => {
    await connection.run(`DROP TABLE IF EXISTS ${SORTED}`).catch(() => undefined);
    if (request.database !== undefined) {
      await connection.run('USE memory').catch(() => undefined);
      await connection.run(`DETACH DATABASE IF EXISTS ${database}`).catch(() => undefined);
    }
    connection.closeSync();
    releaseAttached();
  };
  try {
    if (request.database !== undefined) {
      // dpf's own read-only handle on the file: not "another instance" to the session host (which
      // may write the same file while the input is written from it).
      releaseAttached = await holdingOwnHandles(request.database, () =>
        run(connection, `ATTACH ${sqlString(request.database!)} AS ${database} (READ_ONLY)`, `Cannot open the database ${request.database}`),
      );
      await connection.run(`USE ${database}`);
    }
    const { readBack, keyColumns, ...planned } = await plan(connection, request);
    return { ...planned, input: { write: (stage, folder, onWritten, signal) => writeSortedInput(connection, readBack, keyColumns, planned.rows, stage, folder, onWritten, signal), dispose } };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/**
 * The sorted table is read back by DuckDB's row number `rowid`, which a source column of that
 * name would hide (DuckDB then binds `rowid` to the column): such a column is kept under this
 * name in the sorted table, and given its own name again as the rows are read back.
 */
const HIDDEN_ROWID = 'dpf_source_rowid';

/** The rows a partition has on average from which its partition columns are not written (two DuckDB chunks). */
const KEYS_LEFT_OUT_FROM_ROWS_PER_PARTITION = 4096;

/** Partition columns left out of the written rows: the keys (their columns first) and where each column goes. */
interface KeyColumns {
  batches: RecordBatch[];
  columns: Array<{ name: string; index: number }>;
}

/**
 * The plan; the select list that reads the sorted table's rows back to be written, with the
 * source's column names; and the partition columns left out of them, if they are.
 */
async function plan(connection: DuckDBConnection, request: DataFramePlanRequest): Promise<Omit<DataFramePlan, 'input'> & { readBack: string; keyColumns: KeyColumns | undefined }> {
  const source = await relationOf(connection, request.source);
  const columns = await describeRelation(connection, source);
  const relation = source.relation;
  const names = columns.map((column) => column.name);
  const partitionBy = request.partitionBy.map((name) => resolveColumn(name, names, 'partitionBy'));
  const order = partitionBy.map((column) => `${sqlIdentifier(column)} NULLS LAST`).join(', ');
  const within = request.orderBy.map((term) => {
    const [, name, direction] = /^(.*?)(?:\s+(ASC|DESC))?$/i.exec(term.trim())!;
    return `${sqlIdentifier(resolveColumn(name!, names, 'orderBy'))} ${direction?.toUpperCase() ?? 'ASC'}`;
  });
  const sortBy = [order, ...within].join(', ');
  const named = request.columns?.map((name) => resolveColumn(name, names, 'columns'));
  // The source's order of columns, whatever order `columns` names them in.
  const kept = named === undefined ? names : names.filter((name) => partitionBy.includes(name) || named.includes(name));
  const stored = (name: string): string => (name.toLowerCase() === 'rowid' ? HIDDEN_ROWID : name);
  const select = kept.map((name) => (stored(name) === name ? sqlIdentifier(name) : `${sqlIdentifier(name)} AS ${HIDDEN_ROWID}`)).join(', ');
  await run(connection, `CREATE TEMP TABLE ${SORTED} AS SELECT ${select} FROM ${relation} AS source ORDER BY ${sortBy}`, 'The source cannot be read');
  const storedKeys = partitionBy.map(stored);
  const { keys, batches } = await distinctKeys(connection, storedKeys, storedKeys.map((column) => `${sqlIdentifier(column)} NULLS LAST`).join(', '));
  const keyColumns = await leftOutKeyColumns(partitionBy, kept, keys, batches);
  const written = keyColumns === undefined ? kept : kept.filter((name) => !partitionBy.includes(name));
  const readBack = written.map((name) => (stored(name) === name ? sqlIdentifier(name) : `${HIDDEN_ROWID} AS ${sqlIdentifier(name)}`)).join(', ');
  const ids = uniqueIds(keys.map((key) => partitionIdOf(partitionBy, key.texts)));
  const encoding = { keepSlashes: partitionBy.length > 1, caseInsensitive: request.caseInsensitive };
  let start = 0;
  const all = keys.map((key, i) => {
    const partition: PlannedPartition = {
      id: ids[i]!,
      folder: encodePartitionFolder(partitionBy.length === 1 && key.texts[0] === null && ids[i] === 'null' ? null : ids[i]!, encoding),
      size: key.rows,
      input: { kind: 'rows', start, rows: key.rows },
      key: storeKey(partitionBy.length === 1 ? key.values[0]! : key.values),
    };
    start += key.rows;
    return partition;
  });
  const partitions = request.partitionIds === undefined ? all : choosePartitions(all, request.partitionIds);
  return { partitions, partitionBy, rows: start, columns: named === undefined ? undefined : kept.filter((name) => named.includes(name)), readBack, keyColumns };
}

/**
 * The partition columns are the same on every row of a partition: where partitions are big, they
 * are left out of the written rows (converting and storing them costs the driver as much as any
 * column: W2's origin strings, 62 of 210 ms) and each worker builds them from the keys file —
 * unless they are of a type a worker cannot build from the key's bytes. Small partitions keep
 * them: building them costs a worker per partition what it saves the driver per row (W1's 100-row
 * partitions: +40 ms). At least one other column is written.
 */
async function leftOutKeyColumns(partitionBy: readonly string[], kept: readonly string[], keys: readonly DistinctKey[], batches: RecordBatch[]): Promise<KeyColumns | undefined> {
  if (keys.length === 0 || kept.every((name) => partitionBy.includes(name))) return undefined;
  const rows = keys.reduce((sum, key) => sum + key.rows, 0);
  if (rows < KEYS_LEFT_OUT_FROM_ROWS_PER_PARTITION * keys.length) return undefined;
  const { isConstantBuildable } = await import('../data/constant-column.js');
  if (!partitionBy.every((_, i) => isConstantBuildable(batches[0]!.schema.fields[i]!.type))) return undefined;
  return { batches, columns: partitionBy.map((name) => ({ name, index: kept.indexOf(name) })) };
}

interface DistinctKey {
  values: PartitionKey[];
  texts: Array<string | null>;
  rows: number;
}

/** Every key with its row count, and the result it came in (its key columns first, the count last). */
async function distinctKeys(connection: DuckDBConnection, partitionBy: readonly string[], order: string): Promise<{ keys: DistinctKey[]; batches: RecordBatch[] }> {
  const keyColumns = partitionBy.map(sqlIdentifier);
  const texts = keyColumns.map((column, i) => `CAST(${column} AS VARCHAR) AS dpf_text_${i}`);
  const sql = `SELECT ${keyColumns.join(', ')}, ${texts.join(', ')}, count(*)::BIGINT AS dpf_rows FROM ${SORTED} GROUP BY ALL ORDER BY ${order}`;
  // Materialised, not streamed: a failure raises an error (see streamQueryAsArrow).
  const { queryAsArrowOn } = await loadDuckDBEngine();
  const width = partitionBy.length;
  const keys: DistinctKey[] = [];
  const batches = await queryAsArrowOn(connection, sql, BATCH_ROWS);
  for (const batch of batches) {
    const values = partitionBy.map((_, c) => keyValues(batch.getChildAt(c)!));
    const textColumns = partitionBy.map((_, c) => batch.getChildAt(width + c)!);
    const rows = batch.getChildAt(2 * width)!;
    for (let row = 0; row < batch.numRows; row++) {
      keys.push({
        values: values.map((column) => column[row]!),
        texts: textColumns.map((column) => (column.get(row) as string | null) ?? null),
        rows: Number(rows.get(row) as bigint),
      });
    }
  }
  return { keys, batches };
}

/** A key column's values as partition keys: number, bigint, string, boolean, Date or null. */
function keyValues(vector: Vector): PartitionKey[] {
  const type = vector.type as DataType;
  const out: PartitionKey[] = new Array(vector.length);
  for (let row = 0; row < vector.length; row++) {
    const value: unknown = vector.get(row);
    if (value === null || value === undefined) out[row] = null;
    else if (type.typeId === Type.Date || type.typeId === Type.Timestamp) out[row] = new Date(Number(value));
    else if (type.typeId === Type.Decimal) out[row] = Number(String(value)) / 10 ** (type as unknown as { scale: number }).scale;
    else if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'string' || typeof value === 'boolean') out[row] = value;
    else out[row] = JSON.stringify(value, (_, inner: unknown) => (typeof inner === 'bigint' ? inner.toString() : inner));
  }
  return out;
}

/**
 * The sorted table is read in materialised slices, each read chunk by chunk without an
 * asynchronous round trip (a streamed result costs one per 2,048-row chunk: a third of the time
 * of writing W2's input). Slices are sized to about {@link SLICE_BYTES} from the bytes per row of
 * the one before (rows are sorted by key, so their width may change along the table), growing at
 * most fourfold a slice, so memory stays bounded on wide rows.
 */
const FIRST_SLICE_ROWS = BATCH_ROWS;
const SLICE_BYTES = 16 * 1024 * 1024;

async function writeSortedInput(
  connection: DuckDBConnection,
  readBack: string,
  keyColumns: KeyColumns | undefined,
  total: number,
  stage: Stage,
  folder: string,
  onWritten: (rows: number) => void,
  signal: AbortSignal,
): Promise<void> {
  const { materializedBatchesOn } = await loadDuckDBEngine();
  const writer = new SegmentWriter(stage, folder, onWritten);
  if (keyColumns !== undefined) await writer.writeKeys(keyColumns.batches, keyColumns.columns);
  let sliceRows = FIRST_SLICE_ROWS;
  for (let start = 0; start < total; ) {
    const end = Math.min(total, start + sliceRows);
    // `rowid` is a row's place in the table, which holds the rows in sorted order.
    const batches = await materializedBatchesOn(connection, `SELECT ${readBack} FROM ${SORTED} WHERE ${SORTED}.rowid >= ${start} AND ${SORTED}.rowid < ${end}`, BATCH_ROWS);
    let bytes = 0;
    let rows = 0;
    for (const batch of batches) {
      signal.throwIfAborted();
      bytes += batch.data.byteLength;
      rows += batch.numRows;
      await writer.add(batch);
      // Converting is synchronous work in the driver: let it dispatch partitions and take outcomes between batches.
      await new Promise(setImmediate);
    }
    // Every partition is a row range of this table: a slice short of its rows would shift them all.
    if (rows !== end - start) throw new Error(`dpf read ${rows} rows of the planned input's rows ${start}–${end - 1}, not ${end - start}: the planning table changed while it was written`);
    const bytesPerRow = Math.max(1, bytes / rows);
    sliceRows = Math.max(2048, Math.min(4 * sliceRows, 1 << 20, Math.floor(SLICE_BYTES / bytesPerRow / 2048) * 2048));
    start = end;
  }
  await writer.finish();
}

function resolveColumn(name: string, columns: readonly string[], option: string): string {
  if (columns.includes(name)) return name;
  const folded = columns.filter((column) => column.toLowerCase() === name.toLowerCase());
  if (folded.length === 1) return folded[0]!;
  throw new InvalidOptionError(option, `Column "${name}" not found in the source; its columns are: ${columns.join(', ')}`);
}

async function run(connection: DuckDBConnection, sql: string, what: string): Promise<void> {
  try {
    await connection.run(sql);
  } catch (error) {
    throw new SourceError(`${what}: ${(error as Error).message}`, { cause: error });
  }
}
