import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DPF, DPFRun, PartitionStatus, RunStatus } from 'dpf';
import type { Table } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { duckdb, listFiles, tempDir, writeFiles, writeModule } from './helpers.js';

async function runOne(body: string, options: { prelude?: string; files?: Record<string, string>; stageFiles?: Record<string, string> } = {}) {
  const dir = await tempDir();
  await writeFiles(join(dir, 'input'), options.files ?? { 'p.csv': 'x\n1\n2\n' });
  if (options.stageFiles) await writeFiles(join(dir, 'stage'), options.stageFiles);
  const module = await writeModule(dir, body, { prelude: options.prelude });
  const run = await new DPF(module, { stage: join(dir, 'stage') }).runFromStage({
    stageLocation: join(dir, 'input'),
    runId: 'ctx',
    filePattern: '*',
    executionOptions: { maxRetries: 0 },
  });
  const status = await run.wait();
  const details = await run.getPartitionDetails();
  return { dir, run, status, details, only: Object.values(details)[0]! };
}

describe('PartitionContext', () => {
  it('tells the function its partition, run and attempt', async () => {
    const { only } = await runOne(`await context.uploadToStage({ id: context.partitionId, key: context.partitionKey, run: context.runId, attempt: context.attempt, aborted: context.signal.aborted }, 'ctx.json');`);
    expect(await only.artifacts.get('ctx.json')).toEqual({ id: 'p.csv', key: 'p.csv', run: 'ctx', attempt: 1, aborted: false });
  });

  it('writes artifacts in the format their extension names, and reads them back the same way', async () => {
    const { status, only, dir } = await runOne(`
      const table = await data.toArrow();
      await context.uploadToStage({ big: 2n ** 70n, small: 5n, when: new Date(0), set: new Set([1]), map: new Map([['a', 1]]) }, 'value.json');
      await context.uploadToStage(table, 'table.json');
      await context.uploadToStage([{ a: 1, b: 'x' }, { a: 2, b: null }], 'rows.parquet');
      await context.uploadToStage(table, 'table.csv');
      await context.uploadToStage(table, 'table.arrow');
      await context.uploadToStage([{ a: 1 }, { a: 2 }], 'rows.ndjson');
      await context.uploadToStage('plain text', 'note.txt');
      await context.uploadToStage(Buffer.from([1, 2, 3]), 'blob.bin');
      await context.uploadToStage({ custom: true }, 'model.pkl', { writeFunction: (value, path) => fs.writeFileSync(path, 'CUSTOM:' + JSON.stringify(value)) });
    `, { prelude: `import fs from 'node:fs';` });
    expect(status).toBe(RunStatus.SUCCESS);
    expect(await only.artifacts.list()).toEqual(['blob.bin', 'model.pkl', 'note.txt', 'rows.ndjson', 'rows.parquet', 'table.arrow', 'table.csv', 'table.json', 'value.json']);
    expect(await only.artifacts.get('value.json')).toEqual({ big: '1180591620717411303424', small: 5, when: '1970-01-01T00:00:00.000Z', set: [1], map: { a: 1 } });
    expect(await only.artifacts.get('table.json')).toEqual([{ x: 1 }, { x: 2 }]);
    expect(((await only.artifacts.get('rows.parquet')) as Table).toArray().map((row) => row.toJSON())).toEqual([{ a: 1, b: 'x' }, { a: 2, b: null }]);
    expect(await duckdb(`SELECT sum(x)::INT AS s FROM '${join(dir, 'stage/ctx/p.csv/table.csv')}'`)).toEqual([{ s: 3 }]);
    expect(((await only.artifacts.get('table.arrow')) as Table).numRows).toBe(2);
    expect(await only.artifacts.get('rows.ndjson')).toEqual([{ a: 1 }, { a: 2 }]);
    expect(await only.artifacts.get('note.txt')).toBe('plain text');
    expect([...((await only.artifacts.get('blob.bin')) as Buffer)]).toEqual([1, 2, 3]);
    expect(await only.artifacts.get('model.pkl', (path) => readFile(path, 'utf8'))).toBe('CUSTOM:{"custom":true}');
    const copied = await only.artifacts.download('note.txt', join(dir, 'downloads'));
    expect(await readFile(copied, 'utf8')).toBe('plain text');
  });

  it('refuses a value it has no default format for, saying what to do', async () => {
    const { only } = await runOne(`await context.uploadToStage({ weights: [1, 2] }, 'model.pkl');`);
    expect(only.status).toBe(PartitionStatus.FAILED);
    expect(only.error).toMatchObject({ name: 'SerializationError', message: expect.stringContaining('writeFunction') });
  });

  it.each([
    ['a/b.json', 'not a flat filename'],
    ['../escape.json', 'not a flat filename'],
    ['..', 'not a flat filename'],
    ['dir\\\\file.json', 'not a flat filename'],
    ['', 'non-empty'],
    ['partition.log', 'reserved'],
  ])('refuses the filename %j and writes nothing', async (name, message) => {
    const { only, dir } = await runOne(`await context.uploadToStage('x', ${JSON.stringify(name)});`);
    expect(only.status).toBe(PartitionStatus.FAILED);
    expect(only.error).toMatchObject({ name: 'ArtifactNameError', message: expect.stringContaining(message) });
    const files = await listFiles(join(dir, 'stage'));
    expect(files.filter((file) => !file.startsWith('ctx/_dpf/') && !file.endsWith('partition.log'))).toEqual([]);
  });

  it('reads back its own upload, another run\'s artifact through stagePath, and with a readFunction', async () => {
    const { only } = await runOne(
      `
      await context.uploadToStage({ mine: 1 }, 'mine.json');
      const mine = await context.downloadFromStage('mine.json');
      const shared = await context.downloadFromStage('model.json', { stagePath: 'models/v1' });
      const raw = await context.downloadFromStage('model.json', { stagePath: 'models/v1', readFunction: (path) => fs.readFileSync(path, 'utf8').length });
      let missing;
      try { await context.downloadFromStage('nope.json'); } catch (error) { missing = error.name; }
      let escape;
      try { await context.downloadFromStage('x.json', { stagePath: '../outside' }); } catch (error) { escape = error.name; }
      await context.uploadToStage({ mine, shared, raw, missing, escape }, 'out.json');
    `,
      { prelude: `import fs from 'node:fs';`, stageFiles: { 'models/v1/model.json': '{"w":[1,2,3]}' } },
    );
    expect(await only.artifacts.get('out.json')).toEqual({ mine: { mine: 1 }, shared: { w: [1, 2, 3] }, raw: 13, missing: 'ArtifactNotFoundError', escape: 'ArtifactNameError' });
  });

  it('captures console, stdout, stderr and context.log into partition.log with timestamps and attempts', async () => {
    const { only } = await runOne(`
      console.log('from console.log', 42);
      console.error('from console.error');
      process.stdout.write('partial ');
      process.stdout.write('line\\n');
      process.stderr.write('to stderr\\n');
      context.log('from context.log', { a: 1 });
      context.log.warn('careful');
    `);
    const log = await only.logs();
    const lines = log.trim().split('\n');
    expect(lines).toHaveLength(6);
    for (const line of lines) expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[attempt 1\] \[(stdout|stderr|log)\] /);
    expect(log).toContain('[stdout] from console.log 42');
    expect(log).toContain('[stderr] from console.error');
    expect(log).toContain('[stdout] partial line');
    expect(log).toContain('[stderr] to stderr');
    expect(log).toContain("[log] from context.log { a: 1 }");
    expect(log).toContain('[log] WARN careful');
  });

  it('keeps every attempt in partition.log, with the error of the failed one', async () => {
    const dir = await tempDir();
    await writeFiles(join(dir, 'input'), { 'p.csv': 'x\n1\n' });
    const module = await writeModule(dir, `console.log('attempt', context.attempt); if (context.attempt === 1) throw new Error('first try fails');`);
    const run = await new DPF(module, { stage: join(dir, 'stage') }).runFromStage({
      stageLocation: join(dir, 'input'),
      runId: 'logs',
      filePattern: '*',
      executionOptions: { maxRetries: 1, retryBackoffMs: 0 },
    });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const log = await (await DPFRun.restoreFrom('logs', join(dir, 'stage'))).getPartitionDetails().then((d) => d['p.csv']!.logs());
    expect(log).toMatch(/\[attempt 1\] \[stdout\] attempt 1\n.*\[attempt 1\] \[log\] failed: Error: first try fails/s);
    expect(log).toMatch(/\[attempt 2\] \[stdout\] attempt 2/);
  });

  it('leaves no artifact of a failed attempt behind', async () => {
    const dir = await tempDir();
    await writeFiles(join(dir, 'input'), { 'p.csv': 'x\n1\n' });
    const module = await writeModule(dir, `
      await context.uploadToStage({ attempt: context.attempt }, 'attempt-' + context.attempt + '.json');
      await context.uploadToStage({ attempt: context.attempt }, 'result.json');
      if (context.attempt === 1) throw new Error('fails after uploading');
    `);
    const run = await new DPF(module, { stage: join(dir, 'stage') }).runFromStage({
      stageLocation: join(dir, 'input'),
      runId: 'clean',
      filePattern: '*',
      executionOptions: { maxRetries: 1, retryBackoffMs: 0, packSmallArtifacts: false },
    });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    // Only the DONE attempt's files: the failed one stored nothing (its log is packed with the run's state).
    expect(await listFiles(join(dir, 'stage/clean/p.csv'))).toEqual(['attempt-2.json', 'result.json']);
    const details = (await run.getPartitionDetails())['p.csv']!;
    expect(await details.artifacts.get('result.json')).toEqual({ attempt: 2 });
  });
});
