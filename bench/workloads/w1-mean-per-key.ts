import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DPF, type ExecutionOptions, RunStatus } from 'dpf';
import { type AnswerShape, type BenchOptions, duckdb, FUNCTIONS, freshDir, median, type Phases, phaseNote, type Result, seconds, time, WORK } from '../harness.js';
import { peers } from '../peers.js';

/** W1's answer per key, as dpf's results (mean.mjs), DuckDB's and the peers' have it. */
export const W1_ANSWER: AnswerShape = { key: 'key', count: 'rows', values: ['mean'] };

/**
 * W1: 1,000,000 rows with 10,000 keys in a Parquet file; per key, the row count and mean of a
 * column saved as the partition's result, then every result queried into one table. Timed from
 * the Parquet file to the queried table (the run's statuses durable on the stage). Reference:
 * DuckDB's GROUP BY of the same aggregate on the same file. Peers: pandas and Dask, where installed
 * (bench/peers.ts), their answers checked against DuckDB's.
 */
export async function w1(options: BenchOptions): Promise<Result> {
  const rows = options.smoke ? 20_000 : 1_000_000;
  const keys = options.smoke ? 200 : 10_000;
  const file = await w1Dataset(rows, keys);
  const stage = await freshDir('stage-w1');
  const { times: dpfTimes, phases } = await timeW1(new DPF(join(FUNCTIONS, 'mean.mjs'), { stage }), file, keys, options.runs);
  let expected: Record<string, unknown>[] = [];
  const referenceTimes = await time(options.runs, async () => {
    expected = await duckdb(`SELECT key, count(*) AS rows, avg(value) AS mean FROM '${file}' GROUP BY key`);
  });
  // DuckDB's share of any design that hands each partition its rows: read the file, sort it by key.
  const readSorted = median(await time(options.runs, async () => void (await duckdb(`CREATE TABLE t AS SELECT * FROM '${file}' ORDER BY key`))));
  const dpfMedian = median(dpfTimes);
  const { rows: peerRows, notes: peerNotes } = await peers({ id: 'W1', source: `SELECT * FROM '${file}'`, csv: file.replace(/\.parquet$/, '.csv'), dpf: dpfMedian, expected, shape: W1_ANSWER, runs: options.runs, warmUps: options.smoke ? 0 : 1 });
  return {
    id: 'W1',
    workload: `${rows.toLocaleString('en')} rows, ${keys.toLocaleString('en')} keys: count + mean per key, results queried`,
    dpf: dpfMedian,
    reference: median(referenceTimes),
    referenceName: 'DuckDB GROUP BY',
    figure: seconds(dpfMedian),
    target: '≤ 0.5 s',
    met: dpfMedian <= 0.5,
    notes: [phaseNote(phases), `DuckDB alone: read and sort by key ${seconds(readSorted)}`, ...peerNotes],
    peers: peerRows,
  };
}

/**
 * W1's dpf side on `dpf` (a local stage, or a queue): `runs` runs after a warm-up, each timed from
 * `run()` to the queried results table, with its phases.
 */
export async function timeW1(dpf: DPF, file: string, keys: number, runs: number, executionOptions: ExecutionOptions = {}): Promise<{ times: number[]; phases: Phases }> {
  let table: { numRows: number } | undefined;
  const phases: Phases = { plan: [], execute: [], query: [] };
  const times = await time(runs, async (run) => {
    const started = performance.now();
    const handle = await dpf.run({ partitionBy: 'key', source: `SELECT * FROM '${file}'`, runId: `w1-${run + 1}`, onExistingArtifacts: 'overwrite', executionOptions });
    const planned = performance.now();
    if ((await handle.wait()) !== RunStatus.SUCCESS) throw new Error('W1 run failed');
    const executed = performance.now();
    table = await handle.query('SELECT partition_id, rows, mean FROM results', { results: 'result.json' });
    if (run >= 0) {
      phases.plan.push((planned - started) / 1000);
      phases.execute.push((executed - planned) / 1000);
      phases.query.push((performance.now() - executed) / 1000);
    }
  });
  if (table?.numRows !== keys) throw new Error(`W1: the results table has ${table?.numRows} rows, not ${keys}`);
  return { times, phases };
}

/** The W1 Parquet file (generated once, deterministic). */
export async function w1Dataset(rows: number, keys: number): Promise<string> {
  await mkdir(join(WORK, 'data'), { recursive: true });
  const file = join(WORK, 'data', `w1-${rows}-${keys}.parquet`);
  if (!existsSync(file)) {
    // Deterministic: the key is a hash of the row number, the value a multiplicative hash of it.
    await duckdb(`COPY (SELECT (hash(i) % ${keys})::INTEGER AS key, ((i * 2654435761) % 1000003) / 1000003.0 AS value
                  FROM range(${rows}) t(i)) TO '${file}' (FORMAT PARQUET)`);
  }
  return file;
}
