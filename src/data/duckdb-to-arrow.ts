import duckdb from '@duckdb/node-bindings';
import type { DuckDBDataChunk, DuckDBType } from '@duckdb/node-api';
import {
  type DuckDBDateValue,
  type DuckDBDecimalValue,
  type DuckDBIntervalValue,
  type DuckDBListValue,
  type DuckDBMapValue,
  type DuckDBStructValue,
  DuckDBTypeId,
  type DuckDBValue,
} from '@duckdb/node-api';
import {
  Binary,
  Bool,
  type Data,
  DateDay,
  Decimal,
  Field,
  Float32,
  Float64,
  FixedSizeList,
  Int16,
  Int32,
  Int64,
  Int8,
  IntervalMonthDayNano,
  List,
  Map_,
  Null,
  RecordBatch,
  Schema,
  Struct,
  TimeMicrosecond,
  TimeNanosecond,
  TimestampMicrosecond,
  TimestampMillisecond,
  TimestampNanosecond,
  TimestampSecond,
  Uint16,
  Uint32,
  Uint64,
  Uint8,
  Utf8,
  type DataType,
  makeData,
  Type,
} from 'apache-arrow';

/**
 * Converts DuckDB result chunks to Arrow record batches.
 *
 * DuckDB's node API has no Arrow export, so this reads the chunks' memory directly: fixed-width
 * columns (integers, floats, dates, timestamps, times, decimals) and their validity masks are
 * copied as bytes — DuckDB's validity mask and Arrow's null bitmap share one layout — strings are
 * copied into Arrow's offsets + bytes form without becoming JavaScript strings, and only nested
 * and exotic types go through JavaScript values.
 */

/**
 * The Arrow type of a DuckDB column. Most have an equal; the others are decided here:
 *
 * | DuckDB | Arrow | note |
 * | --- | --- | --- |
 * | BIGINT, UBIGINT | Int64, Uint64 | bigints in `toArrow()` |
 * | HUGEINT | Decimal128(38, 0) | exact; Arrow has no Int128 (a 39-digit value keeps its 16 bytes, but no DECIMAL(38) takes it back) |
 * | DECIMAL(w, s) | Decimal128(w, s) | exact, copied as the integer it is |
 * | TIMESTAMPTZ | Timestamp(µs, "UTC") | DuckDB keeps instants in UTC |
 * | INTERVAL | Interval(MonthDayNano) | microseconds × 1000 |
 * | LIST, ARRAY(n), STRUCT, MAP | List, FixedSizeList(n), Struct, Map | nulls kept at every level |
 * | "NULL" (a column of untyped NULLs) | Null | |
 * | UUID | Utf8 | canonical text, `a0eebc99-9c0b-…` |
 * | ENUM | Utf8 | the label (a Dictionary's would differ batch to batch) |
 * | BIT | Utf8 | `0101…` |
 * | UHUGEINT, BIGNUM (VARINT) | Utf8 | the decimal digits: no Arrow integer or decimal holds 2^127 and above |
 * | TIME WITH TIME ZONE | Utf8 | DuckDB's text, `12:00:00+02` |
 * | TIME_NS | Time64(ns) | |
 * | UNION, GEOMETRY, VARIANT, … | Utf8 | DuckDB's text of the value |
 */
