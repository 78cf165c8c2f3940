import { readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DPF, DPFRun, InvalidOptionError, PartitionStatus, RunStatus, SourceError } from 'dpf';
import { tableFromArrays } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { duckdb, listFiles, POSTGRES_URL, postgres, tempDir, uniqueName, writeFiles, writeModule } from './helpers.js';

/** A module that saves what it saw of its partition as `seen.json`. */
const SEE = `
  const table = await data.toArrow();
  const records = await data.toRecords();
  const key = context.partitionKey;
  await context.uploadToStage({
    id: context.partitionId,
    key: key instanceof Date ? { date: key.toISOString() } : typeof key === 'bigint' ? { bigint: String(key) } : Array.isArray(key) ? key.map(String) : key,
    keyType: key === null ? 'null' : key instanceof Date ? 'Date' : Array.isArray(key) ? 'array' : typeof key,
    rows: table.numRows,
    numRows: await data.numRows(),
    fields: (await data.schema()).fields.map((f) => f.name + ':' + String(f.type)),
    first: records[0],
    path: data.path ?? null,
  }, 'seen.json');
`;

async function runDataFrame(options: Record<string, unknown>, body = SEE) {
  const dir = await tempDir();
  const module = await writeModule(dir, body);
  const dpf = new DPF(module, { stage: join(dir, 'stage') });
  const run = await dpf.run({ runId: 'df', executionOptions: { maxRetries: 0 }, ...options } as never);
  const status = await run.wait();
  const details = await run.getPartitionDetails();
  const seen: Record<string, Record<string, unknown>> = {};
  for (const [id, d] of Object.entries(details)) {
    if ((await d.artifacts.list()).includes('seen.json')) seen[id] = (await d.artifacts.get('seen.json')) as Record<string, unknown>;
  }
  return { dir, dpf, run, status, details, seen, stage: join(dir, 'stage') };
}

