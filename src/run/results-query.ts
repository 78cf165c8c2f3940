import { rm } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Table } from 'apache-arrow';
import { loadArrow, loadArrowToDuckDB, loadDuckDBEngine } from '../data/lazy-modules.js';
import { sqlIdentifier, sqlString } from '../data/sql.js';
import { ArtifactNotFoundError, DPFError, InvalidOptionError, SourceError } from '../errors.js';
import { closestName } from '../closest-name.js';
import { parseJson } from '../stage/artifact-format.js';
import type { PlannedPartition } from '../model/partition.js';
import type { ArtifactRef } from '../model/refs.js';
import { temporaryFolder, writeLocalFile } from '../stage/local-file.js';
import type { RunLayout } from '../stage/run-layout.js';
import type { LocalCopy, Stage } from '../stage/stage.js';
import { readStoredRefs, storedRefAsFile } from '../stage/stored-ref.js';
import type { RunState } from './run-state.js';

/** Downloads of file artifacts (a stage on S3) in flight at once. */
const PARALLEL_DOWNLOADS = 16;

/**
 * SQL over what a run's partitions uploaded (Snowflake's `SELECT … FROM @stage/run_id/`): each
 * named view is one artifact name — a Parquet, Arrow, CSV or JSON file every DONE partition wrote —
 * read by DuckDB as one table, with the partition's id as the first column `partition_id`. The
 * view `partitions` lists every partition with its status, attempts, rows and duration.
 */
export async function queryRunResults(
  stage: Stage,
  layout: RunLayout,
  partitions: readonly PlannedPartition[],
  state: RunState,
  sql: string,
  views: Readonly<Record<string, string>>,
): Promise<Table> {
  const [{ queryAsArrowOn }, { Table }] = await Promise.all([loadDuckDBEngine(), loadArrow()]);
  return withRunViews({ stage, layout, partitions, state }, views, /\bpartitions\b/i.test(sql), async (connection) => {
    try {
      // Materialised, not streamed: the whole table is returned anyway, and a query that fails midway raises its error (see streamQueryAsArrow).
      return new Table(await queryAsArrowOn(connection, sql, 65_536));
    } catch (error) {
      throw queryError(error as Error, Object.keys(views));
    }
  });
}

/** A run's partitions and state, as the results are read from them. */
interface RunResults {
  stage: Stage;
  layout: RunLayout;
  partitions: readonly PlannedPartition[];
  state: RunState;
}

/**
 * Writes one artifact name's table — the artifact of every DONE partition that has it, as
 * {@link queryRunResults} reads it, with `partition_id` first — to a Parquet file at `path`
 * (replaced if there). Returns the number of rows written.
 */
export async function exportArtifactTable(stage: Stage, layout: RunLayout, partitions: readonly PlannedPartition[], state: RunState, artifact: string, path: string): Promise<number> {
  return withRunViews({ stage, layout, partitions, state }, { dpf_export: artifact }, false, async (connection) => {
    const result = await connection.runAndReadAll(`COPY (SELECT * FROM dpf_export) TO ${sqlString(path)} (FORMAT parquet)`);
    return Number(result.getRowObjectsJS()[0]?.Count ?? 0);
  });
}

/** Whether results queries (and `dpf export --format parquet`) read an artifact of this name as a table. */
export function isTableArtifact(artifact: string): boolean {
  return isJson(artifact) || isArrow(artifact) || FILE_TABLES.includes(extname(artifact).toLowerCase());
}

