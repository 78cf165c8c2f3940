import type { Table } from 'apache-arrow';
import { loadArrow } from './lazy-modules.js';

/**
 * An array of plain records as an Arrow table, the columns in the order the records first name
 * them (apache-arrow's `tableFromJSON` would move columns whose first value is null to the end).
 * Numbers become doubles, bigints 64-bit integers, strings text, Dates timestamps.
 */
export async function recordsToTable(records: ReadonlyArray<Record<string, unknown>>): Promise<Table> {
  const { tableFromJSON } = await loadArrow();
  const names = [...new Set(records.flatMap((record) => Object.keys(record)))];
  return tableFromJSON(records as Array<Record<string, unknown>>).select(names);
}

/** Whether a value is an apache-arrow Table (told by shape, so arrow need not be loaded to ask). */
export function isArrowTable(value: unknown): value is Table {
  return value !== null && typeof value === 'object' && 'schema' in value && 'batches' in value && 'numRows' in value;
}
