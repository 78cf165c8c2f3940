import duckdb from '@duckdb/node-bindings';
import {
  ARRAY,
  BIGINT,
  BLOB,
  BOOLEAN,
  DATE,
  DECIMAL,
  DOUBLE,
  type DuckDBConnection,
  DuckDBDataChunk,
  type DuckDBType,
  FLOAT,
  INTEGER,
  INTERVAL,
  LIST,
  MAP,
  SMALLINT,
  STRUCT,
  TIME,
  TIME_NS,
  TIMESTAMP,
  TIMESTAMP_MS,
  TIMESTAMP_NS,
  TIMESTAMP_S,
  TIMESTAMPTZ,
  TINYINT,
  UBIGINT,
  UINTEGER,
  USMALLINT,
  UTINYINT,
  VARCHAR,
} from '@duckdb/node-api';
import { type Data, type DataType, type Table, TimeUnit, Type } from 'apache-arrow';
import { arrowCell, isValid, vectorOf } from './arrow-values.js';
import { sqlIdentifier } from './sql.js';
import { plainColumn } from './table-values.js';

/**
 * Loads an Arrow table into a DuckDB table through the appender, a data chunk (2048 rows) at a
 * time. Fixed-width columns are copied into DuckDB's vectors as bytes; strings are assigned
 * without a round trip through JavaScript strings; nested and exotic columns (lists, structs,
 * maps, fixed-size lists, intervals, nulls) become DuckDB columns of the same type, written value
 * by value ({@link arrowCell}). What has no DuckDB equal (dictionaries, unions, …) is text.
 *
 * | Arrow | DuckDB |
 * | --- | --- |
 * | Int8…Int64, Uint8…Uint64 | TINYINT…BIGINT, UTINYINT…UBIGINT |
 * | Float16, Float32, Float64 | FLOAT, FLOAT, DOUBLE |
 * | Decimal128(p, s) | DECIMAL(min(p, 38), s) |
 * | Date32, Date64 | DATE |
 * | Timestamp(s, ms, µs, ns), without a time zone | TIMESTAMP_S, TIMESTAMP_MS, TIMESTAMP, TIMESTAMP_NS |
 * | Timestamp with a time zone | TIMESTAMPTZ (the instant; DuckDB keeps no zone) |
 * | Time(s, ms, µs), Time(ns) | TIME, TIME_NS |
 * | Interval | INTERVAL |
 * | Utf8, Binary | VARCHAR, BLOB |
 * | List, FixedSizeList(n), Struct, Map | LIST, ARRAY(n), STRUCT, MAP, of the children's types |
 * | Null | INTEGER, all NULL (as DuckDB types `CREATE TABLE … AS SELECT NULL`) |
 * | Dictionary, Union, … | VARCHAR |
 */
export async function appendArrowTable(
  connection: DuckDBConnection,
  tableName: string,
  table: Table,
  options: { create: boolean | 'temporary' },
): Promise<void> {
  const columns = table.schema.fields.map((field, i) => ({ name: field.name, plan: planColumn(field.type as DataType), index: i }));
  if (options.create !== false) {
    const definitions = columns.map(({ name, plan }) => `${sqlIdentifier(name)} ${plan.duckdbType.toString()}`).join(', ');
    await connection.run(`CREATE ${options.create === 'temporary' ? 'TEMP ' : ''}TABLE ${sqlIdentifier(tableName)} (${definitions})`);
  }
  const appender = options.create === 'temporary' ? await connection.createAppender(tableName, 'main', 'temp') : await connection.createAppender(tableName);
  try {
    const types = columns.map(({ plan }) => plan.duckdbType);
    const vectorSize = duckdb.vector_size();
    for (const batch of table.batches) {
      for (let start = 0; start < batch.numRows; start += vectorSize) {
        const count = Math.min(vectorSize, batch.numRows - start);
        const chunk = DuckDBDataChunk.create(types, count);
        columns.forEach(({ plan, index }) => {
          const data = batch.getChildAt(index)!.data[0]!;
          if (plan.write === undefined) chunk.setColumnValues(index, Array.from({ length: count }, (_, i) => arrowCell(data, start + i)));
          else plan.write(duckdb.data_chunk_get_vector(chunk.chunk, index), data, start, count);
        });
        appender.appendDataChunk(chunk);
      }
    }
    appender.flushSync();
  } finally {
    appender.closeSync();
  }
}

interface ColumnPlan {
  duckdbType: DuckDBType;
  /** Writes rows `[start, start + count)` of `data` into a DuckDB vector; undefined: value by value ({@link arrowCell}). */
  write?(vector: duckdb.Vector, data: Data, start: number, count: number): void;
}

