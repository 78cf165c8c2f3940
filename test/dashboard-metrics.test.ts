import { join } from 'node:path';
import { DPF } from 'dpf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PartitionsPage, RunsResponse, RunSummary } from '../src/dashboard/api-types.js';
import { type Dashboard, startDashboard } from '../dist/dashboard/server.js';
import { getJson, send } from './support/dashboard-client.js';
import { ROOT, writeFiles, writeModule } from './helpers.js';
import { writeFinishedRun } from './support/written-run.js';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';

/** One sample of the Prometheus text format: its metric name, labels and value. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (0.0.4): samples, with label values unescaped; `# TYPE` lines by metric. */
function parsePrometheus(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type !== null) types.set(type[1]!, type[2]!);
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    const pairs = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
    const body = match[2] ?? '';
    let pair: RegExpExecArray | null;
    let consumed = 0;
    while ((pair = pairs.exec(body)) !== null) {
      labels[pair[1]!] = pair[2]!.replace(/\\(.)/g, (_, char: string) => (char === 'n' ? '\n' : char));
      consumed = pairs.lastIndex;
    }
    if (consumed !== body.length) throw new Error(`bad labels in: ${line}`);
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return { samples, types };
}

/** A run id a label must escape: a quote, a backslash and a line feed. */
const ODD_ID = 'odd"run\\with\nnewline';

let dir: string;
let stage: string;
let dashboard: Dashboard;

beforeAll(async () => {
  await mkdir(join(ROOT, 'tmp'), { recursive: true });
  dir = await mkdtemp(join(ROOT, 'tmp', 'dashboard-metrics-'));
  stage = join(dir, 'stage');
  const module = await writeModule(dir, `if (context.partitionKey === 'k2' && context.attempt === 1) throw new Error('once'); if (context.partitionKey === 'k4') throw new Error('always');`);
  await (await new DPF(module, { stage }).run({ runId: 'frames', partitionBy: 'k', source: "SELECT 'k' || (i % 5) AS k FROM range(20) t(i)", executionOptions: { maxRetries: 1, retryBackoffMs: 0 } })).wait();
  await writeFiles(join(dir, 'input'), { 'a.csv': 'x\n1\n', 'b.csv': 'x\n1\n' });
  await (await new DPF(module, { stage }).runFromStage({ stageLocation: join(dir, 'input'), runId: 'files', filePattern: '*.csv' })).wait();
  await writeFinishedRun(stage, 'written', 1000, new Set([1, 2, 3]));
  dashboard = await startDashboard({ stage, port: 0 });
}, 60_000);

afterAll(async () => {
  await dashboard?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('the dashboard metrics', () => {
  it('gives the numbers the API gives, in the Prometheus text format', async () => {
    const answer = await send(dashboard.url, '/metrics');
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const { samples, types } = parsePrometheus(answer.text);
    expect(types.get('dpf_run_partitions')).toBe('gauge');
    expect(types.get('dpf_run_info')).toBe('gauge');
    expect(types.get('dpf_run_driver_alive')).toBe('gauge');
    expect(types.get('dpf_partition_attempts_total')).toBe('counter');
    expect(types.get('dpf_partition_duration_seconds')).toBe('histogram');
    const sample = (name: string, labels: Record<string, string>): number => {
      const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value));
      expect(found, `${name} ${JSON.stringify(labels)}`).toHaveLength(1);
      return found[0]!.value;
    };

    const { runs } = await getJson<RunsResponse>(dashboard.url, '/api/runs');
    expect(runs.map((run) => run.runId).sort()).toEqual(['files', 'frames', 'written']);
    for (const run of runs as RunSummary[]) {
      for (const [status, count] of Object.entries(run.counts)) expect(sample('dpf_run_partitions', { run: run.runId, status })).toBe(count);
      expect(sample('dpf_run_info', { run: run.runId, status: run.status, mode: run.mode })).toBe(1);
      expect(sample('dpf_run_driver_alive', { run: run.runId })).toBe(0);
      const page = await getJson<PartitionsPage>(dashboard.url, `/api/runs/${run.runId}/partitions?limit=1000`);
      expect(page.rows).toHaveLength(run.numPartitions);
      expect(sample('dpf_partition_attempts_total', { run: run.runId })).toBe(page.rows.reduce((sum, row) => sum + row.attempts, 0));
      const durations = page.rows.filter((row) => row.durationMs !== undefined).map((row) => row.durationMs! / 1000);
      expect(sample('dpf_partition_duration_seconds_count', { run: run.runId })).toBe(durations.length);
      expect(sample('dpf_partition_duration_seconds_sum', { run: run.runId })).toBeCloseTo(durations.reduce((sum, d) => sum + d, 0), 6);
      expect(sample('dpf_partition_duration_seconds_bucket', { run: run.runId, le: '+Inf' })).toBe(durations.length);
      const buckets = samples.filter((s) => s.name === 'dpf_partition_duration_seconds_bucket' && s.labels.run === run.runId && s.labels.le !== '+Inf');
      expect(buckets.length).toBeGreaterThan(3);
      for (const bucket of buckets) expect(bucket.value, `le ${bucket.labels.le}`).toBe(durations.filter((d) => d <= Number(bucket.labels.le)).length);
    }
    expect(sample('dpf_partition_attempts_total', { run: 'frames' })).toBe(3 + 2 + 2);
    expect(sample('dpf_run_partitions', { run: 'written', status: 'FAILED' })).toBe(3);
  });

  it('escapes label values', async () => {
    const odd = join(dir, 'odd-stage');
    await writeFinishedRun(odd, ODD_ID, 3, new Set());
    const oddDashboard = await startDashboard({ stage: odd, port: 0 });
    try {
      const text = (await send(oddDashboard.url, '/metrics')).text;
      expect(text).toContain('dpf_run_info{run="odd\\"run\\\\with\\nnewline",status="SUCCESS",mode="dataframe"} 1');
      const { samples } = parsePrometheus(text);
      expect(samples.find((s) => s.name === 'dpf_run_partitions' && s.labels.status === 'DONE')).toEqual({ name: 'dpf_run_partitions', labels: { run: ODD_ID, status: 'DONE' }, value: 3 });
    } finally {
      await oddDashboard.close();
    }
  });
});