/** Runs `fn` on a DuckDB connection holding a view per entry of `views` (and the view `partitions` when `withPartitions`). */
async function withRunViews<T>(
  { stage, layout, partitions, state }: RunResults,
  views: Readonly<Record<string, string>>,
  withPartitions: boolean,
  fn: (connection: DuckDBConnection) => Promise<T>,
): Promise<T> {
  const [{ withDuckDB }, { appendArrowTable }, { tableFromIPC, tableFromJSON }] = await Promise.all([loadDuckDBEngine(), loadArrowToDuckDB(), loadArrow()]);
  checkViews(views);
  const copies: LocalCopy[] = [];
  try {
    return await withDuckDB(async (connection) => {
      if (withPartitions) await createPartitionsTable(connection, partitions, state);
      for (const [view, artifact] of Object.entries(views)) {
        // Every DONE partition that uploaded the artifact, as its record says; a listed artifact
        // that is gone from the stage is an error, never a partition silently left out.
        const found = partitions
          .map((partition, i) => ({ partition, ref: state.partitions[i]!.status === 'DONE' ? state.partitions[i]!.artifacts?.find((candidate) => candidate.name === artifact) : undefined }))
          .filter((entry): entry is { partition: PlannedPartition; ref: ArtifactRef } => entry.ref !== undefined);
        if (found.length === 0) throw noArtifact(layout, artifact, view);
        const what = (i: number): string => `the artifact "${artifact}" of partition "${found[i]!.partition.id}" of run "${layout.runId}"`;
        if (isJson(artifact)) {
          const texts = await readStoredRefs(stage, found.map((entry) => entry.ref), what);
          const documents = found.map((entry, i) => ({ id: entry.partition.id, text: texts[i]!.toString('utf8'), where: `${what(i)} (${stage.describe(entry.ref.key)})` }));
          await createJsonView(connection, view, artifact, documents);
          continue;
        }
        if (isArrow(artifact)) {
          // DuckDB reads no Arrow IPC file by itself: each partition's table goes in through the appender.
          const bytes = await readStoredRefs(stage, found.map((entry) => entry.ref), what);
          const selects: string[] = [];
          for (let i = 0; i < found.length; i++) {
            let table: Table;
            try {
              table = tableFromIPC(bytes[i]!);
            } catch (error) {
              throw new SourceError(`${what(i)} is not an Arrow IPC file or stream: ${(error as Error).message}`, { cause: error });
            }
            const name = `dpf_arrow_${view}_${i}`;
            await appendArrowTable(connection, name, table, { create: 'temporary' });
            selects.push(`SELECT ${sqlString(found[i]!.partition.id)} AS partition_id, * FROM ${sqlIdentifier(name)}`);
          }
          await connection.run(`CREATE TEMP VIEW ${sqlIdentifier(view)} AS ${selects.join(' UNION ALL BY NAME ')}`);
          continue;
        }
        const files = await inBatches(found, PARALLEL_DOWNLOADS, async (entry, i) => {
          const copy = await storedRefAsFile(stage, entry.ref, artifact, what(i));
          copies.push(copy);
          return { id: entry.partition.id, path: copy.path };
        });
        const table = `dpf_files_${view}`;
        await appendArrowTable(connection, table, tableFromJSON(files.map((file) => ({ partition_id: file.id, path: file.path }))), { create: 'temporary' });
        const list = `[${files.map((file) => sqlString(file.path)).join(', ')}]`;
        await connection.run(
          `CREATE TEMP VIEW ${sqlIdentifier(view)} AS SELECT f.partition_id, a.* EXCLUDE (filename) ` +
            `FROM ${reader(artifact, list)} AS a JOIN ${sqlIdentifier(table)} AS f ON a.filename = f.path`,
        );
      }
      return await fn(connection);
    });
  } finally {
    await Promise.all(copies.map((copy) => copy.release()));
  }
}

/** `fn` over the items, at most `parallel` at a time, results in order. */
async function inBatches<T, R>(items: readonly T[], parallel: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await fn(items[index]!, index);
      }
    }),
  );
  return results;
}

const ID_COLUMN = '__dpf_partition_id';
const PARTITIONS_VIEW = 'partitions';

function isJson(artifact: string): boolean {
  return ['.json', '.ndjson', '.jsonl'].includes(extname(artifact).toLowerCase());
}

function isArrow(artifact: string): boolean {
  return ['.arrow', '.feather', '.arrows'].includes(extname(artifact).toLowerCase());
}

/** Artifacts DuckDB reads as files: {@link reader}. */
const FILE_TABLES = ['.parquet', '.csv', '.tsv'];

function noArtifact(layout: RunLayout, artifact: string, view: string): ArtifactNotFoundError {
  return new ArtifactNotFoundError(`No DONE partition of run "${layout.runId}" uploaded "${artifact}", so view "${view}" would be empty`);
}

/** One partition's JSON artifact: its partition's id, its text, and how errors name it. */
interface JsonArtifact {
  id: string;
  text: string;
  where: string;
}

