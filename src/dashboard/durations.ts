import type { DPFRun } from '../run/dpf-run.js';
import type { DurationHistogram } from './api-types.js';
import { durationOf } from './partitions-query.js';

/** Bins of the histogram (fewer when there are fewer distinct durations). */
const BINS = 40;

/** The finished partitions' durations in equal bins from the shortest to the longest, with their median, 95th percentile and longest. */
export function durationHistogram(run: DPFRun): DurationHistogram {
  const { states } = run.partitionStates();
  const durations = new Float64Array(states.length);
  let n = 0;
  for (const state of states) {
    const duration = durationOf(state);
    if (duration !== undefined) durations[n++] = duration;
  }
  if (n === 0) return { edges: [], counts: [], n: 0 };
  const sorted = durations.subarray(0, n).sort();
  const min = sorted[0]!;
  const max = sorted[n - 1]!;
  const bins = max === min ? 1 : Math.min(BINS, Math.max(1, Math.ceil(Math.sqrt(n))));
  const width = max === min ? 1 : (max - min) / bins;
  const edges = Array.from({ length: bins + 1 }, (_, k) => (k === bins ? max : min + k * width));
  const counts = new Array<number>(bins).fill(0);
  for (let k = 0; k < n; k++) counts[Math.min(bins - 1, Math.floor((sorted[k]! - min) / width))]!++;
  const quantile = (q: number): number => sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!;
  return { edges, counts, n, p50: quantile(0.5), p95: quantile(0.95), max };
}
