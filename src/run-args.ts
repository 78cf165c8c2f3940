import { InvalidOptionError } from './errors.js';
import type { JsonValue } from './model/json-value.js';

/** The most `args` a run takes, as JSON: they travel in every start record and to every worker. */
const MAX_ARGS_BYTES = 1 << 20;

/**
 * Checks a run's `args` (`context.args`) before any work: a value JSON keeps exactly — null,
 * booleans, finite numbers, strings, arrays and plain objects of them — and returns the copy the
 * run records. Anything else is refused with the path of the value at fault and what to do:
 * functions, class instances (a `Date`, a `Map`, a model), `bigint`, `NaN` and the infinities,
 * `undefined` in an array, cycles. `undefined` properties of an object are left out, as JSON does.
 */
export function checkRunArgs(value: unknown): JsonValue | undefined {
  if (value === undefined) return undefined;
  const copy = copyJson(value, 'args', new Set());
  const bytes = Buffer.byteLength(JSON.stringify(copy));
  if (bytes > MAX_ARGS_BYTES) {
    throw new InvalidOptionError(
      'args',
      `is ${bytes} bytes as JSON, more than the ${MAX_ARGS_BYTES} a run takes (args go to every worker and every start record); put large data on the stage or in a file and pass its path`,
    );
  }
  return copy;
}

function copyJson(value: unknown, path: string, ancestors: Set<object>): JsonValue {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) refuse(path, `is ${value}, which JSON cannot hold (it would become null)`, 'pass null or a finite number');
    return value;
  }
  if (typeof value === 'bigint') refuse(path, `is the bigint ${value}n, which JSON cannot hold`, `pass it as a string ("${value}") or a number`);
  if (typeof value === 'function') refuse(path, 'is a function', 'pass the data the function needs, and import the function in the partition module instead');
  if (typeof value !== 'object') refuse(path, `is a ${typeof value}`, 'pass JSON data: null, booleans, numbers, strings, arrays and plain objects');
  if (ancestors.has(value)) refuse(path, 'refers back to an object that contains it (a cycle)', 'pass a tree of plain data');
  ancestors.add(value);
  try {
    if (Array.isArray(value)) {
      return value.map((item: unknown, i) => {
        if (item === undefined) refuse(`${path}[${i}]`, 'is undefined, which JSON turns into null', 'pass null');
        return copyJson(item, `${path}[${i}]`, ancestors);
      });
    }
    const prototype = Object.getPrototypeOf(value) as unknown;
    if (prototype !== Object.prototype && prototype !== null) {
      const kind = (value as { constructor?: { name?: string } }).constructor?.name ?? 'class';
      const hint = value instanceof Date ? `pass value.toISOString() and make a Date of it in the function` : 'pass its plain data (for example what its toJSON() gives) and rebuild it in the function';
      refuse(path, `is a ${kind}, not plain data; a worker would get ${JSON.stringify(value) ?? 'nothing'} instead`, hint);
    }
    const out: { [key: string]: JsonValue } = {};
    for (const [key, item] of Object.entries(value)) {
      if (item === undefined) continue;
      out[key] = copyJson(item, `${path}.${key}`, ancestors);
    }
    return out;
  } finally {
    ancestors.delete(value);
  }
}

function refuse(path: string, what: string, fix: string): never {
  throw new InvalidOptionError(path, `${what}: a run's args must be JSON data, the same in every worker; ${fix}`);
}

/** Whether two recorded args are the same (object keys in any order). */
export function sameArgs(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  return canonical(a) === canonical(b);
}

/** `args` as JSON with object keys sorted: for comparing, and for messages. */
export function canonical(value: JsonValue | undefined): string {
  if (value === undefined) return 'none';
  return JSON.stringify(value, (_, item: unknown) =>
    item !== null && typeof item === 'object' && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)))
      : item,
  );
}

/** A copy of recorded args that a function cannot change (a change would leak into the next partition of its worker). */
export function frozenArgs<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const item of Object.values(value)) frozenArgs(item);
    Object.freeze(value);
  }
  return value;
}
