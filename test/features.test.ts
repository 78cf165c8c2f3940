import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DPF, PartitionStatus, RunStatus, type SinglePartitionDetails } from 'dpf';
import { Bool, Field, Float16, Float64, Int32, type RecordBatch, Struct, Table, tableFromArrays, tableToIPC, Utf8, vectorFromArray } from 'apache-arrow';
import { afterEach, describe, expect, it } from 'vitest';
import { FileConnector } from '../src/data/file-connector.js';
import { type FeatureSource, readFeatures } from '../src/data/features.js';
import { configureMemoryLimit } from '../src/data/memory-budget.js';
import { FeatureColumnError, InvalidOptionError, PartitionTooLargeError } from '../src/errors.js';
import { duckdb, tempDir, writeFiles, writeModule } from './helpers.js';

/** A partition function body that reads `options` with toFeatures() and uploads all of what it gave. */
function featuresModule(options: object): string {
  return `
    const f = await data.toFeatures(${JSON.stringify(options)});
    await context.uploadToStage({
      data: Array.from(f.data), kind: f.data.constructor.name,
      target: f.target === undefined ? null : Array.from(f.target), targetKind: f.target?.constructor.name ?? null,
      numRows: f.numRows, numFeatures: f.numFeatures, features: f.features, dtype: f.dtype,
      droppedRows: f.droppedRows, sourceRows: f.sourceRows === undefined ? null : Array.from(f.sourceRows),
      arrays: f.toArrays(), targetArray: f.targetArray() ?? null,
      lastRow: f.numRows > 0 ? Array.from(f.row(f.numRows - 1)) : null,
    }, 'out.json');
  `;
}

interface Uploaded {
  data: number[];
  kind: string;
  target: number[] | null;
  targetKind: string | null;
  numRows: number;
  numFeatures: number;
  features: string[];
  dtype: string;
  droppedRows: number;
  sourceRows: number[] | null;
  arrays: number[][];
  targetArray: number[] | null;
  lastRow: number[] | null;
}

interface Outcome {
  status: RunStatus;
  details: Record<string, SinglePartitionDetails>;
  out: Record<string, Uploaded>;
}

async function outcomeOf(run: Awaited<ReturnType<DPF['run']>>): Promise<Outcome> {
  const status = await run.wait();
  const details = await run.getPartitionDetails();
  const out: Record<string, Uploaded> = {};
  for (const [id, d] of Object.entries(details)) if (d.status === PartitionStatus.DONE) out[id] = (await d.artifacts.get('out.json')) as Uploaded;
  return { status, details, out };
}

/** Stage mode: `write` fills the input folder; each file is a partition running `body`. */
async function stageRun(write: (input: string) => Promise<void>, body: string, executionOptions: object = { maxRetries: 0 }): Promise<Outcome> {
  const dir = await tempDir('features-');
  const input = join(dir, 'input');
  await mkdir(input, { recursive: true });
  await write(input);
  const run = await new DPF(await writeModule(dir, body), { stage: join(dir, 'stage') }).runFromStage({ stageLocation: input, runId: 'r', filePattern: '*', executionOptions });
  return outcomeOf(run);
}

/** DataFrame mode: `source` partitioned by `k`. */
async function dataFrameRun(source: string, body: string, executionOptions: object = { maxRetries: 0 }): Promise<Outcome> {
  const dir = await tempDir('features-');
  const run = await new DPF(await writeModule(dir, body), { stage: join(dir, 'stage') }).run({ partitionBy: 'k', source, runId: 'r', executionOptions });
  return outcomeOf(run);
}

/**
 * The rows of a DuckDB query as row-major numbers: each column cast to DOUBLE by DuckDB, a
 * decimal read from its digits (the nearest double of its exact value, which DuckDB's cast misses
 * by an ulp past 2^64).
 */
