import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DPF, DPFRun, PartitionStatus, RunStatus } from 'dpf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Stage } from '../src/stage/s3-stage.js';
import { duckdb, exists, listFiles, tempDir, waitFor, writeFiles, writeModule } from './helpers.js';
import { type S3TestServer, startS3Server } from './support/s3-test-server.js';

describe('one partition’s trouble stays in that partition', () => {
  it.each(['thread', 'process'] as const)('keys too long for a folder name get a safe folder, and every partition is DONE with its log and artifact (%s)', async (isolation) => {
    const dir = await tempDir();
    const module = await writeModule(dir, `
      console.log('rows', await data.numRows());
      await context.uploadToStage({ key: context.partitionKey }, 'seen.json');
      // Bigger than a pack takes: stored as a file in the partition's folder.
      await context.uploadToStage(new Uint8Array(200_000).fill(7), 'big.bin');
      // So is a log this long.
      console.log('x'.repeat(100_000));
    `);
    const long = 'k'.repeat(300);
    const accents = 'é'.repeat(130);
    // Two long keys that differ only after their first 250 bytes stay apart.
    const twins = ['t'.repeat(250) + 'a', 't'.repeat(250) + 'b'];
    const source = `SELECT * FROM (VALUES ('${long}'), ('${accents}'), ('${twins[0]}'), ('${twins[1]}'), ('short'), ('short')) t(k)`;
    const stage = join(dir, 'stage');
    const run = await new DPF(module, { stage }).run({ partitionBy: 'k', source, runId: 'long', executionOptions: { isolation, maxRetries: 0 } });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const restored = await DPFRun.restoreFrom('long', stage);
    const details = await restored.getPartitionDetails();
    expect(Object.keys(details).sort()).toEqual([long, accents, ...twins, 'short'].sort());
    for (const id of [long, accents, ...twins]) {
      expect(details[id]!.status).toBe(PartitionStatus.DONE);
      expect(await details[id]!.artifacts.get('seen.json')).toEqual({ key: id });
      expect(await details[id]!.logs()).toContain('rows 1');
      expect(((await details[id]!.artifacts.get('big.bin', (path) => readFile(path))) as Buffer).byteLength).toBe(200_000);
    }
    // Every name on the stage fits a file system's limit (255 bytes a name).
    for (const path of await listFiles(stage)) {
      for (const name of path.split('/')) expect(Buffer.byteLength(name), path).toBeLessThanOrEqual(255);
    }
  });

  it('logs are kept in bounded memory: 50 MB of console.log under memoryLimitMb 64 costs nothing but the log past its limit', async () => {
    const dir = await tempDir();
    // 50 MB of output, 1,000-byte lines; then one artifact to show the attempt went on.
    const module = await writeModule(dir, `
      if (context.partitionId === 'loud') {
        const line = 'y'.repeat(1000);
        for (let i = 0; i < 50_000; i++) console.log(i, line);
      }
      console.log('end of', context.partitionId);
      await context.uploadToStage({ ok: true }, 'ok.json');
    `);
    const stage = join(dir, 'stage');
    const run = await new DPF(module, { stage }).run({
      partitionBy: 'k',
      source: `SELECT * FROM (VALUES ('loud'), ('quiet')) t(k)`,
      runId: 'loud',
      executionOptions: { isolation: 'thread', memoryLimitMb: 64, maxRetries: 0 },
    });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const details = await run.getPartitionDetails();
    const log = await details['loud']!.logs();
    // The first lines are kept, up to the limit; then a line saying how much was dropped.
    expect(log).toMatch(/\[stdout\] 0 y{1000}\n/);
    expect(Buffer.byteLength(log)).toBeGreaterThan(15 * 1024 * 1024);
    expect(Buffer.byteLength(log)).toBeLessThan(16 * 1024 * 1024 + 1000);
    expect(log).toMatch(/\[dpf\] log truncated: \d+ more bytes \(\d+ lines\) dropped after the first 16777216 bytes \(maxLogBytes\)/);
    expect(log).not.toContain('end of loud');
    expect(await details['quiet']!.logs()).toContain('end of quiet');
    expect(await details['loud']!.artifacts.get('ok.json')).toEqual({ ok: true });
    // A resume reads the same state without trouble.
    expect(await (await DPFRun.restoreFrom('loud', stage)).wait()).toBe(RunStatus.SUCCESS);
  });
  it("a child process that exits keeps all it logged before, spooled beyond memory (isolation: 'process')", async () => {
    const dir = await tempDir();
    const module = await writeModule(dir, `
      const line = 'z'.repeat(1000);
      for (let i = 0; i < 2000; i++) console.log('line', i, line);
      process.exit(3);
    `);
    const run = await new DPF(module, { stage: join(dir, 'stage') }).run({
      partitionBy: 'k',
      source: `SELECT 'p' AS k`,
      runId: 'exits',
      executionOptions: { isolation: 'process', maxRetries: 0 },
    });
    expect(await run.wait()).toBe(RunStatus.FAILURE);
    const details = (await run.getPartitionDetails())['p']!;
    expect(details.status).toBe(PartitionStatus.INTERNAL_ERROR);
    const log = await details.logs();
    expect(log.match(/\[stdout\] line \d+ z{1000}\n/g)).toHaveLength(2000);
    expect(log).toMatch(/line 1999 z{1000}\n.*\[attempt 1\] \[dpf\] .*exit/s);
  });
});

