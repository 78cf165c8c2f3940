import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DPF, RunStatus } from 'dpf';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { duckdb, tempDir, writeFiles, writeModule } from './helpers.js';

/** Runs `body` over the files of `input` and returns what each partition uploaded as `out.json`. */
async function collect(input: Record<string, string | Uint8Array> | ((dir: string) => Promise<void>), body: string, pattern = '*'): Promise<Record<string, unknown>> {
  const dir = await tempDir();
  if (typeof input === 'function') await input(join(dir, 'input'));
  else await writeFiles(join(dir, 'input'), input);
  const module = await writeModule(dir, body);
  const run = await new DPF(module, { stage: join(dir, 'stage') }).runFromStage({
    stageLocation: join(dir, 'input'),
    runId: 'r',
    filePattern: pattern,
    executionOptions: { maxRetries: 0 },
  });
  const status = await run.wait();
  const details = await run.getPartitionDetails();
  if (status !== RunStatus.SUCCESS) {
    const errors = Object.values(details).map((d) => `${d.partitionId}: ${d.error?.message}`);
    throw new Error(`run failed: ${errors.join('; ')}`);
  }
  const out: Record<string, unknown> = {};
  for (const [id, d] of Object.entries(details)) out[id] = await d.artifacts.get('out.json');
  return out;
}

const SUMMARY = `
  const table = await data.toArrow();
  const records = await data.toRecords();
  await context.uploadToStage({
    rows: table.numRows,
    numRows: await data.numRows(),
    fields: (await data.schema()).fields.map((f) => f.name + ':' + String(f.type)),
    first: records[0],
  }, 'out.json');
`;

