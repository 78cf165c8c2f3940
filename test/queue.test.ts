import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DPF, DPFRun, InvalidOptionError, PartitionStatus, QueueError, RunStatus } from '../src/index.js';
import { markStarted, startedAtLeast, until, UNTIL_ABORTED, untilFile } from './support/barriers.js';
import { countingModule, executions, inputFiles, release } from './support/counting-run.js';
import { startWorker } from './support/queue-workers.js';
import { freePort, type RedisTestServer, startRedisServer } from './support/redis-server.js';
import { dpfCommand, dpfCommandWith, duckdb, exists, POSTGRES_URL, postgres, ROOT, runNodeScript, tempDir, uniqueName, waitFor, writeFiles, writeModule } from './helpers.js';

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

/** Code that writes `{folder}/{partition id}` (holding this process's pid) when the partition's signal fires, then waits for it (UNTIL_ABORTED). */
function untilAbortedMarked(folder: string): string {
  return `{
    const fs = await import('node:fs');
    const mark = () => {
      fs.mkdirSync(${JSON.stringify(folder)}, { recursive: true });
      fs.writeFileSync(${JSON.stringify(folder)} + '/' + encodeURIComponent(context.partitionId), String(process.pid));
    };
    if (context.signal.aborted) mark();
    else context.signal.addEventListener('abort', mark, { once: true });
  }
  ${UNTIL_ABORTED}`;
}

/** The partition ids that created markers in `folder`, sorted. */
async function markers(folder: string): Promise<string[]> {
  return (await readdir(folder).catch(() => [] as string[])).map((name) => decodeURIComponent(name)).sort();
}

/** The stage-mode ids of inputFiles(dir, count). */
function fileIds(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `p${String(i).padStart(2, '0')}.csv`);
}

/** Resolves with 'still running' if `exited` has not resolved within `ms` (a bound for a process that should exit by itself). */
function exitedWithin(exited: Promise<unknown>, ms: number): Promise<'still running'> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('still running'), ms);
    void exited.then(() => clearTimeout(timer));
  });
}

/** 8 partitions (k0…k7) of 25 rows each. */
const SOURCE = "SELECT 'k' || (i % 8) AS k, i AS v FROM range(200) t(i)";

describe('detached queue runs', () => {
  it('the submitting process exits once run() resolves; the workers carry the run to SUCCESS, which restoreFrom follows', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    // Every partition waits until the submitter has exited: the run cannot end before.
    const module = await writeModule(dir, `${untilFile(join(dir, 'submitter-exited'))}\nawait context.uploadToStage({ pid: process.pid }, 'result.json');`);
    const input = await inputFiles(dir, 4);
    const workers = await Promise.all([startWorker(redis.url), startWorker(redis.url)]);
    const submitter = runNodeScript(`
      import { DPF } from 'dpf';
      const run = await new DPF(${JSON.stringify(module)}, { stage: ${JSON.stringify(stage)}, queue: ${JSON.stringify(redis.url)} })
        .runFromStage({ stageLocation: ${JSON.stringify(input)}, filePattern: '*.csv', runId: 'detached', executionOptions: { useHeadNode: false } });
      console.log('SUBMITTED ' + run.status);
    `);
    const { code, stdout, stderr } = await submitter.done;
    expect(code, stderr).toBe(0);
    expect(stdout).toContain('SUBMITTED IN_PROGRESS');
    const run = await DPFRun.restoreFrom('detached', stage);
    expect(run.status).toBe(RunStatus.IN_PROGRESS);
    await writeFile(join(dir, 'submitter-exited'), '');
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const restored = await DPFRun.restoreFrom('detached', stage);
    expect(restored.status).toBe(RunStatus.SUCCESS);
    for (const details of Object.values(await restored.getPartitionDetails())) {
      expect(details.status).toBe(PartitionStatus.DONE);
      expect(workers.map((worker) => worker.pid)).toContain(((await details.artifacts.get('result.json')) as { pid: number }).pid);
    }
  });
});