/** The JSON artifacts of the partitions as newline-delimited JSON, one record per line with its partition's id. */
function jsonLines(artifacts: readonly JsonArtifact[], artifact: string): string {
  const lines: string[] = [];
  for (const { id, text, where } of artifacts) {
    const quoted = JSON.stringify(id);
    for (const { document } of documentsOf(text, artifact)) {
      for (const record of recordsOf(document, where)) lines.push(`{"${ID_COLUMN}":${quoted}${record === '{}' ? '' : ','}${record.slice(1)}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** The JSON documents of an artifact's text: the whole of a `.json`, each line of a `.ndjson`/`.jsonl`. */
function documentsOf(text: string, artifact: string): Array<{ document: string; line?: number }> {
  if (extname(artifact).toLowerCase() === '.json') return [{ document: text.trim() }];
  return text
    .split('\n')
    .map((line, index) => ({ document: line.trim(), line: index + 1 }))
    .filter(({ document }) => document !== '');
}

/** A JSON document as JSON objects: itself, the elements of an array, or `{"value": …}` around anything else. */
function recordsOf(document: string, where: string): string[] {
  if (document.startsWith('{')) return [document];
  const parsed: unknown = parseJson(document, where);
  const values = Array.isArray(parsed) ? parsed : [parsed];
  return values.map((value) => (value !== null && typeof value === 'object' && !Array.isArray(value) ? JSON.stringify(value) : JSON.stringify({ value })));
}

async function createJsonView(connection: DuckDBConnection, view: string, artifact: string, artifacts: readonly JsonArtifact[]): Promise<void> {
  try {
    await createTableFromJson(
      connection,
      jsonLines(artifacts, artifact),
      (file) =>
        `CREATE TEMP TABLE ${sqlIdentifier(view)} AS SELECT ${ID_COLUMN} AS partition_id, * EXCLUDE (${ID_COLUMN}) ` +
        `FROM read_json(${sqlString(file)}, format = 'newline_delimited')`,
    );
    await numbersAsDoubles(connection, view);
  } catch (error) {
    if (!(error instanceof Error) || error instanceof DPFError) throw error;
    // Objects are handed to DuckDB as they are, unparsed: name the artifact that is not JSON.
    for (const { text, where } of artifacts) {
      for (const { document, line } of documentsOf(text, artifact)) parseJson(document, where, line);
    }
    throw new SourceError(`The view "${view}" over the artifact "${artifact}" cannot be read: ${error.message}`, { cause: error });
  }
}

/** DuckDB's integer types, which its JSON reader gives whole numbers. */
const INTEGER_TYPES = /\b(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT)\b/g;

/**
 * A JSON number is a JS number, whole or not (a bigint is written as one too, or as text when it
 * does not fit): DuckDB's JSON reader types whole ones as integers, which would come back as
 * bigints (`total: 22575n`). Every integer column of a JSON view — nested in structs, lists and
 * maps too — becomes DOUBLE, so the query answers with the numbers the function wrote. Parquet,
 * CSV and Arrow artifacts keep their own types (a bigint written there stays a bigint).
 */
async function numbersAsDoubles(connection: DuckDBConnection, table: string): Promise<void> {
  const columns = (await connection.runAndReadAll(`DESCRIBE ${sqlIdentifier(table)}`)).getRowObjectsJS().map((column) => {
    const name = sqlIdentifier(String(column.column_name));
    const type = String(column.column_type);
    const doubles = outsideQuotes(type, (part) => part.replace(INTEGER_TYPES, 'DOUBLE'));
    return { select: doubles === type ? name : `CAST(${name} AS ${doubles}) AS ${name}`, changed: doubles !== type };
  });
  if (!columns.some((column) => column.changed)) return;
  // One pass over the rows, whatever the number of columns.
  await connection.run(`CREATE OR REPLACE TEMP TABLE ${sqlIdentifier(table)} AS SELECT ${columns.map((column) => column.select).join(', ')} FROM ${sqlIdentifier(table)}`);
}

/** `text` with `fn` applied to its parts outside double quotes (a struct's field names, which DuckDB quotes when they look like types). */
function outsideQuotes(text: string, fn: (part: string) => string): string {
  return text
    .split(/("(?:[^"]|"")*")/)
    .map((part, i) => (i % 2 === 1 ? part : fn(part)))
    .join('');
}

/** The view `partitions`: every partition with its status, attempts, rows, duration and folder. */
async function createPartitionsTable(connection: DuckDBConnection, partitions: readonly PlannedPartition[], state: RunState): Promise<void> {
  const lines = partitions.map((partition, i) => {
    const details = state.partitions[i]!;
    const duration = details.startedAt !== undefined && details.finishedAt !== undefined ? details.finishedAt - details.startedAt : null;
    return JSON.stringify({
      partition_id: partition.id,
      status: details.status,
      attempts: details.attempts,
      num_rows: details.numRows ?? null,
      duration_ms: duration,
      folder: partition.folder,
    });
  });
  await createTableFromJson(
    connection,
    lines.join('\n') + '\n',
    (file) =>
      `CREATE TEMP TABLE partitions AS SELECT * FROM read_json(${sqlString(file)}, format = 'newline_delimited', columns = ` +
      // Counts and durations are JS numbers in dpf, and come back as numbers (DOUBLE), not bigints.
      "{partition_id: 'VARCHAR', status: 'VARCHAR', attempts: 'INTEGER', num_rows: 'DOUBLE', duration_ms: 'DOUBLE', folder: 'VARCHAR'})",
  );
}

/** Loads newline-delimited JSON into DuckDB through a temporary file (DuckDB's JSON reader is much faster than building Arrow in JS). */
async function createTableFromJson(connection: DuckDBConnection, ndjson: string, sql: (file: string) => string): Promise<void> {
  const folder = await temporaryFolder('dpf-query-');
  const file = join(folder, 'records.ndjson');
  try {
    await writeLocalFile(file, ndjson, 'temporary');
    await connection.run(sql(file));
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

function reader(artifact: string, files: string): string {
  switch (extname(artifact).toLowerCase()) {
    case '.parquet':
      return `read_parquet(${files}, filename = true, union_by_name = true)`;
    case '.csv':
    case '.tsv':
      return `read_csv(${files}, filename = true, union_by_name = true)`;
    default:
      throw new Error(`unreachable: checkViews refuses "${artifact}"`);
  }
}

/** The views a results query is given: names of artifacts DuckDB can read, none called `partitions`. */
function checkViews(views: unknown): asserts views is Readonly<Record<string, string>> {
  if (views === null || typeof views !== 'object' || Array.isArray(views)) {
    throw new InvalidOptionError('views', "expected an object naming each view's artifact, e.g. { summaries: 'summary.json' }");
  }
  for (const [view, artifact] of Object.entries(views as Record<string, unknown>)) {
    if (view.toLowerCase() === PARTITIONS_VIEW) throw new InvalidOptionError(`views.${view}`, "is the view dpf gives of the run's partitions; name yours differently");
    if (typeof artifact !== 'string' || artifact.trim() === '') throw new InvalidOptionError(`views.${view}`, 'expected the name of an artifact, such as "summary.json"');
    if (!isTableArtifact(artifact)) {
      throw new InvalidOptionError(`views.${view}`, `"${artifact}" is not a Parquet, Arrow, CSV or JSON artifact, which are what results queries read`);
    }
  }
}

/**
 * The error of the user's query as a SourceError. A table the query names that is not one of its
 * views gets the views it has — not DuckDB's suggestions from its own catalog (`pg_views`) or
 * dpf's internal tables.
 */
function queryError(error: Error, views: readonly string[]): SourceError {
  const missing = /^Catalog Error: Table with name (.+?) does not exist!/.exec(error.message);
  if (missing === null) return new SourceError(`The results query failed: ${error.message}`, { cause: error });
  const name = missing[1]!;
  const known = [...views, PARTITIONS_VIEW];
  const near = closestName(name, known);
  const context = /\n(LINE \d+:[\s\S]*)$/.exec(error.message)?.[1];
  return new SourceError(
    `The results query names "${name}", which is not one of its views; ${near === undefined ? '' : `did you mean "${near}"? `}Its views are: ${known.join(', ')} — ` +
      `name the artifact a view reads in the second argument, e.g. run.query(sql, { ${/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : JSON.stringify(name)}: '${name}.json' })` +
      (context === undefined ? '' : `\n${context}`),
    { cause: error },
  );
}
