import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { type AnswerShape, duckdb, largestRelativeDifference, median, ROOT, type Result, seconds } from './harness.js';

/**
 * The peers of W1 and W2: pandas and Dask doing the same workload in the same run, the way their
 * users write it — `df.groupby(key).apply(fn)` with `fn` the analogue of the DPF partition
 * function (bench/peers/*.py) — where Python with them is installed. On Debian 12:
 * `apt-get install python3-pandas python3-dask python3-distributed`, which install for
 * /usr/bin/python3; another interpreter is chosen with DPF_BENCH_PYTHON. Where a peer is absent
 * the workload says so in a note and goes on.
 *
 * Debian 12 has neither pyarrow nor fastparquet, so pandas cannot read the Parquet dpf reads: the
 * peers read the same rows as CSV, exported once by DuckDB and cached next to the Parquet in
 * .bench/data/. Their load (read_csv) is timed apart from their compute, so both figures can be
 * read: dpf's time against each peer's end to end, and against its groupby.apply in memory alone.
 */
export const PYTHON = process.env.DPF_BENCH_PYTHON ?? '/usr/bin/python3';
const SCRIPTS = join(ROOT, 'bench', 'peers');
/** A Dask LocalCluster not up within this is reported, not waited on. */
const CLUSTER_TIMEOUT_SECONDS = 60;
/** A peer script still running after this is stopped and reported (W2's Dask peer takes 1–2 minutes at 5 runs). */
const SCRIPT_TIMEOUT_MS = 15 * 60_000;
/** Peers' answers must equal DuckDB's to this, relative, or their times are not shown. */
const TOLERANCE = 1e-9;

/** One workload, as the peers need it. */
export interface PeerWorkload {
  id: 'W1' | 'W2';
  /** The workload's rows, as SQL over the Parquet dpf reads. */
  source: string;
  /** Where those rows are cached as CSV for the peers. */
  csv: string;
  /** dpf's median, seconds, measured in the same run. */
  dpf: number;
  /** DuckDB's answer, per partition, that the peers' must equal. */
  expected: ReadonlyArray<Record<string, unknown>>;
  shape: AnswerShape;
  runs: number;
  /** Untimed runs before them: the bench's one, or none at smoke size (where only the path is checked). */
  warmUps: number;
  /** Why the Dask peer is not run here, if it is not. */
  skipDask?: string;
}

/** The peers' rows for the table, and notes for the workload (peers skipped, and why). */
export interface Peers {
  rows: Result[];
  notes: string[];
}

/** Runs pandas and Dask on `workload` where Python has them, each in a Python process of its own. */
export async function peers(workload: PeerWorkload): Promise<Peers> {
  const rows: Result[] = [];
  const notes: string[] = [];
  const csv = await csvCopy(workload.source, workload.csv);
  const runs = [String(workload.runs), String(workload.warmUps)];
  const pandas = await runScript('pandas_peer.py', [workload.id, csv, ...runs]);
  if ('skipped' in pandas) notes.push(`pandas peer skipped: ${pandas.skipped} (apt-get install python3-pandas, or point DPF_BENCH_PYTHON at a Python that has it)`);
  else rows.push(pandasRow(workload, csv, pandas));
  if (workload.skipDask !== undefined) {
    notes.push(`Dask peer ${workload.skipDask}`);
    return { rows, notes };
  }
  const dask = await runScript('dask_peer.py', [workload.id, csv, ...runs, String(CLUSTER_TIMEOUT_SECONDS)]);
  if ('skipped' in dask) notes.push(`Dask peer skipped: ${dask.skipped} (apt-get install python3-dask python3-distributed, or point DPF_BENCH_PYTHON at a Python that has them)`);
  else rows.push(daskRow(workload, dask));
  return { rows, notes };
}

/** A peer that ran (its record), failed (why), or is not installed (why). */
type Outcome = PeerRecord | { failed: string } | { skipped: string };

/** What a peer script printed: its times in seconds, and its answers as columns. */
interface PeerRecord {
  peer: string;
  version: string;
  python: string;
  import: number;
  load: number[];
  apply: number[];
  endToEnd: number[];
  answer: Record<string, unknown[]>;
  /** pandas: the vectorised groupby.agg, in memory. */
  agg?: number[];
  aggAnswer?: Record<string, unknown[]>;
  /** Dask. */
  distributed?: string;
  pandas?: string;
  workers?: number;
  partitions?: number;
  clusterStart?: number;
}

function pandasRow(workload: PeerWorkload, csv: string, outcome: PeerRecord | { failed: string }): Result {
  const { row, answers } = peerRow(workload, 'pandas', `pandas: read_csv, then groupby(${workload.shape.key}).apply(fn)`, outcome);
  if ('failed' in outcome || row.reference === undefined) return row;
  const [load, apply, endToEnd, agg] = [outcome.load, outcome.apply, outcome.endToEnd, outcome.agg!].map(median) as [number, number, number, number];
  const aggAnswers = check(workload, outcome.aggAnswer!);
  const vectorised = aggAnswers.right
    ? `Vectorised groupby.agg, for comparison: ${seconds(agg)} in memory (dpf / that: ${ratio(workload.dpf, agg)}; not in end to end; its ${aggAnswers.text})`
    : `Vectorised groupby.agg: not shown, its ${aggAnswers.text}`;
  row.workload = `pandas ${outcome.version}: read_csv, then groupby(${workload.shape.key}).apply(fn)`;
  row.figure = `dpf / pandas' groupby.apply in memory (${seconds(apply)}): ${ratio(workload.dpf, apply)}`;
  row.notes.push(
    `pandas ${outcome.version}, Python ${outcome.python} (${PYTHON}): load ${seconds(load)} (read_csv of the ${size(csv)} CSV), groupby.apply ${seconds(apply)} in memory; end to end ${seconds(endToEnd)}. ` +
      `${vectorised}. ${measured(workload)}, in one Python process; its start and import pandas (${seconds(outcome.import)}) not counted. groupby.apply's ${answers.text}.`,
  );
  return row;
}

