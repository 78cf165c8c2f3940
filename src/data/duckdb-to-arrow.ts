import duckdb from '@duckdb/node-bindings';
import type { DuckDBDataChunk, DuckDBType } from '@duckdb/node-api';
import { DuckDBTypeId, JSDuckDBValueConverter } from '@duckdb/node-api';
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
  List,
  Map_,
  RecordBatch,
  Schema,
  Struct,
  TimeMicrosecond,
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
  vectorFromArray,
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

/** The Arrow type of a DuckDB column. */
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
      // 128-bit integers (what SUM of BIGINT gives) become doubles: JavaScript has no 128-bit
      // number, and a sum is wanted as a number; beyond 2^53 it is rounded.
      return new Float64();
    case DuckDBTypeId.DECIMAL:
      return new Decimal(type.scale, type.width, 128);
    case DuckDBTypeId.DATE:
      return new DateDay();
    case DuckDBTypeId.TIME:
      return new TimeMicrosecond();
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
    default:
      // VARCHAR, ENUM, UUID, INTERVAL, BIT, UHUGEINT, TIME_TZ, … arrive as text.
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
    const { nullBitmap, nullCount } = copyValidity(vectors, rowCounts, length);
    return makeData({ type: arrowType as Float64, length, nullCount, nullBitmap, data: hugeIntsToDoubles(vectors, rowCounts, length) });
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
  return convertThroughValues(arrowType, chunks, column);
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

function hugeIntsToDoubles(vectors: readonly duckdb.Vector[], rowCounts: readonly number[], length: number): Float64Array {
  const out = new Float64Array(length);
  let row = 0;
  vectors.forEach((vector, i) => {
    const count = rowCounts[i]!;
    if (count === 0) return;
    const raw = duckdb.vector_get_data(vector, count * 16);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let j = 0; j < count; j++, row++) {
      // Lower 64 bits unsigned, upper 64 bits signed (two's complement).
      out[row] = view.getBigInt64(j * 16 + 8, true) === 0n ? Number(view.getBigUint64(j * 16, true)) : Number(view.getBigInt64(j * 16 + 8, true)) * 2 ** 64 + Number(view.getBigUint64(j * 16, true));
    }
  });
  return out;
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

/** Nested and exotic types: DuckDB's own conversion to JavaScript values, then Arrow's builders. */
function convertThroughValues(arrowType: DataType, chunks: readonly DuckDBDataChunk[], column: number): Data {
  const values: unknown[] = [];
  const toText = arrowType instanceof Utf8;
  for (const chunk of chunks) {
    for (const value of chunk.convertColumnValues(column, JSDuckDBValueConverter)) {
      values.push(value === null ? null : toText ? textOf(value) : value);
    }
  }
  return vectorFromArray(values, arrowType).data[0]!;
}

function textOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint' || typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value instanceof Date) return value.toISOString();
  return JSON.stringify(value, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}
