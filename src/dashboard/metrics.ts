import type { StageRun } from '../run/stage-runs.js';
import { PARTITION_STATUSES } from '../status.js';
import { durationOf } from './partitions-query.js';
import { runSummary } from './run-summary.js';

/** The upper bounds of the partition-duration histogram's buckets, in seconds. */
export const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600];

/** A label value in the Prometheus text format: backslash, double quote and line feed escaped. */
export function labelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labels(values: Record<string, string>): string {
  return `{${Object.entries(values)
    .map(([name, value]) => `${name}="${labelValue(value)}"`)
    .join(',')}}`;
}

/**
 * The stage's runs in the Prometheus text format (0.0.4): partitions per status, each run's
 * status and mode, whether its driver is alive, the attempts made, and the finished partitions'
 * durations as a histogram.
 */
export function dashboardMetrics(runs: readonly StageRun[]): string {
  const families = {
    partitions: ['# HELP dpf_run_partitions Partitions of the run in each status.', '# TYPE dpf_run_partitions gauge'],
    info: ['# HELP dpf_run_info The run: its status and mode (always 1).', '# TYPE dpf_run_info gauge'],
    alive: ['# HELP dpf_run_driver_alive Whether a driver executes the run now (1) or not (0).', '# TYPE dpf_run_driver_alive gauge'],
    attempts: ['# HELP dpf_partition_attempts_total Attempts made at the run\'s partitions.', '# TYPE dpf_partition_attempts_total counter'],
    durations: ['# HELP dpf_partition_duration_seconds How long the run\'s finished partitions took (their last attempt).', '# TYPE dpf_partition_duration_seconds histogram'],
  };
  for (const found of runs) {
    if (!('run' in found)) continue;
    const run = found.run;
    const summary = runSummary(run);
    const id = run.runId;
    for (const status of PARTITION_STATUSES) families.partitions.push(`dpf_run_partitions${labels({ run: id, status })} ${summary.counts[status]}`);
    families.info.push(`dpf_run_info${labels({ run: id, status: summary.status, mode: summary.mode })} 1`);
    families.alive.push(`dpf_run_driver_alive${labels({ run: id })} ${summary.driver === 'alive' ? 1 : 0}`);
    const { states } = run.partitionStates();
    let attempts = 0;
    const buckets = new Array<number>(DURATION_BUCKETS.length).fill(0);
    let count = 0;
    let sum = 0;
    for (const state of states) {
      attempts += state.attempts;
      const duration = durationOf(state);
      if (duration === undefined) continue;
      const seconds = duration / 1000;
      count++;
      sum += seconds;
      const bucket = DURATION_BUCKETS.findIndex((bound) => seconds <= bound);
      if (bucket >= 0) buckets[bucket]!++;
    }
    families.attempts.push(`dpf_partition_attempts_total${labels({ run: id })} ${attempts}`);
    let cumulative = 0;
    DURATION_BUCKETS.forEach((bound, k) => {
      cumulative += buckets[k]!;
      families.durations.push(`dpf_partition_duration_seconds_bucket${labels({ run: id, le: String(bound) })} ${cumulative}`);
    });
    families.durations.push(`dpf_partition_duration_seconds_bucket${labels({ run: id, le: '+Inf' })} ${count}`);
    families.durations.push(`dpf_partition_duration_seconds_sum${labels({ run: id })} ${sum}`);
    families.durations.push(`dpf_partition_duration_seconds_count${labels({ run: id })} ${count}`);
  }
  return `${Object.values(families)
    .map((lines) => lines.join('\n'))
    .join('\n')}\n`;
}
