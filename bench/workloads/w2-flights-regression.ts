import { join } from 'node:path';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DPF, type ExecutionOptions, RunStatus } from 'dpf';
import { type AnswerShape, type BenchOptions, duckdb, FUNCTIONS, freshDir, median, type Phases, largestRelativeDifference, phaseNote, type Result, seconds, time, WORK } from '../harness.js';
import { peers } from '../peers.js';

const FLIGHTS = join(dirname(fileURLToPath(import.meta.resolve('vega-datasets'))), '..', 'data', 'flights-3m.parquet');

/**
 * W2: flights-3m.parquet partitioned by origin (229 skewed partitions); per airport the mean
 * delay and the least-squares slope and intercept of delay on distance. Reference: DuckDB's
 * GROUP BY origin with avg, regr_slope and regr_intercept — and dpf's answers must equal it to
 * 1e-9 relative. Peers: pandas and Dask, where installed (bench/peers.ts), held to the same.
 */
export async function w2(options: BenchOptions): Promise<Result> {
  const measured = await measureW2(options, 'stage-w2');
  const { source, expected } = measured;
  // The floor of any design that hands every partition its rows: DuckDB reading every column of
  // the file into memory, and sorting it by the key, before a single partition can run.
  const read = median(await time(options.runs, async () => void (await duckdb(`CREATE TABLE t AS ${source}`))));
  const readSorted = median(await time(options.runs, async () => void (await duckdb(`CREATE TABLE t AS SELECT * FROM (${source}) ORDER BY origin`))));
  const csv = join(WORK, 'data', options.smoke ? 'flights-3m-100000.csv' : 'flights-3m.csv');
  // At smoke size the Dask peer runs on W1 only: its cluster's start and stop (3–4 s) would be
  // most of the smoke test's cost, and W1 takes the same script down the same path.
  const skipDask = options.smoke ? 'not run at smoke size (W1 checks it)' : undefined;
  const { rows: peerRows, notes: peerNotes } = await peers({ id: 'W2', source, csv, dpf: measured.dpf, expected, shape: W2_ANSWER, runs: options.runs, warmUps: options.smoke ? 0 : 1, skipDask });
  return {
    ...w2Result('W2', `flights-3m by origin (${expected.length} skewed partitions): mean delay + regression of delay on distance`, measured),
    notes: [phaseNote(measured.phases), `DuckDB alone: read every column into memory ${seconds(read)}, read and sort by origin ${seconds(readSorted)}`, ...peerNotes],
    peers: peerRows,
  };
}

/**
 * W2C: W2 with the columns its function reads named (`columns: ['delay', 'distance']`): DuckDB
 * reads, sorts and hands over 3 of the file's 5 columns. The same answers, held to the same check.
 */
export async function w2c(options: BenchOptions): Promise<Result> {
  const measured = await measureW2(options, 'stage-w2c', ['delay', 'distance']);
  const readSorted = median(await time(options.runs, async () => void (await duckdb(`CREATE TABLE t AS SELECT origin, delay, distance FROM (${measured.source}) ORDER BY origin`))));
  return {
    ...w2Result('W2C', "W2 with the function's columns named: columns: ['delay', 'distance']", measured),
    notes: [phaseNote(measured.phases), `DuckDB alone: read the 3 columns and sort them by origin ${seconds(readSorted)}`],
  };
}

interface W2Measured {
  source: string;
  dpf: number;
  phases: Phases;
  expected: Array<Record<string, unknown>>;
  reference: number;
  worst: number;
}

/** dpf's W2 runs (with `columns`, if given) and DuckDB's GROUP BY of the same answers, and how far apart they are. */
async function measureW2(options: BenchOptions, stageName: string, columns?: readonly string[]): Promise<W2Measured> {
  const source = w2Source(options.smoke);
  const stage = await freshDir(stageName);
  const { times, phases, results } = await timeW2(new DPF(join(FUNCTIONS, 'delay-regression.mjs'), { stage }), source, options.runs, {}, columns);
  const aggregate = `SELECT origin, count(*) AS n, avg(delay) AS mean, regr_slope(delay, distance) AS slope, regr_intercept(delay, distance) AS intercept
                     FROM (${source}) GROUP BY origin`;
  let expected: Array<Record<string, unknown>> = [];
  const referenceTimes = await time(options.runs, async () => {
    expected = await duckdb(aggregate);
  });
  return { source, dpf: median(times), phases, expected, reference: median(referenceTimes), worst: largestRelativeDifference(results, expected, W2_ANSWER) };
}

function w2Result(id: string, workload: string, measured: W2Measured): Omit<Result, 'notes'> {
  return {
    id,
    workload,
    dpf: measured.dpf,
    reference: measured.reference,
    referenceName: 'DuckDB GROUP BY avg, regr_slope, regr_intercept',
    figure: `${seconds(measured.dpf)}, max rel. diff ${measured.worst.toExponential(1)}`,
    target: '≤ 0.7 s, equal to 1e-9',
    met: measured.dpf <= 0.7 && measured.worst <= 1e-9,
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
export async function timeW2(
  dpf: DPF,
  source: string,
  runs: number,
  executionOptions: ExecutionOptions = {},
  columns?: readonly string[],
): Promise<{ times: number[]; phases: Phases; results: Array<Record<string, unknown>> }> {
  let results: Array<Record<string, unknown>> = [];
  const phases: Phases = { plan: [], execute: [], query: [] };
  const times = await time(runs, async (run) => {
    const started = performance.now();
    const handle = await dpf.run({ partitionBy: 'origin', source, runId: `w2-${run + 1}`, onExistingArtifacts: 'overwrite', executionOptions, ...(columns !== undefined ? { columns } : {}) });
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

/** W2's answer per airport, as dpf's results, DuckDB's and the peers' have it. */
export const W2_ANSWER: AnswerShape = { key: 'origin', count: 'n', values: ['mean', 'slope', 'intercept'] };
