import { type Data, IntervalMonthDayNano, makeData, makeVector, Table } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { arrowCell } from '../src/data/arrow-values.js';
import { tableToRecords } from '../src/data/table-values.js';

/**
 * Two MonthDayNano intervals whose words sit 4 bytes into their buffer: a multiple of 4 (as an
 * Int32 buffer may be, sliced or read from IPC) but not of 8.
 */
function unalignedIntervals(): Data<IntervalMonthDayNano> {
  const bytes = new ArrayBuffer(4 + 2 * 16);
  const words = new Int32Array(bytes, 4, 2 * 4);
  const view = new DataView(bytes, 4);
  view.setInt32(0, 14, true);
  view.setInt32(4, 2, true);
  view.setBigInt64(8, 9_007_199_254_740_993n, true);
  view.setInt32(16, -1, true);
  view.setInt32(20, 0, true);
  view.setBigInt64(24, -3_500_000_000n, true);
  expect(words.byteOffset % 8).toBe(4);
  return makeData({ type: new IntervalMonthDayNano(), length: 2, nullCount: 0, data: words });
}

describe('Arrow values read from buffers', () => {
  it('reads MonthDayNano intervals whose data is 4-byte but not 8-byte aligned, as records and as DuckDB values', () => {
    const data = unalignedIntervals();
    const table = new Table({ iv: makeVector(data) });
    expect(tableToRecords(table)).toEqual([
      { iv: { months: 14, days: 2, nanoseconds: 9_007_199_254_740_993n } },
      { iv: { months: -1, days: 0, nanoseconds: -3_500_000_000 } },
    ]);
    expect(arrowCell(data, 0)).toMatchObject({ months: 14, days: 2, micros: 9_007_199_254_740n });
    expect(arrowCell(data, 1)).toMatchObject({ months: -1, days: 0, micros: -3_500_000n });
  });
});