describe('DataConnector', () => {
  it('reads Parquet, CSV, TSV, JSON, NDJSON and Arrow IPC files as Arrow tables with their column types', async () => {
    const write = async (dir: string): Promise<void> => {
      await writeFiles(dir, {
        'c.csv': 'id,name,score\n1,ann,1.5\n2,bob,2.5\n',
        't.tsv': 'id\tname\n1\tann\n',
        'j.json': '[{"id": 1, "name": "ann"}, {"id": 2, "name": "bob"}]',
        'n.ndjson': '{"id": 1, "name": "ann"}\n{"id": 2, "name": "bob"}\n{"id": 3, "name": "cy"}\n',
        'a.arrow': tableToIPC(tableFromArrays({ id: Int32Array.from([7, 8]), name: ['x', 'y'] }), 'file'),
      });
      await duckdb(`COPY (SELECT 42::BIGINT AS id, 'q' AS name, DATE '2024-03-01' AS day, 1.25::DECIMAL(9,2) AS price, true AS ok)
                    TO '${join(dir, 'p.parquet')}' (FORMAT PARQUET)`);
    };
    const out = (await collect(write, SUMMARY)) as Record<string, { rows: number; numRows: number; fields: string[]; first: Record<string, unknown> }>;
    expect(out['c.csv']).toEqual({ rows: 2, numRows: 2, fields: ['id:Int64', 'name:Utf8', 'score:Float64'], first: { id: 1, name: 'ann', score: 1.5 } });
    expect(out['t.tsv']!.first).toEqual({ id: 1, name: 'ann' });
    expect(out['j.json']).toMatchObject({ rows: 2, numRows: 2, first: { id: 1, name: 'ann' } });
    expect(out['n.ndjson']).toMatchObject({ rows: 3, numRows: 3 });
    expect(out['a.arrow']).toEqual({ rows: 2, numRows: 2, fields: ['id:Int32', 'name:Dictionary<Int32, Utf8>'], first: { id: 7, name: 'x' } });
    expect(out['p.parquet']!.fields).toEqual(['id:Int64', 'name:Utf8', 'day:Date32<DAY>', 'price:Decimal[9e+2]', 'ok:Bool']);
    expect(out['p.parquet']!.first).toEqual({ id: 42, name: 'q', day: '2024-03-01T00:00:00.000Z', price: 1.25, ok: true });
  });

  it('streams a file in bounded batches and counts its rows', async () => {
    const write = async (dir: string): Promise<void> => {
      await mkdir(dir, { recursive: true });
      await duckdb(`COPY (SELECT i AS id, i * 2 AS twice FROM range(200000) t(i)) TO '${join(dir, 'big.parquet')}' (FORMAT PARQUET)`);
    };
    const out = await collect(
      write,
      `
      let rows = 0, batches = 0, largest = 0, sum = 0n;
      for await (const batch of data.batches({ batchSize: 10000 })) {
        rows += batch.numRows; batches++; largest = Math.max(largest, batch.numRows);
        for (const value of batch.getChild('twice')) sum += value;
      }
      await context.uploadToStage({ rows, batches, largest, sum: String(sum) }, 'out.json');
    `,
    );
    const result = out['big.parquet'] as { rows: number; batches: number; largest: number; sum: string };
    expect(result.rows).toBe(200000);
    expect(result.batches).toBeGreaterThanOrEqual(20);
    expect(result.largest).toBeLessThan(10000 + 2048);
    expect(result.sum).toBe(String(199999n * 200000n));
  });

  it('reads NULLs among long and short strings exactly (a NULL string\'s bytes are never read)', async () => {
    const write = async (dir: string): Promise<void> => {
      await mkdir(dir, { recursive: true });
      await duckdb(`COPY (SELECT i, CASE WHEN i % 3 = 0 THEN NULL WHEN i % 3 = 1 THEN 'short' || i ELSE repeat('long string ', 3) || i END AS s
                    FROM range(20000) t(i)) TO '${join(dir, 'strings.parquet')}' (FORMAT PARQUET)`);
    };
    const out = await collect(
      write,
      `
      const records = await data.toRecords();
      const wrong = records.filter((r) => r.s !== (r.i % 3 === 0 ? null : r.i % 3 === 1 ? 'short' + r.i : 'long string '.repeat(3) + r.i));
      await context.uploadToStage({ rows: records.length, wrong: wrong.length }, 'out.json');
    `,
    );
    expect(out['strings.parquet']).toEqual({ rows: 20000, wrong: 0 });
  });

  it('gives columns as typed arrays, nulls of numeric columns as NaN', async () => {
    const out = await collect(
      { 'x.csv': 'i,f,s\n1,1.5,a\n2,,b\n3,3.5,\n' },
      `
      const columns = await data.toColumns();
      await context.uploadToStage({
        kinds: Object.fromEntries(Object.entries(columns).map(([k, v]) => [k, v.constructor.name])),
        f: Array.from(columns.f, (v) => (Number.isNaN(v) ? 'NaN' : v)),
        i: Array.from(columns.i),
        s: columns.s,
      }, 'out.json');
    `,
    );
    expect(out['x.csv']).toEqual({ kinds: { i: 'Float64Array', f: 'Float64Array', s: 'Array' }, f: [1.5, 'NaN', 3.5], i: [1, 2, 3], s: ['a', 'b', null] });
  });

  it('reads nothing before the function asks: a file that is not a table still runs when only its bytes are read', async () => {
    const out = await collect(
      { 'image.png': Buffer.from([0x89, 0x50, 0x4e, 0x47]), 'broken.parquet': 'not parquet at all' },
      `
      const chunks = [];
      for await (const chunk of data.stream()) chunks.push(chunk);
      const bytes = await data.bytes();
      await context.uploadToStage({ path: data.path.endsWith(context.partitionId), size: bytes.length, streamed: Buffer.concat(chunks).length }, 'out.json');
    `,
    );
    expect(out['image.png']).toEqual({ path: true, size: 4, streamed: 4 });
    expect(out['broken.parquet']).toEqual({ path: true, size: 18, streamed: 18 });
  });

  it('fails the partition with a DataFormatError that names the file when it is not a table', async () => {
    const dir = await tempDir();
    await writeFiles(join(dir, 'input'), { 'broken.parquet': 'not parquet at all', 'photo.png': 'png' });
    const module = await writeModule(dir, `await data.toArrow();`);
    const run = await new DPF(module, { stage: join(dir, 'stage') }).runFromStage({
      stageLocation: join(dir, 'input'),
      runId: 'r',
      filePattern: '*',
      executionOptions: { maxRetries: 0 },
    });
    expect(await run.wait()).toBe(RunStatus.FAILURE);
    const details = await run.getPartitionDetails();
    expect(details['broken.parquet']!.error).toMatchObject({ name: 'DataFormatError', message: expect.stringContaining('broken.parquet') });
    expect(details['photo.png']!.error).toMatchObject({ name: 'DataFormatError', message: expect.stringContaining('data.bytes()') });
  });
});