describe('a forgotten await', () => {
  it.each(['thread', 'process'] as const)('on uploadToStage: dpf waits for the upload, and the artifact is kept (%s)', async (isolation) => {
    const dir = await tempDir();
    const module = await writeModule(dir, `
      // No await: the function returns while both are on their way.
      context.uploadToStage({ id: context.partitionId }, 'small.json');
      context.uploadToStage(new Uint8Array(100_000).fill(9), 'big.bin', {
        writeFunction: async (value, path) => { await new Promise((resolve) => setImmediate(resolve)); await writeFile(path, value); },
      });
    `, { prelude: `import { writeFile } from 'node:fs/promises';` });
    const run = await new DPF(module, { stage: join(dir, 'stage') }).run({ partitionBy: 'k', source: `SELECT * FROM range(20) t(k)`, runId: 'forgot', executionOptions: { isolation, maxRetries: 0 } });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const details = await run.getPartitionDetails();
    for (const [id, partition] of Object.entries(details)) {
      expect(await partition.artifacts.list()).toEqual(['big.bin', 'small.json']);
      expect(await partition.artifacts.get('small.json')).toEqual({ id });
      expect(((await partition.artifacts.get('big.bin', (path) => readFile(path))) as Buffer).byteLength).toBe(100_000);
    }
    // Nothing else is left in the partitions' folders.
    expect((await listFiles(join(dir, 'stage', 'forgot'))).filter((path) => !path.startsWith('_dpf/')).filter((path) => !path.endsWith('/big.bin'))).toEqual([]);
  });

  it('on an upload that then fails: the attempt fails with an error naming the upload', async () => {
    const dir = await tempDir();
    const module = await writeModule(dir, `
      context.uploadToStage('x', 'broken.bin', { writeFunction: async () => { await new Promise((resolve) => setImmediate(resolve)); throw new Error('disk said no'); } });
    `);
    const run = await new DPF(module, { stage: join(dir, 'stage') }).run({ partitionBy: 'k', source: `SELECT 1 AS k`, runId: 'forgot-fails', executionOptions: { maxRetries: 0 } });
    expect(await run.wait()).toBe(RunStatus.FAILURE);
    const partition = (await run.getPartitionDetails())['1']!;
    expect(partition.status).toBe(PartitionStatus.FAILED);
    expect(partition.error).toMatchObject({ name: 'UnawaitedCallError' });
    expect(partition.error!.message).toMatch(/uploadToStage\("broken\.bin"\) was still running when partition "1"'s function returned, and then failed: disk said no/);
  });

  it('an upload after the function returned is refused with an error that says so', async () => {
    const dir = await tempDir();
    const outcome = join(dir, 'late.txt');
    // The late call's error is caught by the function's own callback, which writes it down.
    const module = await writeModule(dir, `
      setTimeout(() => context.uploadToStage({}, 'late.json').then(() => writeFileSync(${JSON.stringify(outcome)}, 'stored'), (error) => writeFileSync(${JSON.stringify(outcome)}, error.name + ': ' + error.message)), 0);
    `, { prelude: `import { writeFileSync } from 'node:fs';` });
    const run = await new DPF(module, { stage: join(dir, 'stage') }).run({ partitionBy: 'k', source: `SELECT 1 AS k`, runId: 'late', executionOptions: { maxRetries: 0 } });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    await waitFor(() => exists(outcome), 10_000, 'the late upload to settle');
    expect(await readFile(outcome, 'utf8')).toMatch(/^AttemptEndedError: uploadToStage was called after this attempt had ended — after its function returned/);
    expect(await (await run.getPartitionDetails())['1']!.artifacts.list()).toEqual([]);
  });
});

describe('a worker killed by a cancel after its session committed', () => {
  it("keeps the partition DONE with its artifact and its rows once (isolation: 'process')", async () => {
    const dir = await tempDir();
    const marks = join(dir, 'marks');
    await writeFiles(join(dir, 'input'), { 'p0.csv': 'x\n1\n', 'p1.csv': 'x\n1\n' });
    // A child blocks as it is about to report a success (the attempt's session already committed
    // in the driver), so the cancel has to kill it there. (With both partitions sent to one
    // worker, the second waits behind the first and is cancelled without running.)
    const module = await writeModule(
      dir,
      `
      await context.withSession(async (session) => {
        await session.query('INSERT INTO t VALUES ($1, $2)', [context.partitionId, context.attempt]);
      });
      await context.uploadToStage({ attempt: context.attempt, pad: 'x'.repeat(100_000) }, 'big.json');
    `,
      {
        prelude: `
      import fs from 'node:fs';
      const send = process.send?.bind(process);
      if (send) process.send = (message, ...rest) => {
        if (message?.type === 'results' && message.outcomes.some((o) => o.status === 'DONE')) {
          fs.writeFileSync(${JSON.stringify(marks)}, '');
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
        }
        return send(message, ...rest);
      };`,
      },
    );
    const stage = join(dir, 'stage');
    // Made before: two attempts creating it at once would conflict.
    await mkdir(stage, { recursive: true });
    await duckdb(`ATTACH '${join(stage, 'dpf.duckdb')}' AS s; CREATE TABLE s.t (id VARCHAR, attempt INT)`);
    const run = await new DPF(module, { stage }).runFromStage({ stageLocation: join(dir, 'input'), runId: 'cc', filePattern: '*.csv', executionOptions: { availableCpus: 2, isolation: 'process', maxRetries: 0 } });
    await waitFor(() => exists(marks), 30_000, 'a partition to be blocked after its commit');
    await run.cancel();
    await run.wait();
    const details = Object.values(await run.getPartitionDetails());
    const done = details.filter((partition) => partition.status === PartitionStatus.DONE);
    // The blocked one is DONE (not CANCELLED), with its artifact and its row, once.
    expect(done.length).toBeGreaterThanOrEqual(1);
    expect(details.map((partition) => partition.status).filter((status) => status !== PartitionStatus.DONE && status !== PartitionStatus.CANCELLED)).toEqual([]);
    for (const partition of done) expect(await partition.artifacts.get('big.json')).toMatchObject({ attempt: 1 });
    const rows = await duckdb(`ATTACH '${join(stage, 'dpf.duckdb')}' AS s (READ_ONLY); SELECT id, attempt FROM s.t ORDER BY id`);
    expect(rows).toEqual(done.map((partition) => ({ id: partition.partitionId, attempt: 1 })).sort((a, b) => a.id.localeCompare(b.id)));
  });
});

describe('what an attempt that did not finish leaves on the stage', () => {
  let server: S3TestServer;
  beforeAll(async () => {
    server = await startS3Server();
    Object.assign(process.env, server.env);
    await server.createBucket('faults');
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("is removed before the partition runs again: a child killed after storing its artifact leaves no file behind (isolation: 'process')", async () => {
    const dir = await tempDir();
    const marker = join(dir, 'pid');
    const module = await writeModule(
      dir,
      `
      writeFileSync(${JSON.stringify(marker)} + context.attempt, String(process.pid));
      await context.uploadToStage(new Uint8Array(200_000).fill(context.attempt), 'big.bin');
      await context.uploadToStage({ attempt: context.attempt }, 'small.json');
    `,
      { prelude: `import { writeFileSync } from 'node:fs';` },
    );
    // The first attempt's big.bin is stored under its name, then its small artifacts wait in a
    // pack write the server holds: the child is killed there, between storing and reporting.
    await server.hold('_dpf/packs/');
    const run = await new DPF(module, { stage: 's3://faults/stage' }).run({
      partitionBy: 'k',
      source: `SELECT 'p' AS k`,
      runId: 'killed',
      executionOptions: { isolation: 'process', maxRetries: 1, retryBackoffMs: 0, availableCpus: 1 },
    });
    await waitFor(async () => (await server.held()) > 0 && (await exists(marker + '1')), 30_000, 'the first attempt to be storing its pack');
    process.kill(Number(await readFile(marker + '1', 'utf8')), 'SIGKILL');
    await server.release();
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const details = (await run.getPartitionDetails())['p']!;
    expect(details).toMatchObject({ status: PartitionStatus.DONE, attempts: 2 });
    expect(((await details.artifacts.get('big.bin', (path) => readFile(path))) as Buffer)[0]).toBe(2);
    expect(await details.logs()).toMatch(/\[attempt 1\] \[dpf\] .*(killed|SIGKILL)/);
    // In the partition's folder: the second attempt's big.bin under its own name, and the first
    // attempt's log (the reason it died); nothing the dead attempt stored.
    const keys = (await new S3Stage({ bucket: 'faults', prefix: 'stage' }).list('killed/p/')).map((entry) => entry.path);
    expect(keys.filter((key) => !/^killed\/p\/\.dpf-attempt-[^/]+\/partition\.log$/.test(key))).toEqual(['killed/p/big.bin']);
  });
});