export function arrowTypeOf(type: DuckDBType): DataType {
  switch (type.typeId) {
    case DuckDBTypeId.BOOLEAN:
      return new Bool();
    case DuckDBTypeId.TINYINT:
      return new Int8();
    case DuckDBTypeId.SMALLINT:
      return new Int16();
    case DuckDBTypeId.INTEGER:
      return new Int32();
    case DuckDBTypeId.BIGINT:
      return new Int64();
    case DuckDBTypeId.UTINYINT:
      return new Uint8();
    case DuckDBTypeId.USMALLINT:
      return new Uint16();
    case DuckDBTypeId.UINTEGER:
      return new Uint32();
    case DuckDBTypeId.UBIGINT:
      return new Uint64();
    case DuckDBTypeId.FLOAT:
      return new Float32();
    case DuckDBTypeId.DOUBLE:
      return new Float64();
    case DuckDBTypeId.HUGEINT:
      // 128-bit integers (what SUM of BIGINT gives): Arrow has no Int128, and its Decimal128 has
      // the same 16 bytes, so they are kept exact as DECIMAL(38, 0) (toRecords gives numbers).
      return new Decimal(0, 38, 128);
    case DuckDBTypeId.DECIMAL:
      return new Decimal(type.scale, type.width, 128);
    case DuckDBTypeId.DATE:
      return new DateDay();
    case DuckDBTypeId.TIME:
      return new TimeMicrosecond();
    case DuckDBTypeId.TIME_NS:
      return new TimeNanosecond();
    case DuckDBTypeId.TIMESTAMP:
      return new TimestampMicrosecond();
    case DuckDBTypeId.TIMESTAMP_TZ:
      return new TimestampMicrosecond('UTC');
    case DuckDBTypeId.TIMESTAMP_S:
      return new TimestampSecond();
    case DuckDBTypeId.TIMESTAMP_MS:
      return new TimestampMillisecond();
    case DuckDBTypeId.TIMESTAMP_NS:
      return new TimestampNanosecond();
    case DuckDBTypeId.BLOB:
      return new Binary();
    case DuckDBTypeId.LIST:
      return new List(new Field('item', arrowTypeOf(type.valueType), true));
    case DuckDBTypeId.ARRAY:
      return new FixedSizeList(type.length, new Field('item', arrowTypeOf(type.valueType), true));
    case DuckDBTypeId.STRUCT:
      return new Struct(type.entryNames.map((name, i) => new Field(name, arrowTypeOf(type.entryTypes[i]!), true)));
    case DuckDBTypeId.MAP:
      return new Map_(
        new Field(
          'entries',
          new Struct([new Field('key', arrowTypeOf(type.keyType), false), new Field('value', arrowTypeOf(type.valueType), true)] as never[]),
          false,
        ),
      );
    case DuckDBTypeId.INTERVAL:
      return new IntervalMonthDayNano();
    case DuckDBTypeId.SQLNULL:
      return new Null();
    default:
      // VARCHAR, and the types Arrow has no equal of, as DuckDB's text of them (see the table above).
      return new Utf8();
  }
}

/** The Arrow schema of a DuckDB result. */
export function arrowSchemaOf(names: readonly string[], types: readonly DuckDBType[]): Schema {
  return new Schema(names.map((name, i) => new Field(name, arrowTypeOf(types[i]!), true)));
}

/** Builds one Arrow record batch from DuckDB chunks of one result (they share its schema). */
export function chunksToRecordBatch(schema: Schema, types: readonly DuckDBType[], chunks: readonly DuckDBDataChunk[]): RecordBatch {
  const rowCounts = chunks.map((chunk) => chunk.rowCount);
  const length = rowCounts.reduce((sum, n) => sum + n, 0);
  const children = schema.fields.map((field, column) => {
    const vectors = chunks.map((chunk) => duckdb.data_chunk_get_vector(chunk.chunk, column));
    return convertColumn(field.type, types[column]!, vectors, rowCounts, length, chunks, column);
  });
  const structData = makeData({ type: new Struct(schema.fields), length, nullCount: 0, children });
  return new RecordBatch(schema, structData);
}

function convertColumn(
  arrowType: DataType,
  type: DuckDBType,
  vectors: readonly duckdb.Vector[],
  rowCounts: readonly number[],
  length: number,
  chunks: readonly DuckDBDataChunk[],
  column: number,
): Data {
  const width = fixedByteWidth(type);
  if (width !== undefined) {
    const { nullBitmap, nullCount } = copyValidity(vectors, rowCounts, length);
    const data = new Uint8Array(length * (type.typeId === DuckDBTypeId.DECIMAL ? 16 : width));
    if (type.typeId === DuckDBTypeId.DECIMAL && width < 16) widenDecimals(vectors, rowCounts, width, data);
    else copyFixedWidth(vectors, rowCounts, width, data);
    return makeData({ type: arrowType, length, nullCount, nullBitmap, data } as never);
  }
  if (type.typeId === DuckDBTypeId.HUGEINT) {
    // DuckDB's hugeint (low 64 bits unsigned, high 64 bits signed, little-endian) is Decimal128's layout.
    const { nullBitmap, nullCount } = copyValidity(vectors, rowCounts, length);
    const data = new Uint8Array(length * 16);
    copyFixedWidth(vectors, rowCounts, 16, data);
    return makeData({ type: arrowType as Decimal, length, nullCount, nullBitmap, data });
  }
  if (type.typeId === DuckDBTypeId.BOOLEAN) {
    const { nullBitmap, nullCount } = copyValidity(vectors, rowCounts, length);
    return makeData({ type: arrowType as Bool, length, nullCount, nullBitmap, data: packBooleans(vectors, rowCounts, length) });
  }
  if (type.typeId === DuckDBTypeId.VARCHAR || type.typeId === DuckDBTypeId.BLOB) {
    const { nullBitmap, nullCount } = copyValidity(vectors, rowCounts, length);
    const { valueOffsets, data } = copyStrings(vectors, rowCounts, length);
    return makeData({ type: arrowType as Utf8, length, nullCount, nullBitmap, valueOffsets, data });
  }
  return convertThroughValues(arrowType, type, chunks, column);
}