describe('DataFrame mode', () => {
  it('makes each distinct value one partition holding exactly its rows, with the column types kept', async () => {
    const dir = await tempDir();
    const file = join(dir, 'sales.parquet');
    await duckdb(`COPY (
      SELECT (i % 7)::INTEGER AS store, i::BIGINT AS id, i * 0.5::DOUBLE AS amount, (i % 100 / 10)::DECIMAL(10, 2) AS price,
             'item-' || (i % 13) AS item, i % 2 = 0 AS even, DATE '2024-01-01' + (i % 30)::INTEGER AS day,
             TIMESTAMP '2024-01-01 00:00:00' + INTERVAL (i) MINUTE AS at, CASE WHEN i % 5 = 0 THEN NULL ELSE i END AS maybe
      FROM range(10000) t(i)) TO '${file}' (FORMAT PARQUET)`);
    const { status, seen, run } = await runDataFrame({ partitionBy: 'store', source: `SELECT * FROM '${file}'` });
    expect(status).toBe(RunStatus.SUCCESS);
    expect(Object.keys(seen).sort()).toEqual(['0', '1', '2', '3', '4', '5', '6']);
    expect(seen['3']).toMatchObject({ id: '3', key: 3, keyType: 'number', rows: 1429, numRows: 1429, path: null });
    expect(seen['3']!.fields).toEqual([
      'store:Int32', 'id:Int64', 'amount:Float64', 'price:Decimal[10e+2]', 'item:Utf8', 'even:Bool', 'day:Date32<DAY>', 'at:Timestamp<MICROSECOND>', 'maybe:Int64',
    ]);
    expect(seen['3']!.first).toMatchObject({ store: 3, item: expect.stringMatching(/^item-/), even: expect.any(Boolean) });

    // Each partition's rows are exactly the source's rows with that key: compare an aggregate.
    const sums = await run.query('SELECT partition_id, status, attempts, num_rows FROM partitions ORDER BY partition_id');
    expect(sums.toArray().map((row) => row.toJSON())[3]).toEqual({ partition_id: '3', status: 'DONE', attempts: 1, num_rows: 1429 });
    const expected = await duckdb<{ store: number; n: bigint }>(`SELECT store, count(*) AS n FROM '${file}' GROUP BY store ORDER BY store`);
    const details = await run.getPartitionDetails();
    for (const row of expected) expect(details[String(row.store)]!.numRows).toBe(Number(row.n));
  });

  it('keeps NULL, mixed-case and odd keys apart, each in its own safe folder', async () => {
    const keys = ['ATL', 'atl', 'Atl', null, 'null', 'a/b', '..', '', '_dpf', 'ünï', 'x%41'];
    const records = keys.flatMap((key, i) => Array.from({ length: i + 1 }, (_, j) => ({ code: key, n: j })));
    const { status, seen, stage, details } = await runDataFrame({ partitionBy: 'code', source: records, executionOptions: { maxRetries: 0, packSmallArtifacts: false } });
    expect(status).toBe(RunStatus.SUCCESS);
    expect(Object.keys(seen).sort()).toEqual(['', '..', 'ATL', 'Atl', '_dpf', 'a/b', 'atl', 'null', 'null#2', 'x%41', 'ünï'].sort());
    expect(seen['null#2']).toMatchObject({ key: null, keyType: 'null', rows: 4 });
    expect(seen['null']).toMatchObject({ key: 'null', keyType: 'string', rows: 5 });
    expect(seen['Atl']).toMatchObject({ key: 'Atl', rows: 3 });
    expect(seen['a/b']).toMatchObject({ key: 'a/b', rows: 6 });
    // One folder per partition, all inside the run, the run's state untouched.
    const files = (await listFiles(join(stage, 'df'))).filter((file) => file.endsWith('/seen.json'));
    expect(new Set(files.map((file) => file.slice(0, -'/seen.json'.length))).size).toBe(keys.length);
    expect(files.every((file) => !file.startsWith('_dpf/'))).toBe(true);
    expect(Object.keys(details)).toHaveLength(keys.length);
  });

  it('partitions by several columns, naming partitions like Hive paths with typed keys', async () => {
    const source = tableFromArrays({ region: ['EU', 'EU', 'US', 'EU'], store: Int32Array.from([1, 2, 1, 1]), amount: Float64Array.from([1, 2, 3, 4]) });
    const { status, seen } = await runDataFrame({ partitionBy: ['region', 'store'], source });
    expect(status).toBe(RunStatus.SUCCESS);
    expect(Object.keys(seen).sort()).toEqual(['region=EU/store=1', 'region=EU/store=2', 'region=US/store=1']);
    expect(seen['region=EU/store=1']).toMatchObject({ key: ['EU', '1'], keyType: 'array', rows: 2 });
  });

  it('gives typed keys: bigint, boolean, Date, number', async () => {
    const typed = await runDataFrame({ partitionBy: ['big'], source: 'SELECT 10000000000::BIGINT AS big, 1 AS x' });
    expect(typed.seen['10000000000']).toMatchObject({ key: { bigint: '10000000000' }, keyType: 'bigint' });
    const flags = await runDataFrame({ partitionBy: 'flag', source: 'SELECT i % 2 = 0 AS flag FROM range(4) t(i)' });
    expect(flags.seen['true']).toMatchObject({ key: true, keyType: 'boolean', rows: 2 });
    const days = await runDataFrame({ partitionBy: 'day', source: "SELECT DATE '2024-02-29' AS day, 1.5::DECIMAL(4,1) AS price" });
    expect(days.seen['2024-02-29']).toMatchObject({ key: { date: '2024-02-29T00:00:00.000Z' }, keyType: 'Date' });
    const prices = await runDataFrame({ partitionBy: 'price', source: 'SELECT 1.50::DECIMAL(4,2) AS price' });
    expect(prices.seen['1.50']).toMatchObject({ key: 1.5, keyType: 'number' });
  });

  it('reads a table of a DuckDB database file', async () => {
    const dir = await tempDir();
    const database = join(dir, 'warehouse.duckdb');
    await duckdb(`ATTACH '${database}' AS w; CREATE TABLE w.sales AS SELECT i % 3 AS region, i AS amount FROM range(30) t(i); DETACH w;`);
    const { status, seen } = await runDataFrame({ partitionBy: 'region', source: 'sales', database });
    expect(status).toBe(RunStatus.SUCCESS);
    expect(Object.keys(seen).sort()).toEqual(['0', '1', '2']);
    expect(seen['1']!.rows).toBe(10);
  });

  it('reads a PostgreSQL query once, keeping its column types (needs PostgreSQL on 127.0.0.1:5432)', async () => {
    const table = uniqueName('dpf_source');
    await postgres(`CREATE TABLE ${table} AS SELECT (i % 4)::int AS shop, i::bigint AS id, (i * 1.25)::numeric(10,2) AS price, 'name ' || i AS name,
      i % 2 = 0 AS even, DATE '2024-01-01' + i AS day, TIMESTAMP '2024-01-01 10:00' + i * INTERVAL '1 hour' AS at,
      CASE WHEN i % 3 = 0 THEN NULL ELSE 'x,"y"' END AS tricky FROM generate_series(1, 40) i`);
    try {
      const { status, seen } = await runDataFrame({ partitionBy: 'shop', orderBy: 'id', source: { postgres: POSTGRES_URL, query: `SELECT * FROM ${table}` } });
      expect(status).toBe(RunStatus.SUCCESS);
      expect(Object.keys(seen).sort()).toEqual(['0', '1', '2', '3']);
      expect(seen['1']).toMatchObject({ key: 1, rows: 10 });
      expect(seen['1']!.fields).toEqual([
        'shop:Int32', 'id:Int64', 'price:Decimal[10e+2]', 'name:Utf8', 'even:Bool', 'day:Date32<DAY>', 'at:Timestamp<MICROSECOND>', 'tricky:Utf8',
      ]);
      expect(seen['1']!.first).toMatchObject({ shop: 1, id: 1, price: 1.25, name: 'name 1', even: false, day: '2024-01-02T00:00:00.000Z', at: '2024-01-01T11:00:00.000Z', tricky: 'x,"y"' });
    } finally {
      await postgres(`DROP TABLE ${table}`);
    }
  });

  it('plans once: the run finishes, restores, resumes and reruns chosen partitions after the source is gone', async () => {
    const dir = await tempDir();
    const file = join(dir, 'events.csv');
    await duckdb(`COPY (SELECT 'k' || (i % 5) AS k, i AS v FROM range(50) t(i)) TO '${file}' (HEADER)`);
    const stage = join(dir, 'stage');
    // The function fails k3 while the bug (a marker file) is there; the fix removes it.
    const bug = join(dir, 'bug');
    await writeFiles(dir, { bug: '' });
    const flaky = await writeModule(dir, `if (context.partitionKey === 'k3' && fs.existsSync(${JSON.stringify(bug)})) throw new Error('k3 fails'); await context.uploadToStage({ rows: (await data.toArrow()).numRows, key: context.partitionKey }, 'r.json');`, { prelude: "import fs from 'node:fs';" });
    const run = await new DPF(flaky, { stage }).run({ partitionBy: 'k', source: `SELECT * FROM read_csv('${file}')`, runId: 'once', executionOptions: { maxRetries: 0 } });
    await rm(file);
    expect(await run.wait()).toBe(RunStatus.PARTIAL_FAILURE);
    const failed = (await (await DPFRun.restoreFrom('once', stage)).getProgress()).FAILED.map((d) => d.partitionId);
    expect(failed).toEqual(['k3']);

    await rm(bug);
    const rerun = await new DPF(flaky, { stage }).run({ partitionBy: 'k', runId: 'once', partitionIds: failed, onExistingArtifacts: 'resume' });
    expect(await rerun.wait()).toBe(RunStatus.SUCCESS);
    const details = await rerun.getPartitionDetails();
    expect(details['k3']).toMatchObject({ status: PartitionStatus.DONE, attempts: 2 });
    expect(details['k0']).toMatchObject({ status: PartitionStatus.DONE, attempts: 1 });
    expect(await details['k3']!.artifacts.get('r.json')).toEqual({ rows: 10, key: 'k3' });
  });

  it('answers results queries with the types the function wrote: JS numbers as numbers, bigints of Arrow and Parquet as bigints', async () => {
    const body = `
      const rows = (await data.toArrow()).numRows;
      const total = rows * 1.5 * 1000;
      await context.uploadToStage({ rows, total, mean: total / 7, nested: { count: rows, list: [1, 2] } }, 'summary.json');
      await context.uploadToStage([{ rows, total }, { rows: rows + 1, total: 0 }], 'lines.ndjson');
      await context.uploadToStage(rows, 'count.json');
      await context.uploadToStage([{ rows, total, big: BigInt(rows) * 10n ** 15n }], 'summary.parquet');
      await context.uploadToStage([{ rows, total }], 'summary.csv');
    `;
    const { run } = await runDataFrame({ partitionBy: 'k', source: "SELECT 'k' || (i % 2) AS k FROM range(10) t(i)" }, body);
    const rows = async (sql: string, views: Record<string, string> = {}) => (await run.query(sql, views)).toArray().map((row) => row.toJSON());
    expect(await rows('SELECT partition_id, rows, total, nested FROM s ORDER BY partition_id', { s: 'summary.json' })).toEqual([
      { partition_id: 'k0', rows: 5, total: 7500, nested: expect.objectContaining({ count: 5 }) },
      { partition_id: 'k1', rows: 5, total: 7500, nested: expect.objectContaining({ count: 5 }) },
    ]);
    const [nested] = await rows('SELECT nested.list AS list, sum(total) OVER () AS sum FROM s LIMIT 1', { s: 'summary.json' });
    expect(nested!.sum).toBe(15000);
    expect([...(nested!.list as Iterable<unknown>)]).toEqual([1, 2]);
    expect(await rows('SELECT rows, total FROM l ORDER BY partition_id, rows', { l: 'lines.ndjson' })).toEqual([
      { rows: 5, total: 7500 }, { rows: 6, total: 0 }, { rows: 5, total: 7500 }, { rows: 6, total: 0 },
    ]);
    expect(await rows('SELECT sum(value) AS n FROM c', { c: 'count.json' })).toEqual([{ n: 10 }]);
    expect(await rows('SELECT rows, total, big FROM p LIMIT 1', { p: 'summary.parquet' })).toEqual([{ rows: 5, total: 7500, big: 5n * 10n ** 15n }]);
    expect(await rows('SELECT rows, total FROM c LIMIT 1', { c: 'summary.csv' })).toEqual([{ rows: 5, total: 7500 }]);
    expect(await rows("SELECT num_rows, attempts FROM partitions WHERE partition_id = 'k0'")).toEqual([{ num_rows: 5, attempts: 1 }]);
  });

  it('answers a results query that names a view it was not given with the views it has, not DuckDB\'s catalog', async () => {
    const { run } = await runDataFrame({ partitionBy: 'k', source: "SELECT 'k' || (i % 2) AS k FROM range(10) t(i)" }, `await context.uploadToStage({ n: 1 }, 'summary.json'); await context.uploadToStage('x', 'notes.txt');`);
    const views = { summaries: 'summary.json' };
    await expect(run.query('SELECT * FROM summary', views)).rejects.toThrow(/^The results query names "summary", which is not one of its views; did you mean "summaries"\? Its views are: summaries, partitions — name the artifact a view reads in the second argument, e.g. run\.query\(sql, \{ summary: 'summary\.json' \}\)\nLINE 1: SELECT \* FROM summary\n/);
    await expect(run.query('SELECT * FROM view')).rejects.toThrow(/^The results query names "view", which is not one of its views; Its views are: partitions/);
    await expect(run.query('SELECT * FROM view')).rejects.not.toThrow(/pg_views/);
    await expect(run.query('SELECT nope FROM summaries', views)).rejects.toThrow(/^The results query failed: Binder Error: Referenced column "nope" not found/);
    await expect(run.query('SELECT 1', { notes: 'notes.txt' })).rejects.toThrow(/^views\.notes: "notes\.txt" is not a Parquet, Arrow, CSV or JSON artifact/);
    await expect(run.query('SELECT 1', { partitions: 'summary.json' })).rejects.toThrow(/^views\.partitions: is the view dpf gives of the run's partitions; name yours differently/);
  });

  it('orders the rows within each partition by orderBy', async () => {
    const { seen } = await runDataFrame(
      { partitionBy: 'g', orderBy: ['x DESC'], source: 'SELECT i % 3 AS g, (i * 7919) % 101 AS x FROM range(60) t(i)' },
      `await context.uploadToStage((await data.toRecords()).map((r) => r.x), 'seen.json');`,
    );
    for (const values of Object.values(seen) as unknown as number[][]) expect(values).toEqual([...values].sort((a, b) => b - a));
    const missing = runDataFrame({ partitionBy: 'g', orderBy: 'nope', source: 'SELECT 1 AS g' });
    await expect(missing).rejects.toThrow(/orderBy: Column "nope" not found/);
  });

  it('gives the function only the columns it names with `columns`, with the partition columns, in the source\'s order; a resume keeps them', async () => {
    const source = "SELECT i % 2 AS g, i AS a, 'x' || i AS b, i * 2 AS c FROM range(6) t(i)";
    const { seen, run, dpf } = await runDataFrame({ partitionBy: 'g', columns: ['c', 'A'], orderBy: 'b', source });
    expect(Object.values(seen).map((s) => s.fields)).toEqual([['g:Int64', 'a:Int64', 'c:Int64'], ['g:Int64', 'a:Int64', 'c:Int64']]);
    // Ordered by a column the function is not given.
    expect(seen['1']!.first).toEqual({ g: 1, a: 1, c: 2 });
    // Stored as the source spells them, in its order.
    expect(run.input).toMatchObject({ mode: 'dataframe', columns: ['a', 'c'] });
    // A resume may name them again, in any order and case.
    expect(await (await dpf.run({ runId: 'df', partitionBy: 'g', columns: ['c', 'A'], onExistingArtifacts: 'resume' })).wait()).toBe(RunStatus.SUCCESS);
    const resumed = dpf.run({ runId: 'df', partitionBy: 'g', columns: ['b'], onExistingArtifacts: 'resume' });
    await expect(resumed).rejects.toThrow(/columns: run "df" was planned with columns a, c, not b/);
  });

  it('hands each partition exactly its rows when the input spans several read slices and segments', async () => {
    // ~120 bytes a row: the sorted rows are read in several slices and written in several segments.
    const source = "SELECT (i * 7919) % 7 AS k, i, repeat('p', 100) || i AS pad, CASE WHEN i % 5 = 0 THEN NULL ELSE i END AS maybe FROM range(300000) t(i)";
    const { seen, status } = await runDataFrame(
      { partitionBy: 'k', source },
      `
      const { k, i, pad } = await data.toColumns();
      const maybe = (await data.toArrow()).getChild('maybe');
      let sum = 0n, foreign = 0, wrongPad = 0, wrongNull = 0;
      for (let r = 0; r < i.length; r++) {
        sum += BigInt(i[r]);
        if (String(k[r]) !== String(context.partitionKey)) foreign++;
        if (pad[r] !== 'p'.repeat(100) + i[r]) wrongPad++;
        if ((maybe.get(r) === null) !== (Number(i[r]) % 5 === 0)) wrongNull++;
      }
      await context.uploadToStage({ n: i.length, sum: String(sum), foreign, wrongPad, wrongNull, nulls: maybe.nullCount }, 'seen.json');
    `,
    );
    expect(status).toBe(RunStatus.SUCCESS);
    const direct = await duckdb<{ k: number; n: bigint; total: bigint; nulls: bigint }>(`SELECT k, count(*) AS n, sum(i) AS total, count(*) - count(maybe) AS nulls FROM (${source}) GROUP BY k ORDER BY k`);
    expect(Object.keys(seen).sort()).toEqual(direct.map((row) => String(row.k)));
    for (const row of direct) expect(seen[String(row.k)]).toEqual({ n: Number(row.n), sum: String(row.total), foreign: 0, wrongPad: 0, wrongNull: 0, nulls: Number(row.nulls) });
  });

  it('keeps a source column named rowid (DuckDB\'s row number) as data, its rows in their partitions', async () => {
    // More rows than one read slice of the sorted rows: they are read back by DuckDB's own rowid.
    const source = 'SELECT i % 3 AS k, i AS RowId FROM range(100000) t(i)';
    const { seen, status } = await runDataFrame(
      { partitionBy: 'k', source },
      `
      const table = await data.toArrow();
      const k = table.getChild('k'), id = table.getChild('RowId');
      let foreign = 0, sum = 0n;
      for (let r = 0; r < table.numRows; r++) { if (String(k.get(r)) !== String(context.partitionKey) || BigInt(id.get(r)) % 3n !== BigInt(context.partitionKey)) foreign++; sum += BigInt(id.get(r)); }
      await context.uploadToStage({ fields: table.schema.fields.map((f) => f.name), n: table.numRows, foreign, sum: String(sum) }, 'seen.json');
    `,
    );
    expect(status).toBe(RunStatus.SUCCESS);
    const direct = await duckdb<{ k: bigint; n: bigint; total: bigint }>(`SELECT k, count(*) AS n, sum(RowId) AS total FROM (${source}) GROUP BY k ORDER BY k`);
    for (const row of direct) expect(seen[String(row.k)]).toEqual({ fields: ['k', 'RowId'], n: Number(row.n), foreign: 0, sum: String(row.total) });
    // A partition column named rowid.
    const byRowid = await runDataFrame({ partitionBy: 'rowid', source: 'SELECT i % 2 AS rowid, i FROM range(10) t(i)' }, SEE);
    expect(Object.keys(byRowid.seen).sort()).toEqual(['0', '1']);
    expect(byRowid.seen['1']).toMatchObject({ rows: 5, fields: ['rowid:Int64', 'i:Int64'] });
  });

  // Big partitions: their partition columns are not written with their rows; each worker builds
  // them from the key. They must equal what DuckDB's conversion gives a column that is not a key.
  it.each([
    ['VARCHAR', "CASE WHEN i % 3 = 0 THEN NULL ELSE 'k' || (i % 3) END"],
    ['BIGINT', 'CASE WHEN i % 3 = 0 THEN NULL ELSE (i % 3) - 5 END'],
    ['INTEGER', '(i % 3)::INTEGER'],
    ['DOUBLE', '(i % 3) / 8'],
    ['BOOLEAN', 'CASE WHEN i % 3 = 0 THEN NULL ELSE (i % 3) = 1 END'],
    ['DATE', "DATE '1969-12-30' + (i % 3)::INTEGER"],
    ['TIMESTAMP', "TIMESTAMP '2024-01-01 00:00:00.123456' + (i % 3) * INTERVAL 1 HOUR"],
    ['TIMESTAMPTZ', "TIMESTAMPTZ '2024-01-01 00:00:00.5+00' + (i % 3) * INTERVAL 1 DAY"],
    ['DECIMAL(18,3)', '((i % 3) / 8)::DECIMAL(18,3)'],
    ['DECIMAL(38,10)', '((i % 3) - 1)::DECIMAL(38,10) / 3'],
    ['TIME', "TIME '10:00:00.5' + (i % 3) * INTERVAL 1 MINUTE"],
    ['BLOB', "('x' || (i % 3))::BLOB"],
  ])('gives big partitions their %s partition column as DuckDB gives any column of it', async (_, key) => {
    const { seen, status, stage } = await runDataFrame(
      { partitionBy: 'k', source: `SELECT i, ${key} AS k, ${key} AS copy FROM range(15000) t(i)` },
      `
      const table = await data.toArrow();
      const k = table.getChild('k'), copy = table.getChild('copy');
      const text = (v) => JSON.stringify(v, (_, x) => typeof x === 'bigint' ? String(x) : x instanceof Uint8Array ? Array.from(x) : x);
      let differ = 0;
      for (let r = 0; r < table.numRows; r++) if (text(k.get(r)) !== text(copy.get(r))) differ++;
      await context.uploadToStage({ fields: table.schema.fields.map((f) => f.name), type: String(k.type), copyType: String(copy.type), nulls: k.nullCount, copyNulls: copy.nullCount, differ, n: table.numRows }, 'seen.json');
    `,
    );
    expect(status).toBe(RunStatus.SUCCESS);
    const partitions = Object.values(seen) as Array<Record<string, unknown>>;
    expect(partitions).toHaveLength(3);
    for (const partition of partitions) {
      expect(partition).toMatchObject({ fields: ['i', 'k', 'copy'], type: partition.copyType, nulls: partition.copyNulls, differ: 0, n: 5000 });
    }
    // The rows were written without their partition column: this is the path under test.
    const manifest = JSON.parse(await readFile(join(stage, 'df/_dpf/input/1/manifest.json'), 'utf8')) as { keys?: { columns: unknown } };
    expect(manifest.keys?.columns).toEqual([{ name: 'k', index: 1 }]);
  });

  it('writes the partition columns with the rows of small partitions (building them would cost each partition more)', async () => {
    const { seen, stage } = await runDataFrame({ partitionBy: 'k', source: "SELECT 'k' || (i % 50) AS k, i FROM range(15000) t(i)" }, SEE);
    expect(Object.keys(seen)).toHaveLength(50);
    expect(seen['k7']).toMatchObject({ rows: 300, fields: ['k:Utf8', 'i:Int64'] });
    const manifest = JSON.parse(await readFile(join(stage, 'df/_dpf/input/1/manifest.json'), 'utf8')) as { keys?: unknown };
    expect(manifest.keys).toBeUndefined();
  });

  it('builds the columns of a composite key where they stand among the others', async () => {
    const source = "SELECT 'r' || (i % 2) AS region, i, (i % 3) AS store, i * 2 AS twice FROM range(30000) t(i)";
    const { seen, stage } = await runDataFrame({ partitionBy: ['store', 'region'], source }, SEE);
    expect(Object.keys(seen)).toHaveLength(6);
    const first = seen['store=2/region=r1'] as Record<string, unknown>;
    expect(first.fields).toEqual(['region:Utf8', 'i:Int64', 'store:Int64', 'twice:Int64']);
    expect(first.first).toMatchObject({ region: 'r1', store: 2 });
    expect((first.first as { i: number }).i % 6).toBe(5);
    const manifest = JSON.parse(await readFile(join(stage, 'df/_dpf/input/1/manifest.json'), 'utf8')) as { keys?: { columns: unknown } };
    expect(manifest.keys?.columns).toEqual([{ name: 'store', index: 2 }, { name: 'region', index: 0 }]);
  });

  it('runs only the listed partitionIds of a new run', async () => {
    const { seen, run } = await runDataFrame({ partitionBy: 'k', source: 'SELECT i % 4 AS k FROM range(20) t(i)', partitionIds: ['1', '3'] });
    expect(Object.keys(seen).sort()).toEqual(['1', '3']);
    expect(run.numPartitions).toBe(2);
  });

  it('gives the DataConnector API over the partition rows', async () => {
    const { seen } = await runDataFrame(
      { partitionBy: 'g', source: 'SELECT i % 2 AS g, i::DOUBLE AS x, CASE WHEN i = 3 THEN NULL ELSE i END AS y FROM range(10) t(i)' },
      `
      let batches = 0, rows = 0;
      for await (const batch of data.batches({ batchSize: 2 })) { batches++; rows += batch.numRows; }
      const columns = await data.toColumns();
      let bytes;
      try { await data.bytes(); } catch (error) { bytes = error.name; }
      await context.uploadToStage({ batches, rows, x: Array.from(columns.x), y: Array.from(columns.y, (v) => (Number.isNaN(v) ? null : v)), bytes }, 'seen.json');
    `,
    );
    expect(seen['1']).toEqual({ batches: 3, rows: 5, x: [1, 3, 5, 7, 9], y: [1, null, 5, 7, 9], bytes: 'DataFormatError' });
  });

  it('ends at once with SUCCESS and no partition when the source is empty', async () => {
    const { status, run } = await runDataFrame({ partitionBy: 'k', source: 'SELECT 1 AS k WHERE false' });
    expect(status).toBe(RunStatus.SUCCESS);
    expect(run.numPartitions).toBe(0);
  });

  it('answers a results query over every partition\'s artifact the same as DuckDB over the source', async () => {
    const dir = await tempDir();
    const file = join(dir, 'm.parquet');
    await duckdb(`COPY (SELECT (i * 7919) % 23 AS k, (i * 31 % 1000) / 10.0 AS v FROM range(5000) t(i)) TO '${file}' (FORMAT PARQUET)`);
    const { status, run } = await runDataFrame(
      { partitionBy: 'k', source: `SELECT * FROM '${file}'` },
      `
      const v = (await data.toColumns()).v;
      let sum = 0; for (const x of v) sum += x;
      await context.uploadToStage([{ k: context.partitionKey, n: v.length, mean: sum / v.length }], 'stats.parquet');
    `,
    );
    expect(status).toBe(RunStatus.SUCCESS);
    const fromRun = (await run.query('SELECT partition_id, k, n, mean FROM stats ORDER BY k', { stats: 'stats.parquet' })).toArray().map((row) => row.toJSON());
    const direct = await duckdb<{ k: number; n: bigint; mean: number }>(`SELECT k, count(*) AS n, avg(v) AS mean FROM '${file}' GROUP BY k ORDER BY k`);
    expect(fromRun).toHaveLength(direct.length);
    fromRun.forEach((row, i) => {
      expect(row.partition_id).toBe(String(direct[i]!.k));
      expect(Number(row.k)).toBe(Number(direct[i]!.k));
      expect(Number(row.n)).toBe(Number(direct[i]!.n));
      expect(Math.abs((row.mean as number) - direct[i]!.mean)).toBeLessThan(1e-9 * Math.abs(direct[i]!.mean));
    });
  });
});

describe('DataFrame mode refuses bad input before any work', () => {
  async function refuse(options: Record<string, unknown>, errorClass: new (...args: never[]) => Error, message: RegExp): Promise<void> {
    const dir = await tempDir();
    const module = await writeModule(dir, '');
    const stage = join(dir, 'stage');
    const attempt = new DPF(module, { stage }).run({ runId: 'bad', ...options } as never);
    await expect(attempt).rejects.toBeInstanceOf(errorClass);
    await expect(attempt).rejects.toThrow(message);
    expect(await listFiles(stage)).toEqual([]);
  }

  it('a partition column that does not exist, listing the columns there are', () =>
    refuse({ partitionBy: 'regoin', source: 'SELECT 1 AS region, 2 AS store, 3 AS amount' }, InvalidOptionError, /Column "regoin" not found in the source; its columns are: region, store, amount/));
  it('SQL that does not parse, quoting the SQL as the user wrote it', async () => {
    await refuse({ partitionBy: 'k', source: 'SELEC k FROM nowhere' }, SourceError, /syntax error at or near "SELEC"\s+LINE 1: SELEC k FROM nowhere\n/);
    await refuse({ partitionBy: 'k', source: 'SELECT k FROM (SELECT 1 AS k) t WHERE k = = 1' }, SourceError, /^(?![\s\S]*(DESCRIBE|AS source))[\s\S]*LINE 1: SELECT k FROM \(SELECT 1 AS k\) t WHERE k = = 1\n/);
  });
  it.each([
    ['data/x.parquet', "SELECT * FROM 'data/x.parquet'"],
    ['./sales/*.csv', "SELECT * FROM './sales/*.csv'"],
    ["'flights.parquet'", "SELECT * FROM 'flights.parquet'"],
    ['events.ndjson', "SELECT * FROM 'events.ndjson'"],
  ])('a bare file path %s, suggesting the SQL that reads it', (source, sql) =>
    refuse({ partitionBy: 'k', source }, InvalidOptionError, new RegExp(`^source: "${source.replace(/[.*]/g, '\\$&')}" is a file path, not SQL; .*source: "${sql.replace(/[.*]/g, '\\$&')}"$`)));
  it('a statement that returns no rows to partition', () => refuse({ partitionBy: 'k', source: 'CREATE TABLE t AS SELECT 1 AS k' }, SourceError, /must be a query that returns rows .* not a CREATE statement/));
  it('SQL over a file that does not exist', () => refuse({ partitionBy: 'k', source: "SELECT * FROM 'missing.parquet'" }, SourceError, /missing\.parquet/));
  it('an unreachable PostgreSQL', () =>
    refuse({ partitionBy: 'k', source: { postgres: 'postgres://postgres@127.0.0.1:1/test', query: 'SELECT 1 AS k' } }, SourceError, /Cannot connect to PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:1\/test/));
  it('a PostgreSQL query the server refuses (needs PostgreSQL on 127.0.0.1:5432)', async () => {
    await postgres('SELECT 1');
    await refuse({ partitionBy: 'k', source: { postgres: POSTGRES_URL, query: 'SELECT k FROM no_such_table_here' } }, SourceError, /PostgreSQL refused the source query: .*no_such_table_here/);
  });
  it('a column in `columns` the source does not have, listing the columns there are', () =>
    refuse({ partitionBy: 'k', columns: ['amount', 'amonut'], source: 'SELECT 1 AS k, 2 AS amount' }, InvalidOptionError, /columns: Column "amonut" not found in the source; its columns are: k, amount/));
  it('an empty `columns`', () => refuse({ partitionBy: 'k', columns: [], source: 'SELECT 1 AS k' }, InvalidOptionError, /columns: expected a column name/));
  it('a source of an unsupported type', () => refuse({ partitionBy: 'k', source: 42 }, InvalidOptionError, /source: cannot partition 42; give SQL text/));
  it('a table name without a database', () => refuse({ partitionBy: 'k', source: 'sales' }, InvalidOptionError, /reads as a table name, but no database is set/));
  it('no source', () => refuse({ partitionBy: 'k' }, InvalidOptionError, /source: is required/));
  it('no partition column', () => refuse({ partitionBy: [], source: 'SELECT 1 AS k' }, InvalidOptionError, /partitionBy: expected a column name/));
  it('partitionIds the source does not have', () => refuse({ partitionBy: 'k', source: 'SELECT 1 AS k', partitionIds: ['2'] }, InvalidOptionError, /partitionIds: names 1 partition\(s\) the run does not have: "2"/));
});

describe('a run whose input is still being written', () => {
  it('starts partitions as their rows land; a run stopped before its input was complete resumes with its source given again', async () => {
    const dir = await tempDir();
    const module = await writeModule(dir, `const table = await data.toArrow(); await context.uploadToStage({ rows: table.numRows, fields: table.schema.fields.map((f) => f.name) }, 'r.json');`);
    const stage = join(dir, 'stage');
    const flights = join(dirname(fileURLToPath(import.meta.resolve('vega-datasets'))), '..', 'data', 'flights-3m.parquet');
    const dpf = new DPF(module, { stage });
    // Planned with the columns the function reads: a resume that writes the rest of the input keeps them.
    const run = await dpf.run({ partitionBy: 'origin', columns: ['delay'], source: `SELECT * FROM '${flights}'`, runId: 'early' });
    await run.cancel();
    expect(run.status).toBe(RunStatus.CANCELLED);
    const doneBefore = (await run.getProgress()).DONE.map((details) => details.partitionId);
    // Without its source the input cannot be completed; with another source it would not be the same run.
    await expect(dpf.run({ partitionBy: 'origin', runId: 'early', onExistingArtifacts: 'resume' })).rejects.toThrow(/stopped before its input was fully written: give the source again/);
    await expect(dpf.run({ partitionBy: 'origin', source: `SELECT * FROM '${flights}' WHERE origin = 'ATL'`, runId: 'early', onExistingArtifacts: 'resume' })).rejects.toThrow(/source: run "early" was planned from the source .*, not .* WHERE origin = 'ATL'/);
    const resumed = await dpf.run({ partitionBy: 'origin', source: `SELECT * FROM '${flights}'`, runId: 'early', onExistingArtifacts: 'resume' });
    expect(await resumed.wait()).toBe(RunStatus.SUCCESS);
    const details = await resumed.getPartitionDetails();
    expect(Object.keys(details)).toHaveLength(229);
    for (const id of doneBefore) expect(details[id]!.attempts).toBe(1);
    expect(await details['SFO']!.artifacts.get('r.json')).toEqual({ rows: 60869, fields: ['delay', 'origin'] });
    const fields = new Set(await Promise.all(Object.values(details).map(async (d) => JSON.stringify(((await d.artifacts.get('r.json')) as { fields: string[] }).fields))));
    expect([...fields]).toEqual([JSON.stringify(['delay', 'origin'])]);
    const again = await dpf.run({ partitionBy: 'origin', source: `SELECT * FROM '${flights}' WHERE origin IN ('ATL', 'SFO')`, runId: 'early', onExistingArtifacts: 'overwrite' });
    expect(await again.wait()).toBe(RunStatus.SUCCESS);
    expect(await (await again.getPartitionDetails())['SFO']!.artifacts.get('r.json')).toEqual({ rows: 60869, fields: ['date', 'delay', 'distance', 'origin', 'destination'] });
  });
});
