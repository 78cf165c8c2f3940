import type { PartitionKey, StoredKey } from '../model/partition.js';

/**
 * DataFrame mode's partition keys: the typed value a function sees as `context.partitionKey`,
 * the text that names the partition (`partitionId`), and a JSON-safe form for the stage.
 *
 * The id of a one-column key is the value as text — DuckDB's own cast to VARCHAR, so decimals,
 * dates and timestamps read as they do in SQL — and `null` for SQL NULL. A key of several columns
 * reads like Hive's partition paths, `region=EU/store=Berlin`, with `%`, `/` and `=` inside values
 * percent-encoded so the parts stay apart. Two keys whose text is the same (the string "null" and
 * NULL; timestamps that differ below the millisecond) keep their ids apart with a `#2`, `#3` suffix,
 * in key order.
 */

export function storeKey(key: PartitionKey): StoredKey {
  if (typeof key === 'bigint') return { bigint: key.toString() };
  if (key instanceof Date) return { date: key.toISOString() };
  if (Array.isArray(key)) return key.map(storeKey);
  return key as string | number | boolean | null;
}

export function restoreKey(stored: StoredKey): PartitionKey {
  if (stored === null || typeof stored !== 'object') return stored;
  if (Array.isArray(stored)) return stored.map(restoreKey);
  if ('bigint' in stored) return BigInt(stored.bigint);
  return new Date(stored.date);
}

/** The id of a key from its columns' text forms (undefined: SQL NULL). */
export function partitionIdOf(columns: readonly string[], texts: ReadonlyArray<string | null>): string {
  if (columns.length === 1) return texts[0] ?? 'null';
  return columns.map((column, i) => `${escapePart(column)}=${texts[i] === null ? 'null' : escapePart(texts[i]!)}`).join('/');
}

function escapePart(text: string): string {
  return text.replace(/[%/=]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Makes ids unique in order: a repeated id gets `#2`, `#3`… (skipping ids already taken). */
export function uniqueIds(ids: readonly string[]): string[] {
  const taken = new Set(ids);
  const seen = new Set<string>();
  return ids.map((id) => {
    if (!seen.has(id)) {
      seen.add(id);
      return id;
    }
    let n = 2;
    while (taken.has(`${id}#${n}`)) n++;
    const unique = `${id}#${n}`;
    taken.add(unique);
    seen.add(unique);
    return unique;
  });
}