/** Bytes per value of the types copied as raw memory, or undefined for the others. */
function fixedByteWidth(type: DuckDBType): number | undefined {
  switch (type.typeId) {
    case DuckDBTypeId.TINYINT:
    case DuckDBTypeId.UTINYINT:
      return 1;
    case DuckDBTypeId.SMALLINT:
    case DuckDBTypeId.USMALLINT:
      return 2;
    case DuckDBTypeId.INTEGER:
    case DuckDBTypeId.UINTEGER:
    case DuckDBTypeId.FLOAT:
    case DuckDBTypeId.DATE:
      return 4;
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.UBIGINT:
    case DuckDBTypeId.DOUBLE:
    case DuckDBTypeId.TIME:
    case DuckDBTypeId.TIMESTAMP:
    case DuckDBTypeId.TIMESTAMP_TZ:
    case DuckDBTypeId.TIMESTAMP_S:
    case DuckDBTypeId.TIMESTAMP_MS:
    case DuckDBTypeId.TIMESTAMP_NS:
      return 8;
    case DuckDBTypeId.DECIMAL:
      return type.width <= 4 ? 2 : type.width <= 9 ? 4 : type.width <= 18 ? 8 : 16;
    default:
      return undefined;
  }
}

function copyFixedWidth(vectors: readonly duckdb.Vector[], rowCounts: readonly number[], width: number, out: Uint8Array): void {
  let offset = 0;
  vectors.forEach((vector, i) => {
    const bytes = rowCounts[i]! * width;
    if (bytes > 0) out.set(duckdb.vector_get_data(vector, bytes), offset);
    offset += bytes;
  });
}

/** DuckDB keeps narrow decimals in 2, 4 or 8 bytes; Arrow's Decimal128 wants 16, sign-extended. */
function widenDecimals(vectors: readonly duckdb.Vector[], rowCounts: readonly number[], width: number, out: Uint8Array): void {
  const words = new Int32Array(out.buffer, out.byteOffset, out.byteLength / 4);
  let row = 0;
  vectors.forEach((vector, i) => {
    const count = rowCounts[i]!;
    if (count === 0) return;
    const raw = duckdb.vector_get_data(vector, count * width);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let j = 0; j < count; j++, row++) {
      let low: number;
      let high: number;
      if (width === 2) {
        low = view.getInt16(j * 2, true);
        high = low < 0 ? -1 : 0;
      } else if (width === 4) {
        low = view.getInt32(j * 4, true);
        high = low < 0 ? -1 : 0;
      } else {
        low = view.getInt32(j * 8, true);
        high = view.getInt32(j * 8 + 4, true);
      }
      const sign = high < 0 ? -1 : 0;
      words[row * 4] = low;
      words[row * 4 + 1] = width === 8 ? high : sign;
      words[row * 4 + 2] = sign;
      words[row * 4 + 3] = sign;
    }
  });
}

/** Concatenates the chunks' validity masks into one Arrow null bitmap (undefined when nothing is null). */
function copyValidity(
  vectors: readonly duckdb.Vector[],
  rowCounts: readonly number[],
  length: number,
): { nullBitmap: Uint8Array | undefined; nullCount: number } {
  const masks = vectors.map((vector, i) => (rowCounts[i]! > 0 ? duckdb.vector_get_validity(vector, Math.ceil(rowCounts[i]! / 64) * 8) : null));
  if (masks.every((mask) => mask === null || mask === undefined)) return { nullBitmap: undefined, nullCount: 0 };
  const bitmap = new Uint8Array(Math.ceil(length / 64) * 8);
  let offset = 0;
  masks.forEach((mask, i) => {
    const count = rowCounts[i]!;
    if (mask === null || mask === undefined) setBits(bitmap, offset, count);
    else copyBits(mask, bitmap, offset, count);
    offset += count;
  });
  const nullCount = length - countSetBits(bitmap, length);
  return nullCount === 0 ? { nullBitmap: undefined, nullCount: 0 } : { nullBitmap: bitmap, nullCount };
}

