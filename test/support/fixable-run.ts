import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeModule } from '../helpers.js';

/**
 * A partition function that fails for the partitions `failing` names until the marker file
 * `{dir}/fixed` exists (the test "fixes the cause" by creating it), records every execution in
 * `{dir}/executions.log`, and saves `{ id, args, rows }` as `result.json`, plus `rows.csv` (its
 * rows, a table artifact) and `note.bin` (a few raw bytes, not a table).
 */
export async function fixableModule(dir: string, failing: readonly string[], options: { name?: string } = {}): Promise<string> {
  const log = JSON.stringify(join(dir, 'executions.log'));
  const fixed = JSON.stringify(join(dir, 'fixed'));
  return writeModule(
    dir,
    `
    fs.appendFileSync(${log}, context.partitionId + '\\n');
    if (${JSON.stringify(failing)}.includes(context.partitionId) && !fs.existsSync(${fixed})) throw new Error('not fixed yet: ' + context.partitionId);
    const table = await data.toArrow();
    await context.uploadToStage({ id: context.partitionId, args: context.args ?? null, rows: table.numRows }, 'result.json');
    await context.uploadToStage(table, 'rows.csv');
    await context.uploadToStage(new Uint8Array([0, 1, 2, 255]), 'note.bin');
  `,
    { prelude: `import fs from 'node:fs';`, ...options },
  );
}

/** Fixes the cause of the failures of {@link fixableModule}. */
export async function fix(dir: string): Promise<void> {
  await writeFile(join(dir, 'fixed'), '');
}

/** How many times each partition ran, by id. */
export async function executionCounts(dir: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const line of (await readFile(join(dir, 'executions.log'), 'utf8').catch(() => '')).split('\n')) if (line !== '') counts[line] = (counts[line] ?? 0) + 1;
  return counts;
}
