import type { Table } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { recordsToTable } from '../src/data/records.js';
import { RecordsTypeError } from '../src/errors.js';

function typeAndValues(table: Table): [string, unknown[]] {
  return [String(table.schema.fields[0]!.type), Array.from(table.getChildAt(0)!.toArray() as ArrayLike<unknown>)];
}

describe('records: numbers and bigints in one field', () => {
  it('are Int64, exactly, when the numbers are all integers', async () => {
    expect(typeAndValues(await recordsToTable([{ v: 1 }, { v: 9007199254740993n }, { v: -3 }]))).toEqual(['Int64', [1n, 9007199254740993n, -3n]]);
    expect(typeAndValues(await recordsToTable([{ v: { x: [2n ** 62n, 0] } }]))[0]).toBe('Struct<{x:List<Int64>}>');
  });

  it('are Float64, exactly, when a number is fractional and the bigints are within ±2^53', async () => {
    expect(typeAndValues(await recordsToTable([{ v: 1.5 }, { v: 2n ** 53n }, { v: -(2n ** 53n) }]))).toEqual(['Float64', [1.5, 2 ** 53, -(2 ** 53)]]);
    // An integer double beyond int64 is no Int64 either.
    expect(typeAndValues(await recordsToTable([{ v: 1e19 }, { v: 1n }]))).toEqual(['Float64', [1e19, 1]]);
  });

  it('are refused when a fractional number meets a bigint beyond ±2^53, naming the field, the row and both kinds', async () => {
    const bigFirst = await recordsToTable([{ v: 1 }, { v: 9007199254740993n }, { v: 0.5 }]).catch((error: unknown) => error);
    expect(bigFirst).toBeInstanceOf(RecordsTypeError);
    expect(bigFirst).toMatchObject({ field: 'v', row: 2, kinds: ['a bigint beyond ±2^53', 'a number that is not an integer within int64'] });
    expect((bigFirst as Error).message).toMatch(/all numbers or all bigints, or give an Arrow table/);
    const nested = await recordsToTable([{ v: [0.5] }, { v: [-(2n ** 60n)] }]).catch((error: unknown) => error);
    expect(nested).toMatchObject({ field: 'v[]', row: 1, kinds: ['a number that is not an integer within int64', 'a bigint beyond ±2^53'] });
  });

  it('refuses a bigint outside int64 rather than wrapping it', async () => {
    const error = await recordsToTable([{ v: 1n }, { v: 2n ** 64n + 5n }]).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RecordsTypeError);
    expect(error).toMatchObject({ field: 'v', row: 1 });
    expect((error as Error).message).toMatch(/give an Arrow table/);
  });

  it('keeps a field of numbers alone Float64, whole or not', async () => {
    expect(typeAndValues(await recordsToTable([{ v: 1 }, { v: 2 }]))).toEqual(['Float64', [1, 2]]);
  });
});
