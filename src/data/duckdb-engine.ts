import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import bindings from '@duckdb/node-bindings';
import { type DuckDBConnection, DuckDBDataChunk, DuckDBInstance } from '@duckdb/node-api';
import type { RecordBatch, Schema } from 'apache-arrow';
import { arrowSchemaOf, chunksToRecordBatch } from './duckdb-to-arrow.js';
import { duckdbSettings } from './duckdb-settings.js';
import { DataFormatError } from '../errors.js';

/**
 * The embedded DuckDB of one process or worker thread: created on first use (a partition that
 * never reads tabular data never pays for it), shared by every partition the worker runs.
 */

let instance: Promise<DuckDBInstance> | undefined;

function duckdb(): Promise<DuckDBInstance> {
  const settings = duckdbSettings();
  instance ??= DuckDBInstance.create(':memory:', {
    // Spills go to the system's temporary folder, not a .tmp folder in the working directory.
    temp_directory: join(tmpdir(), `dpf-duckdb-${process.pid}-${threadId}`),
    ...(settings.threads !== undefined ? { threads: String(settings.threads) } : {}),
    ...(settings.memoryLimitMb !== undefined ? { memory_limit: `${settings.memoryLimitMb}MB` } : {}),
  });
  return instance;
}

const idle: DuckDBConnection[] = [];

/**
 * Runs a read-only `fn` on a connection kept for reuse (opening one per small file read costs
 * more than the read). `fn` must leave no temporary object behind.
 */
export async function withReadConnection<T>(fn: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
  const connection = idle.pop() ?? (await (await duckdb()).connect());
  try {
    return await fn(connection);
  } finally {
    idle.push(connection);
  }
}

/**
 * A whole query result as Arrow record batches, materialised by DuckDB and read without one
 * asynchronous round trip per 2048-row chunk — the fast way for small files;
 * {@link streamQueryAsArrow} keeps memory bounded for big ones. The batches are converted one at
 * a time as the caller takes them, so a caller that counts them can stop before the Arrow copy of
 * a result bigger than it expected is made (DuckDB's own copy is let go with the result).
 */
export async function* queryAsArrow(sql: string, batchRows: number): AsyncGenerator<RecordBatch> {
  // A materialised result does not need its connection once it is made: the connection goes back at once.
  yield* await withReadConnection((connection) => materializedBatchesOn(connection, sql, batchRows));
}

/** {@link queryAsArrow} on a connection the caller owns. */
export async function queryAsArrowOn(connection: DuckDBConnection, sql: string, batchRows: number): Promise<RecordBatch[]> {
  return [...(await materializedBatchesOn(connection, sql, batchRows))];
}

/**
 * A query's whole result, materialised by DuckDB, converted to Arrow record batches of about
 * `batchRows` rows one at a time as the caller takes them (so it can let other work run between).
 */
export async function materializedBatchesOn(connection: DuckDBConnection, sql: string, batchRows: number): Promise<Generator<RecordBatch>> {
  const result = await connection.run(sql);
  return (function* () {
    const types = result.columnTypes();
    const schema = arrowSchemaOf(result.columnNames(), types);
    const raw = (result as unknown as { result: bindings.Result }).result;
    const count = bindings.result_chunk_count(raw);
    let pending: DuckDBDataChunk[] = [];
    let pendingRows = 0;
    let emitted = false;
    for (let i = 0; i < count; i++) {
      const chunk = new DuckDBDataChunk(bindings.result_get_chunk(raw, i));
      pending.push(chunk);
      pendingRows += chunk.rowCount;
      if (pendingRows >= batchRows) {
        yield chunksToRecordBatch(schema, types, pending);
        emitted = true;
        pending = [];
        pendingRows = 0;
      }
    }
    if (pendingRows > 0 || !emitted) yield chunksToRecordBatch(schema, types, pending);
  })();
}

/** A fresh connection to this process's (or worker's) DuckDB; the caller closes it. */
export async function connect(): Promise<DuckDBConnection> {
  return (await duckdb()).connect();
}

