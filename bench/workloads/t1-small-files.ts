import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { DuckDBInstance } from '@duckdb/node-api';
import { join } from 'node:path';
import { DPF, RunStatus } from 'dpf';
import { type BenchOptions, duckdb, FUNCTIONS, freshDir, median, type Result, seconds, time, WORK } from '../harness.js';

/**
 * T1: stage mode over 2,000 small Parquet files (1,000 rows each): per file, the row count and
 * the sum of a column, then queried into one table. Reference: DuckDB reading the same files
 * (one `read_parquet` over the glob, grouped by file).
 */
export async function t1(options: BenchOptions): Promise<Result> {
  const files = options.smoke ? 50 : 2_000;
  const folder = await t1Dataset(files);
  const stage = await freshDir('stage-t1');
  const dpf = new DPF(join(FUNCTIONS, 'file-sum.mjs'), { stage });
  const dpfTimes = await time(options.runs, async (run) => {
    const handle = await dpf.runFromStage({ stageLocation: folder, runId: `t1-${run + 1}`, onExistingArtifacts: 'overwrite' });
    if ((await handle.wait()) !== RunStatus.SUCCESS) throw new Error('T1 run failed');
    const table = await handle.query('SELECT partition_id, rows, sum FROM r', { r: 'result.json' });
    if (table.numRows !== files) throw new Error(`T1: ${table.numRows} results, not ${files}`);
  });
  const referenceTimes = await time(options.runs, async () => {
    await duckdb(`SELECT filename, count(*) AS rows, sum(x) AS sum FROM read_parquet('${folder}/*.parquet', filename = true) GROUP BY filename`);
  });
  // What a partition per file costs in DuckDB itself: one query per file, on one connection.
  const names = (await readdir(folder)).filter((name) => name.endsWith('.parquet'));
  const perFile = median(
    await time(Math.min(options.runs, 3), async () => {
      const instance = await DuckDBInstance.create(':memory:');
      const connection = await instance.connect();
      for (const name of names) await connection.runAndReadAll(`SELECT count(*), sum(x) FROM read_parquet('${join(folder, name)}')`);
      connection.closeSync();
      instance.closeSync();
    }),
  );
  const dpfMedian = median(dpfTimes);
  const referenceMedian = median(referenceTimes);
  return {
    id: 'T1',
    workload: `stage mode, ${files.toLocaleString('en')} Parquet files of 1,000 rows: count + sum per file, results queried`,
    dpf: dpfMedian,
    reference: referenceMedian,
    referenceName: 'DuckDB read_parquet over the files',
    figure: `${seconds(dpfMedian)} (${(dpfMedian / referenceMedian).toFixed(1)}× DuckDB)`,
    target: 'report the ratio',
    met: undefined,
    notes: [`DuckDB with one query per file (what a partition per file means), one connection: ${seconds(perFile)} (${((perFile / files) * 1000).toFixed(2)} ms/file)`],
  };
}

/** The T1 folder of Parquet files (generated once, deterministic). */
export async function t1Dataset(files: number): Promise<string> {
  const folder = join(WORK, 'data', `t1-${files}`);
  if (!existsSync(join(folder, `part-${String(files - 1).padStart(5, '0')}.parquet`))) {
    await mkdir(folder, { recursive: true });
    await duckdb(`COPY (SELECT i // 1000 AS part, i AS x FROM range(${files * 1000}) t(i))
                  TO '${folder}' (FORMAT PARQUET, PARTITION_BY (part), OVERWRITE_OR_IGNORE, FILENAME_PATTERN 'data')`);
    // DuckDB writes part=N/data0.parquet; flatten to part-0000N.parquet.
    const { rename, rmdir } = await import('node:fs/promises');
    for (const entry of await readdir(folder)) {
      const match = /^part=(\d+)$/.exec(entry);
      if (match === null) continue;
      await rename(join(folder, entry, 'data0.parquet'), join(folder, `part-${match[1]!.padStart(5, '0')}.parquet`));
      await rmdir(join(folder, entry));
    }
  }
  return folder;
}
