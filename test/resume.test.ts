import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DPF, DPFRun, InvalidOptionError, PartitionStatus, RunExistsError, RunInProgressError, RunNotFoundError, RunStatus } from 'dpf';
import { describe, expect, it } from 'vitest';
import { countingModule, executions, inputFiles, release } from './support/counting-run.js';
import { exists, listFiles, runNodeScript, tempDir, waitFor, writeFiles, writeModule } from './helpers.js';


describe('resume after the driver was killed', () => {
  it('keeps the partitions that were DONE and runs the rest', async () => {
    const dir = await tempDir();
    const input = await inputFiles(dir, 8);
    const stage = join(dir, 'stage');
    // Three partitions finish; the fourth waits at its barrier until after the kill.
    const module = await countingModule(dir, { hold: 3 });
    const driver = runNodeScript(`
      import { DPF } from 'dpf';
      const run = await new DPF(${JSON.stringify(module)}, { stage: ${JSON.stringify(stage)} })
        .runFromStage({ stageLocation: ${JSON.stringify(input)}, runId: 'killed', filePattern: '*.csv', executionOptions: { availableCpus: 1 } });
      await run.wait();
    `);
    await waitFor(async () => (await exists(join(stage, 'killed/_dpf/run.json'))) && (await (await DPFRun.restoreFrom('killed', stage)).getProgress()).DONE.length >= 3, 30_000, '3 partitions done');
    driver.kill('SIGKILL');
    await driver.done;

    const before = await DPFRun.restoreFrom('killed', stage);
    const doneBefore = (await before.getProgress()).DONE.map((details) => details.partitionId);
    expect(doneBefore).toHaveLength(3);
    expect(before.status).toBe(RunStatus.IN_PROGRESS);
    await release(dir);

    const resumed = await new DPF(module, { stage }).runFromStage({ stageLocation: input, runId: 'killed', filePattern: '*.csv', onExistingArtifacts: 'resume' });
    expect(await resumed.wait()).toBe(RunStatus.SUCCESS);
    const details = await resumed.getPartitionDetails();
    expect(Object.values(details).every((d) => d.status === PartitionStatus.DONE)).toBe(true);
    const runs = await executions(dir);
    for (const id of doneBefore) {
      expect(runs.filter((run) => run === id), `${id} ran again`).toHaveLength(1);
      expect(details[id]!.attempts).toBe(1);
    }
    expect(new Set(runs).size).toBe(8);
    // No staging file of the interrupted attempt is left in any partition folder.
    expect((await listFiles(join(stage, 'killed'))).filter((file) => file.includes('.dpf-attempt-'))).toEqual([]);
  });
});

