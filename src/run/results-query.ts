import { extname } from 'node:path';
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
  const rows = partitions.map((partition, i) => {
    const details = state.partitions[i]!;
    return {
      partition_id: partition.id,
      status: details.status,
      attempts: details.attempts,
      num_rows: details.numRows ?? null,
      duration_ms: details.startedAt !== undefined && details.finishedAt !== undefined ? details.finishedAt - details.startedAt : null,
      folder: partition.folder,
    };
  });
  const existing = new Set(Object.keys(views).length === 0 ? [] : (await stage.list(layout.root)).map((file) => file.path));
  return withDuckDB(async (connection) => {
    if (rows.length > 0) {
      await appendArrowTable(connection, 'partitions', tableFromJSON(rows), { create: 'temporary' });
    } else {
      await connection.run(
        'CREATE TEMP TABLE partitions (partition_id VARCHAR, status VARCHAR, attempts DOUBLE, num_rows DOUBLE, duration_ms DOUBLE, folder VARCHAR)',
      );
    }
    for (const [view, artifact] of Object.entries(views)) {
      const files = partitions
        .map((partition, i) => ({ id: partition.id, path: layout.artifact(partition.folder, artifact), status: state.partitions[i]!.status }))
        .filter((file) => file.status === 'DONE' && existing.has(file.path));
      if (files.length === 0) {
        throw new ArtifactNotFoundError(`No DONE partition of run "${layout.runId}" uploaded "${artifact}", so view "${view}" would be empty`);
      }
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

function reader(artifact: string, files: string): string {
  switch (extname(artifact).toLowerCase()) {
    case '.parquet':
      return `read_parquet(${files}, filename = true, union_by_name = true)`;
    case '.csv':
    case '.tsv':
      return `read_csv(${files}, filename = true, union_by_name = true)`;
    case '.json':
    case '.ndjson':
    case '.jsonl':
      return `read_json(${files}, filename = true, union_by_name = true)`;
    default:
      throw new InvalidOptionError('query views', `"${artifact}" is not a Parquet, CSV or JSON artifact, which are what results queries read`);
  }
}
