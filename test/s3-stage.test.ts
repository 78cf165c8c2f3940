import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DPF, DPFRun, PartitionStatus, RunStatus, StageError } from 'dpf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Stage } from '../src/stage/s3-stage.js';
import { duckdb, dpfCommand, runNodeScript, tempDir, waitFor, writeModule } from './helpers.js';
import { UNTIL_ABORTED } from './support/barriers.js';
import { journalFacts } from './support/journal-facts.js';
import { type S3TestServer, startS3Server } from './support/s3-test-server.js';

/**
 * The S3 stage end to end, against an S3-compatible server (s3rver behind the semantics and fault
 * layer of test/support/s3-server-main.mjs) reached through the AWS SDK exactly as against AWS:
 * the endpoint and credentials come from the standard AWS environment variables, which this
 * file sets for itself, its worker threads, and the processes it starts.
 */
let server: S3TestServer;
let input: S3Stage;

beforeAll(async () => {
  server = await startS3Server();
  Object.assign(process.env, server.env);
  await server.createBucket('dpf-stage');
  await server.createBucket('dpf-input');
  input = new S3Stage({ bucket: 'dpf-input', prefix: 'files' });
  for (const name of ['a.csv', 'b.csv', 'c.csv', 'sub/d.csv', 'notes.txt']) {
    await input.put(name, name.endsWith('.csv') ? `x,name\n${'1,'.repeat(1) + name}\n2,${name}\n3,${name}\n` : 'not a table');
  }
});
afterAll(async () => {
  await server?.stop();
});

let runs = 0;
/** A fresh stage prefix per test: runs of different tests never meet. */
function stage(): string {
  return `s3://dpf-stage/t${++runs}`;
}

/** Reads rows, logs, and uploads a packed JSON artifact, a file artifact and a Parquet table. */
const PROCESS = `
  const table = await data.toArrow();
  console.log('read', table.numRows, 'rows of', data.path);
  await context.uploadToStage({ id: context.partitionId, rows: table.numRows, path: data.path }, 'summary.json');
  await context.uploadToStage('y'.repeat(80_000), 'big.txt');
  await context.uploadToStage(table, 'rows.parquet');
  const local = await data.localPath();
  await context.uploadToStage({ local: local.startsWith('/') }, 'local.json');
`;