async function doublesOf(sql: string, columns: readonly string[]): Promise<number[][]> {
  const select = columns
    .map((column, i) => `CAST("${column}" AS DOUBLE) AS c${i}, CASE WHEN typeof("${column}") LIKE 'DECIMAL%' THEN CAST("${column}" AS VARCHAR) END AS t${i}`)
    .join(', ');
  const rows = await duckdb<Record<string, number | string | null>>(`SELECT ${select} FROM (${sql})`);
  return rows.map((row) => columns.map((_, i) => (row[`t${i}`] !== null ? Number(row[`t${i}`]) : (row[`c${i}`] as number))));
}

/** Every numeric kind toFeatures() takes, as DuckDB writes it to Parquet (a HUGEINT as a DOUBLE; d38big past 64 bits): ids -50…49. */
const NUMERIC_KINDS = `
  SELECT i AS id, i::TINYINT AS i8, (i * 300)::SMALLINT AS i16, (i * 100000)::INTEGER AS i32,
         (i * 3000000007)::BIGINT AS i64, abs(i)::UTINYINT AS u8, (abs(i) * 1300)::USMALLINT AS u16,
         (abs(i) * 80000001)::UINTEGER AS u32, (abs(i) * 400000000000007)::UBIGINT AS u64,
         (i / 7)::FLOAT AS f32, (i / 7)::DOUBLE AS f64, (i * 1.25)::DECIMAL(9, 2) AS d9,
         (i / 3)::DECIMAL(18, 6) AS d18, (i / 3)::DECIMAL(38, 10) AS d38, (i * 123456789)::HUGEINT AS h,
         CAST('12345678901234567890123.45' AS DECIMAL(38, 2)) * i AS d38big,
         i % 2 = 0 AS b, 'x' || i AS s, DATE '2024-01-01' + i::INTEGER AS day, (i * 0.5)::DOUBLE AS y
  FROM range(-50, 50) t(i)`;
const NUMERIC_COLUMNS = ['id', 'i8', 'i16', 'i32', 'i64', 'u8', 'u16', 'u32', 'u64', 'f32', 'f64', 'd9', 'd18', 'd38', 'd38big', 'h', 'b'];

