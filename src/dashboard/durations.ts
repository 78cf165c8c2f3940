import type { DPFRun } from '../run/dpf-run.js';
import type { DurationHistogram } from './api-types.js';
import { durationOf } from './partitions-query.js';

/** Bins of the histogram (fewer when there are fewer distinct durations). */
const BINS = 40;

/** Durations this many times apart or more are binned on a log scale: skew is what one looks for, and linear bins put almost every partition in the first. */
const LOG_RATIO = 20;

/**
 * The finished partitions' durations in bins from the shortest to the longest, with their median,
 * 95th percentile and longest: equal bins, or equal on a log scale (`scale: 'log'`, from 1 ms up;
 * shorter ones count in the first bin) when the longest is 20 times the shortest or more.
 */
export function durationHistogram(run: DPFRun): DurationHistogram {
  const { states } = run.partitionStates();
  const durations = new Float64Array(states.length);
  let n = 0;
  for (const state of states) {
    const duration = durationOf(state);
    if (duration !== undefined) durations[n++] = duration;
  }
  return histogramOf(durations.subarray(0, n).sort());
}

/** The histogram of durations sorted ascending. */
export function histogramOf(sorted: Float64Array): DurationHistogram {
  const n = sorted.length;
  if (n === 0) return { edges: [], counts: [], n: 0, scale: 'linear' };
  const min = sorted[0]!;
  const max = sorted[n - 1]!;
  const bins = max === min ? 1 : Math.min(BINS, Math.max(1, Math.ceil(Math.sqrt(n))));
  const low = Math.max(min, 1);
  const log = max / low >= LOG_RATIO;
  // The bin of a duration: its distance from the low edge, in bin widths (linear or logarithmic).
  const width = log ? Math.log(max / low) / bins : max === min ? 1 : (max - min) / bins;
  const position = log ? (d: number): number => (d <= low ? 0 : Math.log(d / low) / width) : (d: number): number => (d - min) / width;
  const edges = Array.from({ length: bins + 1 }, (_, k) => (k === bins ? max : log ? low * Math.exp(k * width) : min + k * width));
  const counts = new Array<number>(bins).fill(0);
  for (let k = 0; k < n; k++) counts[Math.min(bins - 1, Math.floor(position(sorted[k]!)))]!++;
  const quantile = (q: number): number => sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!;
  return { edges, counts, n, scale: log ? 'log' : 'linear', p50: quantile(0.5), p95: quantile(0.95), max };
}
