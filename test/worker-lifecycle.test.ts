import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exists, runNodeScript, tempDir, waitFor, writeFiles, writeModule } from './helpers.js';

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