function planColumn(type: DataType): ColumnPlan {
  const bitWidth = (type as unknown as { bitWidth?: number }).bitWidth;
  switch (type.typeId) {
    case Type.Int: {
      const signed = (type as unknown as { isSigned: boolean }).isSigned;
      const duckdbType = signed
        ? { 8: TINYINT, 16: SMALLINT, 32: INTEGER, 64: BIGINT }[bitWidth as 8 | 16 | 32 | 64]
        : { 8: UTINYINT, 16: USMALLINT, 32: UINTEGER, 64: UBIGINT }[bitWidth as 8 | 16 | 32 | 64];
      return fixedWidth(duckdbType, bitWidth! / 8);
    }
    case Type.Float: {
      const precision = (type as unknown as { precision: number }).precision;
      if (precision === 2) return fixedWidth(DOUBLE, 8);
      if (precision === 1) return fixedWidth(FLOAT, 4);
      return converted(FLOAT, (value) => new Float32Array([Number(value)]), 4);
    }
    case Type.Date:
      return (type as unknown as { unit: number }).unit === 0
        ? fixedWidth(DATE, 4)
        : converted(DATE, (value) => new Int32Array([Math.floor(Number(value) / 86_400_000)]), 4);
    case Type.Timestamp: {
      const { unit, timezone } = type as unknown as { unit: TimeUnit; timezone?: string | null };
      if (timezone) return scaledInt64(TIMESTAMPTZ, [1_000_000n, 1000n, 1n, 1n][unit]!, unit === TimeUnit.NANOSECOND);
      return fixedWidth([TIMESTAMP_S, TIMESTAMP_MS, TIMESTAMP, TIMESTAMP_NS][unit]!, 8);
    }
    case Type.Time: {
      const unit = (type as unknown as { unit: TimeUnit }).unit;
      if (unit === TimeUnit.NANOSECOND) return fixedWidth(TIME_NS, 8);
      return scaledInt64(TIME, [1_000_000n, 1000n, 1n, 1n][unit]!, false);
    }
    case Type.Decimal: {
      const { precision, scale, bitWidth: bits } = type as unknown as { precision: number; scale: number; bitWidth: number };
      // Decimal128 is copied; the narrower and wider ones value by value (arrowCell reads any width).
      return bits === 128 ? decimal(Math.min(precision, 38), scale) : { duckdbType: DECIMAL(Math.min(precision, 38), scale) };
    }
    case Type.Bool:
      return {
        duckdbType: BOOLEAN,
        write(vector, data, start, count) {
          const out = new Uint8Array(count);
          const bits = data.values as Uint8Array;
          for (let i = 0; i < count; i++) {
            const bit = data.offset + start + i;
            out[i] = (bits[bit >> 3]! >> (bit & 7)) & 1;
          }
          copyInto(vector, out);
          writeValidity(vector, data, start, count);
        },
      };
    case Type.Utf8:
    case Type.LargeUtf8:
    case Type.Binary:
    case Type.LargeBinary:
      return {
        duckdbType: type.typeId === Type.Utf8 || type.typeId === Type.LargeUtf8 ? VARCHAR : BLOB,
        write(vector, data, start, count) {
          const offsets = data.valueOffsets as Int32Array | BigInt64Array;
          const bytes = data.values as Uint8Array;
          for (let i = 0; i < count; i++) {
            if (!isValid(data, start + i)) continue;
            const from = Number(offsets[start + i]!);
            const to = Number(offsets[start + i + 1]!);
            duckdb.vector_assign_string_element_len(vector, i, bytes.subarray(from, to));
          }
          writeValidity(vector, data, start, count);
        },
      };
    case Type.List:
    case Type.LargeList:
    case Type.FixedSizeList:
    case Type.Struct:
    case Type.Map:
    case Type.Interval:
    case Type.Null:
    case Type.FixedSizeBinary:
      return { duckdbType: duckdbTypeOf(type) };
    default:
      return asText();
  }
}

/** The DuckDB type of an Arrow type (see the table above), nested ones level by level. */
function duckdbTypeOf(type: DataType): DuckDBType {
  const child = (i: number): DataType => type.children[i]!.type as DataType;
  switch (type.typeId) {
    case Type.List:
    case Type.LargeList:
      return LIST(duckdbTypeOf(child(0)));
    case Type.FixedSizeList:
      return ARRAY(duckdbTypeOf(child(0)), (type as unknown as { listSize: number }).listSize);
    case Type.Struct:
      return STRUCT(Object.fromEntries(type.children.map((field) => [field.name, duckdbTypeOf(field.type as DataType)])));
    case Type.Map: {
      const entries = child(0);
      return MAP(duckdbTypeOf(entries.children[0]!.type as DataType), duckdbTypeOf(entries.children[1]!.type as DataType));
    }
    case Type.Interval:
      return INTERVAL;
    case Type.Null:
      return INTEGER;
    case Type.FixedSizeBinary:
      return BLOB;
    case Type.Float:
      return (type as unknown as { precision: number }).precision === 2 ? DOUBLE : FLOAT;
    case Type.Dictionary:
      return VARCHAR;
    default:
      return planColumn(type).duckdbType;
  }
}

