import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DPF, PartitionStatus, RunStatus } from 'dpf';
import { describe, expect, it } from 'vitest';
import { duckdb, tempDir, writeFiles, writeModule } from './helpers.js';

/**
 * A partition bigger than its worker's memory limit: toArrow(), toRecords() and toColumns() are
 * refused before they read it (the attempt FAILED with a PartitionTooLargeError that names
 * batches()), the worker lives on to run the next partition, and batches() reads it all.
 */

const LIMIT_MB = 64;
/** Four BIGINT columns: 3M rows are about 96 MB of Arrow data, more than the limit. */
const BIG_ROWS = 3_000_000;
/** About 19 MB of Arrow data, within the limit; as records (an object per row) more than it. */
const MID_ROWS = 600_000;
const COLUMNS = `i::BIGINT AS a, (i * 7)::BIGINT AS b, (hash(i) >> 1)::BIGINT AS c`;

/**
 * The function: notes which worker thread (or process) ran which partition, then reads it with
 * the method its id names (`read` for the other ids, `batches` everywhere in `streaming` mode).
 */
function body(workers: string, read: 'whole' | 'streaming'): string {
  return `
    fs.appendFileSync(${JSON.stringify(workers)}, process.pid + ':' + threadId + ' ' + context.partitionId + '\\n');
    let rows = 0;
    const method = ${JSON.stringify(read)} === 'streaming' ? 'batches' : context.partitionId.includes('mid') ? 'toRecords' : 'toArrow';
    if (method === 'batches') for await (const batch of data.batches()) rows += batch.numRows;
    else if (method === 'toRecords') rows = (await data.toRecords()).length;
    else rows = (await data.toArrow()).numRows;
    await context.uploadToStage({ rows }, 'rows.json');
  `;
}
const PRELUDE = `import fs from 'node:fs'; import { threadId } from 'node:worker_threads';`;

/** The workers that ran each partition, in the order they started. */
async function workersOf(file: string): Promise<Array<{ worker: string; partition: string }>> {
  const lines = (await readFile(file, 'utf8')).trim().split('\n');
  return lines.map((line) => {
    const [worker, partition] = line.split(' ');
    return { worker: worker!, partition: partition! };
  });
}

