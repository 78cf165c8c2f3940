import { join } from 'node:path';
import { DPF, DPFRun, InvalidOptionError, PartitionStatus, RunStatus } from 'dpf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inputFiles } from './support/counting-run.js';
import { startWorker } from './support/queue-workers.js';
import { type RedisTestServer, startRedisServer } from './support/redis-server.js';
import { exists, tempDir, writeFiles, writeModule } from './helpers.js';

/** Saves what the function saw as `context.args`, and fails where `{dir}/fail-{id}` exists (a partition to rerun). */
async function argsModule(dir: string): Promise<string> {
  return writeModule(
    dir,
    `if (fs.existsSync(${JSON.stringify(dir)} + '/fail-' + context.partitionId)) throw new Error('told to fail');
     await context.uploadToStage({ args: context.args ?? null, frozen: Object.isFrozen(context.args) }, 'args.json');`,
    { prelude: `import fs from 'node:fs';` },
  );
}

async function argsOf(run: DPFRun, partitionId: string): Promise<unknown> {
  return ((await run.partitionDetails(partitionId)!.artifacts.get('args.json')) as { args: unknown }).args;
}

const ARGS = { depth: 3, features: ['price', 'volume'], nested: { rate: 0.5, on: true, none: null } };

describe('args', () => {
  it('reach every partition as context.args, frozen, in both modes and in child processes', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const dpf = new DPF(await argsModule(dir), { stage });
    const input = await inputFiles(dir, 3);
    const files = await dpf.runFromStage({ stageLocation: input, filePattern: '*.csv', runId: 'files', args: ARGS, executionOptions: { isolation: 'process' } });
    expect(await files.wait()).toBe(RunStatus.SUCCESS);
    expect(await files.partitionDetails('p01.csv')!.artifacts.get('args.json')).toEqual({ args: ARGS, frozen: true });

    const rows = await dpf.run({ partitionBy: 'k', source: 'SELECT range % 4 AS k FROM range(40)', runId: 'rows', args: [1, 'two'] });
    expect(await rows.wait()).toBe(RunStatus.SUCCESS);
    for (const id of ['0', '1', '2', '3']) expect(await argsOf(rows, id)).toEqual([1, 'two']);
    expect(rows.args).toEqual([1, 'two']);
    // A run without args gives undefined.
    const none = await dpf.run({ partitionBy: 'k', source: 'SELECT 1 AS k', runId: 'none' });
    expect(await none.wait()).toBe(RunStatus.SUCCESS);
    expect(await argsOf(none, '1')).toBeNull();
    expect(none.args).toBeUndefined();
  });

  it('refuses what JSON would not keep, naming where it is, before any work', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const dpf = new DPF(await argsModule(dir), { stage });
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    class Model {
      weights = [1];
    }
    const cases: Array<[unknown, string, RegExp]> = [
      [{ fit: () => 1 }, 'args.fit', /is a function/],
      [{ when: new Date(0) }, 'args.when', /is a Date.*toISOString/],
      [{ big: 10n }, 'args.big', /bigint 10n.*"10"/],
      [{ list: [1, Number.NaN] }, 'args.list[1]', /NaN/],
      [{ list: [1, undefined] }, 'args.list[1]', /undefined/],
      [cyclic, 'args.self', /cycle/],
      [{ model: new Model() }, 'args.model', /is a Model, not plain data/],
      [new Map([[1, 2]]), 'args', /is a Map/],
      [{ big: 'x'.repeat(1 << 20) }, 'args', /more than the 1048576/],
    ];
    for (const [args, option, message] of cases) {
      const refused = await dpf.run({ partitionBy: 'k', source: 'SELECT 1 AS k', runId: 'refused', args }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused, option).toBeInstanceOf(InvalidOptionError);
      expect((refused as InvalidOptionError).option).toBe(option);
      expect((refused as Error).message).toMatch(message);
    }
    // Nothing was started: the stage holds no run.
    expect(await exists(join(stage, 'refused'))).toBe(false);
    // undefined properties are left out, as JSON does.
    const run = await dpf.run({ partitionBy: 'k', source: 'SELECT 1 AS k', runId: 'dropped', args: { a: 1, b: undefined } });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    expect(await argsOf(run, '1')).toEqual({ a: 1 });
  });

  it('are kept by resumes and reruns, reported by a restored run, and other args are refused', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const dpf = new DPF(await argsModule(dir), { stage });
    await writeFiles(dir, { 'fail-2': '' });
    const options = { partitionBy: 'k', source: 'SELECT range % 3 AS k FROM range(9)', runId: 'kept', executionOptions: { maxRetries: 0 } } as const;
    const first = await dpf.run({ ...options, args: ARGS });
    expect(await first.wait()).toBe(RunStatus.PARTIAL_FAILURE);
    expect(first.partitionDetails('2')!.status).toBe(PartitionStatus.FAILED);

    // Other args would mix two parameter sets in one run.
    await expect(dpf.run({ ...options, args: { depth: 4 }, onExistingArtifacts: 'resume' })).rejects.toThrow(InvalidOptionError);
    await expect(dpf.run({ ...options, args: { depth: 4 }, onExistingArtifacts: 'resume' })).rejects.toThrow(/args: run "kept" was started with args \{"depth":3,.*not \{"depth":4\}/);

    const { rm } = await import('node:fs/promises');
    await rm(join(dir, 'fail-2'));
    // A rerun of the failed partition without args calls it with the run's.
    const rerun = await dpf.run({ ...options, partitionIds: ['2'], onExistingArtifacts: 'resume' });
    expect(await rerun.wait()).toBe(RunStatus.SUCCESS);
    expect(await argsOf(rerun, '2')).toEqual(ARGS);
    // The same args with their keys in another order are the same args.
    const again = await dpf.run({ ...options, args: { nested: { none: null, on: true, rate: 0.5 }, features: ['price', 'volume'], depth: 3 }, onExistingArtifacts: 'resume' });
    expect(await again.wait()).toBe(RunStatus.SUCCESS);

    const restored = await DPFRun.restoreFrom('kept', stage);
    expect(restored.args).toEqual(ARGS);
  });

  it('travel with a queue run to dpf worker processes', async () => {
    const dir = await tempDir();
    const input = await inputFiles(dir, 2);
    await startWorker(redis.url);
    const run = await new DPF(await argsModule(dir), { stage: join(dir, 'stage'), queue: redis.url }).runFromStage({
      stageLocation: input,
      filePattern: '*.csv',
      runId: 'queued',
      args: ARGS,
      executionOptions: { useHeadNode: false },
    });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    expect(await argsOf(run, 'p00.csv')).toEqual(ARGS);
  });
});

let redis: RedisTestServer;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis.stop();
});
