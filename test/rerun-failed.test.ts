import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DPF, DPFRun, ManyModelTraining, NothingToRerunError, PartitionStatus, rerunFailed, RunInProgressError, RunStatus, TrainingRun } from 'dpf';
import { describe, expect, it } from 'vitest';
import { countingModule, inputFiles, release } from './support/counting-run.js';
import { executionCounts, fix, fixableModule } from './support/fixable-run.js';
import { tempDir, writeFiles, writeModule } from './helpers.js';

describe('rerunFailed', () => {
  it('stage mode: reruns the partitions that failed with the run’s function, args and options, keeping the DONE ones', async () => {
    const dir = await tempDir();
    const input = await inputFiles(dir, 4);
    const stage = join(dir, 'stage');
    const module = await fixableModule(dir, ['p01.csv', 'p03.csv']);
    const args = { threshold: 3, tags: ['a'] };
    const run = await new DPF(module, { stage }).runFromStage({ stageLocation: input, runId: 'files', filePattern: '*.csv', args, executionOptions: { maxRetries: 0, retryBackoffMs: 0 } });
    expect(await run.wait()).toBe(RunStatus.PARTIAL_FAILURE);

    // Not fixed yet: the rerun fails them again, with the run's maxRetries: 0 (one attempt more each, not two).
    const unfixed = await rerunFailed('files', stage);
    expect(await unfixed.wait()).toBe(RunStatus.PARTIAL_FAILURE);
    let details = await unfixed.getPartitionDetails();
    expect([details['p01.csv']!.attempts, details['p03.csv']!.attempts]).toEqual([2, 2]);
    expect(details['p01.csv']!.status).toBe(PartitionStatus.FAILED);

    await fix(dir);
    const rerun = await rerunFailed('files', stage);
    expect(rerun.runId).toBe('files');
    expect(await rerun.wait()).toBe(RunStatus.SUCCESS);
    details = await rerun.getPartitionDetails();
    expect(Object.values(details).map((partition) => partition.status)).toEqual(Array(4).fill(PartitionStatus.DONE));
    expect(await executionCounts(dir)).toEqual({ 'p00.csv': 1, 'p01.csv': 3, 'p02.csv': 1, 'p03.csv': 3 });
    expect(details['p00.csv']!.attempts).toBe(1);
    expect(await details['p01.csv']!.artifacts.get('result.json')).toEqual({ id: 'p01.csv', args, rows: 1 });

    await expect(rerunFailed('files', stage)).rejects.toThrow(NothingToRerunError);
    await expect(rerunFailed('files', stage)).rejects.toThrow(/nothing to rerun: all 4 of its partitions are DONE/);
  });

  it('DataFrame mode: reruns from the planned input, without reading the source again', async () => {
    const dir = await tempDir();
    await writeFiles(dir, { 'sales.csv': 'store,amount\na,1\na,2\nb,3\nc,4\nc,5\nc,6\n' });
    const stage = join(dir, 'stage');
    const module = await fixableModule(dir, ['c']);
    const source = `SELECT * FROM '${join(dir, 'sales.csv')}'`;
    const run = await new DPF(module, { stage }).run({ partitionBy: 'store', source, runId: 'frames', executionOptions: { maxRetries: 0 } });
    expect(await run.wait()).toBe(RunStatus.PARTIAL_FAILURE);
    // The source is gone: a rerun that read it again would fail.
    await rm(join(dir, 'sales.csv'));
    await fix(dir);

    const rerun = await rerunFailed('frames', stage);
    expect(await rerun.wait()).toBe(RunStatus.SUCCESS);
    const details = await rerun.getPartitionDetails();
    expect(await details.c!.artifacts.get('result.json')).toEqual({ id: 'c', args: null, rows: 3 });
    expect(await executionCounts(dir)).toEqual({ a: 1, b: 1, c: 2 });
    expect(rerun.input).toMatchObject({ mode: 'dataframe', partitionBy: ['store'] });
  });

  it('refuses a run its driver is executing, then reruns what its cancel left', async () => {
    const dir = await tempDir();
    const input = await inputFiles(dir, 3);
    const stage = join(dir, 'stage');
    // Every execution waits at its barrier: the run stays IN_PROGRESS until released.
    const module = await countingModule(dir, { hold: 0 });
    const run = await new DPF(module, { stage }).runFromStage({ stageLocation: input, runId: 'busy', filePattern: '*.csv', executionOptions: { availableCpus: 1 } });
    await expect(rerunFailed('busy', stage)).rejects.toThrow(RunInProgressError);
    await expect(rerunFailed('busy', stage)).rejects.toThrow(/is being executed right now by pid \d+ .*dpf cancel busy/);
    await run.cancel();
    expect(run.status).toBe(RunStatus.CANCELLED);
    const cancelled = (await DPFRun.restoreFrom('busy', stage)).statusCounts().get(PartitionStatus.CANCELLED);
    expect(cancelled).toBeGreaterThan(0);

    await release(dir);
    const rerun = await rerunFailed('busy', stage);
    expect(await rerun.wait()).toBe(RunStatus.SUCCESS);
    expect(Object.values(await rerun.getPartitionDetails()).every((details) => details.status === PartitionStatus.DONE)).toBe(true);
  });

  it('a ManyModelTraining run: the rerun trains through the same layer, so its models are saved as the others', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const fixed = JSON.stringify(join(dir, 'fixed'));
    const module = await writeModule(
      dir,
      `const { x } = await data.toColumns();
      if (context.partitionId === '2' && !fs.existsSync(${fixed})) throw new Error('not fixed yet');
      return { key: context.partitionId, n: x.length, scale: context.args.scale };`,
      { prelude: "import fs from 'node:fs';" },
    );
    const training = new ManyModelTraining<{ key: string; n: number; scale: number }>(module, { stage });
    const source = 'SELECT k, x FROM range(3) t(k), range(5) s(x)';
    const run = await training.run({ partitionBy: 'k', source, runId: 'models', args: { scale: 2 }, executionOptions: { maxRetries: 0 } });
    expect(await run.wait()).toBe(RunStatus.PARTIAL_FAILURE);
    await fix(dir);

    const rerun = await rerunFailed('models', stage);
    expect(await rerun.wait()).toBe(RunStatus.SUCCESS);
    const restored = await TrainingRun.restoreFrom<{ key: string; n: number; scale: number }>('models', stage);
    expect(await restored.getModel('2')).toEqual({ key: '2', n: 5, scale: 2 });
    expect(await restored.getModel('0')).toEqual({ key: '0', n: 5, scale: 2 });
  });
});
