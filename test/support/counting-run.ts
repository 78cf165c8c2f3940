import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFiles, writeModule } from '../helpers.js';
import { untilFile } from './barriers.js';

/**
 * A partition function that records every execution in `executions.log` (outside the stage) and
 * saves `{ attempt }` as `result.json`; and input files for it.
 *
 * With `hold`, only the first `hold` executions finish at once: later ones wait until the test
 * calls `release(dir)`, so a run is still going — its driver can be killed, paused or raced —
 * however fast the machine runs it. (At most `hold` finish before the release; with one worker,
 * exactly `hold`.)
 */
export async function countingModule(dir: string, options: { hold?: number } = {}): Promise<string> {
  const log = JSON.stringify(join(dir, 'executions.log'));
  return writeModule(
    dir,
    `
    fs.appendFileSync(${log}, context.partitionId + '\\n');
    ${options.hold === undefined ? '' : `if (fs.readFileSync(${log}, 'utf8').trim().split('\\n').length > ${options.hold}) ${untilFile(join(dir, 'release'))}`}
    await context.uploadToStage({ attempt: context.attempt }, 'result.json');
  `,
    { prelude: `import fs from 'node:fs';` },
  );
}

/** Lets every execution of the counting module held at its barrier finish. */
export async function release(dir: string): Promise<void> {
  await writeFile(join(dir, 'release'), '');
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
