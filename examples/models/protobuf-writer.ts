/**
 * The few Protocol Buffers wire-format encodings an ONNX model needs (varints, length-delimited
 * fields, packed floats and doubles), so a model can be written without a protobuf library.
 * A message is built as a list of encoded fields and concatenated; a nested message is a
 * length-delimited field holding its own bytes.
 */

const WIRE_VARINT = 0;
const WIRE_LENGTH_DELIMITED = 2;

const utf8 = new TextEncoder();

function varint(value: number | bigint): Uint8Array {
  let v = BigInt(value);
  if (v < 0n) v = BigInt.asUintN(64, v); // negative int64: ten bytes of two's complement, as protobuf does
  const bytes: number[] = [];
  do {
    const low = Number(v & 0x7fn);
    v >>= 7n;
    bytes.push(v > 0n ? low | 0x80 : low);
  } while (v > 0n);
  return Uint8Array.from(bytes);
}

function key(field: number, wireType: number): Uint8Array {
  return varint((field << 3) | wireType);
}

/** Concatenates encoded fields into one message's bytes. */
export function message(...fields: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(fields.reduce((n, f) => n + f.length, 0));
  let at = 0;
  for (const f of fields) {
    out.set(f, at);
    at += f.length;
  }
  return out;
}

/** An integer field (int32, int64, enum). */
export function intField(field: number, value: number | bigint): Uint8Array {
  return message(key(field, WIRE_VARINT), varint(value));
}

/** A length-delimited field of raw bytes: bytes, or an embedded message's encoding. */
export function bytesField(field: number, bytes: Uint8Array): Uint8Array {
  return message(key(field, WIRE_LENGTH_DELIMITED), varint(bytes.length), bytes);
}

/** A string field (UTF-8). */
export function stringField(field: number, value: string): Uint8Array {
  return bytesField(field, utf8.encode(value));
}

/** A packed repeated int64 field. */
export function packedInts(field: number, values: readonly (number | bigint)[]): Uint8Array {
  return bytesField(field, message(...values.map((v) => varint(v))));
}

/** A packed repeated float field (32-bit IEEE 754, little-endian). */
export function packedFloats(field: number, values: readonly number[]): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return bytesField(field, bytes);
}

/** A packed repeated double field (64-bit IEEE 754, little-endian). */
export function packedDoubles(field: number, values: readonly number[]): Uint8Array {
  const bytes = new Uint8Array(values.length * 8);
  const view = new DataView(bytes.buffer);
  values.forEach((v, i) => view.setFloat64(i * 8, v, true));
  return bytesField(field, bytes);
}
