import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DPFRun, PartitionStatus, RunStatus } from 'dpf';
import { describe, expect, it } from 'vitest';
import { exists, runNodeScript, tempDir, waitFor, writeFiles, writeModule } from '../helpers.js';
import { untilFile } from '../support/barriers.js';
import { journalFacts } from '../support/journal-facts.js';

/**
 * Partitions that record every execution outside the stage. The first `hold` executions finish at
 * once; later ones wait until `{dir}/release` exists, so the first driver is still going when it
 * is paused or killed, however fast the machine runs it.
 */
async function setUp(count: number, hold: number) {
  const dir = await tempDir();
  const input = join(dir, 'input');
  await writeFiles(input, Object.fromEntries(Array.from({ length: count }, (_, i) => [`p${String(i).padStart(3, '0')}.csv`, 'x\n1\n'])));
  const log = JSON.stringify(join(dir, 'executions.log'));
  const module = await writeModule(
    dir,
    `
    fs.appendFileSync(${log}, context.partitionId + '\\n');
    if (fs.readFileSync(${log}, 'utf8').trim().split('\\n').length > ${hold}) ${untilFile(join(dir, 'release'))}
    await context.uploadToStage({ attempt: context.attempt, pid: process.pid }, 'result.json');
  `,
    { prelude: `import fs from 'node:fs';` },
  );
  return { dir, input, module, stage: join(dir, 'stage'), release: () => writeFile(join(dir, 'release'), '') };
}

function driver(module: string, stage: string, input: string, resume: boolean, cpus = 1) {
  return runNodeScript(`
    import { DPF } from 'dpf';
    try {
      const run = await new DPF(${JSON.stringify(module)}, { stage: ${JSON.stringify(stage)} })
        .runFromStage({ stageLocation: ${JSON.stringify(input)}, runId: 'owned', filePattern: '*.csv', onExistingArtifacts: ${resume ? "'resume'" : "'error'"}, executionOptions: { availableCpus: ${cpus} } });
      console.log('STARTED');
      console.log('STATUS ' + await run.wait());
    } catch (error) {
      console.log('ERROR ' + error.name + ': ' + error.message);
    }
  `);
}

async function expectEachDoneOnce(stage: string, partitions: number): Promise<void> {
  const { doneRecords, doneBy, lateSegments } = await journalFacts(stage, 'owned');
  // A replaced driver wrote nothing after the new owner's start (the fold would hide it: raw segments).
  expect(lateSegments).toEqual([]);
  expect(doneRecords.size).toBe(partitions);
  expect([...doneRecords.entries()].filter(([, count]) => count !== 1)).toEqual([]);
  const details = Object.values(await (await DPFRun.restoreFrom('owned', stage)).getPartitionDetails());
  for (const [index, partition] of details.entries()) {
    expect(partition.status).toBe(PartitionStatus.DONE);
    // The artifact the API returns is the DONE attempt's — written by the driver that recorded it — not a replaced driver's.
    expect(await partition.artifacts.get('result.json')).toEqual({ attempt: partition.attempts, pid: doneBy.get(index) });
  }
}

describe('a paused driver', () => {
  it('paused past its lease, replaced by a resume, then continued: it stops and commits nothing; each partition DONE once', async () => {
    const { input, module, stage, release } = await setUp(300, 20);
    const first = driver(module, stage, input, false, 2);
    await waitFor(async () => (await exists(join(stage, 'owned/_dpf/run.json'))) && (await (await DPFRun.restoreFrom('owned', stage)).getProgress()).DONE.length >= 20, 30_000, '20 partitions done');
    first.kill('SIGSTOP');
    try {
      // A waiter is told the driver stopped once its lease is stale, and that resuming is safe.
      await expect((await DPFRun.restoreFrom('owned', stage)).wait()).rejects.toThrow(/has not renewed its lease for 15 s.*resume it.*should the old driver still be alive, it stops/);
      const second = driver(module, stage, input, true, 2);
      const lease = join(stage, 'owned/_dpf/lease.json');
      await waitFor(async () => (await readFile(lease, 'utf8').catch(() => '')).includes(`"pid":${second.pid}`), 30_000, 'the resume to take the run');
      // The held partitions of both drivers go on: the resume's finish the run, the paused
      // driver's (once it continues) must commit nothing.
      await release();
      first.kill('SIGCONT');
      const [old, resumed] = await Promise.all([first.done, second.done]);
      expect(old.stdout).toMatch(/ERROR LeaseLostError: The driver of run "owned" (lost the run|could not renew its lease)/);
      expect(resumed.stdout, resumed.stderr).toContain('STATUS SUCCESS');
    } finally {
      first.kill('SIGCONT');
    }
    await expectEachDoneOnce(stage, 300);
  });
});

describe('two resumes in two processes at the same instant', () => {
  it('exactly one runs the abandoned run (20 trials)', async () => {
    const { dir, input, module, stage, release } = await setUp(12, 3);
    const first = driver(module, stage, input, false);
    await waitFor(async () => (await exists(join(stage, 'owned/_dpf/run.json'))) && (await (await DPFRun.restoreFrom('owned', stage)).getProgress()).DONE.length >= 3, 30_000, '3 partitions done');
    first.kill('SIGKILL');
    await first.done;
    await release();
    for (let trial = 0; trial < 20; trial++) {
      const copy = join(dir, `stage-${trial}`);
      await cp(stage, copy, { recursive: true });
      // Both wait for the same barrier file, then resume.
      const barrier = join(dir, `go-${trial}`);
      let ready = 0;
      let allReady: () => void = () => undefined;
      const bothReady = new Promise<void>((resolve) => (allReady = resolve));
      const racer = () =>
        runNodeScript(`
          import fs from 'node:fs';
          import { DPF } from 'dpf';
          const dpf = new DPF(${JSON.stringify(module)}, { stage: ${JSON.stringify(copy)} });
          console.log('READY');
          while (!fs.existsSync(${JSON.stringify(barrier)})) await new Promise((resolve) => setTimeout(resolve, 1));
          try {
            const run = await dpf.runFromStage({ stageLocation: ${JSON.stringify(input)}, runId: 'owned', filePattern: '*.csv', onExistingArtifacts: 'resume' });
            console.log('STATUS ' + await run.wait());
          } catch (error) {
            console.log('ERROR ' + error.name);
          }
        `, { onStdout: (text) => text.includes('READY') && ++ready === 2 && allReady() });
      const racers = [racer(), racer()];
      await bothReady;
      await writeFile(barrier, 'go');
      const results = await Promise.all(racers.map((one) => one.done));
      const outputs = results.map((result) => result.stdout).sort();
      expect(outputs.filter((out) => out.includes('STATUS SUCCESS')), `trial ${trial}: ${outputs.join(' | ')}`).toHaveLength(1);
      expect(outputs.filter((out) => out.includes('ERROR RunInProgressError')), `trial ${trial}: ${outputs.join(' | ')}`).toHaveLength(1);
      await expectEachDoneOnce(copy, 12);
      expect((await DPFRun.restoreFrom('owned', copy)).status).toBe(RunStatus.SUCCESS);
      await rm(copy, { recursive: true, force: true });
    }
  });
});