describe('onExistingArtifacts', () => {
  it("'error' refuses an existing runId and leaves the run as it was", async () => {
    const dir = await tempDir();
    const input = await inputFiles(dir, 2);
    const stage = join(dir, 'stage');
    const dpf = new DPF(await countingModule(dir), { stage });
    await (await dpf.runFromStage({ stageLocation: input, runId: 'once', filePattern: '*.csv' })).wait();
    const before = await listFiles(join(stage, 'once'));
    await expect(dpf.runFromStage({ stageLocation: input, runId: 'once', filePattern: '*.csv' })).rejects.toBeInstanceOf(RunExistsError);
    await expect(dpf.runFromStage({ stageLocation: input, runId: 'once', filePattern: '*.csv' })).rejects.toThrow(/'overwrite'.*'resume'/);
    expect(await listFiles(join(stage, 'once'))).toEqual(before);
    expect(await executions(dir)).toHaveLength(2);
  });

  it("'overwrite' replaces the run: nothing of the old one is left", async () => {
    const dir = await tempDir();
    const input = await inputFiles(dir, 2);
    const stage = join(dir, 'stage');
    const old = new DPF(await writeModule(dir, `await context.uploadToStage('old', 'old.txt');`, { name: 'old.mjs' }), { stage });
    await (await old.runFromStage({ stageLocation: input, runId: 'twice', filePattern: '*.csv' })).wait();
    const fresh = new DPF(await writeModule(dir, `await context.uploadToStage('new', 'new.txt');`, { name: 'new.mjs' }), { stage });
    const run = await fresh.runFromStage({ stageLocation: input, runId: 'twice', filePattern: 'p00.csv', onExistingArtifacts: 'overwrite', executionOptions: { packSmallArtifacts: false } });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const files = (await listFiles(join(stage, 'twice'))).filter((file) => !file.startsWith('_dpf/'));
    expect(files).toEqual(['p00.csv/new.txt']);
    expect((await listFiles(stage)).every((file) => file.startsWith('twice/'))).toBe(true);
  });

  it('refuses to start a run whose runId is running right now, whatever onExistingArtifacts says', async () => {
    const dir = await tempDir();
    const input = await inputFiles(dir, 2);
    const stage = join(dir, 'stage');
    // Its partitions wait at their barrier: the run is going until the test releases them.
    const dpf = new DPF(await countingModule(dir, { hold: 0 }), { stage });
    const first = await dpf.runFromStage({ stageLocation: input, runId: 'busy', filePattern: '*.csv' });
    for (const onExistingArtifacts of ['error', 'overwrite', 'resume'] as const) {
      await expect(dpf.runFromStage({ stageLocation: input, runId: 'busy', filePattern: '*.csv', onExistingArtifacts })).rejects.toBeInstanceOf(RunInProgressError);
    }
    await release(dir);
    expect(await first.wait()).toBe(RunStatus.SUCCESS);
    expect(await executions(dir)).toHaveLength(2);
    expect(await exists(join(stage, 'busy/_dpf/lock'))).toBe(false);
  });

  it("'resume' of a finished run with nothing left to do ends at once as it was", async () => {
    const dir = await tempDir();
    const input = await inputFiles(dir, 3);
    const stage = join(dir, 'stage');
    const dpf = new DPF(await countingModule(dir), { stage });
    await (await dpf.runFromStage({ stageLocation: input, runId: 'complete', filePattern: '*.csv' })).wait();
    const again = await dpf.runFromStage({ stageLocation: input, runId: 'complete', filePattern: '*.csv', onExistingArtifacts: 'resume' });
    expect(await again.wait()).toBe(RunStatus.SUCCESS);
    expect(await executions(dir)).toHaveLength(3);
  });
});

describe('a folder on the stage that is not a run', () => {
  it("is never deleted by 'resume', only by an explicit 'overwrite'", async () => {
    const dir = await tempDir();
    const input = await inputFiles(dir, 1);
    const stage = join(dir, 'stage');
    await writeFiles(stage, { 'reports/keep-me.txt': 'precious' });
    const dpf = new DPF(await countingModule(dir), { stage });
    await expect(dpf.runFromStage({ stageLocation: input, runId: 'reports', filePattern: '*.csv', onExistingArtifacts: 'resume' })).rejects.toThrow(/not a dpf run/);
    await expect(dpf.runFromStage({ stageLocation: input, runId: 'reports', filePattern: '*.csv' })).rejects.toBeInstanceOf(RunExistsError);
    expect(await readFile(join(stage, 'reports/keep-me.txt'), 'utf8')).toBe('precious');
    const run = await dpf.runFromStage({ stageLocation: input, runId: 'reports', filePattern: '*.csv', onExistingArtifacts: 'overwrite' });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    expect(await exists(join(stage, 'reports/keep-me.txt'))).toBe(false);
  });
});

