import {
  DuckDBArrayValue,
  DuckDBBlobValue,
  DuckDBDecimalValue,
  DuckDBListValue,
  DuckDBMapValue,
  DuckDBStructValue,
  DuckDBTimestampMillisecondsValue,
  DuckDBTimestampNanosecondsValue,
  DuckDBTimestampSecondsValue,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  type DuckDBValue,
} from '@duckdb/node-api';
import { type Data, type DataType, TimeUnit, Type } from 'apache-arrow';
import { toMicros } from '../data/arrow-time.js';
import { arrowCell, isValid } from '../data/arrow-values.js';

/**
 * The text PostgreSQL's `COPY … (FORMAT csv)` reads for one cell of an Arrow column, made from
 * the cell's exact value ({@link arrowCell}): `undefined` for NULL. Lists whose elements are
 * scalars are array literals (`{"1",NULL,"3"}`); structs, maps and lists of nested values are
 * JSON for a `jsonb` column, with decimals and 64-bit integers as exact JSON numbers, bytes as
 * `"\\x…"` text and times as their ISO-like text.
 */
export function postgresCellText(data: Data, row: number, form: 'scalar' | 'array' | 'json'): string | undefined {
  const value = arrowCell(data, row);
  if (value === null) return undefined;
  if (form === 'json') return jsonOf(value);
  if (form === 'array') {
    const items = (value as DuckDBListValue | DuckDBArrayValue).items;
    return `{${items.map((item) => (item === null ? 'NULL' : `"${scalarText(item).replace(/[\\"]/g, (c) => `\\${c}`)}"`)).join(',')}}`;
  }
  return scalarText(value);
}

/**
 * {@link postgresCellText} for the cells of one column type, with the common scalar types
 * (integers, floats, text, booleans, timestamps) read straight from the buffers.
 */
export function postgresEncoder(type: DataType, form: 'scalar' | 'array' | 'json'): (data: Data, row: number) => string | undefined {
  if (form !== 'scalar') return (data, row) => postgresCellText(data, row, form);
  switch (type.typeId) {
    case Type.Int:
      return (data, row) => (isValid(data, row) ? String((data.values as unknown as ArrayLike<number | bigint>)[row]!) : undefined);
    case Type.Float:
      if ((type as unknown as { precision: number }).precision === 0) break;
      return (data, row) => (isValid(data, row) ? scalarText((data.values as Float64Array)[row]!) : undefined);
    case Type.Utf8:
      return (data, row) => {
        if (!isValid(data, row)) return undefined;
        const offsets = data.valueOffsets as Int32Array;
        return UTF8.decode((data.values as Uint8Array).subarray(offsets[row]!, offsets[row + 1]!));
      };
    case Type.Timestamp: {
      const { unit, timezone } = type as unknown as { unit: TimeUnit; timezone?: string | null };
      const suffix = timezone ? '+00' : '';
      return (data, row) => (isValid(data, row) ? timestampText(toMicros((data.values as unknown as BigInt64Array)[row]!, unit)) + suffix : undefined);
    }
  }
  return (data, row) => postgresCellText(data, row, form);
}

const UTF8 = new TextDecoder();

function scalarText(value: DuckDBValue): string {
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  if (typeof value === 'string' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  if (value instanceof DuckDBBlobValue) return `\\x${Buffer.from(value.bytes).toString('hex')}`;
  const micros = timestampMicros(value);
  if (micros !== undefined) return timestampText(micros) + (value instanceof DuckDBTimestampTZValue ? '+00' : '');
  // Decimals (exact), dates, times and intervals: DuckDB's text, which PostgreSQL reads.
  return String(value);
}

function jsonOf(value: DuckDBValue): string {
  if (value === null) return 'null';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : 'null';
  if (typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (value instanceof DuckDBDecimalValue) return value.toString();
  if (value instanceof DuckDBListValue || value instanceof DuckDBArrayValue) return `[${value.items.map(jsonOf).join(',')}]`;
  if (value instanceof DuckDBStructValue) return `{${Object.entries(value.entries).map(([key, inner]) => `${JSON.stringify(key)}:${jsonOf(inner)}`).join(',')}}`;
  if (value instanceof DuckDBMapValue) return `{${value.entries.map(({ key, value: inner }) => `${JSON.stringify(String(key))}:${jsonOf(inner)}`).join(',')}}`;
  return JSON.stringify(scalarText(value));
}

function timestampMicros(value: DuckDBValue): bigint | undefined {
  if (value instanceof DuckDBTimestampValue || value instanceof DuckDBTimestampTZValue) return value.micros;
  if (value instanceof DuckDBTimestampSecondsValue) return toMicros(value.seconds, TimeUnit.SECOND);
  if (value instanceof DuckDBTimestampMillisecondsValue) return toMicros(value.millis, TimeUnit.MILLISECOND);
  if (value instanceof DuckDBTimestampNanosecondsValue) return toMicros(value.nanos, TimeUnit.NANOSECOND);
  return undefined;
}

const MAX_SAFE_MICROS = BigInt(Number.MAX_SAFE_INTEGER);

/** `YYYY-MM-DD HH:MM:SS.ffffff` of microseconds since the epoch (UTC). */
function timestampText(micros: bigint): string {
  if (micros <= MAX_SAFE_MICROS && micros >= -MAX_SAFE_MICROS) {
    // Within 285 years of 1970 (nearly all), in doubles: a BigInt division per cell costs more than the rest.
    const value = Number(micros);
    const millis = Math.floor(value / 1000);
    const iso = new Date(millis).toISOString();
    return `${iso.slice(0, 10)} ${iso.slice(11, 23)}${String(value - millis * 1000).padStart(3, '0')}`;
  }
  let seconds = micros / 1_000_000n;
  let fraction = micros % 1_000_000n;
  if (fraction < 0n) {
    fraction += 1_000_000n;
    seconds -= 1n;
  }
  const iso = new Date(Number(seconds) * 1000).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${fraction.toString().padStart(6, '0')}`;
}
