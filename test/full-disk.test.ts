import { execFileSync } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DPF, DPFRun, LocalFileError, PartitionStatus, RunStatus, StageError } from 'dpf';
import { afterEach, describe, expect, it } from 'vitest';
import { POSTGRES_URL, postgres, tempDir } from './helpers.js';
import { journalFacts } from './support/journal-facts.js';

/**
 * A full disk under a real run: the stage is a small tmpfs (mounted by the test, which CI runs as
 * root), nearly filled by a ballast file; the run's own writes fill the rest.
 */
const mounted: string[] = [];
afterEach(() => {
  while (mounted.length > 0) execFileSync('umount', ['-l', mounted.pop()!]);
});

async function smallDisk(megabytes: number): Promise<string> {
  const folder = join(await tempDir('disk-'), 'tmpfs');
  await mkdir(folder);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${megabytes}m`, 'tmpfs', folder], { stdio: 'pipe' });
  } catch (error) {
    throw new Error(`this test mounts a small tmpfs as the stage and needs root (CI runs as root): ${(error as Error).message}`);
  }
  mounted.push(folder);
  return folder;
}

describe('a full disk', () => {
  it('stops the run at once with an error naming the file; once space is freed, resume finishes it correctly', async () => {
    const disk = await smallDisk(16);
    const stage = join(disk, 'stage');
    const ballast = join(disk, 'ballast');
    await writeFile(ballast, Buffer.alloc(12 * 1024 * 1024));
    const dir = await tempDir();
    const module = join(dir, 'fill.mjs');
    // 200 partitions of 40 KB each (packed) fill the 4 MB left.
    await writeFile(module, `export default async function (data, context) {
      await context.uploadToStage({ id: context.partitionId, pad: 'x'.repeat(40_000) }, 'r.json');
    }\n`);
    const dpf = new DPF(module, { stage });
    const source = "SELECT 'p' || lpad(i::VARCHAR, 3, '0') AS k FROM range(200) t(i)";
    const run = await dpf.run({ partitionBy: 'k', source, runId: 'full', executionOptions: { maxRetries: 0 } });
    const failure = await run.wait().then(
      (status) => new Error(`the run ended ${status} instead of stopping`),
      (error: unknown) => error as Error,
    );
    expect(failure).toBeInstanceOf(StageError);
    expect(failure.message).toMatch(new RegExp(`writing ${stage}/full/\\S+ failed: ENOSPC .*the disk is full: free space \\(or move the stage\\), then resume the run`));
    // Nothing unreadable: what the stage says is DONE is readable now.
    const stopped = await DPFRun.restoreFrom('full', stage);
    expect(stopped.status).toBe(RunStatus.IN_PROGRESS);
    for (const details of (await stopped.getProgress()).DONE) expect(await details.artifacts.get('r.json')).toMatchObject({ id: details.partitionId });

    await rm(ballast);
    const resumed = await dpf.run({ partitionBy: 'k', runId: 'full', onExistingArtifacts: 'resume' });
    expect(await resumed.wait()).toBe(RunStatus.SUCCESS);
    const details = await resumed.getPartitionDetails();
    expect(Object.values(details).filter((d) => d.status === PartitionStatus.DONE)).toHaveLength(200);
    const table = await resumed.query('SELECT count(*) AS n, count(DISTINCT id) AS ids FROM r', { r: 'r.json' });
    expect(table.toArray().map((row) => row.toJSON())).toEqual([{ n: 200n, ids: 200n }]);
    const { doneRecords } = await journalFacts(stage, 'full');
    expect([...doneRecords.values()].every((count) => count === 1)).toBe(true);
  }, 60_000);
});

describe('a full disk under the temporary folder', () => {
  it('is an error naming the local file dpf could not write, and what to do', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const module = join(dir, 'fn.mjs');
    await writeFile(module, `export default async function (data, context) {
      await context.uploadToStage({ id: context.partitionId, pad: 'x'.repeat(20_000) }, 'r.json');
    }\n`);
    const run = await new DPF(module, { stage }).run({ partitionBy: 'k', source: "SELECT 'p' || i AS k FROM range(20) t(i)", runId: 'tmp' });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const details = (await run.getPartitionDetails())['p3']!;

    const disk = await smallDisk(1);
    await writeFile(join(disk, 'ballast'), Buffer.alloc(1024 * 1024 - 4096)).catch(() => undefined);
    const tmp = process.env.TMPDIR;
    process.env.TMPDIR = disk;
    try {
      // The results query's JSON records (400 KB) go to a temporary file first.
      const query = run.query('SELECT count(*) FROM r', { r: 'r.json' });
      await expect(query).rejects.toBeInstanceOf(LocalFileError);
      await expect(query).rejects.toThrow(new RegExp(`^writing ${disk}/dpf-query-\\w+/records\\.ndjson failed: ENOSPC .*; the disk is full: free space there, or set TMPDIR to a folder on a disk with room$`));
      // A packed artifact given to a readFunction is a temporary file first.
      await expect(details.artifacts.get('r.json', (path) => readFile(path))).rejects.toThrow(new RegExp(`^writing ${disk}/dpf-artifact-\\w+/r\\.json failed: ENOSPC`));
    } finally {
      if (tmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = tmp;
    }
    // A PostgreSQL source is copied to a temporary CSV file first.
    await postgres('SELECT 1');
    process.env.TMPDIR = disk;
    try {
      const fromPostgres = new DPF(module, { stage }).run({ partitionBy: 'k', source: { postgres: POSTGRES_URL, query: "SELECT 'k' || i AS k, repeat('x', 100) AS pad FROM generate_series(1, 20000) i" }, runId: 'pg' });
      await expect(fromPostgres).rejects.toBeInstanceOf(LocalFileError);
      await expect(fromPostgres).rejects.toThrow(new RegExp(`^writing ${disk}/dpf-postgres-\\S+\\.csv failed: ENOSPC .*; the disk is full: free space there, or set TMPDIR`));
    } finally {
      if (tmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = tmp;
    }
    // A download into a folder on a full disk names its target.
    const download = details.artifacts.download('r.json', join(disk, 'out'));
    await expect(download).rejects.toBeInstanceOf(LocalFileError);
    await expect(download).rejects.toThrow(new RegExp(`^writing ${disk}/out/r\\.json failed: ENOSPC .*; the disk is full: free space there, or download to another folder$`));
  });
});