describe("'resume' that would not continue the run it names", () => {
  it('of a run that does not exist, says so and how to start it, and writes nothing', async () => {
    const dir = await tempDir();
    const input = await inputFiles(dir, 2);
    const stage = join(dir, 'stage');
    const dpf = new DPF(await countingModule(dir), { stage });
    await (await dpf.runFromStage({ stageLocation: input, runId: 'real', filePattern: '*.csv' })).wait();
    const before = await listFiles(stage);
    const attempts = [
      () => dpf.runFromStage({ stageLocation: input, runId: 'reel', filePattern: '*.csv', partitionIds: ['p01.csv'], onExistingArtifacts: 'resume' }),
      () => dpf.run({ partitionBy: 'k', runId: 'reel', onExistingArtifacts: 'resume' }),
      () => dpf.run({ partitionBy: 'k', source: 'SELECT 1 AS k', runId: 'reel', onExistingArtifacts: 'resume' }),
    ];
    for (const start of attempts) {
      const attempt = start();
      await expect(attempt).rejects.toBeInstanceOf(RunNotFoundError);
      await expect(attempt).rejects.toThrow(`There is no run "reel" on the stage ${stage} to resume: check the runId and the stage; to start it as a new run, leave out onExistingArtifacts`);
    }
    expect(await listFiles(stage)).toEqual(before);
    expect(await executions(dir)).toHaveLength(2);
  });

  it('with another partitionBy, source or function, is refused naming the difference, before any work', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const module = await countingModule(dir);
    const dpf = new DPF(module, { stage });
    const source = "SELECT 'k' || (i % 3) AS k, i % 2 AS half FROM range(30) t(i)";
    const first = await dpf.run({ partitionBy: 'k', source, runId: 'planned', executionOptions: { maxRetries: 0 } });
    expect(await first.wait()).toBe(RunStatus.SUCCESS);
    const before = await listFiles(stage);
    const refused = async (attempt: Promise<unknown>, message: RegExp | string) => {
      await expect(attempt).rejects.toBeInstanceOf(InvalidOptionError);
      await expect(attempt).rejects.toThrow(message);
    };
    await refused(dpf.run({ partitionBy: 'half', runId: 'planned', onExistingArtifacts: 'resume' }),
      /^partitionBy: run "planned" is partitioned by k, not half; 'resume' continues a run as it was started — give partitionBy: "k", or start another run/);
    await refused(dpf.run({ partitionBy: 'k', source: source.replace('% 3', '% 4'), runId: 'planned', onExistingArtifacts: 'resume' }),
      `source: run "planned" was planned from the source ${source}, not ${source.replace('% 3', '% 4')}`);
    const other = await writeModule(dir, `await context.uploadToStage('other', 'other.txt');`, { name: 'other.mjs' });
    await refused(new DPF(other, { stage }).run({ partitionBy: 'k', runId: 'planned', onExistingArtifacts: 'resume' }),
      `module: run "planned" runs the function ${module}, not ${other}; 'resume' continues a run as it was started — to rerun its partitions with a fix, fix that module and resume with it`);
    await refused(new DPF({ module, exportName: 'default' }, { stage }).runFromStage({ stageLocation: await inputFiles(dir, 1), runId: 'planned', filePattern: '*.csv', onExistingArtifacts: 'resume' }),
      /onExistingArtifacts: run "planned" is a dataframe-mode run, not a stage-mode one; .* resume it with run,/);
    expect(await listFiles(stage)).toEqual(before);
    expect(await executions(dir)).toHaveLength(3);

    // The same partitionBy (as the source spells it or not), the same source, the same function: resumed.
    const again = await dpf.run({ partitionBy: 'K', source: `  ${source}\n`, runId: 'planned', onExistingArtifacts: 'resume' });
    expect(await again.wait()).toBe(RunStatus.SUCCESS);
    expect(await executions(dir)).toHaveLength(3);

    // Stage mode too: another function is refused.
    const input = await inputFiles(dir, 2);
    await (await dpf.runFromStage({ stageLocation: input, runId: 'files', filePattern: '*.csv' })).wait();
    await refused(new DPF(other, { stage }).runFromStage({ stageLocation: input, runId: 'files', filePattern: '*.csv', onExistingArtifacts: 'resume' }), `module: run "files" runs the function ${module}, not ${other}`);
  });
});
