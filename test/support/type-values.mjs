// Values as comparable, JSON-safe tags, for the type matrix: imported by the test and by the
// partition module it writes (plain JavaScript, so both can).
import { Buffer } from 'node:buffer';
import { Type } from 'apache-arrow';

/** `name:Type` of every field. */
export function typeStrings(schema) {
  return schema.fields.map((field) => `${field.name}:${String(field.type)}`);
}

/** The rows of an Arrow table or batch, each value tagged by its Arrow type. */
export function arrowRows(table) {
  const rows = [];
  for (let row = 0; row < table.numRows; row++) {
    const out = {};
    table.schema.fields.forEach((field, i) => (out[field.name] = arrowTag(table.getChildAt(i).get(row), field.type)));
    rows.push(out);
  }
  return rows;
}

function arrowTag(value, type) {
  if (value === null || value === undefined) return null;
  switch (type.typeId) {
    case Type.Int:
      return typeof value === 'bigint' ? `${value}n` : value;
    case Type.Decimal:
      return `dec:${decimalText(BigInt(String(value)), type.scale)}`;
    case Type.Date:
      return `date:${new Date(value).toISOString().slice(0, 10)}`;
    case Type.Timestamp: {
      const micros = BigInt(Math.round(value * 1000));
      const iso = new Date(Number(micros / 1000n)).toISOString();
      return `ts:${iso.slice(0, 19)}.${String(micros % 1_000_000n).padStart(6, '0')}${type.timezone ? ` ${type.timezone}` : ''}`;
    }
    case Type.Time:
      return `time:${value}`;
    case Type.Interval: {
      const nanos = new BigInt64Array(value.buffer, value.byteOffset + 8, 1)[0];
      return `interval:${value[0]}mo ${value[1]}d ${nanos}ns`;
    }
    case Type.Binary:
      return `hex:${Buffer.from(value).toString('hex')}`;
    case Type.List:
    case Type.FixedSizeList:
      return Array.from(value, (item) => arrowTag(item, type.children[0].type));
    case Type.Struct:
      return Object.fromEntries(type.children.map((field, i) => [field.name, arrowTag(value.toArray()[i], field.type)]));
    case Type.Map: {
      const entry = type.children[0].type;
      return Object.fromEntries([...value].map(([key, inner]) => [String(key), arrowTag(inner, entry.children[1].type)]));
    }
    default:
      return value;
  }
}

function decimalText(integer, scale) {
  const negative = integer < 0n;
  const digits = (negative ? -integer : integer).toString().padStart(scale + 1, '0');
  const text = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return negative ? `-${text}` : text;
}

/** A plain JavaScript value (what toRecords and toColumns give), tagged. */
export function plainTag(value) {
  if (value === null || value === undefined) return null;
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'number' && Number.isNaN(value)) return 'NaN';
  if (value instanceof Date) return `Date:${value.toISOString()}`;
  if (value instanceof Uint8Array) return `hex:${Buffer.from(value).toString('hex')}`;
  if (Array.isArray(value)) return value.map(plainTag);
  if (typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, plainTag(inner)]));
  return value;
}
