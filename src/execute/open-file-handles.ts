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