describe('a partition bigger than the worker memory limit', () => {
  it('DataFrame mode: toArrow() and toRecords() fail their attempt with PartitionTooLargeError; the same worker runs the next partition; batches() reads it', async () => {
    const dir = await tempDir();
    const workers = join(dir, 'workers.log');
    const source = `SELECT CASE WHEN i < ${BIG_ROWS} THEN 'big' WHEN i < ${BIG_ROWS + MID_ROWS} THEN 'mid' ELSE 'small' END AS part, ${COLUMNS}
      FROM range(${BIG_ROWS + MID_ROWS + 10}) t(i)`;
    const executionOptions = { memoryLimitMb: LIMIT_MB, availableCpus: 1, maxRetries: 0 };
    const whole = await writeModule(dir, body(workers, 'whole'), { name: 'whole.mjs', prelude: PRELUDE });
    const run = await new DPF(whole, { stage: join(dir, 'stage') }).run({ runId: 'whole', partitionBy: 'part', source, executionOptions });
    expect(await run.wait()).toBe(RunStatus.PARTIAL_FAILURE);
    const details = await run.getPartitionDetails();

    expect(details.big).toMatchObject({ status: PartitionStatus.FAILED, attempts: 1, error: { name: 'PartitionTooLargeError' } });
    const big = details.big!.error!.message;
    expect(big).toContain(`partition "big" holds ${BIG_ROWS.toLocaleString('en')} rows`);
    expect(big).toContain(`more than this worker's memory limit of ${LIMIT_MB} MB (executionOptions.memoryLimitMb)`);
    expect(big).toContain('toArrow() holds the whole partition in memory; read it with data.batches()');
    // Its Arrow data fits; the objects toRecords() would build from it do not.
    expect(details.mid).toMatchObject({ status: PartitionStatus.FAILED, error: { name: 'PartitionTooLargeError' } });
    expect(details.mid!.error!.message).toMatch(/more for the JavaScript values toRecords\(\) builds: more than this worker's memory limit.*data\.batches\(\)/);
    expect(details.small).toMatchObject({ status: PartitionStatus.DONE });
    expect(await details.small!.artifacts.get('rows.json')).toEqual({ rows: 10 });
    // One worker ran all three, largest first: the refused reads did not cost it its life.
    const ran = await workersOf(workers);
    expect(ran.map((r) => r.partition)).toEqual(['big', 'mid', 'small']);
    expect(new Set(ran.map((r) => r.worker)).size).toBe(1);

    const streaming = await writeModule(dir, body(workers, 'streaming'), { name: 'streaming.mjs', prelude: PRELUDE });
    const again = await new DPF(streaming, { stage: join(dir, 'stage') }).run({ runId: 'streaming', partitionBy: 'part', source, executionOptions });
    expect(await again.wait()).toBe(RunStatus.SUCCESS);
    expect(await (await again.getPartitionDetails()).big!.artifacts.get('rows.json')).toEqual({ rows: BIG_ROWS });
  });

  it("stage mode: toArrow() of one big file stops reading at the limit and fails its attempt, not retried, in a child process too; batches() reads it", async () => {
    const dir = await tempDir();
    const workers = join(dir, 'workers.log');
    const input = join(dir, 'input');
    await mkdir(input);
    // Parquet: quick to write and to read; CSV under a small limit is tested below.
    await duckdb(`COPY (SELECT ${COLUMNS} FROM range(${BIG_ROWS}) t(i)) TO '${join(input, 'big.parquet')}' (FORMAT PARQUET)`);
    await duckdb(`COPY (SELECT ${COLUMNS} FROM range(2) t(i)) TO '${join(input, 'small.parquet')}' (FORMAT PARQUET)`);
    const executionOptions = { memoryLimitMb: LIMIT_MB, availableCpus: 1, maxRetries: 1, retryBackoffMs: 0, isolation: 'process' as const };
    const whole = await writeModule(dir, body(workers, 'whole'), { name: 'whole.mjs', prelude: PRELUDE });
    const dpf = new DPF(whole, { stage: join(dir, 'stage') });
    const run = await dpf.runFromStage({ stageLocation: input, runId: 'whole', filePattern: '*', executionOptions });
    expect(await run.wait()).toBe(RunStatus.PARTIAL_FAILURE);
    const details = await run.getPartitionDetails();
    // Not retried (maxRetries: 1): the same read under the same limit would be refused again.
    expect(details['big.parquet']).toMatchObject({ status: PartitionStatus.FAILED, attempts: 1, error: { name: 'PartitionTooLargeError' } });
    expect(details['big.parquet']!.error!.message).toMatch(
      new RegExp(`big\\.parquet holds more than \\d+ MB of Arrow data \\(the read was stopped after [\\d,]+ rows\\): more than this worker's memory limit of ${LIMIT_MB} MB.*toArrow\\(\\) holds the whole partition in memory; read it with data\\.batches\\(\\)`),
    );
    expect(details['small.parquet']).toMatchObject({ status: PartitionStatus.DONE });
    expect(await details['small.parquet']!.artifacts.get('rows.json')).toEqual({ rows: 2 });
    const ran = await workersOf(workers);
    expect(ran.map((r) => r.partition).sort()).toEqual(['big.parquet', 'small.parquet']);
    expect(new Set(ran.map((r) => r.worker)).size).toBe(1);

    const streaming = await writeModule(dir, body(workers, 'streaming'), { name: 'streaming.mjs', prelude: PRELUDE });
    const again = await new DPF(streaming, { stage: join(dir, 'stage') }).runFromStage({ stageLocation: input, runId: 'streaming', filePattern: '*', executionOptions });
    expect(await again.wait()).toBe(RunStatus.SUCCESS);
    expect(await (await again.getPartitionDetails())['big.parquet']!.artifacts.get('rows.json')).toEqual({ rows: BIG_ROWS });
  });

  it('stage mode: a small Parquet file that decodes to far more than the limit stops reading at the limit too', async () => {
    const dir = await tempDir();
    const input = join(dir, 'input');
    await mkdir(input);
    // One repeated value: a few kilobytes on disk, read whole by DuckDB in one go (under 32 MB),
    // and 20M rows of BIGINT — about 153 MB of Arrow data.
    const rows = 20_000_000;
    await duckdb(`COPY (SELECT 7::BIGINT AS a FROM range(${rows})) TO '${join(input, 'dense.parquet')}' (FORMAT PARQUET)`);
    expect((await stat(join(input, 'dense.parquet'))).size).toBeLessThan(1024 * 1024);
    const module = await writeModule(dir, `await context.uploadToStage({ rows: (await data.toArrow()).numRows }, 'rows.json');`);
    const run = await new DPF(module, { stage: join(dir, 'stage') }).runFromStage({
      stageLocation: input,
      runId: 'dense',
      filePattern: '*',
      executionOptions: { memoryLimitMb: LIMIT_MB, availableCpus: 1, maxRetries: 1, retryBackoffMs: 0 },
    });
    expect(await run.wait()).toBe(RunStatus.FAILURE);
    const dense = (await run.getPartitionDetails())['dense.parquet']!;
    expect(dense).toMatchObject({ status: PartitionStatus.FAILED, attempts: 1, error: { name: 'PartitionTooLargeError' } });
    // Stopped once past the limit, not converted whole and refused afterwards.
    const stopped = /holds more than (\d+) MB of Arrow data \(the read was stopped after ([\d,]+) rows\)/.exec(dense.error!.message);
    expect(stopped, dense.error!.message).not.toBeNull();
    expect(Number(stopped![2]!.replace(/,/g, ''))).toBeLessThan(rows / 2);
    expect(dense.error!.message).toContain(`more than this worker's memory limit of ${LIMIT_MB} MB`);
  });
});

describe('a small memory limit', () => {
  it('stage mode: CSV files read whole and in batches under memoryLimitMb: 48, in threads and child processes', async () => {
    const dir = await tempDir();
    const input = join(dir, 'input');
    await writeFiles(input, { 'two.csv': 'a,s\n1,x\n2,y\n', 'three.csv': 'a,s\n10,p\n20,q\n30,r\n' });
    // About 9 MB of text: more than one of the CSV reader's buffers at this limit.
    const many = 400_000;
    await duckdb(`COPY (SELECT i::BIGINT AS a, 'name' || (i % 1000) AS s FROM range(${many}) t(i)) TO '${join(input, 'many.csv')}' (FORMAT CSV)`);
    const module = await writeModule(dir, `
      const rows = await data.numRows();
      const table = await data.toArrow();
      const first = table.get(0).toJSON();
      let batched = 0;
      let sum = 0;
      for await (const batch of data.batches({ batchSize: 50_000 })) {
        batched += batch.numRows;
        for (const a of batch.getChild('a')) sum += Number(a);
      }
      await context.uploadToStage({ rows, whole: table.numRows, batched, sum, first: { a: Number(first.a), s: first.s } }, 'out.json');
    `);
    const expected = {
      'two.csv': { rows: 2, whole: 2, batched: 2, sum: 3, first: { a: 1, s: 'x' } },
      'three.csv': { rows: 3, whole: 3, batched: 3, sum: 60, first: { a: 10, s: 'p' } },
      'many.csv': { rows: many, whole: many, batched: many, sum: (many * (many - 1)) / 2, first: { a: 0, s: 'name0' } },
    };
    for (const isolation of ['thread', 'process'] as const) {
      const run = await new DPF(module, { stage: join(dir, 'stage') }).runFromStage({
        stageLocation: input,
        runId: isolation,
        filePattern: '*.csv',
        executionOptions: { memoryLimitMb: 48, isolation, maxRetries: 0 },
      });
      const status = await run.wait();
      const details = await run.getPartitionDetails();
      for (const [id, out] of Object.entries(expected)) {
        expect(details[id], `${isolation}: ${id}: ${details[id]?.error?.message}`).toMatchObject({ status: PartitionStatus.DONE });
        expect(await details[id]!.artifacts.get('out.json')).toEqual(out);
      }
      expect(status).toBe(RunStatus.SUCCESS);
    }
  });
});