/** The set bits among the first `length` bits of a bitmap whose byte length is a multiple of 8 (bits past `length` are clear). */
function countSetBits(bitmap: Uint8Array, length: number): number {
  const words = new Uint32Array(bitmap.buffer, bitmap.byteOffset, Math.ceil(length / 32));
  let count = 0;
  for (let i = 0; i < words.length; i++) {
    let word = words[i]!;
    word -= (word >>> 1) & 0x55555555;
    word = (word & 0x33333333) + ((word >>> 2) & 0x33333333);
    count += (((word + (word >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
  }
  return count;
}

function setBits(bitmap: Uint8Array, offset: number, count: number): void {
  let bit = offset;
  const end = offset + count;
  for (; bit < end && (bit & 7) !== 0; bit++) bitmap[bit >> 3]! |= 1 << (bit & 7);
  // Whole bytes at once (chunks hold 2,048 rows, so offsets are byte-aligned but for the last).
  const wholeEnd = end & ~7;
  if (wholeEnd > bit) {
    bitmap.fill(0xff, bit >> 3, wholeEnd >> 3);
    bit = wholeEnd;
  }
  for (; bit < end; bit++) bitmap[bit >> 3]! |= 1 << (bit & 7);
}

function copyBits(source: Uint8Array, target: Uint8Array, offset: number, count: number): void {
  if ((offset & 7) === 0) {
    const whole = count >> 3;
    target.set(source.subarray(0, whole), offset >> 3);
    for (let bit = whole << 3; bit < count; bit++) {
      if ((source[bit >> 3]! >> (bit & 7)) & 1) target[(offset + bit) >> 3]! |= 1 << ((offset + bit) & 7);
    }
    return;
  }
  for (let bit = 0; bit < count; bit++) {
    if ((source[bit >> 3]! >> (bit & 7)) & 1) target[(offset + bit) >> 3]! |= 1 << ((offset + bit) & 7);
  }
}

function packBooleans(vectors: readonly duckdb.Vector[], rowCounts: readonly number[], length: number): Uint8Array {
  const bits = new Uint8Array(Math.ceil(length / 64) * 8);
  let row = 0;
  vectors.forEach((vector, i) => {
    const count = rowCounts[i]!;
    if (count === 0) return;
    const bytes = duckdb.vector_get_data(vector, count);
    for (let j = 0; j < count; j++, row++) if (bytes[j]) bits[row >> 3]! |= 1 << (row & 7);
  });
  return bits;
}

/**
 * Copies DuckDB strings (16-byte `duckdb_string_t`: length, then ≤ 12 bytes inline or a prefix and
 * a pointer) into Arrow's offsets + bytes, without decoding them to JavaScript strings.
 */
function copyStrings(
  vectors: readonly duckdb.Vector[],
  rowCounts: readonly number[],
  length: number,
): { valueOffsets: Int32Array; data: Uint8Array } {
  // Each value is 16 bytes: a uint32 length, then up to 12 bytes inline or a prefix and a
  // pointer. A NULL's 16 bytes are not initialised: its length (and pointer) must never be read.
  const raws: Uint8Array[] = [];
  const valueOffsets = new Int32Array(length + 1);
  let total = 0;
  let row = 0;
  for (let i = 0; i < vectors.length; i++) {
    const count = rowCounts[i]!;
    const raw = duckdb.vector_get_data(vectors[i]!, count * 16);
    raws.push(raw);
    const words = wordsOf(raw);
    const validity = count > 0 ? duckdb.vector_get_validity(vectors[i]!, Math.ceil(count / 64) * 8) : null;
    if (validity === null || validity === undefined) {
      for (let j = 0; j < count; j++) valueOffsets[++row] = total += words[j * 4]!;
    } else {
      for (let j = 0; j < count; j++) {
        if ((validity[j >> 3]! >> (j & 7)) & 1) total += words[j * 4]!;
        valueOffsets[++row] = total;
      }
    }
  }
  const data = new Uint8Array(total);
  row = 0;
  for (let i = 0; i < raws.length; i++) {
    const raw = raws[i]!;
    const count = rowCounts[i]!;
    for (let j = 0; j < count; j++, row++) {
      const at = valueOffsets[row]!;
      const size = valueOffsets[row + 1]! - at;
      if (size === 0) continue;
      if (size <= 12) {
        for (let k = 0, from = j * 16 + 4; k < size; k++) data[at + k] = raw[from + k]!;
      } else {
        data.set(duckdb.get_data_from_pointer(raw.buffer as ArrayBuffer, raw.byteOffset + j * 16 + 8, size), at);
      }
    }
  }
  return { valueOffsets, data };
}

/** The bytes as little-endian uint32 words (copied when not 4-byte aligned). */
function wordsOf(raw: Uint8Array): Uint32Array {
  if (raw.byteOffset % 4 === 0) return new Uint32Array(raw.buffer, raw.byteOffset, raw.byteLength >> 2);
  return new Uint32Array(raw.slice().buffer);
}

/**
 * Nested and exotic types: the chunks' values as DuckDB values — exact: decimals and hugeints as
 * their integers, timestamps in their own unit, 64-bit integers as bigints — assembled into Arrow
 * data level by level, so a null at any depth stays a null at that depth.
 */
function convertThroughValues(arrowType: DataType, type: DuckDBType, chunks: readonly DuckDBDataChunk[], column: number): Data {
  const values: DuckDBValue[] = [];
  for (const chunk of chunks) for (const value of chunk.getColumnValues(column)) values.push(value);
  return dataOfValues(arrowType, type, values);
}

function dataOfValues(arrowType: DataType, type: DuckDBType, values: readonly DuckDBValue[]): Data {
  const length = values.length;
  const base = { type: arrowType, length, ...validityOf(values) };
  const childType = (i: number): DataType => arrowType.children[i]!.type as DataType;
  switch (type.typeId) {
    case DuckDBTypeId.LIST: {
      const valueOffsets = new Int32Array(length + 1);
      const items: DuckDBValue[] = [];
      values.forEach((value, i) => {
        if (value !== null) for (const item of (value as DuckDBListValue).items) items.push(item);
        valueOffsets[i + 1] = items.length;
      });
      return makeData({ ...base, valueOffsets, child: dataOfValues(childType(0), type.valueType, items) } as never);
    }
    case DuckDBTypeId.ARRAY: {
      const items: DuckDBValue[] = [];
      for (const value of values) {
        if (value === null) for (let k = 0; k < type.length; k++) items.push(null);
        else for (const item of (value as DuckDBListValue).items) items.push(item);
      }
      return makeData({ ...base, child: dataOfValues(childType(0), type.valueType, items) } as never);
    }
    case DuckDBTypeId.STRUCT: {
      const children = type.entryNames.map((name, j) =>
        dataOfValues(childType(j), type.entryTypes[j]!, values.map((value) => (value === null ? null : ((value as DuckDBStructValue).entries[name] ?? null)))),
      );
      return makeData({ ...base, children } as never);
    }
    case DuckDBTypeId.MAP: {
      const valueOffsets = new Int32Array(length + 1);
      const keys: DuckDBValue[] = [];
      const items: DuckDBValue[] = [];
      values.forEach((value, i) => {
        if (value !== null) {
          for (const entry of (value as DuckDBMapValue).entries) {
            keys.push(entry.key);
            items.push(entry.value);
          }
        }
        valueOffsets[i + 1] = keys.length;
      });
      const entriesType = childType(0);
      const entries = makeData({
        type: entriesType as Struct,
        length: keys.length,
        nullCount: 0,
        children: [dataOfValues(entriesType.children[0]!.type as DataType, type.keyType, keys), dataOfValues(entriesType.children[1]!.type as DataType, type.valueType, items)],
      });
      return makeData({ ...base, valueOffsets, child: entries } as never);
    }
    default:
      return scalarData(arrowType, type, values, base);
  }
}

function scalarData(
  arrowType: DataType,
  type: DuckDBType,
  values: readonly DuckDBValue[],
  base: { type: DataType; length: number; nullCount: number; nullBitmap: Uint8Array | undefined },
): Data {
  const length = values.length;
  const make = (data: ArrayBufferView, extra: object = {}): Data => makeData({ ...base, data, ...extra } as never);
  switch (arrowType.typeId) {
    case Type.Null:
      return makeData({ type: arrowType as Null, length, nullCount: length });
    case Type.Bool: {
      const bits = new Uint8Array(Math.ceil(length / 64) * 8);
      values.forEach((value, i) => {
        if (value === true) bits[i >> 3]! |= 1 << (i & 7);
      });
      return make(bits);
    }
    case Type.Int: {
      const { bitWidth, isSigned } = arrowType as unknown as { bitWidth: 8 | 16 | 32 | 64; isSigned: boolean };
      if (bitWidth === 64) {
        const out = isSigned ? new BigInt64Array(length) : new BigUint64Array(length);
        values.forEach((value, i) => (out[i] = value === null ? 0n : BigInt(value as bigint | number)));
        return make(out);
      }
      const Typed = isSigned ? { 8: Int8Array, 16: Int16Array, 32: Int32Array }[bitWidth] : { 8: Uint8Array, 16: Uint16Array, 32: Uint32Array }[bitWidth];
      return make(numbers(new Typed(length), values));
    }
    case Type.Float:
      return make(numbers((arrowType as unknown as { precision: number }).precision === 1 ? new Float32Array(length) : new Float64Array(length), values));
    case Type.Decimal: {
      const out = new BigInt64Array(length * 2);
      values.forEach((value, i) => {
        if (value === null) return;
        const integer = typeof value === 'bigint' ? value : (value as DuckDBDecimalValue).value;
        out[i * 2] = BigInt.asIntN(64, integer);
        out[i * 2 + 1] = BigInt.asIntN(64, integer >> 64n);
      });
      return make(new Uint32Array(out.buffer));
    }
    case Type.Date:
      return make(Int32Array.from(values, (value) => (value === null ? 0 : (value as DuckDBDateValue).days)));
    case Type.Time: {
      const field = type.typeId === DuckDBTypeId.TIME_NS ? 'nanos' : 'micros';
      return make(BigInt64Array.from(values, (value) => (value === null ? 0n : (value as unknown as Record<string, bigint>)[field]!)));
    }
    case Type.Timestamp: {
      const field = { [DuckDBTypeId.TIMESTAMP_S]: 'seconds', [DuckDBTypeId.TIMESTAMP_MS]: 'millis', [DuckDBTypeId.TIMESTAMP_NS]: 'nanos' }[type.typeId as number] ?? 'micros';
      return make(BigInt64Array.from(values, (value) => (value === null ? 0n : (value as unknown as Record<string, bigint>)[field]!)));
    }
    case Type.Interval: {
      const out = new Int32Array(length * 4);
      const nanos = new BigInt64Array(out.buffer);
      values.forEach((value, i) => {
        if (value === null) return;
        const { months, days, micros } = value as DuckDBIntervalValue;
        out[i * 4] = months;
        out[i * 4 + 1] = days;
        nanos[i * 2 + 1] = micros * 1000n;
      });
      return make(out);
    }
    case Type.Binary: {
      const parts = values.map((value) => (value === null ? EMPTY : (value as { bytes: Uint8Array }).bytes));
      return make(...concatenated(parts));
    }
    default: {
      const encoder = new TextEncoder();
      const parts = values.map((value) => (value === null ? EMPTY : encoder.encode(typeof value === 'string' ? value : String(value))));
      return make(...concatenated(parts));
    }
  }
}

const EMPTY = new Uint8Array(0);

function numbers<T extends { [index: number]: number }>(out: T, values: readonly DuckDBValue[]): T {
  values.forEach((value, i) => (out[i] = value === null ? 0 : Number(value)));
  return out;
}

/** Byte strings as Arrow's bytes + offsets. */
function concatenated(parts: readonly Uint8Array[]): [Uint8Array, { valueOffsets: Int32Array }] {
  const valueOffsets = new Int32Array(parts.length + 1);
  parts.forEach((part, i) => (valueOffsets[i + 1] = valueOffsets[i]! + part.length));
  const data = new Uint8Array(valueOffsets[parts.length]!);
  parts.forEach((part, i) => data.set(part, valueOffsets[i]!));
  return [data, { valueOffsets }];
}

function validityOf(values: readonly DuckDBValue[]): { nullBitmap: Uint8Array | undefined; nullCount: number } {
  let nullCount = 0;
  for (const value of values) if (value === null) nullCount++;
  if (nullCount === 0) return { nullBitmap: undefined, nullCount };
  const nullBitmap = new Uint8Array(Math.ceil(values.length / 64) * 8);
  values.forEach((value, i) => {
    if (value !== null) nullBitmap[i >> 3]! |= 1 << (i & 7);
  });
  return { nullBitmap, nullCount };
}
