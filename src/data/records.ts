import type * as Arrow from 'apache-arrow';
import type { DataType, Table } from 'apache-arrow';
import { RecordsTypeError } from '../errors.js';
import { loadArrow } from './lazy-modules.js';

/**
 * An array of plain records as an Arrow table, the columns in the order the records first name
 * them. Each field's type is inferred from all its values, at every level:
 *
 * | values | Arrow type |
 * | --- | --- |
 * | numbers (whole or not) | Float64 |
 * | bigints only | Int64 |
 * | bigints and numbers that are all integers within int64 | Int64 (exact) |
 * | bigints within ±2^53 and numbers not all integers | Float64 (exact: such a bigint is a double) |
 * | strings | Utf8 |
 * | booleans | Bool |
 * | `Date`s | Timestamp(ms) (a Date's precision) |
 * | `Uint8Array`s / `Buffer`s | Binary |
 * | arrays | List of the type of all their elements |
 * | plain objects | Struct of the union of their fields |
 * | only `null` / `undefined` / missing | Null |
 *
 * `null`, `undefined` and a missing field are nulls wherever they are. Values of two kinds in
 * one field (a string and a number, an array and an object) are refused with a
 * {@link RecordsTypeError} naming the field, the row and the kinds: give an Arrow table instead.
 * So are the values no inferred type holds exactly, rather than rounded or wrapped: a bigint
 * outside int64, and a bigint beyond ±2^53 in a field whose numbers are not all integers (neither
 * Int64 nor Float64 holds both) — make the field all numbers or all bigints, or give an Arrow table.
 */
export async function recordsToTable(records: ReadonlyArray<Record<string, unknown>>): Promise<Table> {
  const arrow = await loadArrow();
  const shapes = new Map<string, Shape>();
  records.forEach((record, row) => {
    for (const name of Object.keys(record)) shapes.set(name, merge(shapes.get(name) ?? NULL, shapeOf(record[name], name, row), name, row));
  });
  const columns: Record<string, ReturnType<typeof arrow.vectorFromArray>> = {};
  for (const [name, shape] of shapes) {
    const values = records.map((record) => normalize(Object.hasOwn(record, name) ? record[name] : null, shape));
    Object.defineProperty(columns, name, { value: arrow.vectorFromArray(values, arrowTypeOf(shape, arrow)), enumerable: true, writable: true, configurable: true });
  }
  return new arrow.Table(columns);
}

/** Whether a value is an apache-arrow Table (told by shape, so arrow need not be loaded to ask). */
export function isArrowTable(value: unknown): value is Table {
  return value !== null && typeof value === 'object' && 'schema' in value && 'batches' in value && 'numRows' in value;
}

type Shape =
  | { kind: 'null' | 'boolean' | 'string' | 'date' | 'binary' }
  | Numeric
  | { kind: 'list'; element: Shape }
  | { kind: 'struct'; fields: Map<string, Shape> };

/**
 * Numbers and bigints, and what decides their one type: `kind` is `'number'` once any number is
 * among them; `fractional`, a number Int64 cannot hold (not an integer, or beyond int64); `wide`,
 * a bigint a double cannot hold (beyond ±2^53).
 */