describe('toFeatures() in stage mode', () => {
  it('gives every numeric kind of a Parquet file as the nearest doubles of its values, row-major, with the target', async () => {
    const { status, details, out } = await stageRun(
      (input) => duckdb(`COPY (${NUMERIC_KINDS}) TO '${join(input, 'p.parquet')}' (FORMAT PARQUET)`).then(() => undefined),
      featuresModule({ features: NUMERIC_COLUMNS, target: 'y' }),
    );
    expect(status, JSON.stringify(details)).toBe(RunStatus.SUCCESS);
    const expected = await doublesOf(NUMERIC_KINDS, NUMERIC_COLUMNS);
    const targets = (await doublesOf(NUMERIC_KINDS, ['y'])).map(([y]) => y!);
    const got = out['p.parquet']!;
    expect(got).toMatchObject({ kind: 'Float64Array', targetKind: 'Float64Array', dtype: 'float64', numRows: 100, numFeatures: NUMERIC_COLUMNS.length, features: NUMERIC_COLUMNS, droppedRows: 0, sourceRows: null });
    expect(got.arrays).toEqual(expected);
    expect(got.data).toEqual(expected.flat());
    expect(got.lastRow).toEqual(expected[99]);
    expect(got.target).toEqual(targets);
    expect(got.targetArray).toEqual(targets);
    expect(details['p.parquet']!.numRows).toBe(100);
  });

  it("gives float32 values with dtype: 'float32', each the nearest float of the double", async () => {
    const columns = ['i64', 'f64', 'd38', 'b'];
    const { out } = await stageRun(
      (input) => duckdb(`COPY (${NUMERIC_KINDS}) TO '${join(input, 'p.parquet')}' (FORMAT PARQUET)`).then(() => undefined),
      featuresModule({ features: columns, target: 'y', dtype: 'float32' }),
    );
    const expected = (await doublesOf(NUMERIC_KINDS, columns)).map((row) => row.map(Math.fround));
    const got = out['p.parquet']!;
    expect(got).toMatchObject({ kind: 'Float32Array', targetKind: 'Float32Array', dtype: 'float32' });
    expect(got.arrays).toEqual(expected);
    expect(got.target).toEqual((await doublesOf(NUMERIC_KINDS, ['y'])).map(([y]) => Math.fround(y!)));
  });

  it('reads CSV and Arrow IPC files, and files of many batches (Parquet of known rows, CSV of unknown), in order', async () => {
    const rows = 150_000;
    const source = `SELECT i AS a, i * 0.25 AS b, i % 3 AS c, (i % 5 = 0) AS d FROM range(${rows}) t(i)`;
    const arrowRows = (offset: number): Record<string, Float64Array | Int32Array> => ({
      a: Int32Array.from({ length: 1000 }, (_, i) => offset + i),
      b: Float64Array.from({ length: 1000 }, (_, i) => (offset + i) * 0.25),
    });
    const { status, details, out } = await stageRun(async (input) => {
      await duckdb(`COPY (${source}) TO '${join(input, 'big.parquet')}' (FORMAT PARQUET, ROW_GROUP_SIZE 20000)`);
      await duckdb(`COPY (${source}) TO '${join(input, 'big.csv')}' (HEADER)`);
      // Three record batches of an Arrow stream.
      const tables = [0, 1000, 2000].map((offset) => tableFromArrays(arrowRows(offset)));
      const batches = tables.flatMap((table) => table.batches);
      await writeFile(join(input, 'three.arrows'), tableToIPC(new Table(batches), 'stream'));
    }, `
      const name = context.partitionId;
      const f = await data.toFeatures({ features: name.endsWith('arrows') ? ['a', 'b'] : ['a', 'b', 'c', 'd'] });
      let wrong = 0;
      for (let r = 0; r < f.numRows; r++) {
        const row = f.row(r);
        if (row[0] !== r || row[1] !== r * 0.25 || (f.numFeatures === 4 && (row[2] !== r % 3 || row[3] !== (r % 5 === 0 ? 1 : 0)))) wrong++;
      }
      let batches = 0;
      for await (const _ of data.batches()) batches++;
      await context.uploadToStage({ numRows: f.numRows, length: f.data.length, bufferBytes: f.data.buffer.byteLength, wrong, batches }, 'out.json');
    `);
    expect(status, JSON.stringify(details)).toBe(RunStatus.SUCCESS);
    for (const name of ['big.parquet', 'big.csv']) {
      const got = out[name] as unknown as { numRows: number; length: number; bufferBytes: number; wrong: number; batches: number };
      expect(got, name).toMatchObject({ numRows: rows, length: rows * 4, bufferBytes: rows * 4 * 8, wrong: 0 });
      expect(got.batches, name).toBeGreaterThan(1);
    }
    expect(out['three.arrows']).toMatchObject({ numRows: 3000, length: 6000, bufferBytes: 6000 * 8, wrong: 0, batches: 3 });
  });

  it('fails a partition with a null in a feature, naming the column and row, without retrying it', async () => {
    const { status, details } = await stageRun(
      (input) => writeFiles(input, { 'gaps.csv': 'a,b,y\n1,2,3\n4,,6\n7,8,9\n' }),
      featuresModule({ features: ['a', 'b'], target: 'y' }),
      { maxRetries: 2, retryBackoffMs: 0 },
    );
    expect(status).toBe(RunStatus.FAILURE);
    const failed = details['gaps.csv']!;
    expect(failed).toMatchObject({ status: PartitionStatus.FAILED, attempts: 1, error: { name: 'FeatureColumnError', retryable: false } });
    expect(failed.error!.message).toContain('column "b" has a null at row 1 (0-based)');
    expect(failed.error!.message).toContain("nulls: 'drop'");
  });

  it('fails a partition whose columns are missing or not numeric, naming them, their types and what to do', async () => {
    const { details } = await stageRun(
      (input) => duckdb(`COPY (${NUMERIC_KINDS}) TO '${join(input, 'p.parquet')}' (FORMAT PARQUET)`).then(() => undefined),
      featuresModule({ features: ['i32', 's', 'day'], target: 'y' }),
    );
    const error = details['p.parquet']!.error!;
    expect(error).toMatchObject({ name: 'FeatureColumnError', retryable: false });
    expect(error.message).toContain('These columns are not numeric: "s" (Utf8), "day" (Date32<DAY>)');
    expect(error.message).toContain('CAST(x AS DOUBLE)');
    expect(error.message).toContain('epoch(ts)');
  });
});

