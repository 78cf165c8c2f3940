import { TimeUnit } from 'apache-arrow';

/**
 * Arrow's times in the units DuckDB and PostgreSQL keep, read exactly: the one place a time in
 * any unit becomes microseconds, and an interval's 64-bit nanoseconds are read.
 */

/** A time or timestamp in `unit` as microseconds (nanoseconds truncated toward zero). */
export function toMicros(value: bigint, unit: TimeUnit): bigint {
  if (unit === TimeUnit.SECOND) return value * 1_000_000n;
  if (unit === TimeUnit.MILLISECOND) return value * 1000n;
  if (unit === TimeUnit.NANOSECOND) return value / 1000n;
  return value;
}

/**
 * The nanoseconds of the `index`th Arrow MonthDayNano interval in `words` (each interval four
 * int32 words: months, days, then nanoseconds as a little-endian int64). Read through a DataView:
 * Arrow may hand over the words at an offset that is a multiple of 4 but not of 8, where a
 * BigInt64Array cannot be made.
 */
export function monthDayNanoNanoseconds(words: Int32Array, index: number): bigint {
  return new DataView(words.buffer, words.byteOffset, words.byteLength).getBigInt64(index * 16 + 8, true);
}
