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
 * | numbers (whole or not, and numbers mixed with bigints) | Float64 |
 * | bigints only | Int64 |
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
  | { kind: 'null' | 'boolean' | 'number' | 'bigint' | 'string' | 'date' | 'binary' }
  | { kind: 'list'; element: Shape }
  | { kind: 'struct'; fields: Map<string, Shape> };

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
    case 'number':
    case 'bigint':
    case 'string':
      return { kind: typeof value as 'boolean' };
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
  if (a.kind === b.kind) {
    if (a.kind === 'list' && b.kind === 'list') return { kind: 'list', element: merge(a.element, b.element, `${path}[]`, row) };
    if (a.kind === 'struct' && b.kind === 'struct') {
      const fields = new Map(a.fields);
      for (const [key, shape] of b.fields) fields.set(key, merge(fields.get(key) ?? NULL, shape, `${path}.${key}`, row));
      return { kind: 'struct', fields };
    }
    return a;
  }
  // Whole and fractional numbers, and bigints among numbers: doubles, as in any JSON reader.
  if ((a.kind === 'number' && b.kind === 'bigint') || (a.kind === 'bigint' && b.kind === 'number')) return { kind: 'number' };
  const kinds = [KIND_NAMES[a.kind], KIND_NAMES[b.kind]] as const;
  throw new RecordsTypeError(
    path,
    row,
    kinds,
    `Field "${path}" holds ${kinds[0]} in an earlier record and ${kinds[1]} in record ${row}: no one Arrow type holds both. ` +
      'Make the field one kind in every record (convert it, or use null for none), or give an Arrow table (apache-arrow `tableFromArrays`, `makeTable`) with the type you want',
  );
}

function arrowTypeOf(shape: Shape, arrow: typeof Arrow): DataType {
  switch (shape.kind) {
    case 'null':
      return new arrow.Null();
    case 'boolean':
      return new arrow.Bool();
    case 'number':
      return new arrow.Float64();
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

/** A value as apache-arrow's builders take it for the shape's type. */
function normalize(value: unknown, shape: Shape): unknown {
  if (value === null || value === undefined) return null;
  switch (shape.kind) {
    case 'number':
      return Number(value);
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