describe('toFeatures() in DataFrame mode', () => {
  const SOURCE = `
    SELECT CASE WHEN i < 60 THEN 'one' ELSE 'two' END AS k, i AS id, i::BIGINT * 3 AS big, (i * 1.5)::DECIMAL(10, 1) AS price,
           i::HUGEINT * 1000 AS huge, i % 4 = 0 AS flag, CASE WHEN i % 10 = 3 THEN NULL ELSE i / 4 END AS maybe,
           CASE WHEN i % 25 = 7 THEN NULL ELSE i * 2.0 END AS y
    FROM range(100) t(i)`;

  it("gives each partition's features, as DuckDB casts them; nulls: 'drop' leaves out the rows with a null and says which were kept", async () => {
    const columns = ['id', 'big', 'price', 'huge', 'flag', 'maybe'];
    const { status, details, out } = await dataFrameRun(SOURCE, featuresModule({ features: columns, target: 'y', nulls: 'drop' }));
    expect(status, JSON.stringify(details)).toBe(RunStatus.SUCCESS);
    for (const key of ['one', 'two']) {
      const complete = `SELECT * FROM (${SOURCE}) WHERE k = '${key}' AND maybe IS NOT NULL AND y IS NOT NULL ORDER BY id`;
      const expected = await doublesOf(complete, columns);
      const all = await duckdb<{ n: bigint }>(`SELECT count(*) AS n FROM (${SOURCE}) WHERE k = '${key}'`);
      const got = out[key]!;
      // Sorted by id (the first feature): a partition's rows come in no promised order.
      const order = got.arrays.map((row, i) => [row[0]!, i] as const).sort((p, q) => p[0] - q[0]).map(([, i]) => i);
      expect(order.map((i) => got.arrays[i])).toEqual(expected);
      expect(order.map((i) => got.target![i])).toEqual((await doublesOf(complete, ['y'])).map(([y]) => y));
      expect(got.numRows).toBe(expected.length);
      expect(got.droppedRows).toBe(Number(all[0]!.n) - expected.length);
      expect(got.droppedRows).toBeGreaterThan(0);
      // sourceRows: each kept row's place among the partition's rows, increasing.
      expect(got.sourceRows).toHaveLength(got.numRows);
      expect([...got.sourceRows!].sort((p, q) => p - q)).toEqual(got.sourceRows);
      expect(got.sourceRows![got.numRows - 1]).toBeLessThan(got.numRows + got.droppedRows);
    }
  });

  it("fails with nulls: 'error' (the default) at a null target, naming it", async () => {
    const { details } = await dataFrameRun(SOURCE, featuresModule({ features: ['id', 'big'], target: 'y' }));
    for (const key of ['one', 'two']) {
      expect(details[key]!.error).toMatchObject({ name: 'FeatureColumnError', retryable: false });
      expect(details[key]!.error!.message).toMatch(/^partition "(one|two)": column "y" has a null at row \d+ \(0-based\)/);
    }
  });

  it('names a missing column and the columns the partition has', async () => {
    const { details } = await dataFrameRun(SOURCE, featuresModule({ features: ['id', 'prise'] }));
    expect(details['one']!.error!.message).toBe(
      `partition "one" has no column "prise"; its columns are "k", "id", "big", "price", "huge", "flag", "maybe", "y".`,
    );
  });
});