interface Numeric {
  kind: 'number' | 'bigint';
  bigints: boolean;
  fractional: boolean;
  wide: boolean;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const DOUBLE_EXACT = 2n ** 53n;

const NULL: Shape = { kind: 'null' };

const KIND_NAMES: Record<Shape['kind'], string> = {
  null: 'null',
  boolean: 'a boolean',
  number: 'a number',
  bigint: 'a bigint',
  string: 'a string',
  date: 'a Date',
  binary: 'bytes (a Uint8Array)',
  list: 'an array',
  struct: 'an object',
};

function shapeOf(value: unknown, path: string, row: number): Shape {
  if (value === null || value === undefined) return NULL;
  switch (typeof value) {
    case 'boolean':
    case 'string':
      return { kind: typeof value as 'boolean' | 'string' };
    case 'number':
      // 2^63 is an integer double but not an int64 (whose largest is 2^63 - 1).
      return { kind: 'number', bigints: false, fractional: !(Number.isInteger(value) && value >= -(2 ** 63) && value < 2 ** 63), wide: false };
    case 'bigint':
      if (value < INT64_MIN || value > INT64_MAX) {
        const what = 'a bigint outside int64';
        throw new RecordsTypeError(
          path,
          row,
          [what, what],
          `Field "${path}" of record ${row} is ${value}n, outside the 64-bit integers (Int64) dpf infers for bigints, so it would wrap; ` +
            'give an Arrow table with the type you want (a Decimal, or Utf8 text)',
        );
      }
      return { kind: 'bigint', bigints: true, fractional: false, wide: value > DOUBLE_EXACT || value < -DOUBLE_EXACT };
  }
  if (value instanceof Date) return { kind: 'date' };
  if (value instanceof Uint8Array) return { kind: 'binary' };
  if (Array.isArray(value)) {
    let element = NULL;
    for (const item of value) element = merge(element, shapeOf(item, `${path}[]`, row), `${path}[]`, row);
    return { kind: 'list', element };
  }
  if (typeof value === 'object' && (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null)) {
    const fields = new Map<string, Shape>();
    for (const [key, inner] of Object.entries(value)) fields.set(key, shapeOf(inner, `${path}.${key}`, row));
    return { kind: 'struct', fields };
  }
  const what = typeof value === 'object' ? `a ${(value as object).constructor?.name ?? 'object'}` : `a ${typeof value}`;
  throw new RecordsTypeError(path, row, [what, what], `Field "${path}" of record ${row} is ${what}, which has no Arrow type dpf can infer; make it a plain value, array or object, or give an Arrow table`);
}

function merge(a: Shape, b: Shape, path: string, row: number): Shape {
  if (a.kind === 'null') return b;
  if (b.kind === 'null') return a;
  if (isNumeric(a) && isNumeric(b)) return mergeNumeric(a, b, path, row);
  if (a.kind === b.kind) {
    if (a.kind === 'list' && b.kind === 'list') return { kind: 'list', element: merge(a.element, b.element, `${path}[]`, row) };
    if (a.kind === 'struct' && b.kind === 'struct') {
      const fields = new Map(a.fields);
      for (const [key, shape] of b.fields) fields.set(key, merge(fields.get(key) ?? NULL, shape, `${path}.${key}`, row));
      return { kind: 'struct', fields };
    }
    return a;
  }
  const kinds = [KIND_NAMES[a.kind], KIND_NAMES[b.kind]] as const;
  throw new RecordsTypeError(
    path,
    row,
    kinds,
    `Field "${path}" holds ${kinds[0]} in an earlier record and ${kinds[1]} in record ${row}: no one Arrow type holds both. ` +
      'Make the field one kind in every record (convert it, or use null for none), or give an Arrow table (apache-arrow `tableFromArrays`, `makeTable`) with the type you want',
  );
}

function isNumeric(shape: Shape): shape is Numeric {
  return shape.kind === 'number' || shape.kind === 'bigint';
}

/**
 * Numbers with numbers are doubles, as in any JSON reader; bigints with bigints Int64. Mixed, the
 * type that holds every value exactly: Int64 when the numbers are all integers within int64,
 * Float64 when the bigints are all within ±2^53; neither, refused.
 */
function mergeNumeric(a: Numeric, b: Numeric, path: string, row: number): Numeric {
  const merged: Numeric = {
    kind: a.kind === 'number' || b.kind === 'number' ? 'number' : 'bigint',
    bigints: a.bigints || b.bigints,
    fractional: a.fractional || b.fractional,
    wide: a.wide || b.wide,
  };
  if (merged.kind === 'number' && merged.fractional && merged.wide) {
    const fractional = 'a number that is not an integer within int64';
    const wide = 'a bigint beyond ±2^53';
    // Whichever the earlier records held first; the record at hand brought the other.
    const kinds = a.wide && !b.wide ? ([wide, fractional] as const) : ([fractional, wide] as const);
    throw new RecordsTypeError(
      path,
      row,
      kinds,
      `Field "${path}" holds ${kinds[0]} in an earlier record and ${kinds[1]} in record ${row}: Float64 would round the bigint and Int64 cannot hold the number. ` +
        'Make the field all numbers or all bigints, or give an Arrow table (apache-arrow `tableFromArrays`, `makeTable`) with the type you want (a Decimal, say)',
    );
  }
  return merged;
}

function arrowTypeOf(shape: Shape, arrow: typeof Arrow): DataType {
  switch (shape.kind) {
    case 'null':
      return new arrow.Null();
    case 'boolean':
      return new arrow.Bool();
    case 'number':
      return isInt64(shape) ? new arrow.Int64() : new arrow.Float64();
    case 'bigint':
      return new arrow.Int64();
    case 'string':
      return new arrow.Utf8();
    case 'date':
      return new arrow.TimestampMillisecond();
    case 'binary':
      return new arrow.Binary();
    case 'list':
      return new arrow.List(new arrow.Field('item', arrowTypeOf(shape.element, arrow), true));
    case 'struct':
      return new arrow.Struct([...shape.fields].map(([name, inner]) => new arrow.Field(name, arrowTypeOf(inner, arrow), true)));
  }
}

/** Whether a numeric field is Int64: bigints alone, or with numbers that are all integers within int64. */
function isInt64(shape: Numeric): boolean {
  return shape.bigints && !shape.fractional;
}

/** A value as apache-arrow's builders take it for the shape's type. */
function normalize(value: unknown, shape: Shape): unknown {
  if (value === null || value === undefined) return null;
  switch (shape.kind) {
    case 'number':
      return isInt64(shape) ? BigInt(value as number | bigint) : Number(value);
    case 'date':
      return (value as Date).getTime();
    case 'list':
      return (value as unknown[]).map((item) => normalize(item, shape.element));
    case 'struct': {
      const out: Record<string, unknown> = {};
      for (const [key, inner] of shape.fields) {
        const field = Object.hasOwn(value, key) ? (value as Record<string, unknown>)[key] : null;
        Object.defineProperty(out, key, { value: normalize(field, inner), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    default:
      return value;
  }
}
