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
import type { Data } from 'apache-arrow';
import { arrowCell } from '../data/arrow-values.js';

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
  if (value instanceof DuckDBTimestampSecondsValue) return value.seconds * 1_000_000n;
  if (value instanceof DuckDBTimestampMillisecondsValue) return value.millis * 1000n;
  if (value instanceof DuckDBTimestampNanosecondsValue) return value.nanos / 1000n;
  return undefined;
}

/** `YYYY-MM-DD HH:MM:SS.ffffff` of microseconds since the epoch (UTC). */
function timestampText(micros: bigint): string {
  let seconds = micros / 1_000_000n;
  let fraction = micros % 1_000_000n;
  if (fraction < 0n) {
    fraction += 1_000_000n;
    seconds -= 1n;
  }
  const iso = new Date(Number(seconds) * 1000).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${fraction.toString().padStart(6, '0')}`;
}