describe('stopping queue runs', () => {
  it('two runs on one queue: the cancelled one sees its signals and ends CANCELLED, the other ends SUCCESS with every partition run once', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const cancelled = await writeModule(dir, `${markStarted(join(dir, 'a-started'))}\n${untilAbortedMarked(join(dir, 'a-aborted'))}`, { name: 'a.mjs' });
    const other = await writeModule(
      dir,
      `fs.appendFileSync(${JSON.stringify(join(dir, 'b.log'))}, context.partitionId + '\\n');
      ${markStarted(join(dir, 'b-started'))}
      ${untilFile(join(dir, 'release-b'))}
      await context.uploadToStage({ attempt: context.attempt }, 'result.json');`,
      { name: 'b.mjs', prelude: `import fs from 'node:fs';` },
    );
    const input = await inputFiles(dir, 2);
    // Four job slots: both runs' two partitions run at once.
    await Promise.all([startWorker(redis.url, { concurrency: 2 }), startWorker(redis.url, { concurrency: 2 })]);
    const options = { stageLocation: input, filePattern: '*.csv', executionOptions: { useHeadNode: false } };
    const a = await new DPF(cancelled, { stage, queue: redis.url }).runFromStage({ ...options, runId: 'a' });
    const b = await new DPF(other, { stage, queue: redis.url }).runFromStage({ ...options, runId: 'b' });
    await waitFor(async () => (await markers(join(dir, 'a-started'))).length === 2 && (await markers(join(dir, 'b-started'))).length === 2, 30_000, 'both runs running');

    await a.cancel();
    expect(a.status).toBe(RunStatus.CANCELLED);
    expect(await markers(join(dir, 'a-aborted'))).toEqual(fileIds(2));
    for (const details of Object.values(await a.getPartitionDetails())) expect(details.status).toBe(PartitionStatus.CANCELLED);

    // The other run goes on: its partitions are still running, none was stopped.
    expect((await b.getProgress()).RUNNING.map((details) => details.partitionId).sort()).toEqual(fileIds(2));
    await writeFile(join(dir, 'release-b'), '');
    expect(await b.wait()).toBe(RunStatus.SUCCESS);
    expect((await readFile(join(dir, 'b.log'), 'utf8')).trim().split('\n').sort()).toEqual(fileIds(2));
    for (const details of Object.values(await b.getPartitionDetails())) {
      expect(details.attempts).toBe(1);
      expect(await details.artifacts.get('result.json')).toEqual({ attempt: 1 });
    }
  });

  it('failFast reaches every worker: the partitions held on other workers see their signals and end CANCELLED, the run FAILURE', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const held = join(dir, 'held');
    const module = await writeModule(
      dir,
      `if (context.partitionId === 'p00.csv') {
        fs.writeFileSync(${JSON.stringify(join(dir, 'failed-in'))}, String(process.pid));
        ${until(startedAtLeast(held, 2), 'the other two partitions started')}
        throw new Error('p00 fails');
      }
      ${markStarted(held)}
      ${untilAbortedMarked(join(dir, 'aborted'))}`,
      { prelude: `import fs from 'node:fs';` },
    );
    const input = await inputFiles(dir, 3);
    // One partition per worker: the held ones are on other workers than the one that fails.
    const workers = await Promise.all([startWorker(redis.url), startWorker(redis.url), startWorker(redis.url)]);
    const run = await new DPF(module, { stage, queue: redis.url }).runFromStage({
      stageLocation: input,
      filePattern: '*.csv',
      runId: 'fail-fast',
      executionOptions: { useHeadNode: false, failFast: true, maxRetries: 0 },
    });
    expect(await run.wait()).toBe(RunStatus.FAILURE);
    const details = await run.getPartitionDetails();
    expect(details['p00.csv']!.status).toBe(PartitionStatus.FAILED);
    expect(details['p00.csv']!.error?.message).toContain('p00 fails');
    expect(details['p01.csv']!.status).toBe(PartitionStatus.CANCELLED);
    expect(details['p02.csv']!.status).toBe(PartitionStatus.CANCELLED);
    expect(await markers(join(dir, 'aborted'))).toEqual(['p01.csv', 'p02.csv']);
    const pids = [await readFile(join(dir, 'failed-in'), 'utf8'), ...(await Promise.all(['p01.csv', 'p02.csv'].map((id) => readFile(join(dir, 'aborted', id), 'utf8'))))].map(Number);
    expect(new Set(pids).size).toBe(3);
    for (const pid of pids) expect(workers.map((worker) => worker.pid)).toContain(pid);
  });
});

describe('a module that cannot run in a worker', () => {
  it('kills every worker thread while it loads: the run fails saying so (it does not crash-loop forever)', async () => {
    const dir = await tempDir();
    // Loads in the submitting process (which checks the export), dies in every worker thread.
    const module = await writeModule(dir, 'return 1;', { prelude: `import { isMainThread } from 'node:worker_threads';\nif (!isMainThread) process.exit(7);` });
    await startWorker(redis.url);
    const run = await new DPF(module, { stage: join(dir, 'stage'), queue: redis.url }).runFromStage({
      stageLocation: await inputFiles(dir, 2),
      filePattern: '*.csv',
      runId: 'dies-loading',
      executionOptions: { useHeadNode: false },
    });
    expect(await run.wait()).toBe(RunStatus.FAILURE);
    for (const details of Object.values(await run.getPartitionDetails())) {
      expect(details.status).toBe(PartitionStatus.INTERNAL_ERROR);
      expect(details.error?.message).toContain('workers die while loading the partition module here');
      expect(details.error?.message).toContain('exited with code 7');
    }
  });
});

