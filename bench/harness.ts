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
