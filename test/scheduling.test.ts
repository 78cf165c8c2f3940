import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DPF, type ExecutionOptions, RunStatus } from 'dpf';
import { describe, expect, it } from 'vitest';
import { localWorkerCount, resolveExecutionOptions } from '../src/execution-options.js';
import { tempDir, writeFiles, writeModule } from './helpers.js';
import { until } from './support/barriers.js';

/**
 * Runs a module that records every partition it runs (id, GPUs, process) and returns the records.
 * `work(dir)` is code run in the function first.
 */
async function record(files: Record<string, string>, executionOptions: ExecutionOptions, work: (dir: string) => string = () => '') {
  const dir = await tempDir();
  await writeFiles(join(dir, 'input'), files);
  const log = join(dir, 'calls.ndjson');
  const imports = join(dir, 'imports.log');
  const module = await writeModule(
    dir,
    `
    ${work(dir)}
    fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify({ id: context.partitionId, gpus: process.env.CUDA_VISIBLE_DEVICES ?? null, pid: process.pid }) + '\\n');
  `,
    { prelude: `import fs from 'node:fs';\nfs.appendFileSync(${JSON.stringify(imports)}, 'imported\\n');` },
  );
  const run = await new DPF(module, { stage: join(dir, 'stage') }).runFromStage({ stageLocation: join(dir, 'input'), runId: 's', filePattern: '*', executionOptions });
  expect(await run.wait()).toBe(RunStatus.SUCCESS);
  const calls = (await readFile(log, 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { id: string; gpus: string | null; pid: number });
  const importCount = (await readFile(imports, 'utf8')).trim().split('\n').length;
  const peaks = (await readFile(join(dir, 'peaks.log'), 'utf8').catch(() => '')).trim().split('\n').filter((line) => line !== '').map(Number);
  return { calls, importCount, peak: Math.max(0, ...peaks) };
}

/**
 * Code for `record`: each partition marks itself running (a file in running/, removed when it
 * ends) and notes in peaks.log how many are running whenever it looks. The first `n` to start
 * wait until `n` run at once: the one that sees them all opens the barrier (met), so none misses
 * it. They can meet only if the pool runs `n` partitions at once — else they fail at the
 * barrier's bound and the run is not SUCCESS — and peaks.log shows whether more ever ran.
 */
function meetAtOnce(n: number): (dir: string) => string {
  return (dir) => `
    const running = ${JSON.stringify(join(dir, 'running'))};
    const met = ${JSON.stringify(join(dir, 'met'))};
    fs.mkdirSync(running, { recursive: true });
    const me = running + '/' + encodeURIComponent(context.partitionId);
    fs.writeFileSync(me, '');
    const look = () => {
      const now = fs.readdirSync(running).length;
      fs.appendFileSync(${JSON.stringify(join(dir, 'peaks.log'))}, now + '\\n');
      return now;
    };
    look();
    fs.appendFileSync(${JSON.stringify(join(dir, 'started.log'))}, context.partitionId + '\\n');
    const order = fs.readFileSync(${JSON.stringify(join(dir, 'started.log'))}, 'utf8').trim().split('\\n').length;
    if (order <= ${n}) ${until(`look() >= ${n} ? (fs.writeFileSync(met, ''), true) : fs.existsSync(met)`, `${n} partitions running at once`)}
    fs.rmSync(me);
  `;
}

const manyFiles = (count: number): Record<string, string> => Object.fromEntries(Array.from({ length: count }, (_, i) => [`f${String(i).padStart(2, '0')}.csv`, 'x\n1\n']));

describe('scheduling', () => {
  it('runs the largest partitions first', async () => {
    const files = { 'small.csv': 'x\n'.repeat(10), 'huge.csv': 'x\n'.repeat(5000), 'medium.csv': 'x\n'.repeat(500), 'large.csv': 'x\n'.repeat(2000) };
    const { calls } = await record(files, { availableCpus: 1 });
    expect(calls.map((call) => call.id)).toEqual(['huge.csv', 'large.csv', 'medium.csv', 'small.csv']);
  });

  it('imports the function module once per worker, not once per partition', async () => {
    const { calls, importCount } = await record(manyFiles(30), { availableCpus: 2 });
    expect(calls).toHaveLength(30);
    // One import in the driver (to check the export) and one in each of the two workers.
    expect(importCount).toBeLessThanOrEqual(3);
  });

  it('runs availableCpus / numCpusPerWorker partitions at once', async () => {
    expect(localWorkerCount(resolveExecutionOptions({ availableCpus: 4, numCpusPerWorker: 2 }))).toBe(2);
    expect(localWorkerCount(resolveExecutionOptions({ availableCpus: 2, numCpusPerWorker: 0.5 }))).toBe(4);
    expect(localWorkerCount(resolveExecutionOptions({ availableCpus: 3, numCpusPerWorker: 2 }))).toBe(1);
    // The pool runs that many at once: the first ones meet at a barrier, and never more are running.
    const twoAtOnce = await record(manyFiles(8), { availableCpus: 4, numCpusPerWorker: 2, maxRetries: 0 }, meetAtOnce(2));
    expect(twoAtOnce.calls).toHaveLength(8);
    expect(twoAtOnce.peak).toBe(2);
    const fourAtOnce = await record(manyFiles(8), { availableCpus: 2, numCpusPerWorker: 0.5, maxRetries: 0 }, meetAtOnce(4));
    expect(fourAtOnce.calls).toHaveLength(8);
    expect(fourAtOnce.peak).toBe(4);
  });

  it('gives each worker its own CUDA_VISIBLE_DEVICES slice (a configured GPU count stands in for real GPUs)', async () => {
    // Both workers take partitions: the first two meet at a barrier.
    const { calls, peak } = await record(manyFiles(12), { availableCpus: 8, availableGpus: 4, numGpusPerWorker: 2, maxRetries: 0 }, meetAtOnce(2));
    expect(peak).toBe(2);
    const slices = new Set(calls.map((call) => call.gpus));
    expect([...slices].sort()).toEqual(['0,1', '2,3']);
    // GPU workers are processes: each slice belongs to one process at a time.
    const byPid = new Map<number, Set<string | null>>();
    for (const call of calls) byPid.set(call.pid, (byPid.get(call.pid) ?? new Set()).add(call.gpus));
    for (const gpus of byPid.values()) expect(gpus.size).toBe(1);
    expect(new Set(calls.map((call) => call.pid)).has(process.pid)).toBe(false);
  });

  it('takes GPU ids as a list and runs as many workers as there are slices', async () => {
    const { calls, peak } = await record(manyFiles(6), { availableCpus: 8, availableGpus: ['7', '8', '9'], numGpusPerWorker: 1, maxRetries: 0 }, meetAtOnce(3));
    expect(new Set(calls.map((call) => call.gpus))).toEqual(new Set(['7', '8', '9']));
    expect(peak).toBe(3);
  });
});