describe('toFeatures() on a file, read directly', () => {
  it('checks the options and the columns before it reads a row', async () => {
    const dir = await tempDir('features-');
    await writeFiles(dir, { 'x.csv': 'a,b,s\n1,2,q\n' });
    const connector = new FileConnector(join(dir, 'x.csv'));
    const missing = await connector.toFeatures({ features: ['a', 'nope', 'also_not', 's'], target: 'gone' }).catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(FeatureColumnError);
    expect(missing).toMatchObject({ reason: 'missing', columns: ['nope', 'also_not', 'gone'], row: undefined, retryable: false });
    expect((missing as Error).message).toBe(
      `${join(dir, 'x.csv')} has no column "nope", "also_not", "gone"; its columns are "a", "b", "s". This column is not numeric: "s" (Utf8).`,
    );
    const text = await connector.toFeatures({ features: ['a', 's'] }).catch((error: unknown) => error);
    expect(text).toMatchObject({ reason: 'not-numeric', columns: ['s'] });
    expect(connector.rowsRead).toBeUndefined();

    const refused = async (options: unknown): Promise<InvalidOptionError> => {
      const error = await connector.toFeatures(options as never).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(InvalidOptionError);
      return error as InvalidOptionError;
    };
    expect((await refused({ features: [] })).option).toBe('toFeatures.features');
    expect((await refused({ features: ['a', 'a'] })).message).toBe('toFeatures.features: names the column "a" twice');
    expect((await refused({ features: ['a', 'b'], target: 'b' })).message).toContain('"b" is also among features');
    expect((await refused({ features: ['a'], dtype: 'int32' })).option).toBe('toFeatures.dtype');
    expect((await refused({ features: ['a'], nulls: 'fill' })).option).toBe('toFeatures.nulls');
    expect((await refused({ features: ['a'], colums: ['b'] })).option).toBe('toFeatures.colums');
  });

  it('rounds 64-bit integers beyond 2^53 to the nearest double, signed and unsigned, as Number(bigint) does', async () => {
    const dir = await tempDir('features-');
    const values = ['9007199254740993', '-9223372036854775808', '9223372036854775807', '-9007199254740995', '123456789012345678'];
    const unsigned = ['18446744073709551615', '9007199254740993', '0', '18446744073709549568', '4294967296'];
    await duckdb(`COPY (SELECT * FROM (VALUES ${values.map((v, i) => `(CAST('${v}' AS BIGINT), CAST('${unsigned[i]}' AS UBIGINT), ${i})`).join(', ')}) t(s, u, i) ORDER BY i)
                  TO '${join(dir, 'wide.parquet')}' (FORMAT PARQUET)`);
    const features = await new FileConnector(join(dir, 'wide.parquet')).toFeatures({ features: ['s', 'u'] });
    expect(features.toArrays()).toEqual(values.map((v, i) => [Number(BigInt(v)), Number(BigInt(unsigned[i]!))]));
  });
});

