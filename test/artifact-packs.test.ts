import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DPF, DPFRun, RunStatus } from 'dpf';
import { describe, expect, it } from 'vitest';
import { listFiles, tempDir, writeModule } from './helpers.js';

const SOURCE = "SELECT 'p' || (i % 4) AS k, i AS v FROM range(40) t(i)";

async function run(body: string, options: { runId?: string; stage?: string; dir?: string; prelude?: string; maxRetries?: number } = {}) {
  const dir = options.dir ?? (await tempDir());
  const stage = options.stage ?? join(dir, 'stage');
  const module = await writeModule(dir, body, { name: `${options.runId ?? 'packs'}.mjs`, prelude: options.prelude });
  const handle = await new DPF(module, { stage }).run({
    partitionBy: 'k',
    source: SOURCE,
    runId: options.runId ?? 'packs',
    executionOptions: { maxRetries: options.maxRetries ?? 0, retryBackoffMs: 0 },
  });
  const status = await handle.wait();
  return { dir, stage, run: handle, status, details: await handle.getPartitionDetails() };
}

describe('small artifacts are packed', () => {
  it('keeps small default-format artifacts in packs, and big, Parquet and writeFunction ones as files; all read the same way', async () => {
    const { stage, status, details } = await run(
      `
      await context.uploadToStage({ key: context.partitionKey }, 'small.json');
      await context.uploadToStage('x'.repeat(100_000), 'big.txt');
      await context.uploadToStage([{ v: 1 }], 'table.parquet');
      await context.uploadToStage('custom', 'custom.bin', { writeFunction: (value, path) => fs.writeFileSync(path, value) });
      await context.uploadToStage(Buffer.from([7, 8, 9]), 'bytes.bin');
    `,
      { prelude: "import fs from 'node:fs';" },
    );
    expect(status).toBe(RunStatus.SUCCESS);
    const p1 = details['p1']!;
    expect(await p1.artifacts.list()).toEqual(['big.txt', 'bytes.bin', 'custom.bin', 'small.json', 'table.parquet']);
    expect(await p1.artifacts.get('small.json')).toEqual({ key: 'p1' });
    expect([...((await p1.artifacts.get('bytes.bin')) as Buffer)]).toEqual([7, 8, 9]);
    expect(await p1.artifacts.get('small.json', (path) => readFile(path, 'utf8'))).toBe('{"key":"p1"}');
    const copy = await p1.artifacts.download('small.json', join(stage, '..', 'downloads'));
    expect(await readFile(copy, 'utf8')).toBe('{"key":"p1"}');
    // On disk: the files, and one pack per worker holding the small ones.
    const files = await listFiles(join(stage, 'packs'));
    expect(files.filter((file) => !file.startsWith('_dpf/')).filter((file) => file.startsWith('p1/'))).toEqual([
      'p1/big.txt',
      'p1/custom.bin',
      'p1/table.parquet',
    ]);
    expect(files.filter((file) => file.startsWith('_dpf/packs/')).length).toBeGreaterThanOrEqual(1);
    // Another process sees the same.
    const restored = await DPFRun.restoreFrom('packs', stage);
    expect(await (await restored.getPartitionDetails())['p3']!.artifacts.get('small.json')).toEqual({ key: 'p3' });
  });

  it('never shows the packed artifacts of a failed attempt', async () => {
    const { status, details } = await run(
      `
      await context.uploadToStage({ attempt: context.attempt }, 'first-only-' + context.attempt + '.json');
      await context.uploadToStage({ attempt: context.attempt }, 'result.json');
      if (context.attempt === 1) throw new Error('fails after uploading');
    `,
      { maxRetries: 1 },
    );
    expect(status).toBe(RunStatus.SUCCESS);
    expect(await details['p0']!.artifacts.list()).toEqual(['first-only-2.json', 'result.json']);
    expect(await details['p0']!.artifacts.get('result.json')).toEqual({ attempt: 2 });
  });

  it("lets a later run download an earlier run's packed artifact through stagePath", async () => {
    const first = await run(`await context.uploadToStage({ weight: String(context.partitionKey).length * 10 }, 'model.json');`, { runId: 'train' });
    expect(first.status).toBe(RunStatus.SUCCESS);
    const second = await run(
      `
      const model = await context.downloadFromStage('model.json', { stagePath: 'train/' + context.partitionId });
      await context.uploadToStage({ scored: model.weight }, 'score.json');
    `,
      { runId: 'score', stage: first.stage, dir: first.dir },
    );
    expect(second.status).toBe(RunStatus.SUCCESS);
    expect(await second.details['p2']!.artifacts.get('score.json')).toEqual({ scored: 20 });
  });

  it('queries packed JSON artifacts — objects, arrays of records, NDJSON — and JSON files together', async () => {
    const { run: handle } = await run(`
      const v = (await data.toColumns()).v;
      await context.uploadToStage({ n: v.length, first: Math.min(...v) }, 'one.json');
      await context.uploadToStage(Array.from(v, (x) => ({ x })), 'many.json');
      await context.uploadToStage(Array.from(v, (x) => ({ x })), 'lines.ndjson');
      // A big one is a file, not packed, and must be read too.
      await context.uploadToStage({ n: v.length, pad: context.partitionKey === 'p0' ? 'y'.repeat(100_000) : '' }, 'mixed.json');
    `);
    const one = (await handle.query('SELECT partition_id, n, first FROM one ORDER BY partition_id', { one: 'one.json' })).toArray().map((row) => row.toJSON());
    expect(one.map((row) => [row.partition_id, Number(row.n), Number(row.first)])).toEqual([
      ['p0', 10, 0],
      ['p1', 10, 1],
      ['p2', 10, 2],
      ['p3', 10, 3],
    ]);
    const sums = (await handle.query('SELECT (SELECT sum(x) FROM many) AS a, (SELECT sum(x) FROM lines) AS b', { many: 'many.json', lines: 'lines.ndjson' }))
      .toArray()
      .map((row) => row.toJSON());
    expect(sums).toEqual([{ a: 780, b: 780 }]);
    const mixed = (await handle.query('SELECT count(*) AS partitions, sum(n) AS n FROM mixed', { mixed: 'mixed.json' })).toArray().map((row) => row.toJSON());
    expect(mixed).toEqual([{ partitions: 4n, n: 40 }]);
  });
});
