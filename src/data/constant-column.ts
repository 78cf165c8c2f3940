import { type Data, type DataType, makeData, Type, type Vector } from 'apache-arrow';

/**
 * A column holding one value on every row, built from the bytes of that value in another column —
 * how a worker gives a partition its partition columns, which DataFrame mode does not write with
 * its rows (they are the same on every row of a partition: converting and storing them would cost
 * the driver as much as a real column; see input-segments.ts).
 *
 * Only the types whose value is its bytes are built this way ({@link isConstantBuildable}): the
 * result then holds exactly what DuckDB's conversion would have written, of the same Arrow type.
 */

/** Whether a column of this type can be built by {@link constantColumn}. */
export function isConstantBuildable(type: DataType): boolean {
  switch (type.typeId) {
    case Type.Int:
    case Type.Float:
    case Type.Bool:
    case Type.Utf8:
    case Type.Binary:
    case Type.Date:
    case Type.Time:
    case Type.Timestamp:
    case Type.Decimal:
      return true;
    default:
      return false;
  }
}

/** `length` rows of row `row` of `source`, of its type. */
export function constantColumn(source: Vector, row: number, length: number): Data {
  const [data, at] = chunkAt(source, row);
  const type = data.type as DataType;
  if (!data.getValid(at)) return nulls(type, length);
  const i = data.offset + at;
  if (type.typeId === Type.Bool) {
    const on = (data.values[i >> 3]! >> (i & 7)) & 1;
    return makeData({ type, length, nullCount: 0, data: new Uint8Array(Math.ceil(length / 8)).fill(on === 1 ? 0xff : 0) } as never);
  }
  if (type.typeId === Type.Utf8 || type.typeId === Type.Binary) {
    const offsets = data.valueOffsets as Int32Array;
    const bytes = (data.values as Uint8Array).subarray(offsets[i]!, offsets[i + 1]!);
    const valueOffsets = new Int32Array(length + 1);
    for (let r = 1; r <= length; r++) valueOffsets[r] = r * bytes.length;
    return makeData({ type, length, nullCount: 0, valueOffsets, data: repeated(bytes, length) } as never);
  }
  // Fixed width: `stride` elements of `values` a row (a Decimal128 is 4 × 32 bits).
  const stride = data.stride;
  const values = data.values as Uint8Array;
  const one = values.subarray(i * stride, (i + 1) * stride);
  const out = new (values.constructor as new (length: number) => Uint8Array)(length * stride);
  if (stride === 1) out.fill(one[0]! as never);
  else fillRepeated(out, one, stride * length);
  return makeData({ type, length, nullCount: 0, data: out } as never);
}

function nulls(type: DataType, length: number): Data {
  const bitmap = new Uint8Array(Math.ceil(length / 8));
  if (type.typeId === Type.Utf8 || type.typeId === Type.Binary) {
    return makeData({ type, length, nullCount: length, nullBitmap: bitmap, valueOffsets: new Int32Array(length + 1), data: new Uint8Array(0) } as never);
  }
  if (type.typeId === Type.Bool) return makeData({ type, length, nullCount: length, nullBitmap: bitmap, data: new Uint8Array(Math.ceil(length / 8)) } as never);
  const template = makeData({ type, length: 0 } as never) as Data;
  const ArrayType = template.values.constructor as new (length: number) => ArrayLike<unknown>;
  return makeData({ type, length, nullCount: length, nullBitmap: bitmap, data: new ArrayType(length * template.stride) } as never);
}

/** The chunk of a vector that holds `row`, and the row's index in it. */
function chunkAt(vector: Vector, row: number): [Data, number] {
  let at = row;
  for (const data of vector.data) {
    if (at < data.length) return [data, at];
    at -= data.length;
  }
  throw new RangeError(`row ${row} is past the ${vector.length} rows of the column`);
}

/** `bytes` repeated `times` times. */
function repeated(bytes: Uint8Array, times: number): Uint8Array {
  const out = new Uint8Array(bytes.length * times);
  fillRepeated(out, bytes, out.length);
  return out;
}

/** Fills `out[0, total)` with `unit` over and over, doubling what is copied each time. */
function fillRepeated<T extends { set(source: ArrayLike<number | bigint>, offset?: number): void; copyWithin(target: number, start: number, end: number): unknown }>(out: T, unit: ArrayLike<number | bigint> & { length: number }, total: number): void {
  if (total === 0 || unit.length === 0) return;
  out.set(unit as never, 0);
  for (let filled = unit.length; filled < total; filled *= 2) out.copyWithin(filled, 0, Math.min(filled, total - filled));
}
