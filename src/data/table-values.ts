import { type DataType, type Table, type Vector, Type } from 'apache-arrow';
import { monthDayNanoNanoseconds } from './arrow-time.js';
import type { ColumnValues } from './data-connector.js';

/**
 * Arrow values as plain JavaScript values: what `toRecords()` and `toColumns()` hand out, and
 * what JSON artifacts are written from.
 */

/** A table or a single record batch: what records and columns are read from. */
export type Columnar = Pick<Table, 'schema' | 'numRows'> & { getChildAt(index: number): Vector | null };

/** The rows of a table as plain objects (see {@link DataConnector.toRecords}). */
export function tableToRecords(table: Columnar): Record<string, unknown>[] {
  const names = table.schema.fields.map((field) => field.name);
  const columns = names.map((_, i) => plainColumn(table.getChildAt(i)!));
  const records: Record<string, unknown>[] = new Array(table.numRows);
  const special = names.some(isSpecialKey);
  for (let row = 0; row < table.numRows; row++) {
    const record: Record<string, unknown> = {};
    if (special) for (let c = 0; c < names.length; c++) setOwn(record, names[c]!, columns[c]![row]);
    else for (let c = 0; c < names.length; c++) record[names[c]!] = columns[c]![row];
    records[row] = record;
  }
  return records;
}

/** A name that plain assignment would not make an own property of an object (`obj.__proto__ = x` sets its prototype). */
function isSpecialKey(name: string): boolean {
  return name === '__proto__';
}

/**
 * Sets `target[key]` as an own, enumerable property whatever the key: a column, struct field or
 * map key named `__proto__` is data like any other, never the object's prototype.
 */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (isSpecialKey(key)) Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

/** The columns of a table by name (see {@link DataConnector.toColumns}). */
export function tableToColumns(table: Columnar): Record<string, ColumnValues> {
  const columns: Record<string, ColumnValues> = {};
  table.schema.fields.forEach((field, i) => {
    setOwn(columns, field.name, numericColumn(table.getChildAt(i)!) ?? plainColumn(table.getChildAt(i)!));
  });
  return columns;
}

function numericColumn(vector: Vector): ColumnValues | undefined {
  const type = vector.type as DataType;
  if (type.typeId !== Type.Int && type.typeId !== Type.Float) return undefined;
  const wide = type.typeId === Type.Int && (type as unknown as { bitWidth: number }).bitWidth === 64;
  if (wide && !fitsInDouble(vector)) return vector.nullCount === 0 ? (vector.toArray() as BigInt64Array) : plainColumn(vector);
  if (vector.nullCount === 0 && !wide) return vector.toArray() as ColumnValues;
  const out = new Float64Array(vector.length);
  for (let i = 0; i < vector.length; i++) {
    const value = vector.get(i) as number | bigint | null;
    out[i] = value === null ? NaN : Number(value);
  }
  return out;
}

/** A column's values as plain JavaScript values. */
export function plainColumn(vector: Vector): unknown[] {
  const convert = plainConverter(vector.type as DataType, vector);
  const out = new Array<unknown>(vector.length);
  for (let i = 0; i < vector.length; i++) {
    const value: unknown = vector.get(i);
    out[i] = value === null || value === undefined ? null : convert(value);
  }
  return out;
}

type Converter = (value: unknown) => unknown;

function plainConverter(type: DataType, vector?: Vector): Converter {
  switch (type.typeId) {
    case Type.Date:
    case Type.Timestamp:
      return (value) => new Date(Number(value));
    case Type.Int:
      if ((type as unknown as { bitWidth: number }).bitWidth === 64) {
        // Nested in a list, struct or map (no column vector): each value on its own.
        if (vector === undefined) return (value) => (isSafe(value as bigint) ? Number(value) : value);
        return fitsInDouble(vector) ? (value) => Number(value) : (value) => value;
      }
      return (value) => value;
    case Type.Decimal: {
      const scale = 10 ** (type as unknown as { scale: number }).scale;
      return (value) => Number(String(value)) / scale;
    }
    case Type.Struct: {
      const fields = (type.children ?? []).map((field) => [field.name, plainConverter(field.type as DataType)] as const);
      return (value) => {
        // By position: a field named like a property of the row object (`__proto__`) reads its value.
        const values = (value as { toArray(): unknown[] }).toArray();
        const out: Record<string, unknown> = {};
        fields.forEach(([name, convert], i) => {
          const inner = values[i];
          setOwn(out, name, inner === null || inner === undefined ? null : convert(inner));
        });
        return out;
      };
    }
    case Type.List:
    case Type.FixedSizeList: {
      const convert = plainConverter(type.children![0]!.type as DataType);
      return (value) => Array.from(value as Iterable<unknown>, (inner) => (inner === null ? null : convert(inner)));
    }
    case Type.Map: {
      const entry = type.children![0]!.type as DataType;
      const convertValue = plainConverter(entry.children![1]!.type as DataType);
      return (value) => {
        const out: Record<string, unknown> = {};
        for (const [key, inner] of value as Iterable<[unknown, unknown]>) setOwn(out, String(key), inner === null ? null : convertValue(inner));
        return out;
      };
    }
    case Type.Binary:
    case Type.LargeBinary:
      return (value) => Buffer.from(value as Uint8Array);
    case Type.Interval:
      return (type as unknown as { unit: number }).unit === 2 ? monthDayNano : (value) => value;
    default:
      return (value) => value;
  }
}

function fitsInDouble(vector: Vector): boolean {
  for (let i = 0; i < vector.length; i++) {
    const value = vector.get(i) as bigint | null;
    if (value !== null && !isSafe(value)) return false;
  }
  return true;
}

function isSafe(value: bigint): boolean {
  return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER);
}

/** An Arrow MonthDayNano interval (4 int32 words: months, days, nanoseconds as int64) as an object. */
function monthDayNano(value: unknown): { months: number; days: number; nanoseconds: number | bigint } {
  const words = value as Int32Array;
  const nanos = monthDayNanoNanoseconds(words, 0);
  return { months: words[0]!, days: words[1]!, nanoseconds: isSafe(nanos) ? Number(nanos) : nanos };
}