describe('a stage on S3', () => {
  it('runs stage mode over input on S3: packed and file artifacts, logs, queries, restore from another process', async () => {
    const dir = await tempDir();
    const at = stage();
    const dpf = new DPF(await writeModule(dir, PROCESS), { stage: at });
    const run = await dpf.runFromStage({ stageLocation: 's3://dpf-input/files/', runId: 'files', filePattern: '**/*.csv' });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    expect(run.stageLocation).toBe(at);
    const details = await run.getPartitionDetails();
    expect(Object.keys(details).sort()).toEqual(['a.csv', 'b.csv', 'c.csv', 'sub/d.csv']);
    const d = details['sub/d.csv']!;
    expect(await d.artifacts.list()).toEqual(['big.txt', 'local.json', 'rows.parquet', 'summary.json']);
    expect(await d.artifacts.get('summary.json')).toEqual({ id: 'sub/d.csv', rows: 3, path: 's3://dpf-input/files/sub/d.csv' });
    expect(await d.artifacts.get('local.json')).toEqual({ local: true });
    expect(((await d.artifacts.get('big.txt')) as string).length).toBe(80_000);
    expect(((await d.artifacts.get('rows.parquet')) as { numRows: number }).numRows).toBe(3);
    expect(await d.logs()).toContain('[stdout] read 3 rows of s3://dpf-input/files/sub/d.csv');
    const downloaded = await d.artifacts.download('big.txt', join(dir, 'out'));
    expect((await readFile(downloaded, 'utf8')).length).toBe(80_000);

    const summaries = await run.query('SELECT partition_id, rows::INT AS rows FROM s ORDER BY partition_id', { s: 'summary.json' });
    expect(summaries.toArray().map((row) => row.toJSON())).toEqual([
      { partition_id: 'a.csv', rows: 3 },
      { partition_id: 'b.csv', rows: 3 },
      { partition_id: 'c.csv', rows: 3 },
      { partition_id: 'sub/d.csv', rows: 3 },
    ]);
    const tables = await run.query('SELECT count(*)::INT AS n, count(DISTINCT partition_id)::INT AS partitions FROM t', { t: 'rows.parquet' });
    expect(tables.toArray().map((row) => row.toJSON())).toEqual([{ n: 12, partitions: 4 }]);

    // Another process restores it from the S3 location alone.
    const reader = runNodeScript(`
      import { DPFRun } from 'dpf';
      const run = await DPFRun.restoreFrom('files', ${JSON.stringify(at)});
      const details = (await run.getPartitionDetails())['a.csv'];
      console.log(JSON.stringify({ status: run.status, summary: await details.artifacts.get('summary.json'), log: await details.logs() }));
    `);
    const { stdout, stderr, code } = await reader.done;
    expect(code, stderr).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ status: 'SUCCESS', summary: { id: 'a.csv', rows: 3 }, log: expect.stringContaining('read 3 rows') });
  });

  it('runs DataFrame mode, resumes what failed, and overwrites', async () => {
    const dir = await tempDir();
    const at = stage();
    const source = "SELECT 'k' || (i % 6) AS k, i AS v FROM range(600) t(i)";
    const failOnce = await writeModule(dir, `
      const rows = (await data.toColumns()).v;
      if (context.partitionKey === 'k4' && context.attempt === 1) throw new Error('fails the first time');
      await context.uploadToStage({ n: rows.length, sum: rows.reduce((a, b) => a + b, 0) }, 'stats.json');
    `);
    const dpf = new DPF(failOnce, { stage: at });
    const first = await dpf.run({ partitionBy: 'k', source, runId: 'frames', executionOptions: { maxRetries: 0 } });
    expect(await first.wait()).toBe(RunStatus.PARTIAL_FAILURE);
    const resumed = await dpf.run({ partitionBy: 'k', runId: 'frames', onExistingArtifacts: 'resume' });
    expect(await resumed.wait()).toBe(RunStatus.SUCCESS);
    const details = await resumed.getPartitionDetails();
    expect(details['k4']).toMatchObject({ status: PartitionStatus.DONE, attempts: 2 });
    expect(details['k1']).toMatchObject({ status: PartitionStatus.DONE, attempts: 1 });
    const [expected] = await duckdb<{ n: bigint; total: bigint }>(`SELECT count(*) AS n, sum(i) AS total FROM range(600) t(i)`);
    const totals = await resumed.query('SELECT sum(n) AS n, sum(sum) AS total FROM s', { s: 'stats.json' });
    expect(totals.toArray().map((row) => row.toJSON())).toEqual([{ n: Number(expected!.n), total: Number(expected!.total) }]);

    const other = await writeModule(dir, `await context.uploadToStage('new', 'new.txt');`, { name: 'other.mjs' });
    const overwritten = await new DPF(other, { stage: at }).run({ partitionBy: 'k', source: "SELECT 'z' AS k", runId: 'frames', onExistingArtifacts: 'overwrite' });
    expect(await overwritten.wait()).toBe(RunStatus.SUCCESS);
    const left = (await new S3Stage({ bucket: 'dpf-stage', prefix: at.slice('s3://dpf-stage/'.length) }).list('frames/')).map((entry) => entry.path);
    expect(left.filter((path) => !path.startsWith('frames/_dpf/'))).toEqual([]);
    expect(Object.keys(await overwritten.getPartitionDetails())).toEqual(['z']);
  });

  it('is cancelled from another process, and every CLI command works on it', async () => {
    const dir = await tempDir();
    const at = stage();
    // k0 finishes at once; the others wait for their signal, so the run is going until cancelled.
    const module = await writeModule(dir, `
      if (context.partitionKey !== 'k0') ${UNTIL_ABORTED}
      console.log('finished', context.partitionId);
      await context.uploadToStage({ id: context.partitionId }, 'done.json');
    `);
    const driver = runNodeScript(`
      import { DPF } from 'dpf';
      const run = await new DPF(${JSON.stringify(module)}, { stage: ${JSON.stringify(at)} })
        .run({ partitionBy: 'k', source: "SELECT 'k' || i AS k FROM range(4) t(i)", runId: 'long', executionOptions: { availableCpus: 2 } });
      console.log('STATUS ' + await run.wait());
    `);
    await waitFor(async () => {
      try {
        return (await (await DPFRun.restoreFrom('long', at)).getProgress()).DONE.length === 1;
      } catch {
        return false;
      }
    }, 30_000, 'k0 to finish');

    const status = dpfCommand('status', 'long', '--stage', at);
    expect(status.status, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^run long: IN_PROGRESS — 4 partition\(s\): /);
    expect(status.stdout).toContain(`stage ${at}`);
    const logs = dpfCommand('logs', 'long', 'k0', '--stage', at);
    expect(logs.stdout).toContain('[stdout] finished k0');
    expect(dpfCommand('artifacts', 'long', 'k0', '--stage', at).stdout).toBe('done.json\n');
    expect(JSON.parse(dpfCommand('artifacts', 'long', 'k0', 'done.json', '--stage', at).stdout)).toEqual({ id: 'k0' });
    const copied = dpfCommand('artifacts', 'long', 'k0', 'done.json', '--stage', at, '--out', join(dir, 'copy'));
    expect(JSON.parse(await readFile(copied.stdout.trim(), 'utf8'))).toEqual({ id: 'k0' });

    const cancel = dpfCommand('cancel', 'long', '--stage', at);
    expect(cancel.status, cancel.stderr).toBe(0);
    expect(cancel.stdout).toBe('long: CANCELLED\n');
    const result = await driver.done;
    expect(result.stdout, result.stderr).toContain('STATUS CANCELLED');
    const progress = await (await DPFRun.restoreFrom('long', at)).getProgress();
    expect(progress.DONE.map((details) => details.partitionId)).toEqual(['k0']);
    expect(progress.CANCELLED).toHaveLength(3);
  });

  it('refuses a store that does not honour conditional writes, before any work', async () => {
    const dir = await tempDir();
    await server.createBucket('dpf-unsafe');
    await server.honourConditions(false);
    try {
      const dpf = new DPF(await writeModule(dir, PROCESS), { stage: 's3://dpf-unsafe/stage' });
      const starting = dpf.runFromStage({ stageLocation: 's3://dpf-input/files/', runId: 'unsafe', filePattern: '**/*.csv' });
      await expect(starting).rejects.toBeInstanceOf(StageError);
      await expect(starting).rejects.toThrow(/s3:\/\/dpf-unsafe\/stage does not honour conditional writes .*use a store that does/);
    } finally {
      await server.honourConditions(true);
    }
    expect((await new S3Stage({ bucket: 'dpf-unsafe', prefix: 'stage' }).list('')).map((entry) => entry.path)).toEqual([]);
  });

  it('finishes runs while the store fails and delays requests, with nothing lost or done twice', async () => {
    const dir = await tempDir();
    const at = stage();
    await server.setFaults({ rate: 0.05, after: 0.5, delayRate: 0.1, delayMs: 100, seed: 7 });
    try {
      const module = await writeModule(dir, `
        const { v } = await data.toColumns();
        await context.uploadToStage({ n: v.length, sum: v.reduce((a, b) => a + b, 0), attempt: context.attempt }, 'stats.json');
        if (context.partitionKey.endsWith('0')) await context.uploadToStage('z'.repeat(70_000), 'big.txt');
      `);
      const run = await new DPF(module, { stage: at }).run({
        partitionBy: 'k',
        source: "SELECT 'k' || lpad((i % 60)::VARCHAR, 2, '0') AS k, i AS v FROM range(6000) t(i)",
        runId: 'faulty',
      });
      expect(await run.wait()).toBe(RunStatus.SUCCESS);
      const totals = await run.query('SELECT count(*)::INT AS partitions, sum(n)::INT AS n, sum(sum)::BIGINT AS total FROM s', { s: 'stats.json' });
      expect(totals.toArray().map((row) => row.toJSON())).toEqual([{ partitions: 60, n: 6000, total: 17997000n }]);
      const details = await run.getPartitionDetails();
      for (const partition of Object.values(details)) {
        expect(partition.status).toBe(PartitionStatus.DONE);
        expect(await partition.artifacts.get('stats.json')).toMatchObject({ attempt: partition.attempts });
      }
      expect(((await details['k30']!.artifacts.get('big.txt')) as string).length).toBe(70_000);
      // Stage mode too, its input read from the failing store.
      const files = await new DPF(await writeModule(dir, PROCESS, { name: 'files.mjs' }), { stage: at }).runFromStage({ stageLocation: 's3://dpf-input/files/', runId: 'faulty-files', filePattern: '**/*.csv' });
      expect(await files.wait()).toBe(RunStatus.SUCCESS);
      const rows = await files.query('SELECT count(*)::INT AS n FROM t', { t: 'rows.parquet' });
      expect(rows.toArray().map((row) => row.toJSON())).toEqual([{ n: 12 }]);
      expect((await server.stats()).faults).toBeGreaterThan(0);
    } finally {
      await server.setFaults({});
    }
    const { doneRecords } = await journalFacts(at, 'faulty');
    expect(doneRecords.size).toBe(60);
    expect([...doneRecords.values()].every((count) => count === 1)).toBe(true);
  });
});
