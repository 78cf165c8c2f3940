import { join } from 'node:path';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DPF, type ExecutionOptions, RunStatus } from 'dpf';
import { type BenchOptions, duckdb, FUNCTIONS, freshDir, median, type Phases, phaseNote, type Result, seconds, time } from '../harness.js';

const FLIGHTS = join(dirname(fileURLToPath(import.meta.resolve('vega-datasets'))), '..', 'data', 'flights-3m.parquet');

/**
 * W2: flights-3m.parquet partitioned by origin (229 skewed partitions); per airport the mean
 * delay and the least-squares slope and intercept of delay on distance. Reference: DuckDB's
 * GROUP BY origin with avg, regr_slope and regr_intercept — and dpf's answers must equal it to
 * 1e-9 relative.
 */
export async function w2(options: BenchOptions): Promise<Result> {
  const source = w2Source(options.smoke);
  const stage = await freshDir('stage-w2');
  const { times: dpfTimes, phases, results } = await timeW2(new DPF(join(FUNCTIONS, 'delay-regression.mjs'), { stage }), source, options.runs);
  const aggregate = `SELECT origin, count(*) AS n, avg(delay) AS mean, regr_slope(delay, distance) AS slope, regr_intercept(delay, distance) AS intercept
                     FROM (${source}) GROUP BY origin`;
  let expected: Record<string, unknown>[] = [];
  const referenceTimes = await time(options.runs, async () => {
    expected = await duckdb(aggregate);
  });
  const worst = largestRelativeDifference(results, expected);
  // The floor of any design that hands every partition its rows: DuckDB reading every column of
  // the file into memory, and sorting it by the key, before a single partition can run.
  const read = median(await time(options.runs, async () => void (await duckdb(`CREATE TABLE t AS ${source}`))));
  const readSorted = median(await time(options.runs, async () => void (await duckdb(`CREATE TABLE t AS SELECT * FROM (${source}) ORDER BY origin`))));
  const dpfMedian = median(dpfTimes);
  return {
    id: 'W2',
    workload: `flights-3m by origin (${expected.length} skewed partitions): mean delay + regression of delay on distance`,
    dpf: dpfMedian,
    reference: median(referenceTimes),
    referenceName: 'DuckDB GROUP BY avg, regr_slope, regr_intercept',
    figure: `${seconds(dpfMedian)}, max rel. diff ${worst.toExponential(1)}`,
    target: '≤ 0.4 s, equal to 1e-9',
    met: dpfMedian <= 0.4 && worst <= 1e-9,
    notes: [phaseNote(phases), `DuckDB alone: read every column into memory ${seconds(read)}, read and sort by origin ${seconds(readSorted)}`],
  };
}

/** W2's source: flights-3m.parquet (its first 100,000 rows at smoke size). */
export function w2Source(smoke: boolean): string {
  return smoke ? `SELECT * FROM '${FLIGHTS}' LIMIT 100000` : `SELECT * FROM '${FLIGHTS}'`;
}

/**
 * W2's dpf side on `dpf` (a local stage, or a queue): `runs` runs after a warm-up, each timed from
 * `run()` to the queried results, with its phases and the last run's results.
 */
export async function timeW2(dpf: DPF, source: string, runs: number, executionOptions: ExecutionOptions = {}): Promise<{ times: number[]; phases: Phases; results: Array<Record<string, unknown>> }> {
  let results: Array<Record<string, unknown>> = [];
  const phases: Phases = { plan: [], execute: [], query: [] };
  const times = await time(runs, async (run) => {
    const started = performance.now();
    const handle = await dpf.run({ partitionBy: 'origin', source, runId: `w2-${run + 1}`, onExistingArtifacts: 'overwrite', executionOptions });
    const planned = performance.now();
    if ((await handle.wait()) !== RunStatus.SUCCESS) throw new Error('W2 run failed');
    const executed = performance.now();
    results = (await handle.query('SELECT partition_id AS origin, n, mean, slope, intercept FROM r', { r: 'result.json' })).toArray().map((row) => row.toJSON());
    if (run >= 0) {
      phases.plan.push((planned - started) / 1000);
      phases.execute.push((executed - planned) / 1000);
      phases.query.push((performance.now() - executed) / 1000);
    }
  });
  return { times, phases, results };
}

/** The largest relative difference between dpf's answers and DuckDB's, per airport and column (Infinity: NaN on one side only). */
export function largestRelativeDifference(results: Array<Record<string, unknown>>, expected: Array<Record<string, unknown>>): number {
  if (results.length !== expected.length) throw new Error(`W2: ${results.length} airports, DuckDB has ${expected.length}`);
  const byOrigin = new Map(expected.map((row) => [row.origin as string, row]));
  let worst = 0;
  for (const row of results) {
    const reference = byOrigin.get(row.origin as string);
    if (reference === undefined) throw new Error(`W2: airport ${String(row.origin)} is not in DuckDB's answer`);
    if (Number(row.n) !== Number(reference.n)) throw new Error(`W2: ${String(row.origin)} has ${String(row.n)} flights, DuckDB ${String(reference.n)}`);
    for (const column of ['mean', 'slope', 'intercept']) {
      // An airport whose flights all have one distance has no slope: NaN or NULL on either side.
      const mine = row[column] === null ? NaN : Number(row[column]);
      const theirs = reference[column] === null ? NaN : Number(reference[column]);
      if (Number.isNaN(mine) || Number.isNaN(theirs)) {
        if (Number.isNaN(mine) !== Number.isNaN(theirs)) worst = Infinity;
        continue;
      }
      worst = Math.max(worst, Math.abs(mine - theirs) / Math.max(Math.abs(theirs), 1e-300));
    }
  }
  return worst;
}