describe('a worker with a different copy of the module', () => {
  /** A second "project" (a package.json) holding other code at the module's path relative to this project; running it writes `{dir}/wrong-code`. */
  async function otherCopy(dir: string, module: string): Promise<{ project: string; path: string }> {
    const project = await tempDir('other-project-');
    const path = relative(ROOT, module);
    await writeFiles(project, {
      'package.json': JSON.stringify({ name: 'other-copy', type: 'module' }),
      [path]: `import fs from 'node:fs';\nexport default async function () { fs.writeFileSync(${JSON.stringify(join(dir, 'wrong-code'))}, ''); }\n`,
    });
    return { project, path };
  }

  it('only that worker: the run fails with ModuleMismatchError saying which file differs, and none of the other code ran', async () => {
    const dir = await tempDir();
    const module = await countingModule(dir);
    const { project, path } = await otherCopy(dir, module);
    await startWorker(redis.url, { project });
    const run = await new DPF(module, { stage: join(dir, 'stage'), queue: redis.url }).runFromStage({
      stageLocation: await inputFiles(dir, 3),
      filePattern: '*.csv',
      runId: 'mismatch',
      executionOptions: { useHeadNode: false },
    });
    expect(await run.wait()).toBe(RunStatus.FAILURE);
    for (const details of Object.values(await run.getPartitionDetails())) {
      // Not FAILED: the function never ran; the run could not run anywhere (as a module no worker loads).
      expect(details.status).toBe(PartitionStatus.INTERNAL_ERROR);
      expect(details.error?.name).toBe('ModuleMismatchError');
      expect(details.error?.message).toContain(`copy of ${path}`);
      expect(details.error?.message).toMatch(/differs from the run's/);
    }
    expect(await executions(dir)).toEqual([]);
    expect(await exists(join(dir, 'wrong-code'))).toBe(false);
  });

  it('next to a good worker: the run completes on the good one, and its warnings say a worker refused', async () => {
    const dir = await tempDir();
    // The good worker finishes its first partition and holds the next until the bad one has refused a batch.
    const module = await countingModule(dir, { hold: 1 });
    const { project, path } = await otherCopy(dir, module);
    const [bad] = await Promise.all([startWorker(redis.url, { project }), startWorker(redis.url)]);
    const run = await new DPF(module, { stage: join(dir, 'stage'), queue: redis.url }).runFromStage({
      stageLocation: await inputFiles(dir, 6),
      filePattern: '*.csv',
      runId: 'one-refuses',
      executionOptions: { useHeadNode: false },
    });
    await bad!.said('refused a batch');
    await release(dir);
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    expect((await executions(dir)).sort()).toEqual(fileIds(6));
    expect(await exists(join(dir, 'wrong-code'))).toBe(false);
    expect(run.warnings.some((warning) => warning.includes('a worker refused') && warning.includes(path))).toBe(true);
  });
});

describe('DataFrame mode on the queue', () => {
  it("every partition's rows reach a worker, withSession on PostgreSQL commits them once from every worker, and run.query reads the results", async () => {
    await postgres('SELECT 1');
    const table = uniqueName('dpf_queue_rows');
    await postgres(`CREATE TABLE ${table} (k text, v bigint)`);
    const dir = await tempDir();
    const started = join(dir, 'started');
    try {
      // The first two partitions wait for each other: each of the two workers runs one at least.
      const module = await writeModule(
        dir,
        `${markStarted(started)}
        ${until(startedAtLeast(started, 2), 'two partitions started')}
        const rows = await data.toArrow();
        let sum = 0;
        for (const v of rows.getChild('v')) sum += Number(v);
        await context.withSession((session) => session.append(${JSON.stringify(table)}, rows));
        await context.uploadToStage({ rows: rows.numRows, sum, pid: process.pid }, 'sum.json');`,
      );
      const workers = await Promise.all([startWorker(redis.url), startWorker(redis.url)]);
      const dpf = new DPF(module, { stage: join(dir, 'stage'), queue: redis.url, sessionDatabase: POSTGRES_URL });
      const run = await dpf.run({ partitionBy: 'k', source: SOURCE, runId: 'rows', executionOptions: { useHeadNode: false } });
      expect(await run.wait()).toBe(RunStatus.SUCCESS);

      const expected = await duckdb<{ k: string; rows: number; sum: number }>(`SELECT k, count(*)::INT AS rows, sum(v)::INT AS sum FROM (${SOURCE}) GROUP BY k ORDER BY k`);
      const results = (await run.query('SELECT partition_id AS k, rows, sum, pid FROM sums ORDER BY k', { sums: 'sum.json' })).toArray().map((row) => row.toJSON());
      expect(results.map(({ k, rows, sum }) => ({ k, rows: Number(rows), sum: Number(sum) }))).toEqual(expected);
      expect(new Set(results.map((row) => Number(row.pid)))).toEqual(new Set(workers.map((worker) => worker.pid)));

      const committed = await postgres<{ k: string; rows: number; sum: number }>(`SELECT k, count(*)::int AS rows, sum(v)::int AS sum FROM ${table} GROUP BY k ORDER BY k`);
      expect(committed).toEqual(expected);
    } finally {
      await postgres(`DROP TABLE IF EXISTS ${table}`);
    }
  });

  it('a DuckDB file as the session database is refused in the constructor, saying to use a postgres:// URL', async () => {
    const dir = await tempDir();
    const module = await writeModule(dir, '');
    const refusal = (() => {
      try {
        new DPF(module, { stage: join(dir, 'stage'), queue: redis.url, sessionDatabase: join(dir, 'session.duckdb') });
      } catch (error) {
        return error;
      }
    })();
    expect(refusal).toBeInstanceOf(InvalidOptionError);
    expect((refusal as InvalidOptionError).option).toBe('sessionDatabase');
    expect((refusal as Error).message).toMatch(/use a postgres:\/\/ URL/);
  });
});

describe('useHeadNode on the queue', () => {
  it('with no dpf worker running, the submitting process runs the run itself, then stops its worker and exits by itself', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const module = await recordingModule(dir);
    const input = await inputFiles(dir, 5);
    const submitter = runNodeScript(`
      import { DPF } from 'dpf';
      const run = await new DPF(${JSON.stringify(module)}, { stage: ${JSON.stringify(stage)}, queue: ${JSON.stringify(redis.url)} })
        .runFromStage({ stageLocation: ${JSON.stringify(input)}, filePattern: '*.csv', runId: 'head' });
      console.log('STATUS ' + await run.wait());
    `);
    // Bounded only so that a process kept alive by its worker fails the test saying so, instead of timing it out.
    const ended = await Promise.race([submitter.done, exitedWithin(submitter.done, 20_000)]);
    expect(ended, 'the submitting process did not exit by itself after its run ended').not.toBe('still running');
    const { code, stdout, stderr } = await submitter.done;
    expect(code, stderr).toBe(0);
    expect(stdout).toContain('STATUS SUCCESS');
    const executions = await ran(dir);
    expect(executions.map((execution) => execution.id).sort()).toEqual(fileIds(5));
    for (const execution of executions) expect(execution.pid).toBe(submitter.pid);
    expect((await DPFRun.restoreFrom('head', stage)).status).toBe(RunStatus.SUCCESS);
  });
});

