import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DPF, DPFRun, PartitionStatus, RunStatus } from 'dpf';
import { describe, expect, it } from 'vitest';
import { dpfCommand, exists, runNodeScript, tempDir, waitFor, writeModule } from './helpers.js';
import { inputFiles } from './support/counting-run.js';
import { journalFacts } from './support/journal-facts.js';

interface Setup {
  dir: string;
  stage: string;
  input: string;
  module: string;
  /** While this file exists, p02…p05 block until their signal fires. */
  block: string;
}

/**
 * Six partitions: p00 and p01 finish at once; while `block` exists, the others note that they
 * started, then wait for their signal (and note that too), so the run stays mid-way until
 * someone stops it.
 */
async function setUp(): Promise<Setup> {
  const dir = await tempDir();
  const input = await inputFiles(dir, 6);
  const block = join(dir, 'block');
  await writeFile(block, '');
  const module = await writeModule(
    dir,
    `
    if (!['p00.csv', 'p01.csv'].includes(context.partitionId) && fs.existsSync(${JSON.stringify(block)})) {
      fs.writeFileSync(${JSON.stringify(join(dir, 'started-'))} + context.partitionId, '');
      await new Promise((resolve, reject) => context.signal.addEventListener('abort', () => {
        fs.writeFileSync(${JSON.stringify(join(dir, 'aborted-'))} + context.partitionId, '');
        reject(context.signal.reason);
      }));
    }
    await context.uploadToStage({ id: context.partitionId }, 'result.json');
  `,
    { prelude: `import fs from 'node:fs';` },
  );
  return { dir, stage: join(dir, 'stage'), input, module, block };
}

/** A driver in a child process: it starts the run and waits for it with a progress bar, as a script run from a terminal does. */
function startDriver(setup: Setup, runId: string, isolation: 'thread' | 'process' = 'thread'): { driver: ReturnType<typeof runNodeScript>; stdout: () => string } {
  let stdout = '';
  const driver = runNodeScript(
    `
    import { DPF } from 'dpf';
    const run = await new DPF(${JSON.stringify(setup.module)}, { stage: ${JSON.stringify(setup.stage)} })
      .runFromStage({ stageLocation: ${JSON.stringify(setup.input)}, runId: ${JSON.stringify(runId)}, filePattern: '*.csv', executionOptions: { availableCpus: 2, isolation: '${isolation}' } });
    const waiting = run.wait({ showProgress: true });
    console.log('WAITING');
    console.log('STATUS ' + await waiting);
  `,
    { onStdout: (text) => (stdout += text), detached: true },
  );
  return { driver, stdout: () => stdout };
}

/**
 * Waits until the driver waits, two partitions are DONE and blocked ones run; returns those. What
 * the journal says is RUNNING is running: at most one partition per worker, each one started.
 */
async function waitMidway(setup: Setup, runId: string, stdout: () => string): Promise<string[]> {
  let running: string[] = [];
  await waitFor(
    async () => {
      if (!stdout().includes('WAITING')) return false;
      const progress = await (await DPFRun.restoreFrom(runId, setup.stage)).getProgress();
      running = progress.RUNNING.map((details) => details.partitionId);
      return progress.DONE.length === 2 && running.length >= 1;
    },
    30_000,
    'two partitions done and one running',
  );
  // Workers are sent tasks ahead of time: those waiting in a worker are not RUNNING.
  expect(running.length).toBeLessThanOrEqual(2);
  for (const id of running) await waitFor(() => exists(join(setup.dir, `started-${id}`)), 30_000, `${id} started`);
  return running;
}

/** Resumes the run with nothing blocking: it finishes. */
async function resume(setup: Setup, runId: string): Promise<DPFRun> {
  await rm(setup.block);
  const run = await new DPF(setup.module, { stage: setup.stage }).runFromStage({ stageLocation: setup.input, runId, filePattern: '*.csv', onExistingArtifacts: 'resume' });
  expect(await run.wait()).toBe(RunStatus.SUCCESS);
  expect((await run.getProgress()).DONE).toHaveLength(6);
  return run;
}

describe('a run whose driver is gone', () => {
  it('says so in its status, counts nothing as RUNNING, and says how to resume', async () => {
    const setup = await setUp();
    const { driver, stdout } = startDriver(setup, 'killed');
    await waitMidway(setup, 'killed', stdout);
    driver.kill('SIGKILL');
    await driver.done;

    // What the driver left in the journal: partitions RUNNING that nothing runs any more.
    expect((await journalFacts(setup.stage, 'killed')).state.count(PartitionStatus.RUNNING)).toBeGreaterThanOrEqual(1);

    const restored = await DPFRun.restoreFrom('killed', setup.stage);
    expect(restored.status).toBe(RunStatus.IN_PROGRESS);
    expect(restored.abandoned).toBe(true);
    const progress = await restored.getProgress();
    expect(progress.RUNNING).toEqual([]);
    expect(progress.DONE).toHaveLength(2);
    expect(progress.PENDING).toHaveLength(4);
    expect(Object.values(await restored.getPartitionDetails()).filter((details) => details.status === PartitionStatus.RUNNING)).toEqual([]);

    const status = dpfCommand('status', 'killed', '--stage', setup.stage);
    expect(status.status).toBe(0);
    const lines = status.stdout.split('\n');
    expect(lines[0]).toBe('run killed: IN_PROGRESS, its driver is gone — 6 partition(s): 4 PENDING, 2 DONE');
    expect(status.stdout).toMatch(/The driver of run "killed" \(pid \d+ on \S+, last heard [^)]+\) stopped before the run ended/);
    expect(status.stdout).toContain("resume it with onExistingArtifacts: 'resume'");
    expect(lines.filter((line) => /\bRUNNING\b/.test(line))).toEqual([]);
    expect(dpfCommand('runs', '--stage', setup.stage).stdout).toMatch(/^killed\s+IN_PROGRESS \(driver gone\)\s+6: 4 PENDING, 2 DONE\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/m);

    const resumed = await resume(setup, 'killed');
    expect(resumed.abandoned).toBe(false);
  });

  it.each(['thread', 'process'] as const)('is not left by Ctrl-C during wait(): running attempts are cancelled, the state is flushed, and how to resume is printed (%s)', async (isolation) => {
    const setup = await setUp();
    const { driver, stdout } = startDriver(setup, 'interrupted', isolation);
    const running = await waitMidway(setup, 'interrupted', stdout);
    // As Ctrl-C at a terminal: the whole process group, child workers included.
    driver.kill('SIGINT', true);
    const result = await driver.done;

    // The process still ends as interrupted — after stopping the run.
    expect(result.signal).toBe('SIGINT');
    expect(result.stdout).not.toContain('STATUS');
    expect(result.stderr).toContain('run "interrupted" stopped (interrupted): 2 DONE, 4 CANCELLED');
    expect(result.stderr).toContain("resume it with onExistingArtifacts: 'resume' and runId 'interrupted'");
    for (const id of running) expect(await exists(join(setup.dir, `aborted-${id}`))).toBe(true);

    const { state } = await journalFacts(setup.stage, 'interrupted');
    expect(state.count(PartitionStatus.RUNNING)).toBe(0);
    expect(state.count(PartitionStatus.PENDING)).toBe(0);
    expect(state.status).toBe(RunStatus.CANCELLED);
    const restored = await DPFRun.restoreFrom('interrupted', setup.stage);
    expect(restored.abandoned).toBe(false);
    expect((await restored.getProgress()).DONE).toHaveLength(2);

    await resume(setup, 'interrupted');
  });
});