/** Runs `fn` with a fresh connection to this worker's DuckDB, closing it afterwards. */
export async function withDuckDB<T>(fn: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
  const connection = await (await duckdb()).connect();
  try {
    return await fn(connection);
  } finally {
    connection.closeSync();
  }
}

/** The Arrow schema of a query's result, without reading its rows. */
export async function querySchema(sql: string): Promise<Schema> {
  return withReadConnection(async (connection) => {
    const prepared = await connection.prepare(sql);
    const names = Array.from({ length: prepared.columnCount }, (_, i) => prepared.columnName(i));
    const types = Array.from({ length: prepared.columnCount }, (_, i) => prepared.columnType(i));
    return arrowSchemaOf(names, types);
  });
}

/**
 * Streams a query's result as Arrow record batches of about `batchRows` rows. DuckDB produces the
 * rows incrementally, so memory stays bounded by a few batches whatever the result's size.
 *
 * DuckDB's Node binding ends a stream that failed midway (a CSV line longer than the reader takes,
 * memory running out, `error()`) exactly like one that is exhausted: it cannot read
 * `duckdb_result_error`. So a stream that ends is checked against a count of the same query,
 * which either raises the error the stream swallowed or shows the rows missing — never fewer rows
 * passed off as all of them; either way a {@link DataFormatError} says at which row the stream
 * stopped, the likely causes and what to do. For Parquet the count reads only metadata; a CSV or
 * JSON file is parsed a second time.
 */
export async function* streamQueryAsArrow(sql: string, batchRows: number): AsyncGenerator<RecordBatch> {
  const connection = await (await duckdb()).connect();
  try {
    const streamed = yield* streamQueryAsArrowOn(connection, sql, batchRows);
    let counted: number;
    try {
      counted = Number((await connection.runAndReadAll(`SELECT count(*)::BIGINT FROM (${sql})`)).getRows()[0]![0] as bigint);
    } catch (error) {
      throw streamStopped(streamed, `Counting the rows again failed with: ${(error as Error).message.trimEnd()}`, error);
    }
    if (counted !== streamed) throw streamStopped(streamed, `Counting them again found ${counted.toLocaleString('en')}; DuckDB did not say why it stopped.`);
  } finally {
    connection.closeSync();
  }
}

/**
 * The error of a stream that ended before its rows did: where it stopped, the likely causes and
 * what to do, then what DuckDB said. The rows streamed are a lower bound of where it failed: a
 * failed chunk's rows are not streamed.
 */
function streamStopped(streamed: number, detail: string, cause?: unknown): DataFormatError {
  return new DataFormatError(
    `DuckDB stopped streaming the rows after ${streamed.toLocaleString('en')} of them (it failed at or after that row), ` +
      "likely at a line longer than the CSV reader's max_line_size — fix that line of the file — " +
      `or by running out of memory under executionOptions.memoryLimitMb — raise it. ${detail}`,
    cause !== undefined ? { cause } : undefined,
  );
}

/** {@link streamQueryAsArrow} on a connection the caller owns, without its check; returns the rows streamed. */
async function* streamQueryAsArrowOn(connection: DuckDBConnection, sql: string, batchRows: number): AsyncGenerator<RecordBatch, number> {
  const result = await connection.stream(sql);
  const types = result.columnTypes();
  const schema = arrowSchemaOf(result.columnNames(), types);
  let pending: DuckDBDataChunk[] = [];
  let pendingRows = 0;
  let streamed = 0;
  let emitted = false;
  for (;;) {
    const chunk = await result.fetchChunk();
    if (chunk === null || chunk.rowCount === 0) break;
    pending.push(chunk);
    pendingRows += chunk.rowCount;
    streamed += chunk.rowCount;
    if (pendingRows >= batchRows) {
      yield chunksToRecordBatch(schema, types, pending);
      emitted = true;
      pending = [];
      pendingRows = 0;
    }
  }
  if (pendingRows > 0 || !emitted) yield chunksToRecordBatch(schema, types, pending);
  return streamed;
}