describe('queue options checked before any work', () => {
  it('a queue that is not a redis:// URL is refused by name', async () => {
    const dir = await tempDir();
    const module = await writeModule(dir, '');
    expect(() => new DPF(module, { stage: join(dir, 'stage'), queue: 'http://x' })).toThrow(InvalidOptionError);
    expect(() => new DPF(module, { stage: join(dir, 'stage'), queue: 'http://x' })).toThrow(/^queue: expected a redis:\/\/ or rediss:\/\/ URL/);
  });

  it('a Redis that is not listening: run() and runFromStage() raise a QueueError naming the URL, and the stage has no run', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const url = `redis://127.0.0.1:${await freePort()}`;
    const dpf = new DPF(await writeModule(dir, ''), { stage, queue: url });
    const stageRun = dpf.runFromStage({ stageLocation: await inputFiles(dir, 2), filePattern: '*.csv', runId: 'files' });
    await expect(stageRun).rejects.toThrow(QueueError);
    await expect(stageRun).rejects.toThrow(`The queue's Redis at ${url} cannot be reached (connect ECONNREFUSED`);
    const dataFrameRun = dpf.run({ partitionBy: 'k', source: SOURCE, runId: 'rows' });
    await expect(dataFrameRun).rejects.toThrow(QueueError);
    await expect(dataFrameRun).rejects.toThrow(url);
    expect(await exists(join(stage, 'files'))).toBe(false);
    expect(await exists(join(stage, 'rows'))).toBe(false);
  });
});

describe('dpf worker flags', () => {
  it('--concurrency 0 is refused by name', () => {
    const result = dpfCommand('worker', '--queue', redis.url, '--concurrency', '0');
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/--concurrency takes a whole number of at least 1/);
  });

  it('without --queue or DPF_QUEUE it says what is missing', () => {
    const result = dpfCommandWith({ env: { DPF_QUEUE: undefined } }, 'worker');
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/--queue/);
    expect(result.stderr).toMatch(/DPF_QUEUE/);
  });
});