function daskRow(workload: PeerWorkload, outcome: PeerRecord | { failed: string }): Result {
  const { row, answers } = peerRow(workload, 'Dask', `Dask: read_csv, then groupby(${workload.shape.key}).apply(fn, meta), 2 worker processes`, outcome);
  if ('failed' in outcome || row.reference === undefined) return row;
  const [load, apply, endToEnd] = [outcome.load, outcome.apply, outcome.endToEnd].map(median) as [number, number, number];
  row.workload = `Dask ${outcome.version}: read_csv, then groupby(${workload.shape.key}).apply(fn, meta), LocalCluster of ${outcome.workers} worker processes`;
  row.figure = `dpf / Dask's groupby.apply on the persisted frame (${seconds(apply)}): ${ratio(workload.dpf, apply)}`;
  row.notes.push(
    `Dask ${outcome.version} (distributed ${outcome.distributed}, pandas ${outcome.pandas}), LocalCluster of ${outcome.workers} worker processes × 1 thread, up in ${seconds(outcome.clusterStart!)} (not counted): ` +
      `load ${seconds(load)} (read_csv in ${outcome.partitions} partitions, persisted), groupby.apply ${seconds(apply)} in memory on the persisted frame; end to end ${seconds(endToEnd)} (read_csv → groupby.apply → compute, one graph). ` +
      `${measured(workload)}, on one cluster; imports (${seconds(outcome.import)}) not counted. Its ${answers.text}.`,
  );
  return row;
}

/**
 * A peer's row: dpf against its end to end where it ran and its answers are right (with the check
 * of its answers); why not where not.
 */
function peerRow(workload: PeerWorkload, peer: string, description: string, outcome: PeerRecord | { failed: string }): { row: Result; answers: Check } {
  const row: Result = { id: `${workload.id} ${peer.toLowerCase()}`, workload: description, dpf: workload.dpf, reference: undefined, referenceName: `${peer} end to end`, figure: '', target: 'report', met: undefined, notes: [] };
  if ('failed' in outcome) {
    row.figure = `not measured: ${outcome.failed}`;
    return { row, answers: { right: false, text: 'answers: none' } };
  }
  const answers = check(workload, outcome.answer);
  if (answers.right) row.reference = median(outcome.endToEnd);
  else row.figure = `not shown: ${answers.text}`;
  return { row, answers };
}

/** Whether a peer's answers equal DuckDB's, and a sentence saying so. */
interface Check {
  right: boolean;
  text: string;
}

function check(workload: PeerWorkload, answer: Record<string, unknown[]>): Check {
  const columns = Object.entries(answer);
  const rows = (columns[0]?.[1] ?? []).map((_, i) => Object.fromEntries(columns.map(([name, values]) => [name, values[i]])));
  try {
    const worst = largestRelativeDifference(rows, workload.expected, workload.shape);
    return worst <= TOLERANCE
      ? { right: true, text: `answers equal DuckDB's (counts; ${workload.shape.values.join(', ')} to ${worst.toExponential(1)} relative)` }
      : { right: false, text: `answers differ from DuckDB's by ${worst.toExponential(1)} relative (> ${TOLERANCE})` };
  } catch (error) {
    return { right: false, text: `answers differ from DuckDB's: ${(error as Error).message}` };
  }
}

/** Runs a peer script: its record (the last line it printed), or why there is none. */
function runScript(script: string, args: string[]): Promise<Outcome> {
  return new Promise((resolve) => {
    // A process group of its own, so a script that overstays is stopped with every process it
    // started (Dask's nannies and workers), and only those.
    const child = spawn(PYTHON, [join(SCRIPTS, script), ...args], { cwd: SCRIPTS, detached: true, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      process.kill(-child.pid!, 'SIGKILL');
    }, SCRIPT_TIMEOUT_MS);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ skipped: `${PYTHON} cannot be run (${error.message})` });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (timedOut) return resolve({ failed: `${script} did not finish within ${SCRIPT_TIMEOUT_MS / 60_000} min` });
      let record: Outcome | undefined;
      try {
        record = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as Outcome;
      } catch {
        record = undefined;
      }
      // A record with `failed` (a Dask cluster that did not come up) is one whatever the exit code.
      if (record !== undefined && (code === 0 || 'failed' in record)) return resolve(record);
      resolve({ failed: `${script} exited with ${code}: ${stderr.trim().split('\n').slice(-3).join(' / ') || 'no output'}` });
    });
  });
}

/** `source`'s rows as CSV at `file`, exported by DuckDB the first time and kept (written aside, then renamed into place). */
export async function csvCopy(source: string, file: string): Promise<string> {
  if (!existsSync(file)) {
    await duckdb(`COPY (${source}) TO '${file}.partial' (FORMAT CSV, HEADER)`);
    await rename(`${file}.partial`, file);
  }
  return file;
}

function measured(workload: PeerWorkload): string {
  return `Median of ${workload.runs} run(s) ${workload.warmUps === 0 ? 'without a warm-up' : `after ${workload.warmUps === 1 ? 'a warm-up' : `${workload.warmUps} warm-ups`}`}`;
}

/** dpf's time over a peer's, to 3 significant figures or so. */
function ratio(dpf: number, peer: number): string {
  const value = dpf / peer;
  return `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)}×`;
}

function size(file: string): string {
  const bytes = statSync(file).size;
  return bytes < 1e6 ? `${(bytes / 1e3).toFixed(0)} kB` : `${(bytes / 1e6).toFixed(0)} MB`;
}
