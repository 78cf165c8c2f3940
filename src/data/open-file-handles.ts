import { readdirSync, readlinkSync, realpathSync } from 'node:fs';

/**
 * How many file descriptors of this process are open on a file, as Linux's `/proc/self/fd`
 * shows them; undefined where the platform does not tell (macOS, Windows) or the file does not
 * exist. A DuckDB database instance keeps one descriptor on its file while it is open, so this
 * counts the instances of this process that have the file open (see duckdb-session-host.ts).
 */
export function openHandleCount(path: string): number | undefined {
  let target: string;
  let descriptors: string[];
  try {
    target = realpathSync(path);
    descriptors = readdirSync('/proc/self/fd');
  } catch {
    return undefined;
  }
  let count = 0;
  for (const fd of descriptors) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === target) count++;
    } catch {
      // Closed between the listing and the look (the listing's own descriptor, for one).
    }
  }
  return count;
}

/** Descriptors dpf itself holds on a file outside the session host (realpath → count). */
const own = new Map<string, number>();

/**
 * Runs `open` (which opens the file, such as planning's read-only ATTACH of the source database)
 * and counts the descriptors it added as dpf's own, until the returned function is called.
 */
export async function holdingOwnHandles(path: string, open: () => Promise<void>): Promise<() => void> {
  const before = openHandleCount(path);
  await open();
  const after = openHandleCount(path);
  if (before === undefined || after === undefined || after <= before) return () => undefined;
  const target = realpathSync(path);
  const added = after - before;
  own.set(target, (own.get(target) ?? 0) + added);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const left = (own.get(target) ?? added) - added;
    if (left > 0) own.set(target, left);
    else own.delete(target);
  };
}

/** {@link openHandleCount} without the descriptors dpf itself holds (see {@link holdingOwnHandles}). */
export function foreignHandleCount(path: string): number | undefined {
  const count = openHandleCount(path);
  if (count === undefined) return undefined;
  let target: string;
  try {
    target = realpathSync(path);
  } catch {
    return count;
  }
  return Math.max(0, count - (own.get(target) ?? 0));
}
