import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  DateMillisecond,
  Dictionary,
  FixedSizeBinary,
  Float16,
  Int32,
  LargeUtf8,
  Null,
  type Schema,
  Table,
  TimeMillisecond,
  TimeSecond,
  Timestamp,
  TimestampMillisecond,
  TimestampSecond,
  TimeUnit,
  Utf8,
  vectorFromArray,
} from 'apache-arrow';
import { DPF, RecordsTypeError, RunStatus } from 'dpf';
import { beforeAll, describe, expect, it } from 'vitest';
import { readArtifactFile, writeArtifactFile } from '../src/stage/artifact-format.js';
import { duckdb, POSTGRES_URL, postgres, ROOT, tempDir, uniqueName, writeModule } from './helpers.js';

/** test/support/type-values.mjs: plain JavaScript, so the partition module imports it too. */
interface TypeValues {
  typeStrings(schema: Schema): string[];
  arrowRows(table: Pick<Table, 'numRows' | 'schema' | 'getChildAt'>): Array<Record<string, unknown>>;
  plainTag(value: unknown): unknown;
}
const SUPPORT = pathToFileURL(join(ROOT, 'test', 'support', 'type-values.mjs')).href;
let values: TypeValues;
beforeAll(async () => {
  values = (await import(SUPPORT)) as TypeValues;
});

/**
 * One column of every kind, its value in row 1 (row 2 is NULL everywhere), and what each path
 * should keep of it: the Arrow type and value the partition sees (`arrow`, tagged by
 * type-values.mjs), what `toRecords()` gives (`record`), the DuckDB type a session table or a
 * Parquet artifact has (`duckdb`), and the PostgreSQL type and text (`pg`, `pgText`).
 */
interface Column {
  name: string;
  sql: string;
  arrow: string;
  value: unknown;
  record: unknown;
  duckdb: string;
  pg: string;
  pgText: string;
  /** PostgreSQL's text of the column, when `::text` depends on the server's time zone. */
  pgSql?: string;
  /** A cast around the column (DuckDB's CASE cannot give every type). */
  cast?: string;
  /** The Arrow type read back from Parquet, when Parquet has no equal (a fixed-size list becomes a list). */
  parquet?: string;
}

const UTC = (name: string): string => `(${name} AT TIME ZONE 'UTC')::text`;

