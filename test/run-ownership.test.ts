import { cp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DPF, DPFRun, LeaseLostError, PartitionStatus, RunInProgressError, RunStatus } from 'dpf';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { readLease, RunLease } from '../src/run/lease.js';
import { openStage } from '../src/stage/open-stage.js';
import { RunLayout } from '../src/stage/run-layout.js';
import { countingModule, executions, inputFiles, release } from './support/counting-run.js';
import { exists, runNodeScript, tempDir, waitFor } from './helpers.js';
import { journalFacts } from './support/journal-facts.js';

/** Every partition is DONE once in the journal, and its artifact is the DONE attempt's. */
async function expectEachDoneOnce(stage: string, runId: string, partitions: number): Promise<void> {
  const { doneRecords, lateSegments } = await journalFacts(stage, runId);
  // A replaced driver wrote nothing after the new owner's start (the fold would hide it: raw segments).
  expect(lateSegments).toEqual([]);
  expect([...doneRecords.values()].filter((count) => count !== 1)).toEqual([]);
  expect(doneRecords.size).toBe(partitions);
  const details = await (await DPFRun.restoreFrom(runId, stage)).getPartitionDetails();
  for (const partition of Object.values(details)) {
    expect(partition.status).toBe(PartitionStatus.DONE);
    expect(await partition.artifacts.get('result.json')).toEqual({ attempt: partition.attempts });
  }
}

describe('one driver per run', () => {
  it('lets exactly one of two resumes started at the same instant run an abandoned run (20 trials)', async () => {
    const dir = await tempDir();
    const input = await inputFiles(dir, 12);
    const stage = join(dir, 'stage');
    // One abandoned run: its driver killed after three partitions, the fourth held at its barrier.
    const module = await countingModule(dir, { hold: 3 });
    const driver = runNodeScript(`
      import { DPF } from 'dpf';
      const run = await new DPF(${JSON.stringify(module)}, { stage: ${JSON.stringify(stage)} })
        .runFromStage({ stageLocation: ${JSON.stringify(input)}, runId: 'abandoned', filePattern: '*.csv', executionOptions: { availableCpus: 1 } });
      await run.wait();
    `);
    await waitFor(async () => (await exists(join(stage, 'abandoned/_dpf/run.json'))) && (await (await DPFRun.restoreFrom('abandoned', stage)).getProgress()).DONE.length >= 3, 30_000, '3 partitions done');
    driver.kill('SIGKILL');
    await driver.done;
    const doneBefore = (await (await DPFRun.restoreFrom('abandoned', stage)).getProgress()).DONE.length;
    // The trials race over unfinished work, not only over the lease.
    expect(doneBefore).toBe(3);
    await release(dir);

    for (let trial = 0; trial < 20; trial++) {
      const copy = join(dir, `stage-${trial}`);
      await cp(stage, copy, { recursive: true });
      const before = (await executions(dir)).length;
      const resume = () =>
        new DPF(module, { stage: copy }).runFromStage({ stageLocation: input, runId: 'abandoned', filePattern: '*.csv', onExistingArtifacts: 'resume' });
      const [first, second] = await Promise.allSettled([resume(), resume()]);
      const winners = [first, second].filter((result): result is PromiseFulfilledResult<DPFRun> => result.status === 'fulfilled');
      const losers = [first, second].filter((result): result is PromiseRejectedResult => result.status === 'rejected');
      expect(winners, `trial ${trial}: ${losers.map((loser) => String(loser.reason)).join("; ")}`).toHaveLength(1);
      expect(losers[0]!.reason).toBeInstanceOf(RunInProgressError);
      expect(await winners[0]!.value.wait()).toBe(RunStatus.SUCCESS);
      await expectEachDoneOnce(copy, 'abandoned', 12);
      // The winner ran what was not DONE, each once (12 - doneBefore, and the killed driver's running one among them).
      expect((await executions(dir)).length - before, `trial ${trial}`).toBe(12 - doneBefore);
      await rm(copy, { recursive: true, force: true });
    }
  }, 180_000);

  it('stops a driver whose lease was deleted; the resume that took the run over finishes it, each partition DONE once', async () => {
    const dir = await tempDir();
    const input = await inputFiles(dir, 30);
    const stage = join(dir, 'stage');
    // Three partitions finish; the rest wait at their barrier, so the first driver is still going
    // when its lease is deleted and the resume takes the run.
    const module = await countingModule(dir, { hold: 3 });
    const first = await new DPF(module, { stage }).runFromStage({ stageLocation: input, runId: 'taken', filePattern: '*.csv', executionOptions: { availableCpus: 1 } });
    await waitFor(async () => (await first.getProgress()).DONE.length >= 3, 30_000, '3 partitions done');
    await rm(join(stage, 'taken/_dpf/lease.json'));
    const second = await new DPF(module, { stage }).runFromStage({ stageLocation: input, runId: 'taken', filePattern: '*.csv', onExistingArtifacts: 'resume' });
    await release(dir);
    await expect(first.wait()).rejects.toBeInstanceOf(LeaseLostError);
    expect(await second.wait()).toBe(RunStatus.SUCCESS);
    await expectEachDoneOnce(stage, 'taken', 30);
  }, 60_000);

  it('keeps a driver whose renewal is overdue (clock stepped, process paused) but whose lease no one took: it renews and goes on', async () => {
    const dir = await tempDir();
    const input = await inputFiles(dir, 4);
    const stage = join(dir, 'stage');
    const module = await countingModule(dir, { hold: 1 });
    // The driver's wall clock steps forward past the self-fence while partitions wait at their
    // barrier, as an NTP step or a resumed virtual machine does; the commits after it find the
    // last renewal 12 s old.
    const driver = runNodeScript(`
      import { DPF } from 'dpf';
      import { writeFileSync } from 'node:fs';
      const wallClock = Date.now;
      let step = 0;
      Date.now = () => wallClock() + step;
      const run = await new DPF(${JSON.stringify(module)}, { stage: ${JSON.stringify(stage)} })
        .runFromStage({ stageLocation: ${JSON.stringify(input)}, runId: 'stepped', filePattern: '*.csv', executionOptions: { availableCpus: 1 } });
      step = 12_000;
      writeFileSync(${JSON.stringify(join(dir, 'release'))}, '');
      console.log('STATUS ' + (await run.wait()));
    `);
    const { stdout, stderr } = await driver.done;
    expect(stderr).not.toMatch(/LeaseLostError/);
    expect(stdout).toMatch(/STATUS SUCCESS/);
    await expectEachDoneOnce(stage, 'stepped', 4);
    // The same driver carried it to the end: one take of the lease.
    expect((await journalFacts(stage, 'stepped')).records.filter((record) => record.t === 'start')).toHaveLength(1);
  }, 60_000);
});