describe('readFeatures() over Arrow batches', () => {
  afterEach(() => configureMemoryLimit(undefined));

  /** A source of these batches; reading them at all fails when `unread` is set. */
  function sourceOf(batches: RecordBatch[], options: { knownRows?: number; unread?: boolean } = {}): FeatureSource {
    return {
      what: 'test partition',
      schema: async () => batches[0]!.schema,
      knownRows: async () => options.knownRows,
      batches: async function* () {
        if (options.unread === true) throw new Error('the rows were read');
        yield* batches;
      },
    };
  }

  it('reads sliced batches (offsets not on a byte) of booleans, floats and nulls, half floats and ints', async () => {
    const n = 40;
    const table = new Table({
      i: vectorFromArray(Int32Array.from({ length: n }, (_, i) => i)),
      b: vectorFromArray(Array.from({ length: n }, (_, i) => i % 3 === 0), new Bool()),
      h: vectorFromArray(Array.from({ length: n }, (_, i) => i / 2), new Float16()),
      f: vectorFromArray(Array.from({ length: n }, (_, i) => (i % 7 === 5 ? null : i * 1.5)), new Float64()),
    });
    const batch = table.batches[0]!;
    // Slices at odd offsets: a Data's bits (booleans, validity) start inside a byte.
    const slices = [batch.slice(3, 14), batch.slice(14, 31), batch.slice(31, 40)];
    const expectedRow = (i: number): number[] => [i, i % 3 === 0 ? 1 : 0, i / 2, i * 1.5];
    const dropped = await readFeatures({ features: ['i', 'b', 'h', 'f'], nulls: 'drop' }, sourceOf(slices));
    const kept = Array.from({ length: 37 }, (_, j) => j + 3).filter((i) => i % 7 !== 5);
    expect(dropped.toArrays()).toEqual(kept.map(expectedRow));
    expect(dropped.droppedRows).toBe(37 - kept.length);
    expect([...dropped.sourceRows!]).toEqual(kept.map((i) => i - 3));
    expect(dropped.data.buffer.byteLength).toBe(kept.length * 4 * 8);

    const error = await readFeatures({ features: ['i', 'b', 'h', 'f'] }, sourceOf(slices, { knownRows: 37 })).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ reason: 'null', columns: ['f'], row: 2 });
    expect((error as Error).message).toContain('test partition: column "f" has a null at row 2 (0-based)');
  });

  it('treats a NaN in a float column as a null and keeps ±Infinity', async () => {
    const batch = tableFromArrays({ x: Float64Array.from([1, NaN, Infinity, -Infinity]), y: Float64Array.from([1, 2, 3, 4]) }).batches[0]!;
    const error = await readFeatures({ features: ['x'], target: 'y' }, sourceOf([batch])).catch((caught: unknown) => caught);
    expect((error as Error).message).toContain('column "x" has a NaN at row 1');
    const features = await readFeatures({ features: ['x'], target: 'y', nulls: 'drop' }, sourceOf([batch]));
    expect(features.toArrays()).toEqual([[1], [Infinity], [-Infinity]]);
    expect(features.targetArray()).toEqual([1, 3, 4]);
  });

  it('refuses nested columns and reads no row when the options or columns are wrong', async () => {
    const point = new Struct([new Field('x', new Int32())]);
    const batch = new Table({ p: vectorFromArray([{ x: 1 }], point), t: vectorFromArray(['a'], new Utf8()) }).batches[0]!;
    const error = await readFeatures({ features: ['p', 't'] }, sourceOf([batch], { unread: true })).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ reason: 'not-numeric', columns: ['p', 't'] });
    expect((error as Error).message).toContain('"p" (Struct<{x:Int32}>), "t" (Utf8)');
  });

  it('refuses a matrix bigger than the worker may hold, before reading it when its rows are known, and as it grows otherwise', async () => {
    configureMemoryLimit(1);
    const big = tableFromArrays({ x: new Float64Array(100_000), y: new Float64Array(100_000) }).batches[0]!;
    const known = await readFeatures({ features: ['x', 'y'] }, sourceOf([big], { knownRows: 100_000, unread: true })).catch((caught: unknown) => caught);
    expect(known).toBeInstanceOf(PartitionTooLargeError);
    expect((known as Error).message).toContain("more than this worker's memory limit of 1 MB");
    const grown = await readFeatures({ features: ['x', 'y'] }, sourceOf([big.slice(0, 30_000), big.slice(30_000, 100_000)])).catch((caught: unknown) => caught);
    expect(grown).toBeInstanceOf(PartitionTooLargeError);
    expect((grown as Error).message).toContain('toFeatures()');
  });

  it('gives an empty matrix for a partition without rows', async () => {
    const empty = tableFromArrays({ x: new Float64Array(0) }).batches[0]!;
    const features = await readFeatures({ features: ['x'], target: undefined }, sourceOf([empty]));
    expect(features).toMatchObject({ numRows: 0, numFeatures: 1, droppedRows: 0 });
    expect(features.toArrays()).toEqual([]);
    expect(() => features.row(0)).toThrow(RangeError);
  });
});