describe('a file DuckDB fails to read midway', () => {
  // 200,000 good rows, then a line of 3 MB: longer than DuckDB's CSV reader takes. Its stream
  // used to end at the failure as if the file were over, and batches() gave the rows before it.
  const lines = ['i,x', ...Array.from({ length: 200_000 }, (_, i) => `${i},${i % 7}`), `200000,${'y'.repeat(3 * 1024 * 1024)}`];

  it.each(['batches', 'toArrow'])('fails the partition through %s() with an error naming the file, never passing fewer rows off as all', async (read) => {
    const dir = await tempDir();
    await writeFiles(join(dir, 'input'), { 'long-line.csv': lines.join('\n') + '\n' });
    const module = await writeModule(
      dir,
      read === 'batches' ? `let rows = 0; for await (const batch of data.batches()) rows += batch.numRows; await context.uploadToStage({ rows }, 'out.json');` : `await context.uploadToStage({ rows: (await data.toArrow()).numRows }, 'out.json');`,
    );
    const run = await new DPF(module, { stage: join(dir, 'stage') }).runFromStage({ stageLocation: join(dir, 'input'), runId: 'r', filePattern: '*.csv', executionOptions: { maxRetries: 0 } });
    expect(await run.wait()).toBe(RunStatus.FAILURE);
    const partition = (await run.getPartitionDetails())['long-line.csv']!;
    expect(partition.error).toMatchObject({ name: 'DataFormatError', message: expect.stringContaining('long-line.csv') });
    const message = partition.error!.message;
    if (read === 'batches') {
      // Streamed: the error says where the stream stopped, why it likely did, and what to do.
      expect(message).toMatch(/DuckDB stopped streaming the rows after [\d,]+ of them \(it failed at or after that row\)/);
      expect(message).toContain("a line longer than the CSV reader's max_line_size — fix that line of the file");
      expect(message).toContain('running out of memory under executionOptions.memoryLimitMb — raise it');
      expect(message).toContain('Maximum line size of 2000000 bytes exceeded');
    }
    // The 3 MB line DuckDB quotes is cut, not copied into the error.
    expect(message.length).toBeLessThan(20_000);
    expect(message).toMatch(/yyy… \([\d,]+ characters\)/);
    expect(await partition.artifacts.list()).toEqual([]);
  });
});

describe('columns and keys that are JavaScript names', () => {
  it('are own properties of records and columns (__proto__, constructor)', async () => {
    const dir = await tempDir();
    const module = await writeModule(dir, `
      const [record] = await data.toRecords();
      const columns = await data.toColumns();
      const own = (value) => Object.getOwnPropertyNames(value).map((name) => name + '=' + JSON.stringify(Object.getOwnPropertyDescriptor(value, name).value));
      await context.uploadToStage({
        record: own(record), columns: Object.getOwnPropertyNames(columns), column: Array.from(columns['__proto__']),
        prototypes: [record, columns].map((value) => Object.getPrototypeOf(value) === Object.prototype),
      }, 'out.json');
    `);
    const run = await new DPF(module, { stage: join(dir, 'stage') }).run({
      partitionBy: 'k',
      source: `SELECT 'a' AS k, 1 AS "__proto__", 2 AS "constructor"`,
      runId: 'names',
      executionOptions: { maxRetries: 0 },
    });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    expect(await (await run.getPartitionDetails())['a']!.artifacts.get('out.json')).toEqual({
      record: ['k="a"', '__proto__=1', 'constructor=2'],
      columns: ['k', '__proto__', 'constructor'],
      column: [1],
      prototypes: [true, true],
    });
  });
});
