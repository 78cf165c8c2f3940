import {
  arrayValue,
  blobValue,
  dateValue,
  decimalValue,
  type DuckDBValue,
  intervalValue,
  listValue,
  mapValue,
  structValue,
  timestampMillisValue,
  timestampNanosValue,
  timestampSecondsValue,
  timestampTZValue,
  timestampValue,
  timeNSValue,
  timeValue,
} from '@duckdb/node-api';
import { type Data, type DataType, makeVector, TimeUnit, Type, type Vector } from 'apache-arrow';
import { monthDayNanoNanoseconds, toMicros } from './arrow-time.js';

/**
 * One cell of an Arrow column as a DuckDB value, read from the column's buffers so nothing is
 * rounded on the way: decimals as their integer, timestamps and times in their own unit, 64-bit
 * integers as bigints; a null at any level is a null. What DuckDB appends of nested and exotic
 * columns, and what PostgreSQL's text of a cell is made from.
 *
 * Timestamps with a time zone are instants: DuckDB's TIMESTAMPTZ (microseconds). An Arrow interval
 * becomes DuckDB's (months, days, microseconds), nanoseconds truncated. A dictionary is its value.
 */
export function arrowCell(data: Data, row: number): DuckDBValue {
  if (!isValid(data, row)) return null;
  const type = data.type as DataType;
  switch (type.typeId) {
    case Type.Null:
      return null;
    case Type.Bool: {
      const bit = data.offset + row;
      return (((data.values as Uint8Array)[bit >> 3]! >> (bit & 7)) & 1) === 1;
    }
    case Type.Int:
      return (data.values as unknown as ArrayLike<number | bigint>)[row]!;
    case Type.Float:
      return (type as unknown as { precision: number }).precision === 0 ? (vectorOf(data).get(row) as number) : (data.values as Float64Array)[row]!;
    case Type.Decimal: {
      const { precision, scale } = type as unknown as { precision: number; scale: number };
      return decimalValue(decimalInteger(data, row), Math.min(precision, 38), scale);
    }
    case Type.Date: {
      if ((type as unknown as { unit: number }).unit === 0) return dateValue((data.values as Int32Array)[row]!);
      return dateValue(Math.floor(Number((data.values as unknown as BigInt64Array)[row]!) / 86_400_000));
    }
    case Type.Timestamp: {
      const { unit, timezone } = type as unknown as { unit: TimeUnit; timezone?: string | null };
      const value = (data.values as unknown as BigInt64Array)[row]!;
      if (timezone) return timestampTZValue(toMicros(value, unit));
      if (unit === TimeUnit.SECOND) return timestampSecondsValue(value);
      if (unit === TimeUnit.MILLISECOND) return timestampMillisValue(value);
      if (unit === TimeUnit.NANOSECOND) return timestampNanosValue(value);
      return timestampValue(value);
    }
    case Type.Time: {
      const unit = (type as unknown as { unit: TimeUnit }).unit;
      const raw = BigInt((data.values as unknown as ArrayLike<number | bigint>)[row]!);
      return unit === TimeUnit.NANOSECOND ? timeNSValue(raw) : timeValue(toMicros(raw, unit));
    }
    case Type.Interval: {
      const unit = (type as unknown as { unit: number }).unit;
      const words = data.values as Int32Array;
      if (unit === 0) return intervalValue(words[row]!, 0, 0n); // YEAR_MONTH: months
      if (unit === 1) return intervalValue(0, words[row * 2]!, BigInt(words[row * 2 + 1]!) * 1000n); // DAY_TIME: days, milliseconds
      return intervalValue(words[row * 4]!, words[row * 4 + 1]!, monthDayNanoNanoseconds(words, row) / 1000n);
    }
    case Type.Utf8:
    case Type.LargeUtf8:
      return UTF8.decode(bytesOf(data, row));
    case Type.Binary:
    case Type.LargeBinary:
      return blobValue(bytesOf(data, row).slice());
    case Type.FixedSizeBinary:
      return blobValue((vectorOf(data).get(row) as Uint8Array).slice());
    case Type.List:
    case Type.LargeList: {
      const offsets = data.valueOffsets as unknown as ArrayLike<number | bigint>;
      const child = data.children[0]!;
      const items: DuckDBValue[] = [];
      for (let i = Number(offsets[row]!); i < Number(offsets[row + 1]!); i++) items.push(arrowCell(child, i));
      return listValue(items);
    }
    case Type.FixedSizeList: {
      const size = (type as unknown as { listSize: number }).listSize;
      const child = data.children[0]!;
      const items: DuckDBValue[] = [];
      for (let i = row * size; i < (row + 1) * size; i++) items.push(arrowCell(child, i));
      return arrayValue(items);
    }
    case Type.Struct: {
      const entries: Record<string, DuckDBValue> = {};
      type.children.forEach((field, i) => {
        Object.defineProperty(entries, field.name, { value: arrowCell(data.children[i]!, row), enumerable: true, writable: true, configurable: true });
      });
      return structValue(entries);
    }
    case Type.Map: {
      const offsets = data.valueOffsets as Int32Array;
      const entries = data.children[0]!;
      const out: Array<{ key: DuckDBValue; value: DuckDBValue }> = [];
      for (let i = offsets[row]!; i < offsets[row + 1]!; i++) out.push({ key: arrowCell(entries.children[0]!, i), value: arrowCell(entries.children[1]!, i) });
      return mapValue(out);
    }
    default: {
      // Dictionaries (their value), unions, durations…: as the plain value's text.
      const value: unknown = vectorOf(data).get(row);
      if (value === null || value === undefined) return null;
      return typeof value === 'object' ? JSON.stringify(value, (_, inner: unknown) => (typeof inner === 'bigint' ? inner.toString() : inner)) : String(value);
    }
  }
}

/** The unscaled integer of an Arrow decimal (128-bit two's complement, little-endian words). */
function decimalInteger(data: Data, row: number): bigint {
  const words = data.values as Uint32Array;
  const bitWidth = (data.type as unknown as { bitWidth?: number }).bitWidth ?? 128;
  const count = bitWidth / 32;
  let value = 0n;
  for (let w = count - 1; w >= 0; w--) value = (value << 32n) | BigInt(words[row * count + w]!);
  return BigInt.asIntN(bitWidth, value);
}

const UTF8 = new TextDecoder();

function bytesOf(data: Data, row: number): Uint8Array {
  const offsets = data.valueOffsets as unknown as ArrayLike<number | bigint>;
  return (data.values as Uint8Array).subarray(Number(offsets[row]!), Number(offsets[row + 1]!));
}

export function isValid(data: Data, row: number): boolean {
  const bitmap = data.nullBitmap;
  if (data.typeId === Type.Null) return false;
  if (data.nullCount === 0 || bitmap === undefined || bitmap.length === 0) return true;
  const bit = data.offset + row;
  return ((bitmap[bit >> 3]! >> (bit & 7)) & 1) === 1;
}

const vectors = new WeakMap<Data, Vector>();

/** The Data as a Vector, made once per Data. */
export function vectorOf(data: Data): Vector {
  let vector = vectors.get(data);
  if (vector === undefined) {
    vector = makeVector(data);
    vectors.set(data, vector);
  }
  return vector;
}
