import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DPF, PartitionStatus, RunStatus } from '../src/index.js';
import type { PartitionRecord } from '../src/model/journal.js';
import { markStarted, startedAtLeast, until, untilFile } from './support/barriers.js';
import { inputFiles } from './support/counting-run.js';
import { journalFacts } from './support/journal-facts.js';
import { startWorker, type WorkerProcess } from './support/queue-workers.js';
import { type RedisTestServer, startRedisServer } from './support/redis-server.js';
import { listFiles, POSTGRES_URL, postgres, tempDir, uniqueName, waitFor, writeModule } from './helpers.js';

/**
 * The queue executor under real faults: a real redis-server, real `dpf worker` processes, real
 * signals. Partitions are ordered by marker files (test/support/barriers.ts), never by sleeps;
 * what survived is counted — executions, journal records, artifacts, PostgreSQL rows.
 */

let redis: RedisTestServer;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis.stop();
});

/** One execution of a partition function, as the function logged it (`{dir}/executions.log`). */
interface Execution {
  id: string;
  attempt: number;
  /** The process that ran it, and its parent: with `--isolation process` the worker is the parent. */
  pid: number;
  ppid: number;
}

/** Code that logs the execution (before anything else the function does). */
function logExecution(dir: string): string {
  return `(await import('node:fs')).appendFileSync(${JSON.stringify(join(dir, 'executions.log'))}, JSON.stringify({ id: context.partitionId, attempt: context.attempt, pid: process.pid, ppid: process.ppid }) + '\\n');`;
}

