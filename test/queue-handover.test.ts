import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DPF, DPFRun, PartitionStatus, RunStatus } from '../src/index.js';
import type { LeaseContent } from '../src/model/lease.js';
import { readLease } from '../src/run/lease.js';
import { openStage } from '../src/stage/open-stage.js';
import { RunLayout } from '../src/stage/run-layout.js';
import { markStarted } from './support/barriers.js';
import { inputFiles } from './support/counting-run.js';
import { startWorker } from './support/queue-workers.js';
import { type RedisTestServer, startRedisServer } from './support/redis-server.js';
import { tempDir, waitFor, writeModule } from './helpers.js';

let redis: RedisTestServer;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis.stop();
});

async function leaseOf(stage: string, runId: string): Promise<LeaseContent | undefined> {
  return (await readLease((await openStage(stage, { create: false }))!, new RunLayout(runId)))?.content;
}

describe('a dpf worker that drives a run and gets SIGTERM', () => {
  it('hands the run to another worker at once, and the run ends SUCCESS with every partition DONE once', async () => {
    const dir = await tempDir();
    const started = join(dir, 'started');
    const aborted = join(dir, 'aborted');
    // Held until released — or until its signal fires, which it notes.
    const module = await writeModule(
      dir,
      `${markStarted(started)}
      await new Promise((resolve, reject) => {
        const poll = setInterval(() => { if (fs.existsSync(${JSON.stringify(join(dir, 'release'))})) { clearInterval(poll); resolve(); } }, 5);
        context.signal.addEventListener('abort', () => {
          clearInterval(poll);
          fs.mkdirSync(${JSON.stringify(aborted)}, { recursive: true });
          fs.writeFileSync(${JSON.stringify(aborted)} + '/' + context.partitionId + '.' + context.attempt, '');
          reject(context.signal.reason);
        }, { once: true });
      });
      await context.uploadToStage({ attempt: context.attempt }, 'result.json');`,
      { prelude: `import fs from 'node:fs';` },
    );
    const input = await inputFiles(dir, 4);
    // Only the first worker drives runs (and runs one partition at a time); the second runs partitions only.
    const driver = await startWorker(redis.url, { concurrency: 1 });
    await startWorker(redis.url, { concurrency: 4, drive: false });
    const stage = join(dir, 'stage');
    const run = await new DPF(module, { stage, queue: redis.url }).runFromStage({ stageLocation: input, filePattern: '*.csv', runId: 'handed', executionOptions: { useHeadNode: false } });
    await waitFor(async () => (await readdir(started).catch(() => [])).length >= 2, 20_000, 'partitions running');
    const before = (await leaseOf(stage, 'handed'))!;
    expect(before.pid).toBe(driver.pid);

    const next = await startWorker(redis.url, { concurrency: 1 });
    driver.kill('SIGTERM');
    await driver.said('handed run "handed" back to the queue');
    // The other driving worker takes the run on at once (a released lease, not a stale one), while partitions are still held.
    await waitFor(async () => {
      const lease = await leaseOf(stage, 'handed');
      return lease !== undefined && lease.epoch > before.epoch && lease.state !== 'released';
    }, 20_000, 'the second worker takes the run over');
    expect((await leaseOf(stage, 'handed'))!.pid).toBe(next.pid);
    expect((await DPFRun.restoreFrom('handed', stage)).abandoned).toBe(false);
    // The new driver runs what was in flight again, and stops the attempts the old one left running.
    await waitFor(async () => (await readdir(aborted).catch(() => [])).length >= 2, 20_000, 'the superseded attempts are stopped');

    await writeFile(join(dir, 'release'), '');
    expect((await driver.exited).code).toBe(0);
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const restored = await DPFRun.restoreFrom('handed', stage);
    const details = Object.values(await restored.getPartitionDetails());
    expect(details).toHaveLength(4);
    for (const partition of details) {
      expect(partition.status).toBe(PartitionStatus.DONE);
      expect(await partition.artifacts.list()).toEqual(['result.json']);
    }
  });
});
