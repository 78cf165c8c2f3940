import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DPF, PartitionStatus, RunStatus } from 'dpf';
import { describe, expect, it } from 'vitest';
import { exists, runNodeScript, tempDir, uniqueName, waitFor, writeFiles, writeModule } from './helpers.js';

/** Whether a process is running (a zombie, dead but not yet reaped, is not). */
function processAlive(pid: number): boolean {
  if (process.platform === 'linux') {
    try {
      // The state is the field after the command, which is in parentheses and may contain spaces.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return !['Z', 'X'].includes(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("a child process (isolation: 'process') whose driver is killed", () => {
  it('exits even while its partition blocks its event loop', async () => {
    const dir = await tempDir();
    await writeFiles(join(dir, 'input'), { 'spin.csv': 'x\n1\n' });
    const marker = join(dir, 'spinning');
    const module = await writeModule(dir, `fs.writeFileSync(${JSON.stringify(marker)}, String(process.pid)); for (;;) {}`, { prelude: `import fs from 'node:fs';` });
    const driver = runNodeScript(`
      import { DPF } from 'dpf';
      const run = await new DPF(${JSON.stringify(module)}, { stage: ${JSON.stringify(join(dir, 'stage'))} })
        .runFromStage({ stageLocation: ${JSON.stringify(join(dir, 'input'))}, runId: 'orphan', filePattern: '*.csv', executionOptions: { isolation: 'process', availableCpus: 1 } });
      await run.wait();
    `);
    // The partition writes its process id just before it spins.
    await waitFor(async () => (await exists(marker)) && (await readFile(marker, 'utf8')) !== '', 30_000, 'the partition to start spinning');
    const child = Number(await readFile(marker, 'utf8'));
    expect(processAlive(child)).toBe(true);
    try {
      driver.kill('SIGKILL');
      await driver.done;
      await waitFor(() => !processAlive(child), 30_000, `the child process ${child} to exit after its driver was killed`);
    } finally {
      if (processAlive(child)) process.kill(child, 'SIGKILL');
    }
  });
});

describe.each(['thread', 'process'] as const)('the environment a run of a pooled worker sees (%s)', (isolation) => {
  it("is the driver's at the run's start, whether or not a worker is reused", async () => {
    const dir = await tempDir();
    await writeFiles(join(dir, 'input'), { 'a.csv': 'x\n1\n', 'b.csv': 'x\n2\n' });
    const name = uniqueName('DPF_TEST_MODE');
    const leak = uniqueName('DPF_TEST_LEAK');
    const out = join(dir, 'seen');
    const module = await writeModule(
      dir,
      `
      fs.mkdirSync(${JSON.stringify(out)}, { recursive: true });
      const seen = { atImport, atCall: process.env[${JSON.stringify(name)}] ?? null, leaked: process.env[${JSON.stringify(leak)}] ?? null };
      fs.writeFileSync(${JSON.stringify(out)} + '/' + context.runId + '-' + context.partitionId + '.json', JSON.stringify(seen));
      // What a partition sets in its worker's environment is not the next run's business.
      process.env[${JSON.stringify(leak)}] = 'set by ' + context.runId;
      `,
      { prelude: `import fs from 'node:fs';\nconst atImport = process.env[${JSON.stringify(name)}] ?? null;` },
    );
    const dpf = new DPF(module, { stage: join(dir, 'stage') });
    /** What the partitions of a run saw; a value a partition set is only ever seen in its own run. */
    const runWith = async (runId: string, mode: string) => {
      process.env[name] = mode;
      const run = await dpf.runFromStage({ stageLocation: join(dir, 'input'), runId, filePattern: '*.csv', executionOptions: { isolation, availableCpus: 2 } });
      expect(await run.wait()).toBe(RunStatus.SUCCESS);
      const details = await run.getPartitionDetails();
      expect(Object.values(details).map((d) => d.status)).toEqual([PartitionStatus.DONE, PartitionStatus.DONE]);
      const seen = await Promise.all(['a.csv', 'b.csv'].map(async (id) => JSON.parse(await readFile(join(out, `${runId}-${id}.json`), 'utf8')) as { atImport: string; atCall: string; leaked: string | null }));
      return seen.map(({ leaked, ...rest }) => ({ ...rest, leakedFromAnotherRun: leaked !== null && leaked !== `set by ${runId}` }));
    };
    const expected = (mode: string) => [
      { atImport: mode, atCall: mode, leakedFromAnotherRun: false },
      { atImport: mode, atCall: mode, leakedFromAnotherRun: false },
    ];
    try {
      expect(await runWith('one', 'v1')).toEqual(expected('v1'));
      // Started at once after the first run, whose workers wait for a next run.
      expect(await runWith('two', 'v2')).toEqual(expected('v2'));
      // The same environment again: workers may be reused, but not with what the last run's partitions set.
      expect(await runWith('three', 'v2')).toEqual(expected('v2'));
    } finally {
      delete process.env[name];
      delete process.env[leak];
    }
  });
});