describe("a driver's lease, renewed late", () => {
  afterEach(() => vi.restoreAllMocks());

  async function takeLease() {
    const stage = (await openStage(join(await tempDir(), 'stage'), { create: true }))!;
    const layout = new RunLayout('late');
    const lease = await RunLease.take(stage, layout);
    if (!(lease instanceof RunLease)) throw new Error('the lease was not taken');
    return { stage, layout, lease };
  }

  /** The wall clock, stepped forward past the self-fence (no renewal timer can fire in between: none is awaited). */
  function stepClock(ms: number): void {
    const now = Date.now();
    vi.spyOn(Date, 'now').mockReturnValue(now + ms);
  }

  it('is renewed at once before a commit when no one took it, and stays held', async () => {
    const { stage, layout, lease } = await takeLease();
    const taken = await readLease(stage, layout);
    stepClock(12_000);
    await expect(lease.assertHeld()).resolves.toBeUndefined();
    // Renewed in place, at the stepped clock's time: the same owner and epoch, a new version.
    const renewed = (await readLease(stage, layout))!;
    expect(renewed.content).toMatchObject({ owner: taken!.content.owner, epoch: taken!.content.epoch, renewedAt: Date.now() });
    expect(renewed.version).not.toBe(taken!.version);
    await lease.release();
  });

  it('is lost when another driver took it meanwhile: the late renewal cannot land', async () => {
    const { stage, layout, lease } = await takeLease();
    const current = (await readLease(stage, layout))!;
    // Another driver judged it gone and replaced it.
    expect(await stage.replace(layout.lease, JSON.stringify({ ...current.content, epoch: current.content.epoch + 1, owner: 'other', pid: 1 }), current.version)).toBeDefined();
    stepClock(12_000);
    await expect(lease.assertHeld()).rejects.toThrow(/lost the run: pid 1 .* took it \(epoch 2\)/);
    // (src's own class: the test imports the lease from src, not the built package)
    await expect(lease.assertHeld()).rejects.toMatchObject({ name: 'LeaseLostError' });
    await lease.release();
  });
});
