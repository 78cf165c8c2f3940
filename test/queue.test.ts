import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DPF, DPFRun, RunStatus } from '../src/index.js';
import { inputFiles } from './support/counting-run.js';
import { startWorker } from './support/queue-workers.js';
import { type RedisTestServer, startRedisServer } from './support/redis-server.js';
import { tempDir, writeModule } from './helpers.js';

let redis: RedisTestServer;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis.stop();
});

/** A module that records which process ran each partition (`{dir}/ran.log`: `id pid`) and saves `{ attempt }`. */
async function recordingModule(dir: string): Promise<string> {
  const log = JSON.stringify(join(dir, 'ran.log'));
  return writeModule(dir, `fs.appendFileSync(${log}, context.partitionId + ' ' + process.pid + '\\n'); await context.uploadToStage({ attempt: context.attempt }, 'result.json');`, {
    prelude: `import fs from 'node:fs';`,
  });
}

async function ran(dir: string): Promise<Array<{ id: string; pid: number }>> {
  const text = await readFile(join(dir, 'ran.log'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => ({ id: line.split(' ')[0]!, pid: Number(line.split(' ')[1]) }));
}

describe('the queue executor', () => {
  it('runs a stage-mode run on two dpf worker processes, none of it in the submitting process', async () => {
    const dir = await tempDir();
    const module = await recordingModule(dir);
    const input = await inputFiles(dir, 20);
    const workers = await Promise.all([startWorker(redis.url), startWorker(redis.url)]);
    const dpf = new DPF(module, { stage: join(dir, 'stage'), queue: redis.url });
    const run = await dpf.runFromStage({ stageLocation: input, filePattern: '*.csv', runId: 'q', executionOptions: { useHeadNode: false } });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const executions = await ran(dir);
    expect(executions.map((execution) => execution.id).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `p${String(i).padStart(2, '0')}.csv`));
    for (const execution of executions) expect(workers.map((worker) => worker.pid)).toContain(execution.pid);
    const restored = await DPFRun.restoreFrom('q', join(dir, 'stage'));
    expect(restored.status).toBe(RunStatus.SUCCESS);
    expect(await restored.partitionDetails('p07.csv')!.artifacts.get('result.json')).toEqual({ attempt: 1 });
  });
});
