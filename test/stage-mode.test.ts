import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DPF, DPFRun, PartitionStatus, RunStatus } from 'dpf';
import { describe, expect, it } from 'vitest';
import { exists, listFiles, tempDir, writeFiles, writeModule } from './helpers.js';

describe('stage mode', () => {
  it('runs every matching file as one partition and keeps its artifacts under the run', async () => {
    const dir = await tempDir();
    await writeFiles(join(dir, 'input'), { 'a.csv': 'x\n1\n', 'b.csv': 'x\n2\n3\n', 'notes.txt': 'not me', 'sub/c.csv': 'x\n4\n' });
    const module = await writeModule(dir, `
      const rows = await data.numRows();
      await context.uploadToStage({ id: context.partitionId, rows }, 'result.json');
    `);
    const dpf = new DPF(module, { stage: join(dir, 'stage') });
    const run = await dpf.runFromStage({ stageLocation: join(dir, 'input'), runId: 'files', filePattern: '*.csv', executionOptions: { packSmallArtifacts: false } });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);

    const details = await run.getPartitionDetails();
    expect(Object.keys(details).sort()).toEqual(['a.csv', 'b.csv']);
    expect(await details['b.csv']!.artifacts.get('result.json')).toEqual({ id: 'b.csv', rows: 2 });
    expect(JSON.parse(await readFile(join(dir, 'stage/files/a.csv/result.json'), 'utf8'))).toEqual({ id: 'a.csv', rows: 1 });
  });

  it('includes sub-folders when the glob says so, and keeps them in the partition ids and folders', async () => {
    const dir = await tempDir();
    await writeFiles(join(dir, 'input'), { 'top.csv': 'x\n1\n', 'y=2024/m=01/part.csv': 'x\n1\n', 'y=2024/m=02/part.csv': 'x\n1\n' });
    const module = await writeModule(dir, `await context.uploadToStage(context.partitionId, 'id.txt');`);
    const run = await new DPF(module, { stage: join(dir, 'stage') }).runFromStage({
      stageLocation: join(dir, 'input'),
      runId: 'nested',
      filePattern: '**/*.csv',
      executionOptions: { packSmallArtifacts: false },
    });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const ids = Object.keys(await run.getPartitionDetails()).sort();
    expect(ids).toEqual(['top.csv', 'y=2024/m=01/part.csv', 'y=2024/m=02/part.csv']);
    expect(await readFile(join(dir, 'stage/nested/y=2024/m=02/part.csv/id.txt'), 'utf8')).toBe('y=2024/m=02/part.csv');
  });

  it('gives files with spaces, unicode and dot-dot-like names their own folders inside the run', async () => {
    const dir = await tempDir();
    const names = ['with space.csv', 'ünïcødé-数据.csv', '..csv', '...csv', 'a..b.csv', '_dpf.csv', 'sub dir/..hidden.csv', '%41.csv'];
    await writeFiles(join(dir, 'input'), Object.fromEntries(names.map((name) => [name, 'x\n1\n'])));
    const module = await writeModule(dir, `await context.uploadToStage(context.partitionId, 'id.txt');`);
    // Hidden files (a leading dot) are not matched by globs, as in a shell; partitionIds names them.
    const run = await new DPF(module, { stage: join(dir, 'stage') }).runFromStage({
      stageLocation: join(dir, 'input'),
      runId: 'odd-names',
      partitionIds: names,
      executionOptions: { packSmallArtifacts: false },
    });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const details = await run.getPartitionDetails();
    expect(Object.keys(details).sort()).toEqual([...names].sort());
    for (const name of names) expect(await details[name]!.artifacts.get('id.txt')).toBe(name);
    // Every artifact is inside the run's folder, and the run's own state folder was not touched by "_dpf.csv".
    const files = await listFiles(join(dir, 'stage'));
    expect(files.every((file) => file.startsWith('odd-names/'))).toBe(true);
    expect(files.filter((file) => file.endsWith('/id.txt'))).toHaveLength(names.length);
  });

  it('runs exactly the listed partitionIds, ignoring the pattern, to rerun the ones that failed', async () => {
    const dir = await tempDir();
    await writeFiles(join(dir, 'input'), { 'good.csv': 'x\n1\n', 'bad.csv': 'x\n1\n', 'other.json': '[{"x":1}]' });
    const failing = await writeModule(dir, `if (context.partitionId === 'bad.csv') throw new Error('bad file'); await context.uploadToStage('ok', 'ok.txt');`, { name: 'failing.mjs' });
    const stage = join(dir, 'stage');
    const first = await new DPF(failing, { stage }).runFromStage({
      stageLocation: join(dir, 'input'),
      runId: 'first',
      filePattern: '*.csv',
      executionOptions: { maxRetries: 0 },
    });
    expect(await first.wait()).toBe(RunStatus.PARTIAL_FAILURE);
    const failed = (await first.getProgress()).FAILED.map((details) => details.partitionId);
    expect(failed).toEqual(['bad.csv']);

    const fixed = await writeModule(dir, `await context.uploadToStage('fixed', 'ok.txt');`, { name: 'fixed.mjs' });
    const rerun = await new DPF(fixed, { stage }).runFromStage({ stageLocation: join(dir, 'input'), runId: 'rerun', partitionIds: [...failed, 'other.json'] });
    expect(await rerun.wait()).toBe(RunStatus.SUCCESS);
    expect(Object.keys(await rerun.getPartitionDetails()).sort()).toEqual(['bad.csv', 'other.json']);
  });

  it('reruns failed partitions of the same run with resume, keeping the DONE ones', async () => {
    const dir = await tempDir();
    await writeFiles(join(dir, 'input'), { 'a.csv': 'x\n1\n', 'b.csv': 'x\n1\n', 'c.csv': 'x\n1\n' });
    const stage = join(dir, 'stage');
    // The function fails b.csv while the bug (a marker file) is there; the fix removes it.
    const bug = join(dir, 'bug');
    await writeFiles(dir, { bug: '' });
    const flaky = await writeModule(dir, `if (context.partitionId === 'b.csv' && fs.existsSync(${JSON.stringify(bug)})) throw new Error('flaky'); await context.uploadToStage(context.attempt, 'attempt.json');`, { prelude: "import fs from 'node:fs';" });
    const first = await new DPF(flaky, { stage }).runFromStage({ stageLocation: join(dir, 'input'), runId: 'files', filePattern: '*.csv', executionOptions: { maxRetries: 0 } });
    expect(await first.wait()).toBe(RunStatus.PARTIAL_FAILURE);

    await rm(bug);
    const failed = (await first.getProgress()).FAILED.map((details) => details.partitionId);
    const second = await new DPF(flaky, { stage }).runFromStage({
      stageLocation: join(dir, 'input'),
      runId: 'files',
      partitionIds: failed,
      onExistingArtifacts: 'resume',
    });
    expect(await second.wait()).toBe(RunStatus.SUCCESS);
    const details = await second.getPartitionDetails();
    expect(Object.keys(details).sort()).toEqual(['a.csv', 'b.csv', 'c.csv']);
    expect(details['b.csv']).toMatchObject({ status: PartitionStatus.DONE, attempts: 2 });
    expect(await details['b.csv']!.artifacts.get('attempt.json')).toBe(2);
    expect(details['a.csv']).toMatchObject({ status: PartitionStatus.DONE, attempts: 1 });
    expect((await DPFRun.restoreFrom('files', stage)).status).toBe(RunStatus.SUCCESS);
  });

  it('matches hidden files only when the pattern names them, as a shell glob does', async () => {
    const dir = await tempDir();
    await writeFiles(join(dir, 'input'), { 'a.csv': 'x\n1\n', '._a.csv': 'junk', '.hidden/b.csv': 'x\n1\n' });
    const module = await writeModule(dir, '');
    const run = await new DPF(module, { stage: join(dir, 'stage') }).runFromStage({ stageLocation: join(dir, 'input'), runId: 'r', filePattern: '**/*.csv' });
    await run.wait();
    expect(Object.keys(await run.getPartitionDetails())).toEqual(['a.csv']);
  });

  it('never reads the stage itself as input when the stage lies inside the input folder', async () => {
    const dir = await tempDir();
    await writeFiles(dir, { 'a.json': '[{"x":1}]' });
    const module = await writeModule(dir, `await context.uploadToStage({ seen: context.partitionId }, 'seen.json');`);
    const dpf = new DPF(module, { stage: join(dir, 'stage') });
    const first = await dpf.runFromStage({ stageLocation: dir, runId: 'one', filePattern: '**/*.json', executionOptions: { packSmallArtifacts: false } });
    expect(await first.wait()).toBe(RunStatus.SUCCESS);
    const second = await dpf.runFromStage({ stageLocation: dir, runId: 'two', filePattern: '**/*.json', executionOptions: { packSmallArtifacts: false } });
    expect(await second.wait()).toBe(RunStatus.SUCCESS);
    expect(Object.keys(await second.getPartitionDetails())).toEqual(['a.json']);
    expect(await exists(join(dir, 'stage/two/a.json/seen.json'))).toBe(true);
  });
});