function fixedWidth(duckdbType: DuckDBType, width: number): ColumnPlan {
  return {
    duckdbType,
    write(vector, data, start, count) {
      const values = data.values as ArrayBufferView;
      duckdb.copy_data_to_vector(vector, 0, values.buffer as ArrayBuffer, values.byteOffset + start * width, count * width);
      writeValidity(vector, data, start, count);
    },
  };
}

/** 64-bit values that need scaling to DuckDB's unit (microseconds). */
function scaledInt64(duckdbType: DuckDBType, factor: bigint, divide: boolean): ColumnPlan {
  return {
    duckdbType,
    write(vector, data, start, count) {
      // 64-bit values, or 32-bit ones (Arrow's Time32 of seconds and milliseconds).
      const source = data.values as BigInt64Array | Int32Array;
      const out = new BigInt64Array(count);
      for (let i = 0; i < count; i++) {
        const value = BigInt(source[start + i]!);
        out[i] = divide ? value / 1000n : value * factor;
      }
      copyInto(vector, out);
      writeValidity(vector, data, start, count);
    },
  };
}

function converted(duckdbType: DuckDBType, toBytes: (value: unknown) => ArrayBufferView, width: number): ColumnPlan {
  return {
    duckdbType,
    write(vector, data, start, count) {
      const raw = new Uint8Array(count * width);
      for (let i = 0; i < count; i++) {
        const value = isValid(data, start + i) ? vectorOf(data).get(start + i) : 0;
        const view = toBytes(value);
        raw.set(new Uint8Array(view.buffer, view.byteOffset, width), i * width);
      }
      copyInto(vector, raw);
      writeValidity(vector, data, start, count);
    },
  };
}

/** Arrow decimals are 128-bit; DuckDB keeps narrow ones in 2, 4 or 8 bytes. */
function decimal(width: number, scale: number): ColumnPlan {
  const bytesPerValue = width <= 4 ? 2 : width <= 9 ? 4 : width <= 18 ? 8 : 16;
  return {
    duckdbType: DECIMAL(width, scale),
    write(vector, data, start, count) {
      const words = data.values as Uint32Array;
      const raw = new Uint8Array(count * bytesPerValue);
      const view = new DataView(raw.buffer);
      for (let i = 0; i < count; i++) {
        const at = (start + i) * 4;
        if (bytesPerValue === 16) {
          for (let w = 0; w < 4; w++) view.setUint32(i * 16 + w * 4, words[at + w]!, true);
        } else if (bytesPerValue === 8) {
          view.setUint32(i * 8, words[at]!, true);
          view.setUint32(i * 8 + 4, words[at + 1]!, true);
        } else if (bytesPerValue === 4) {
          view.setInt32(i * 4, words[at]! | 0, true);
        } else {
          view.setInt16(i * 2, words[at]! << 16 >> 16, true);
        }
      }
      copyInto(vector, raw);
      writeValidity(vector, data, start, count);
    },
  };
}

/** Nested and other types: stored as text (JSON for nested values). */
function asText(): ColumnPlan {
  return {
    duckdbType: VARCHAR,
    write(vector, data, start, count) {
      const values = plainColumn(vectorOf(data));
      for (let i = 0; i < count; i++) {
        const value = values[start + i];
        if (value === null || value === undefined) continue;
        const text = typeof value === 'string' ? value : JSON.stringify(value, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
        duckdb.vector_assign_string_element(vector, i, text);
      }
      writeValidity(vector, data, start, count);
    },
  };
}

function writeValidity(vector: duckdb.Vector, data: Data, start: number, count: number): void {
  if (data.nullCount === 0 || data.nullBitmap === undefined || data.nullBitmap.length === 0) return;
  duckdb.vector_ensure_validity_writable(vector);
  const mask = new Uint8Array(Math.ceil(count / 64) * 8);
  for (let i = 0; i < count; i++) if (isValid(data, start + i)) mask[i >> 3]! |= 1 << (i & 7);
  duckdb.copy_data_to_vector_validity(vector, 0, mask.buffer, 0, mask.byteLength);
}

/** DuckDB's vector memory is written through a copy, not through the views `vector_get_data` returns. */
function copyInto(vector: duckdb.Vector, values: ArrayBufferView): void {
  duckdb.copy_data_to_vector(vector, 0, values.buffer as ArrayBuffer, values.byteOffset, values.byteLength);
}