const MATRIX: Column[] = [
  { name: 'i64', sql: '9007199254740993::BIGINT', arrow: 'Int64', value: '9007199254740993n', record: '9007199254740993n', duckdb: 'BIGINT', pg: 'bigint', pgText: '9007199254740993' },
  { name: 'ub', sql: '18446744073709551615::UBIGINT', arrow: 'Uint64', value: '18446744073709551615n', record: '18446744073709551615n', duckdb: 'UBIGINT', pg: 'numeric(20,0)', pgText: '18446744073709551615' },
  { name: 'hi', sql: '12345678901234567890123::HUGEINT', arrow: 'Decimal[38e0]', value: 'dec:12345678901234567890123', record: Number('12345678901234567890123'), duckdb: 'DECIMAL(38,0)', pg: 'numeric(38,0)', pgText: '12345678901234567890123' },
  { name: 'dec', sql: '12345678901234.5678::DECIMAL(18,4)', arrow: 'Decimal[18e+4]', value: 'dec:12345678901234.5678', record: Number('12345678901234.5678'), duckdb: 'DECIMAL(18,4)', pg: 'numeric(18,4)', pgText: '12345678901234.5678' },
  { name: 'dec38', sql: '-1234567890123456789.0123456789::DECIMAL(38,10)', arrow: 'Decimal[38e+10]', value: 'dec:-1234567890123456789.0123456789', record: Number('-1234567890123456789.0123456789'), duckdb: 'DECIMAL(38,10)', pg: 'numeric(38,10)', pgText: '-1234567890123456789.0123456789' },
  { name: 'dec4', sql: '-12.5::DECIMAL(4,1)', arrow: 'Decimal[4e+1]', value: 'dec:-12.5', record: -12.5, duckdb: 'DECIMAL(4,1)', pg: 'numeric(4,1)', pgText: '-12.5' },
  { name: 'f', sql: '1.5::FLOAT', arrow: 'Float32', value: 1.5, record: 1.5, duckdb: 'FLOAT', pg: 'real', pgText: '1.5' },
  { name: 'b', sql: 'true', arrow: 'Bool', value: true, record: true, duckdb: 'BOOLEAN', pg: 'boolean', pgText: 'true' },
  { name: 'v', sql: "'héllo \"x\", y'", arrow: 'Utf8', value: 'héllo "x", y', record: 'héllo "x", y', duckdb: 'VARCHAR', pg: 'text', pgText: 'héllo "x", y' },
  { name: 'd', sql: "DATE '2024-02-29'", arrow: 'Date32<DAY>', value: 'date:2024-02-29', record: 'Date:2024-02-29T00:00:00.000Z', duckdb: 'DATE', pg: 'date', pgText: '2024-02-29' },
  { name: 'ts', sql: "TIMESTAMP '2024-02-29 12:34:56.123456'", arrow: 'Timestamp<MICROSECOND>', value: 'ts:2024-02-29T12:34:56.123456', record: 'Date:2024-02-29T12:34:56.123Z', duckdb: 'TIMESTAMP', pg: 'timestamp without time zone', pgText: '2024-02-29 12:34:56.123456' },
  { name: 'tz', sql: "TIMESTAMPTZ '2024-02-29 12:34:56.123456+00'", arrow: 'Timestamp<MICROSECOND, UTC>', value: 'ts:2024-02-29T12:34:56.123456 UTC', record: 'Date:2024-02-29T12:34:56.123Z', duckdb: 'TIMESTAMP WITH TIME ZONE', pg: 'timestamp with time zone', pgText: '2024-02-29 12:34:56.123456', pgSql: UTC('tz') },
  { name: 't', sql: "TIME '12:34:56.5'", arrow: 'Time64<MICROSECOND>', value: 'time:45296500000', record: '45296500000n', duckdb: 'TIME', pg: 'time without time zone', pgText: '12:34:56.5' },
  { name: 'tns', sql: "'12:00:00.123456789'::TIME_NS", arrow: 'Time64<NANOSECOND>', value: 'time:43200123456789', record: '43200123456789n', duckdb: 'TIME_NS', pg: 'time without time zone', pgText: '12:00:00.123457' },
  { name: 'iv', sql: "INTERVAL '14 months 2 days 3.5 seconds'", arrow: 'Interval<MONTH_DAY_NANO>', value: 'interval:14mo 2d 3500000000ns', record: { months: 14, days: 2, nanoseconds: 3500000000 }, duckdb: 'INTERVAL', pg: 'interval', pgText: '1 year 2 mons 2 days 00:00:03.5' },
  { name: 'bl', sql: "'\\xAA\\x00\\xFF'::BLOB", arrow: 'Binary', value: 'hex:aa00ff', record: 'hex:aa00ff', duckdb: 'BLOB', pg: 'bytea', pgText: '\\xaa00ff' },
  // Types Arrow has no equal of: text (duckdb-to-arrow.ts says why).
  { name: 'u', sql: "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::UUID", arrow: 'Utf8', value: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', record: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', duckdb: 'VARCHAR', pg: 'text', pgText: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' },
  { name: 'e', sql: "'y'::ENUM('x', 'y')", arrow: 'Utf8', value: 'y', record: 'y', duckdb: 'VARCHAR', pg: 'text', pgText: 'y' },
  { name: 'bit', sql: "'0101'::BIT", arrow: 'Utf8', value: '0101', record: '0101', duckdb: 'VARCHAR', pg: 'text', pgText: '0101' },
  { name: 'uh', sql: '340282366920938463463374607431768211455::UHUGEINT', arrow: 'Utf8', value: '340282366920938463463374607431768211455', record: '340282366920938463463374607431768211455', duckdb: 'VARCHAR', pg: 'text', pgText: '340282366920938463463374607431768211455' },
  { name: 'ttz', sql: "'12:00:00+02'::TIMETZ", arrow: 'Utf8', value: '12:00:00+02', record: '12:00:00+02', duckdb: 'VARCHAR', pg: 'text', pgText: '12:00:00+02' },
  { name: 'n', sql: 'NULL', arrow: 'Int32', value: null, record: null, duckdb: 'INTEGER', pg: 'integer', pgText: null as never },
  // Nested, with nulls inside.
  { name: 'l', sql: '[1, NULL, 3]::INTEGER[]', arrow: 'List<Int32>', value: [1, null, 3], record: [1, null, 3], duckdb: 'INTEGER[]', pg: 'integer[]', pgText: '{1,NULL,3}' },
  { name: 'ls', sql: "['a', NULL, 'c\"d']::VARCHAR[]", arrow: 'List<Utf8>', value: ['a', null, 'c"d'], record: ['a', null, 'c"d'], duckdb: 'VARCHAR[]', pg: 'text[]', pgText: '{a,NULL,"c\\"d"}' },
  { name: 'lb', sql: '[9007199254740993]::BIGINT[]', arrow: 'List<Int64>', value: ['9007199254740993n'], record: ['9007199254740993n'], duckdb: 'BIGINT[]', pg: 'bigint[]', pgText: '{9007199254740993}' },
  { name: 'ldec', sql: '[1.25, NULL]::DECIMAL(10,2)[]', arrow: 'List<Decimal[10e+2]>', value: ['dec:1.25', null], record: [1.25, null], duckdb: 'DECIMAL(10,2)[]', pg: 'numeric(10,2)[]', pgText: '{1.25,NULL}' },
  { name: 'lbl', sql: "['\\xAA'::BLOB, NULL]", arrow: 'List<Binary>', value: ['hex:aa', null], record: ['hex:aa', null], duckdb: 'BLOB[]', pg: 'bytea[]', pgText: '{"\\\\xaa",NULL}' },
  { name: 'ltz', sql: "[TIMESTAMPTZ '2024-01-01 00:00:00.000001+00']", arrow: 'List<Timestamp<MICROSECOND, UTC>>', value: ['ts:2024-01-01T00:00:00.000001 UTC'], record: ['Date:2024-01-01T00:00:00.000Z'], duckdb: 'TIMESTAMP WITH TIME ZONE[]', pg: 'timestamp with time zone[]', pgText: '2024-01-01 00:00:00.000001', pgSql: UTC('ltz[1]') },
  { name: 'arr', sql: '[1, NULL, 3]', cast: 'INTEGER[3]', arrow: 'FixedSizeList[3]<Int32>', value: [1, null, 3], record: [1, null, 3], duckdb: 'INTEGER[3]', pg: 'integer[]', pgText: '{1,NULL,3}', parquet: 'List<Int32>' },
  { name: 'll', sql: '[[1], NULL, [NULL, 2]]::INTEGER[][]', arrow: 'List<List<Int32>>', value: [[1], null, [null, 2]], record: [[1], null, [null, 2]], duckdb: 'INTEGER[][]', pg: 'jsonb', pgText: '[[1], null, [null, 2]]' },
  {
    name: 's',
    sql: "{'a': 1, 'b': NULL::BIGINT, 'c': {'x': NULL::DOUBLE, 'y': 'q'}}",
    arrow: 'Struct<{a:Int32, b:Int64, c:Struct<{x:Float64, y:Utf8}>}>',
    value: { a: 1, b: null, c: { x: null, y: 'q' } },
    record: { a: 1, b: null, c: { x: null, y: 'q' } },
    duckdb: 'STRUCT(a INTEGER, b BIGINT, c STRUCT(x DOUBLE, y VARCHAR))',
    pg: 'jsonb',
    pgText: '{"a": 1, "b": null, "c": {"x": null, "y": "q"}}',
  },
  { name: 'lst', sql: "[{'a': 1}, NULL, {'a': NULL}]", arrow: 'List<Struct<{a:Int32}>>', value: [{ a: 1 }, null, { a: null }], record: [{ a: 1 }, null, { a: null }], duckdb: 'STRUCT(a INTEGER)[]', pg: 'jsonb', pgText: '[{"a": 1}, null, {"a": null}]' },
  { name: 'm', sql: "MAP {'k1': 1.25::DECIMAL(10,2), 'k2': NULL}", arrow: 'Map<{key:Utf8, value:Decimal[10e+2]}>', value: { k1: 'dec:1.25', k2: null }, record: { k1: 1.25, k2: null }, duckdb: 'MAP(VARCHAR, DECIMAL(10,2))', pg: 'jsonb', pgText: '{"k1": 1.25, "k2": null}' },
];

const NAMES = MATRIX.map((column) => column.name);
/** Row 1 holds the values, row 2 NULL in every column; partition `a`. */
const SOURCE = `SELECT 'a' AS p, id::INTEGER AS id, ${MATRIX.map((column) => {
  const value = `CASE WHEN id = 1 THEN ${column.sql} END`;
  return `${column.cast === undefined ? value : `CAST(${value} AS ${column.cast})`} AS ${column.name}`;
}).join(', ')} FROM range(1, 3) t(id)`;
const KEYS = ['p:Utf8', 'id:Int32'];
const expectedRow = (pick: (column: Column) => unknown) => ({ p: 'a', id: 1, ...Object.fromEntries(MATRIX.map((column) => [column.name, pick(column)])) });
const nullRow = { p: 'a', id: 2, ...Object.fromEntries(NAMES.map((name) => [name, null])) };

/**
 * The partition function: reports what every DataConnector method gives, uploads the rows as
 * Parquet, Arrow and CSV, and appends them — as one-row slices of batches(), so sliced data is
 * written too — to the session's table.
 */
const MODULE = (table: string) => `
  const { arrowRows, plainTag, typeStrings } = await import(${JSON.stringify(SUPPORT)});
  const table = await data.toArrow();
  const batches = [];
  for await (const batch of data.batches({ batchSize: 1 })) batches.push(batch);
  const columns = await data.toColumns();
  const byId = (rows) => rows.slice().sort((x, y) => Number(x.id) - Number(y.id));
  await context.uploadToStage({
    schema: typeStrings(await data.schema()),
    toArrow: typeStrings(table.schema),
    batches: batches.map((batch) => typeStrings(batch.schema)),
    arrowRows: byId(arrowRows(table)),
    batchRows: byId(batches.flatMap((batch) => arrowRows(batch))),
    records: byId((await data.toRecords()).map(plainTag)),
    columns: Object.fromEntries(Object.entries(columns).map(([name, values]) => [name, { kind: values.constructor.name, values: Array.from(values, plainTag) }])),
  }, 'seen.json');
  if (table.schema.fields.some((field) => field.name === 'iv')) {
    await context.uploadToStage(table, 'x.parquet');
    await context.uploadToStage(table, 'x.arrow');
    await context.uploadToStage(table, 'x.csv');
  }
  const { Table } = await import('apache-arrow');
  await context.withSession((session) => session.append(${JSON.stringify(table)}, new Table(batches)));
`;

async function runMatrix(sessionDatabase: string | undefined, table: string, source: unknown = SOURCE) {
  const dir = await tempDir('types-');
  const module = await writeModule(dir, MODULE(table));
  const stage = join(dir, 'stage');
  const dpf = new DPF(module, { stage, ...(sessionDatabase !== undefined ? { sessionDatabase } : {}) });
  const run = await dpf.run({ partitionBy: 'p', source: source as string, runId: 'types', executionOptions: { maxRetries: 0 } });
  const status = await run.wait();
  const details = await run.getPartitionDetails();
  const partition = Object.values(details)[0]!;
  if (status !== RunStatus.SUCCESS) throw new Error(`the run failed: ${JSON.stringify(partition.error)}`);
  return { run, stage, partition, seen: (await partition.artifacts.get('seen.json')) as Seen };
}

/** What the partition function reported (see MODULE). */
interface Seen {
  schema: string[];
  toArrow: string[];
  batches: string[][];
  arrowRows: Array<Record<string, unknown>>;
  batchRows: Array<Record<string, unknown>>;
  records: Array<Record<string, unknown>>;
  columns: Record<string, { kind: string; values: unknown[] }>;
}

const typesOf = (names: string[], pick: (column: Column) => string) => [...names, ...MATRIX.map((column) => `${column.name}:${pick(column)}`)];

describe('types survive every path', () => {
  it('from DuckDB SQL through the DataConnector, Parquet/Arrow/CSV artifacts, run.query and a DuckDB session table', async () => {
    const { run, stage, partition, seen } = await runMatrix(undefined, 'matrix');
    const arrowTypes = typesOf(KEYS, (column) => column.arrow);

    // Every DataConnector method.
    expect(seen.schema).toEqual(arrowTypes);
    expect(seen.toArrow).toEqual(arrowTypes);
    expect(seen.batches).toEqual([arrowTypes, arrowTypes]);
    expect(seen.arrowRows).toEqual([expectedRow((column) => column.value), nullRow]);
    expect(seen.batchRows).toEqual(seen.arrowRows);
    expect(seen.records).toEqual([expectedRow((column) => column.record), nullRow]);
    const order = seen.columns.id!.values as number[];
    const inOrder = (value: unknown) => order.map((id) => (id === 1 ? value : null));
    expect(seen.columns.id!.kind).toBe('Int32Array');
    expect(seen.columns.i64).toEqual({ kind: 'Array', values: inOrder('9007199254740993n') });
    expect(seen.columns.f).toEqual({ kind: 'Float64Array', values: order.map((id) => (id === 1 ? 1.5 : 'NaN')) });
    for (const column of MATRIX.filter((c) => !['i64', 'f', 'n'].includes(c.name))) expect(seen.columns[column.name]!.values, column.name).toEqual(inOrder(column.record));

    // The Arrow artifact keeps every Arrow type and value.
    const arrow = (await partition.artifacts.get('x.arrow')) as Table;
    expect(values.typeStrings(arrow.schema)).toEqual(arrowTypes);
    expect(values.arrowRows(arrow)).toEqual(seen.arrowRows);

    // Parquet keeps them too (a fixed-size list becomes a list), read back or queried.
    const parquetTypes = typesOf(KEYS, (column) => column.parquet ?? column.arrow);
    const parquet = (await partition.artifacts.get('x.parquet')) as Table;
    expect(values.typeStrings(parquet.schema)).toEqual(parquetTypes);
    expect(values.arrowRows(parquet)).toEqual(seen.arrowRows);
    const queried = await run.query('SELECT * FROM x ORDER BY id', { x: 'x.parquet' });
    expect(values.typeStrings(queried.schema)).toEqual(['partition_id:Utf8', ...parquetTypes]);
    expect(values.arrowRows(queried)).toEqual(seen.arrowRows.map((row: object) => ({ partition_id: 'a', ...row })));
    const described = values.arrowRows(await run.query('DESCRIBE x', { x: 'x.parquet' }));
    expect(described.slice(3).map((row) => row.column_type)).toEqual(MATRIX.map((column) => (column.name === 'arr' ? 'INTEGER[]' : column.duckdb)));

    // CSV is text: nested values are their JSON, scalars what DuckDB's CSV reader detects.
    const csv = values.arrowRows(await run.query('SELECT * FROM x ORDER BY id', { x: 'x.csv' }));
    for (const name of ['l', 'ls', 'll', 's', 'lst', 'arr']) {
      expect(JSON.parse(csv[0]![name] as string), name).toEqual(MATRIX.find((column) => column.name === name)!.record);
      expect(csv[1]![name], name).toBeNull();
    }
    expect(JSON.parse(csv[0]!.m as string)).toEqual({ k1: 1.25, k2: null });
    // (a decimal in CSV is a number to DuckDB's reader: a double)
    expect(csv[0]).toMatchObject({ i64: '9007199254740993n', dec: 12345678901234.568, d: 'date:2024-02-29', v: 'héllo "x", y' });

    // The DuckDB session table: real DuckDB types, the same values as the source (as DuckDB's text).
    const file = join(stage, 'dpf.duckdb');
    const columns = await duckdb<{ column_name: string; column_type: string }>(`ATTACH '${file}' AS s (READ_ONLY); DESCRIBE s.matrix`);
    expect(columns.map((row) => `${row.column_name}:${row.column_type}`)).toEqual(['p:VARCHAR', 'id:INTEGER', ...MATRIX.map((column) => `${column.name}:${column.duckdb}`)]);
    const asText = NAMES.map((name) => `${name}::VARCHAR AS ${name}`).join(', ');
    const stored = await duckdb(`ATTACH '${file}' AS s (READ_ONLY); SELECT id, ${asText} FROM s.matrix ORDER BY id`);
    expect(stored).toEqual(await duckdb(`SELECT id, ${asText} FROM (${SOURCE}) ORDER BY id`));
  });

  it('to a PostgreSQL session table, as arrays, jsonb or the equal type', async () => {
    await postgres('SELECT 1'); // says clearly when the server is not there
    const table = uniqueName('types');
    try {
      await runMatrix(POSTGRES_URL, table);
      const columns = await postgres<{ name: string; type: string }>(
        `SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 ORDER BY attnum`,
        [table],
      );
      expect(columns.map((column) => `${column.name}:${column.type}`)).toEqual(['p:text', 'id:integer', ...MATRIX.map((column) => `${column.name}:${column.pg}`)]);
      const texts = MATRIX.map((column) => `${column.pgSql ?? `${column.name}::text`} AS ${column.name}`).join(', ');
      const rows = await postgres(`SELECT id, ${texts} FROM ${table} ORDER BY id`);
      expect(rows).toEqual([
        { id: 1, ...Object.fromEntries(MATRIX.map((column) => [column.name, column.pgText])) },
        { id: 2, ...Object.fromEntries(NAMES.map((name) => [name, null])) },
      ]);
    } finally {
      await postgres(`DROP TABLE IF EXISTS ${table}`);
    }
  });

  it('from plain records: arrays, objects, bigints, Dates, bytes and nulls get their types', async () => {
    // A records source is read by DuckDB like any other: a field of nulls only is an INTEGER column there.
    const records = [
      { p: 'r', id: 1, big: 9007199254740993n, when: new Date('2024-02-29T12:34:56.789Z'), tags: ['a', null], point: { x: 1, label: { text: 'q' } }, bytes: Buffer.from([0xaa, 0]), mixed: 1, none: null },
      { p: 'r', id: 2, big: null, when: null, tags: null, point: { x: 2.5 }, bytes: null, mixed: 9007199254740993n, none: undefined, late: [[1n], null] },
    ];
    const { seen, stage } = await runMatrix(undefined, 'from_records', records);
    expect(seen.schema).toEqual([
      'p:Utf8', 'id:Float64', 'big:Int64', 'when:Timestamp<MILLISECOND>', 'tags:List<Utf8>', 'point:Struct<{x:Float64, label:Struct<{text:Utf8}>}>',
      'bytes:Binary', 'mixed:Int64', 'none:Int32', 'late:List<List<Int64>>',
    ]);
    expect(seen.records).toEqual([
      { p: 'r', id: 1, big: '9007199254740993n', when: 'Date:2024-02-29T12:34:56.789Z', tags: ['a', null], point: { x: 1, label: { text: 'q' } }, bytes: 'hex:aa00', mixed: '1n', none: null, late: null },
      { p: 'r', id: 2, big: null, when: null, tags: null, point: { x: 2.5, label: null }, bytes: null, mixed: '9007199254740993n', none: null, late: [[1], null] },
    ]);
    const columns = await duckdb<{ column_name: string; column_type: string }>(`ATTACH '${join(stage, 'dpf.duckdb')}' AS s (READ_ONLY); DESCRIBE s.from_records`);
    expect(columns.map((row) => `${row.column_name}:${row.column_type}`)).toEqual([
      'p:VARCHAR', 'id:DOUBLE', 'big:BIGINT', 'when:TIMESTAMP_MS', 'tags:VARCHAR[]', 'point:STRUCT(x DOUBLE, "label" STRUCT("text" VARCHAR))',
      'bytes:BLOB', 'mixed:BIGINT', 'none:INTEGER', 'late:BIGINT[][]',
    ]);
  });

  it('refuses records whose field holds two kinds of value, naming the field, the row and the kinds', async () => {
    const dir = await tempDir('types-');
    const dpf = new DPF(await writeModule(dir, ''), { stage: join(dir, 'stage') });
    const error = await dpf
      .run({ partitionBy: 'p', source: [{ p: 'a', v: { tags: ['x'] } }, { p: 'a', v: { tags: [1] } }] as never, runId: 'mixed' })
      .then(() => undefined, (caught: unknown) => caught);
    expect(error).toBeInstanceOf(RecordsTypeError);
    expect(error).toMatchObject({ field: 'v.tags[]', row: 1, kinds: ['a string', 'a number'] });
    expect((error as Error).message).toMatch(/give an Arrow table/);
  });
});

describe('Parquet artifacts', () => {
  it('keep every value but change the types the README lists', async () => {
    const instant = Date.UTC(2023, 10, 14, 22, 13, 20, 123);
    const table = new Table({
      nul: vectorFromArray([null], new Null()),
      paris: vectorFromArray([instant], new Timestamp(TimeUnit.MILLISECOND, 'Europe/Paris')),
      tsS: vectorFromArray([Date.UTC(2024, 1, 29, 1, 2, 3)], new TimestampSecond()),
      tsMs: vectorFromArray([instant], new TimestampMillisecond()),
      t32s: vectorFromArray([3661], new TimeSecond()),
      t32ms: vectorFromArray([3661001], new TimeMillisecond()),
      f16: vectorFromArray([1.5], new Float16()),
      dict: vectorFromArray(['a'], new Dictionary(new Utf8(), new Int32())),
      date64: vectorFromArray([new Date('2024-02-29')], new DateMillisecond()),
      large: vectorFromArray(['x'], new LargeUtf8()),
      fsb: vectorFromArray([new Uint8Array([1, 2])], new FixedSizeBinary(2)),
    });
    const path = join(await tempDir('parquet-'), 'x.parquet');
    await writeArtifactFile(table, 'x.parquet', path);
    const back = (await readArtifactFile(path, 'x.parquet')) as Table;
    expect(back.schema.fields.map((field) => `${field.name}:${String(field.type)}`)).toEqual([
      'nul:Int32', 'paris:Timestamp<MICROSECOND, UTC>', 'tsS:Timestamp<MICROSECOND>', 'tsMs:Timestamp<MICROSECOND>', 't32s:Time64<MICROSECOND>',
      't32ms:Time64<MICROSECOND>', 'f16:Float32', 'dict:Utf8', 'date64:Date32<DAY>', 'large:Utf8', 'fsb:Binary',
    ]);
    const row = back.get(0)!.toJSON() as Record<string, unknown>;
    expect({ ...row, fsb: Array.from(row.fsb as Uint8Array) }).toEqual({
      nul: null, paris: instant, tsS: Date.UTC(2024, 1, 29, 1, 2, 3), tsMs: instant, t32s: 3_661_000_000n, t32ms: 3_661_001_000n, f16: 1.5, dict: 'a',
      date64: Date.UTC(2024, 1, 29), large: 'x', fsb: [1, 2],
    });
  });
});
