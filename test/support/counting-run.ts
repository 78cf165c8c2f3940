import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFiles, writeModule } from '../helpers.js';

/**
 * A partition function that records every execution in `executions.log` (outside the stage),
 * takes `ms`, and saves `{ attempt }` as `result.json`; and input files for it.
 */
export async function countingModule(dir: string, ms: number): Promise<string> {
  return writeModule(
    dir,
    `
    fs.appendFileSync(${JSON.stringify(join(dir, 'executions.log'))}, context.partitionId + '\\n');
    await new Promise((resolve) => setTimeout(resolve, ${ms}));
    await context.uploadToStage({ attempt: context.attempt }, 'result.json');
  `,
    { prelude: `import fs from 'node:fs';` },
  );
}

/** The partitions the counting module ran, one line per execution. */
export async function executions(dir: string): Promise<string[]> {
  return (await readFile(join(dir, 'executions.log'), 'utf8').catch(() => '')).split('\n').filter((line) => line !== '');
}

/** `count` one-row CSV files `p00.csv`, `p01.csv`, … in `{dir}/input`. */
export async function inputFiles(dir: string, count: number): Promise<string> {
  const input = join(dir, 'input');
  const width = String(count - 1).length < 2 ? 2 : String(count - 1).length;
  await writeFiles(input, Object.fromEntries(Array.from({ length: count }, (_, i) => [`p${String(i).padStart(width, '0')}.csv`, 'x\n1\n'])));
  return input;
}
