import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Table } from 'apache-arrow';
import { loadArrow, loadArrowToDuckDB, loadDuckDBEngine } from '../data/lazy-modules.js';
import { sqlIdentifier, sqlString } from '../data/sql.js';
import { ArtifactNotFoundError, InvalidOptionError, SourceError } from '../errors.js';
import type { PlannedPartition } from '../plan/partition.js';
import type { RunLayout } from '../stage/run-layout.js';
import type { Stage } from '../stage/stage.js';
import type { RunState } from './run-state.js';

/**
 * SQL over what a run's partitions uploaded (Snowflake's `SELECT … FROM @stage/run_id/`): each
 * named view is one artifact name — a Parquet, CSV or JSON file every DONE partition wrote —
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
  const [{ withDuckDB, streamQueryAsArrowOn }, { appendArrowTable }, { Table, tableFromJSON }] = await Promise.all([
    loadDuckDBEngine(),
    loadArrowToDuckDB(),
    loadArrow(),
  ]);
  // One listing of the run's folder tells which partitions have the artifact as a file.
  const existing = new Set(Object.keys(views).length === 0 ? [] : await stage.list(layout.root));
  return withDuckDB(async (connection) => {
    if (/\bpartitions\b/i.test(sql)) await createPartitionsTable(connection, partitions, state);
    for (const [view, artifact] of Object.entries(views)) {
      const done = partitions.map((partition, i) => ({ partition, state: state.partitions[i]! })).filter(({ state: s }) => s.status === 'DONE');
      if (isJson(artifact)) {
        await createJsonView(connection, view, await jsonArtifacts(stage, layout, done, artifact, existing));
        continue;
      }
      const files = done
        .map(({ partition }) => ({ id: partition.id, path: layout.artifact(partition.folder, artifact) }))
        .filter((file) => existing.has(file.path));
      if (files.length === 0) throw noArtifact(layout, artifact, view);
      const paths = await Promise.all(files.map(async (file) => ({ id: file.id, path: await stage.localFile(file.path) })));
      const table = `dpf_files_${view}`;
      await appendArrowTable(connection, table, tableFromJSON(paths.map((file) => ({ partition_id: file.id, path: file.path }))), { create: 'temporary' });
      const list = `[${paths.map((file) => sqlString(file.path)).join(', ')}]`;
      await connection.run(
        `CREATE TEMP VIEW ${sqlIdentifier(view)} AS SELECT f.partition_id, a.* EXCLUDE (filename) ` +
          `FROM ${reader(artifact, list)} AS a JOIN ${sqlIdentifier(table)} AS f ON a.filename = f.path`,
      );
    }
    try {
      const batches = [];
      for await (const batch of streamQueryAsArrowOn(connection, sql, 65_536)) batches.push(batch);
      return new Table(batches);
    } catch (error) {
      throw new SourceError(`The results query failed: ${(error as Error).message}`, { cause: error });
    }
  });
}

const ID_COLUMN = '__dpf_partition_id';

function isJson(artifact: string): boolean {
  return ['.json', '.ndjson', '.jsonl'].includes(extname(artifact).toLowerCase());
}

function noArtifact(layout: RunLayout, artifact: string, view: string): ArtifactNotFoundError {
  return new ArtifactNotFoundError(`No DONE partition of run "${layout.runId}" uploaded "${artifact}", so view "${view}" would be empty`);
}

/**
 * The JSON artifacts of the DONE partitions as newline-delimited JSON, one record per line with
 * its partition's id: packed ones read pack by pack (a read per pack file, not per partition),
 * files one by one.
 */
async function jsonArtifacts(
  stage: Stage,
  layout: RunLayout,
  done: ReadonlyArray<{ partition: PlannedPartition; state: RunState['partitions'][number] }>,
  artifact: string,
  files: ReadonlySet<string>,
): Promise<string> {
  const packs = new Map<string, Promise<Buffer | undefined>>();
  const lines: string[] = [];
  let found = 0;
  for (const { partition, state: partitionState } of done) {
    const packed = partitionState.packed?.find((entry) => entry.name === artifact);
    let text: string | undefined;
    if (packed !== undefined) {
      if (!packs.has(packed.pack)) packs.set(packed.pack, stage.read(packed.pack));
      const pack = await packs.get(packed.pack)!;
      text = pack?.subarray(packed.offset, packed.offset + packed.length).toString('utf8');
    } else if (files.has(layout.artifact(partition.folder, artifact))) {
      text = (await stage.read(layout.artifact(partition.folder, artifact)))?.toString('utf8');
    }
    if (text === undefined) continue;
    found++;
    const id = JSON.stringify(partition.id);
    const documents = extname(artifact).toLowerCase() === '.json' ? [text.trim()] : text.split('\n').map((line) => line.trim()).filter((line) => line !== '');
    for (const document of documents) {
      for (const record of recordsOf(document)) lines.push(`{"${ID_COLUMN}":${id}${record === '{}' ? '' : ','}${record.slice(1)}`);
    }
  }
  if (found === 0) throw noArtifact(layout, artifact, 'view');
  return lines.join('\n') + '\n';
}

/** A JSON document as JSON objects: itself, the elements of an array, or `{"value": …}` around anything else. */
function recordsOf(document: string): string[] {
  if (document.startsWith('{')) return [document];
  const parsed: unknown = JSON.parse(document);
  const values = Array.isArray(parsed) ? parsed : [parsed];
  return values.map((value) => (value !== null && typeof value === 'object' && !Array.isArray(value) ? JSON.stringify(value) : JSON.stringify({ value })));
}

async function createJsonView(connection: DuckDBConnection, view: string, ndjson: string): Promise<void> {
  await createTableFromJson(
    connection,
    ndjson,
    (file) =>
      `CREATE TEMP TABLE ${sqlIdentifier(view)} AS SELECT ${ID_COLUMN} AS partition_id, * EXCLUDE (${ID_COLUMN}) ` +
      `FROM read_json(${sqlString(file)}, format = 'newline_delimited')`,
  );
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
      "{partition_id: 'VARCHAR', status: 'VARCHAR', attempts: 'INTEGER', num_rows: 'BIGINT', duration_ms: 'BIGINT', folder: 'VARCHAR'})",
  );
}

/** Loads newline-delimited JSON into DuckDB through a temporary file (DuckDB's JSON reader is much faster than building Arrow in JS). */
async function createTableFromJson(connection: DuckDBConnection, ndjson: string, sql: (file: string) => string): Promise<void> {
  const folder = await mkdtemp(join(tmpdir(), 'dpf-query-'));
  const file = join(folder, 'records.ndjson');
  try {
    await writeFile(file, ndjson);
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
      throw new InvalidOptionError('query views', `"${artifact}" is not a Parquet, CSV or JSON artifact, which are what results queries read`);
  }
}