async function executions(dir: string): Promise<Execution[]> {
  const text = await readFile(join(dir, 'executions.log'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Execution);
}

/** The worker (of those given) that ran an execution: its process, or the parent of its child process. */
function ranOn(execution: Execution, workers: WorkerProcess[]): WorkerProcess | undefined {
  return workers.find((worker) => worker.pid === execution.pid || worker.pid === execution.ppid);
}

/** How many times each value occurs. */
function tally(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

/** `count` partition ids as inputFiles names them. */
function partitionIds(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `p${String(i).padStart(Math.max(2, String(count - 1).length), '0')}.csv`);
}

/** An artifact too large to be packed: it is a file of its own on the stage, so stray copies can be counted. */
const PAD = 70_000;

/**
 * Every partition is DONE once, with exactly the artifacts `names`; every file of the run on the
 * stage outside `_dpf/` is an artifact (or log) its journal records: no stray copy of another attempt.
 */
async function expectArtifactsAsRecorded(stage: string, runId: string, names: string[]): Promise<void> {
  const facts = await journalFacts(stage, runId);
  const recorded: string[] = [];
  for (const state of facts.state.partitions) {
    expect(state.status).toBe(PartitionStatus.DONE);
    expect((state.artifacts ?? []).map((ref) => ref.name).sort()).toEqual(names);
    for (const ref of [...(state.artifacts ?? []), ...state.logs]) if (ref.offset === undefined) recorded.push(ref.key);
  }
  const files = (await listFiles(join(stage, runId))).filter((file) => !file.startsWith('_dpf/')).map((file) => `${runId}/${file}`);
  expect(files.sort()).toEqual(recorded.sort());
  for (const count of facts.doneRecords.values()) expect(count).toBe(1);
  expect(facts.doneRecords.size).toBe(facts.state.partitions.length);
}

async function rowsPerPartition(table: string): Promise<Record<string, number>> {
  const rows = await postgres<{ p: string; n: number }>(`SELECT p, count(*)::int AS n FROM ${table} GROUP BY p ORDER BY p`);
  return Object.fromEntries(rows.map((row) => [row.p, row.n]));
}

describe('the queue executor under faults', () => {
  describe.each([['thread'], ['process']] as const)('a worker SIGKILLed mid-partition (%s isolation)', (isolation) => {
    it('runs its partition again on the other worker: the attempt counts, 0 rows or artifacts lost or duplicated', async () => {
      await postgres('SELECT 1');
      const table = uniqueName('dpf_queue_kill');
      const dir = await tempDir();
      const stage = join(dir, 'stage');
      const victimStarted = join(dir, 'victim-started');
      // The victim is the first partition the worker started with DPF_TEST_VICTIM runs: it holds
      // inside its session, rows appended and artifact uploaded, until the test has killed its
      // worker. Every other partition waits until the victim runs, so that worker surely gets one.
      const module = await writeModule(
        dir,
        `
        ${logExecution(dir)}
        let victim = false;
        if (process.env.DPF_TEST_VICTIM === '1') {
          try {
            fs.writeFileSync(${JSON.stringify(join(dir, 'victim-claimed'))}, '', { flag: 'wx' });
            victim = true;
          } catch {}
        }
        if (!victim) ${until(startedAtLeast(victimStarted, 1), 'the victim partition started')}
        await context.uploadToStage({ id: context.partitionId, attempt: context.attempt, pad: 'x'.repeat(${PAD}) }, 'result.json');
        await context.withSession(async (session) => {
          await session.append(${JSON.stringify(table)}, [0, 1, 2].map((r) => ({ p: context.partitionId, r, attempt: context.attempt })));
          if (victim) {
            ${markStarted(victimStarted)}
            ${untilFile(join(dir, 'release'))}
          }
        });`,
        { prelude: `import fs from 'node:fs';` },
      );
      const input = await inputFiles(dir, 12);
      const name = `kill-${isolation}`;
      try {
        // The survivor drives the run; the victim only runs partitions (its loss is a worker's, not the driver's).
        const survivor = await startWorker(redis.url, { name, concurrency: 2, ...(isolation === 'process' ? { isolation } : {}) });
        const doomed = await startWorker(redis.url, { name, concurrency: 1, drive: false, env: { DPF_TEST_VICTIM: '1' }, ...(isolation === 'process' ? { isolation } : {}) });
        const dpf = new DPF(module, { stage, queue: { url: redis.url, name }, sessionDatabase: POSTGRES_URL });
        // (`dpf worker --isolation process` overrides the run's isolation.)
        const run = await dpf.runFromStage({
          stageLocation: input,
          filePattern: '*.csv',
          runId: 'killed',
          executionOptions: { useHeadNode: false, isolation: 'thread', maxRetries: 1, retryBackoffMs: 0 },
        });
        await waitFor(() => startedAtLeastNow(victimStarted, 1), 30_000, 'the victim partition to start');
        const victimId = decodeURIComponent((await listFiles(victimStarted))[0]!);
        const first = (await executions(dir)).find((execution) => execution.id === victimId)!;
        expect(ranOn(first, [survivor, doomed])).toBe(doomed);

        doomed.kill('SIGKILL', true);
        expect((await doomed.exited).signal).toBe('SIGKILL');
        // Should anything of it have survived the kill, the attempt would now finish and count once.
        await writeFile(join(dir, 'release'), '');

        expect(await run.wait()).toBe(RunStatus.SUCCESS);
        const details = await run.getPartitionDetails();
        const ids = partitionIds(12);
        for (const id of ids) {
          expect(details[id]!.status).toBe(PartitionStatus.DONE);
          expect(details[id]!.attempts).toBe(id === victimId ? 2 : 1);
          expect(await details[id]!.artifacts.get('result.json')).toMatchObject({ id, attempt: id === victimId ? 2 : 1 });
        }
        // The killed attempt is in the journal, blamed on its worker's loss.
        const facts = await journalFacts(stage, 'killed');
        const index = ids.indexOf(victimId);
        const failed = facts.records.filter((record): record is PartitionRecord => record.t === 'partition' && record.i === index && record.a === 1 && record.error !== undefined);
        expect(failed).toHaveLength(1);
        expect(failed[0]!.error!.message).toMatch(/stopped answering|killed/);
        // It ran again on the other worker.
        const ran = await executions(dir);
        const ofVictim = ran.filter((execution) => execution.id === victimId);
        expect(ofVictim.map((execution) => [execution.attempt, ranOn(execution, [survivor, doomed])?.pid])).toEqual([
          [1, doomed.pid],
          [2, survivor.pid],
        ]);
        // 0 lost, 0 duplicated: every partition's rows once, from its DONE attempt; one artifact each.
        expect(await rowsPerPartition(table)).toEqual(Object.fromEntries(ids.map((id) => [id, 3])));
        expect(await postgres(`SELECT p FROM ${table} WHERE p = $1 AND attempt <> 2`, [victimId])).toEqual([]);
        await expectArtifactsAsRecorded(stage, 'killed', ['result.json']);
      } finally {
        await postgres(`DROP TABLE IF EXISTS ${table}`);
      }
    });
  });

  it('survives Redis restarted without its data mid-run: the run completes, every partition DONE once', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const started = join(dir, 'started');
    const restarted = join(dir, 'restarted');
    // The executions before the restart hold until the driver has noticed it; those after it hold
    // until four run at once, which takes both workers (two slots each): both came back.
    const module = await writeModule(
      dir,
      `
      ${logExecution(dir)}
      if (fs.existsSync(${JSON.stringify(restarted)})) {
        ${markStarted(join(dir, 'after'))}
        ${until(startedAtLeast(join(dir, 'after'), 4), 'four partitions run after the restart')}
      } else {
        ${markStarted(started)}
        ${untilFile(join(dir, 'release'))}
      }
      await context.uploadToStage({ id: context.partitionId, attempt: context.attempt }, 'result.json');`,
      { prelude: `import fs from 'node:fs';` },
    );
    const input = await inputFiles(dir, 8);
    const name = 'restart';
    const workers = [await startWorker(redis.url, { name, concurrency: 2 }), await startWorker(redis.url, { name, concurrency: 2 })];
    const dpf = new DPF(module, { stage, queue: { url: redis.url, name } });
    const run = await dpf.runFromStage({ stageLocation: input, filePattern: '*.csv', runId: 'restarted', executionOptions: { useHeadNode: false, maxRetries: 1, retryBackoffMs: 0 } });
    // Both workers hold two partitions each; the other four wait in Redis.
    await waitFor(() => startedAtLeastNow(started, 4), 30_000, 'four partitions to start');
    await redis.restart();
    await writeFile(restarted, '');
    await waitFor(async () => (await journalNotes(stage, 'restarted')).some((note) => /lost the run's jobs/.test(note)), 30_000, "the driver's note that the queue lost its jobs");
    await writeFile(join(dir, 'release'), '');

    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const ids = partitionIds(8);
    const details = await run.getPartitionDetails();
    for (const id of ids) {
      expect(details[id]!.status).toBe(PartitionStatus.DONE);
      expect(await details[id]!.artifacts.get('result.json')).toEqual({ id, attempt: details[id]!.attempts });
    }
    const facts = await journalFacts(stage, 'restarted');
    expect([...facts.doneRecords.entries()].sort(([a], [b]) => a - b)).toEqual(ids.map((_, index) => [index, 1]));
    expect(facts.records.filter((record) => record.t === 'note' && /the queue's Redis lost the run's jobs/.test(record.message))).toHaveLength(1);
    // The four held ones ran again (their attempts counted), the four Redis lost unstarted ran
    // once, all on the same two workers, which reconnected by themselves.
    const ran = await executions(dir);
    expect(ran).toHaveLength(12);
    const after = ran.slice(4);
    expect(tally(after.map((execution) => execution.id))).toEqual(Object.fromEntries(ids.map((id) => [id, 1])));
    expect(new Set(after.map((execution) => ranOn(execution, workers)?.pid))).toEqual(new Set(workers.map((worker) => worker.pid)));
    for (const execution of ran.slice(0, 4)) expect(details[execution.id]!.attempts).toBe(2);
  });

  it('drains a worker on SIGTERM: its running partitions finish, the rest of its batches run elsewhere, none lost or run twice', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const held = join(dir, 'held');
    // What the draining worker runs holds until released; the other worker's partitions wait until
    // the draining one holds two, so it surely has batches of its own.
    const module = await writeModule(
      dir,
      `
      ${logExecution(dir)}
      if (process.env.DPF_TEST_HOLD === '1') {
        ${markStarted(held)}
        ${untilFile(join(dir, 'release'))}
      } else ${until(startedAtLeast(held, 2), 'the draining worker holds two partitions')}
      await context.uploadToStage({ id: context.partitionId, attempt: context.attempt }, 'result.json');`,
    );
    // Enough partitions for the first batches to hold more than one each (see Schedule.takeBatch).
    const count = 300;
    const input = await inputFiles(dir, count);
    const name = 'drain';
    const other = await startWorker(redis.url, { name, concurrency: 2 });
    const draining = await startWorker(redis.url, { name, concurrency: 2, drive: false, env: { DPF_TEST_HOLD: '1' } });
    const dpf = new DPF(module, { stage, queue: { url: redis.url, name } });
    const run = await dpf.runFromStage({ stageLocation: input, filePattern: '*.csv', runId: 'drained', executionOptions: { useHeadNode: false, maxRetries: 0 } });
    await waitFor(() => startedAtLeastNow(held, 2), 30_000, 'the draining worker to hold two partitions');
    const running = (await listFiles(held)).map((file) => decodeURIComponent(file)).sort();

    draining.kill('SIGTERM');
    await draining.said('SIGTERM: draining');
    // Its batches' other partitions come back at once and run on the other worker, while its
    // running partitions still hold.
    await waitFor(async () => (await executions(dir)).length >= count, 30_000, 'every partition but the held ones to run elsewhere');
    expect(await startedAtLeastNow(held, 3)).toBe(false);
    await writeFile(join(dir, 'release'), '');
    expect(await draining.exited).toEqual({ code: 0, signal: null });

    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const ids = partitionIds(count);
    const ran = await executions(dir);
    // Each partition ran once: none lost, none run twice; the drained worker ran only what it held.
    expect(tally(ran.map((execution) => execution.id))).toEqual(Object.fromEntries(ids.map((id) => [id, 1])));
    expect(ran.filter((execution) => ranOn(execution, [draining]) !== undefined).map((execution) => execution.id).sort()).toEqual(running);
    expect(ran.filter((execution) => ranOn(execution, [other]) !== undefined)).toHaveLength(count - 2);
    const details = await run.getPartitionDetails();
    for (const id of ids) {
      expect(details[id]!.status).toBe(PartitionStatus.DONE);
      expect(details[id]!.attempts).toBe(1);
    }
    expect(await journalNotes(stage, 'drained')).toContainEqual(expect.stringMatching(/a worker handed back \d+ partition\(s\)/));
    const facts = await journalFacts(stage, 'drained');
    for (const count of facts.doneRecords.values()) expect(count).toBe(1);
  });

  it('a worker whose stage writes fail stops taking jobs; the run completes on the other worker', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    await mkdir(stage);
    const failing = join(dir, 'failing-started');
    // The failing worker's partition runs first; the other worker's wait for it, so it surely has one.
    const module = await writeModule(
      dir,
      `
      ${logExecution(dir)}
      if (process.env.DPF_TEST_FAILING === '1') ${markStarted(failing)}
      else ${until(startedAtLeast(failing, 1), 'the failing worker ran a partition')}
      await context.uploadToStage({ id: context.partitionId, attempt: context.attempt, pad: 'x'.repeat(${PAD}) }, 'result.json');`,
    );
    const input = await inputFiles(dir, 12);
    const name = 'stage-fails';
    const healthy = await startWorker(redis.url, { name, concurrency: 2 });
    // It sees the stage read-only (a machine that mounted the shared folder read-only): it reads
    // the run from it, but every write fails.
    const failingWorker = await startWorker(redis.url, { name, concurrency: 1, drive: false, readOnly: stage, env: { DPF_TEST_FAILING: '1' } });
    const dpf = new DPF(module, { stage, queue: { url: redis.url, name } });
    const run = await dpf.runFromStage({ stageLocation: input, filePattern: '*.csv', runId: 'unwritable', executionOptions: { useHeadNode: false, maxRetries: 0 } });
    await failingWorker.said('this worker takes no more jobs');
    expect(failingWorker.stderr).toMatch(/cannot write to the stage: .*EROFS/);

    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const ids = partitionIds(12);
    const ran = await executions(dir);
    // The failing worker ran one partition, which ran again on the healthy worker; it took no other.
    const onFailing = ran.filter((execution) => ranOn(execution, [failingWorker]) !== undefined);
    expect(onFailing).toHaveLength(1);
    expect(ran.filter((execution) => ranOn(execution, [healthy]) !== undefined).map((execution) => execution.id).sort()).toEqual(ids);
    const details = await run.getPartitionDetails();
    for (const id of ids) expect(details[id]!.status).toBe(PartitionStatus.DONE);
    await expectArtifactsAsRecorded(stage, 'unwritable', ['result.json']);
    // The run's journal says why the partition ran again.
    expect(await journalNotes(stage, 'unwritable')).toContainEqual(expect.stringMatching(/a worker handed back 1 partition\(s\): this worker cannot write to the stage and takes no more jobs \(.*EROFS/));
    // It lives on, idle, until it is restarted.
    expect(() => process.kill(failingWorker.pid, 0)).not.toThrow();
  });

  it("survives its driver's worker SIGKILLed mid-run: another worker drives the run to its end, 0 rows or artifacts lost or duplicated", async () => {
    await postgres('SELECT 1');
    const table = uniqueName('dpf_queue_driver');
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const started = join(dir, 'started');
    // Every execution holds, rows appended and artifact uploaded, until the driver's worker is dead
    // and another driver has taken the run over.
    const module = await writeModule(
      dir,
      `
      ${logExecution(dir)}
      ${markStarted(started)}
      await context.uploadToStage({ id: context.partitionId, attempt: context.attempt, pad: 'x'.repeat(${PAD}) }, 'result.json');
      await context.withSession(async (session) => {
        await session.append(${JSON.stringify(table)}, [0, 1, 2].map((r) => ({ p: context.partitionId, r, attempt: context.attempt })));
        ${untilFile(join(dir, 'release'))}
      });`,
    );
    const input = await inputFiles(dir, 12);
    const name = 'driver-killed';
    try {
      const workers = [await startWorker(redis.url, { name, concurrency: 2 }), await startWorker(redis.url, { name, concurrency: 2 })];
      const dpf = new DPF(module, { stage, queue: { url: redis.url, name }, sessionDatabase: POSTGRES_URL });
      const run = await dpf.runFromStage({ stageLocation: input, filePattern: '*.csv', runId: 'orphaned', executionOptions: { useHeadNode: false, maxRetries: 1, retryBackoffMs: 0 } });
      // Both workers hold two partitions each; the driver is one of them.
      await waitFor(() => startedAtLeastNow(started, 4), 30_000, 'four partitions to start');
      const [first] = await drivers(stage, 'orphaned');
      const driver = workers.find((worker) => worker.pid === first!.pid)!;
      expect(driver).toBeDefined();
      const survivor = workers.find((worker) => worker !== driver)!;

      driver.kill('SIGKILL', true);
      expect((await driver.exited).signal).toBe('SIGKILL');
      // BullMQ gives the stalled drive job to the survivor, which takes the lease over at once (the
      // dead driver's pid is on this host); only then do the held partitions go on.
      await waitFor(async () => (await drivers(stage, 'orphaned')).length >= 2, 30_000, 'another driver to take the run over');
      const [, second] = await drivers(stage, 'orphaned');
      expect(second!.pid).toBe(survivor.pid);
      expect(second!.epoch).toBeGreaterThan(first!.epoch);
      await writeFile(join(dir, 'release'), '');

      expect(await run.wait()).toBe(RunStatus.SUCCESS);
      const ids = partitionIds(12);
      const details = await run.getPartitionDetails();
      expect(await rowsPerPartition(table)).toEqual(Object.fromEntries(ids.map((id) => [id, 3])));
      // Each partition's rows and artifact are one attempt's: the one its DONE record names.
      for (const id of ids) {
        const { attempt } = await details[id]!.artifacts.get<{ attempt: number }>('result.json');
        expect(await postgres(`SELECT DISTINCT attempt FROM ${table} WHERE p = $1`, [id])).toEqual([{ attempt }]);
      }
      await expectArtifactsAsRecorded(stage, 'orphaned', ['result.json']);
      // The replaced driver wrote nothing after the new one took over.
      expect((await journalFacts(stage, 'orphaned')).lateSegments).toEqual([]);
      expect(await drivers(stage, 'orphaned')).toHaveLength(2);
    } finally {
      await postgres(`DROP TABLE IF EXISTS ${table}`);
    }
  });
});

/** The drivers that took a queue run (start records other than the submission's), in order. */
async function drivers(stage: string, runId: string): Promise<Array<{ pid: number; epoch: number }>> {
  const facts = await journalFacts(stage, runId).catch(() => undefined);
  return (facts?.records ?? []).flatMap((record) => (record.t === 'start' && record.purpose === undefined ? [{ pid: record.pid, epoch: record.epoch }] : []));
}

/** The notes in a run's journal. */
async function journalNotes(stage: string, runId: string): Promise<string[]> {
  const facts = await journalFacts(stage, runId).catch(() => undefined);
  return (facts?.records ?? []).flatMap((record) => (record.t === 'note' ? [record.message] : []));
}

/** Whether `count` partitions have created their markers in `folder` (the test's side of startedAtLeast). */
async function startedAtLeastNow(folder: string, count: number): Promise<boolean> {
  return (await listFiles(folder)).length >= count;
}
