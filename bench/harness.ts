import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';

/** The project's root, and where benchmarks keep generated data and stages (ignored by git). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const WORK = join(ROOT, '.bench');
export const FUNCTIONS = join(ROOT, 'bench', 'functions');

/** One workload's measurements. */
export interface Result {
  id: string;
  workload: string;
  /** Median seconds of dpf doing the workload (undefined: dpf's side is not built yet, only the reference runs). */
  dpf: number | undefined;
  /** Median seconds of the reference doing the same, in the same run (undefined: none). */
  reference: number | undefined;
  referenceName: string;
  /** The figure the target is about, as text, e.g. "0.41 s" or "18 µs/partition". */
  figure: string;
  target: string;
  met: boolean | undefined;
  notes: string[];
  /** Rows printed under this one: other tools doing the same workload in the same run (bench/peers.ts), or other parts of the workload (M2 infer, M2 cache). */
  peers?: Result[];
}

export interface BenchOptions {
  runs: number;
  /** Tiny sizes, to check the benchmark works (used by the tests); figures mean nothing. */
  smoke: boolean;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Phases of a dpf run, timed through the public API: planning (until `run()` returns), execution (`wait()`), results query. */
export interface Phases {
  plan: number[];
  execute: number[];
  query: number[];
}

export function phaseNote(phases: Phases): string {
  return `phases (median): plan ${seconds(median(phases.plan))}, execute ${seconds(median(phases.execute))}, query ${seconds(median(phases.query))}`;
}

/** Runs `fn` `runs` times (after one warm-up unless `warmUp` is false) and returns every time in seconds. */
export async function time(runs: number, fn: (run: number) => Promise<void>, warmUp = true): Promise<number[]> {
  if (warmUp) await fn(-1);
  const times: number[] = [];
  for (let run = 0; run < runs; run++) {
    const started = performance.now();
    await fn(run);
    times.push((performance.now() - started) / 1000);
  }
  return times;
}

/** Runs SQL in a fresh in-memory DuckDB and returns the rows (bigints and all). */
export async function duckdb(sql: string, threads?: number): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(':memory:', threads === undefined ? {} : { threads: String(threads) });
  const connection = await instance.connect();
  try {
    return (await connection.runAndReadAll(sql)).getRowObjectsJS();
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** A fresh, empty folder under .bench/. */
export async function freshDir(name: string): Promise<string> {
  const dir = join(WORK, name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  return dir;
}

export function seconds(value: number): string {
  return value < 1 ? `${(value * 1000).toFixed(0)} ms` : `${value.toFixed(2)} s`;
}

/** Where a per-partition answer keeps its key, its row count (must be equal), and the numbers compared relatively. */
export interface AnswerShape {
  key: string;
  count: string;
  values: readonly string[];
}

/**
 * The largest relative difference between two per-partition answers, per key and column
 * (Infinity: NaN or NULL on one side only). Throws if they have other keys or other counts.
 */
export function largestRelativeDifference(results: ReadonlyArray<Record<string, unknown>>, expected: ReadonlyArray<Record<string, unknown>>, shape: AnswerShape): number {
  if (results.length !== expected.length) throw new Error(`${results.length} partitions, the reference has ${expected.length}`);
  const byKey = new Map(expected.map((row) => [String(row[shape.key]), row]));
  let worst = 0;
  for (const row of results) {
    const key = String(row[shape.key]);
    const reference = byKey.get(key);
    if (reference === undefined) throw new Error(`${shape.key} ${key} is not in the reference's answer`);
    if (Number(row[shape.count]) !== Number(reference[shape.count])) throw new Error(`${shape.key} ${key} has ${String(row[shape.count])} rows, the reference ${String(reference[shape.count])}`);
    for (const column of shape.values) {
      // A partition with no answer for a column (an airport whose flights all have one distance has no slope): NaN or NULL on either side.
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
