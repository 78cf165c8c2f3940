import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DPF, type ExecutionOptions, RunStatus } from 'dpf';
import { describe, expect, it } from 'vitest';
import { tempDir, writeFiles, writeModule } from './helpers.js';

/** Runs a module that records (start, end, env) of every partition; returns the records. */
async function record(files: Record<string, string>, executionOptions: ExecutionOptions, work = 'await new Promise((r) => setTimeout(r, 150));') {
  const dir = await tempDir();
  await writeFiles(join(dir, 'input'), files);
  const log = join(dir, 'calls.ndjson');
  const imports = join(dir, 'imports.log');
  const module = await writeModule(
    dir,
    `
    const start = Date.now();
    ${work}
    fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify({ id: context.partitionId, start, end: Date.now(), gpus: process.env.CUDA_VISIBLE_DEVICES ?? null, pid: process.pid }) + '\\n');
  `,
    { prelude: `import fs from 'node:fs';\nfs.appendFileSync(${JSON.stringify(imports)}, 'imported\\n');` },
  );
  const run = await new DPF(module, { stage: join(dir, 'stage') }).runFromStage({ stageLocation: join(dir, 'input'), runId: 's', filePattern: '*', executionOptions });
  expect(await run.wait()).toBe(RunStatus.SUCCESS);
  const calls = (await readFile(log, 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { id: string; start: number; end: number; gpus: string | null; pid: number });
  const importCount = (await readFile(imports, 'utf8')).trim().split('\n').length;
  return { calls, importCount };
}

function maxConcurrency(calls: Array<{ start: number; end: number }>): number {
  const edges = calls.flatMap((call) => [[call.start, 1] as const, [call.end, -1] as const]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let max = 0;
  for (const [, delta] of edges) max = Math.max(max, (now += delta));
  return max;
}

const manyFiles = (count: number): Record<string, string> => Object.fromEntries(Array.from({ length: count }, (_, i) => [`f${String(i).padStart(2, '0')}.csv`, 'x\n1\n']));

describe('scheduling', () => {
  it('runs the largest partitions first', async () => {
    const files = { 'small.csv': 'x\n'.repeat(10), 'huge.csv': 'x\n'.repeat(5000), 'medium.csv': 'x\n'.repeat(500), 'large.csv': 'x\n'.repeat(2000) };
    const { calls } = await record(files, { availableCpus: 1 }, '');
    expect(calls.map((call) => call.id)).toEqual(['huge.csv', 'large.csv', 'medium.csv', 'small.csv']);
  });

  it('imports the function module once per worker, not once per partition', async () => {
    const { calls, importCount } = await record(manyFiles(30), { availableCpus: 2 }, '');
    expect(calls).toHaveLength(30);
    // One import in the driver (to check the export) and one in each of the two workers.
    expect(importCount).toBeLessThanOrEqual(3);
  });

  it('runs availableCpus / numCpusPerWorker partitions at once', async () => {
    const twoAtOnce = await record(manyFiles(8), { availableCpus: 4, numCpusPerWorker: 2 });
    expect(maxConcurrency(twoAtOnce.calls)).toBe(2);
    const fourAtOnce = await record(manyFiles(8), { availableCpus: 2, numCpusPerWorker: 0.5 });
    expect(maxConcurrency(fourAtOnce.calls)).toBe(4);
  });

  it('gives each worker its own CUDA_VISIBLE_DEVICES slice (a configured GPU count stands in for real GPUs)', async () => {
    const { calls } = await record(manyFiles(12), { availableCpus: 8, availableGpus: 4, numGpusPerWorker: 2 });
    const slices = new Set(calls.map((call) => call.gpus));
    expect([...slices].sort()).toEqual(['0,1', '2,3']);
    // GPU workers are processes: each slice belongs to one process at a time.
    const byPid = new Map<number, Set<string | null>>();
    for (const call of calls) byPid.set(call.pid, (byPid.get(call.pid) ?? new Set()).add(call.gpus));
    for (const gpus of byPid.values()) expect(gpus.size).toBe(1);
    expect(new Set(calls.map((call) => call.pid)).has(process.pid)).toBe(false);
  });

  it('takes GPU ids as a list and runs as many workers as there are slices', async () => {
    const { calls } = await record(manyFiles(6), { availableCpus: 8, availableGpus: ['7', '8', '9'], numGpusPerWorker: 1 });
    expect(new Set(calls.map((call) => call.gpus))).toEqual(new Set(['7', '8', '9']));
    expect(maxConcurrency(calls)).toBe(3);
  });
});
