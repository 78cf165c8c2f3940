import { join } from 'node:path';
import { DPF, PartitionStatus, RunStatus } from 'dpf';
import { describe, expect, it } from 'vitest';
import { ArtifactNotFoundError, RunNotFoundError } from '../src/errors.js';
import { RunIndexes } from '../src/run/run-indexes.js';
import { LocalStage } from '../src/stage/local-stage.js';
import { readArtifactRef } from '../src/stage/read-artifact.js';
import { tempDir, writeFiles, writeModule } from './helpers.js';

/**
 * `downloadFromStage(name, { runId, partitionId })` and `details.stagePath`: a later run reads
 * what an earlier run's partitions saved, by their ids, whatever their folders' encoding.
 */

/** Keys whose folders are not their ids (`A|B` → `A%7CB`, `a/b` → `a%2Fb`, `50%` → `50%25`), and one that fails. */
const KEYS = ['A|B', 'A%7CB', 'a/b', 'Zürich ☃', '50%', 'plain', 'bad'];
const source = (keys: readonly string[]) => `SELECT * FROM (VALUES ${keys.map((key, i) => `('${key}', ${i})`).join(', ')}) t(k, v)`;

/** A training run `train` in DataFrame mode: each partition saves its id as its model; `bad` fails. */
async function train(dir: string) {
  const module = await writeModule(dir, `
    if (context.partitionId === 'bad') throw new Error('cannot train');
    await context.uploadToStage({ id: context.partitionId }, 'model.json');
  `, { name: 'train.mjs' });
  const dpf = new DPF(module, { stage: join(dir, 'stage') });
  const run = await dpf.run({ partitionBy: 'k', source: source(KEYS), runId: 'train', executionOptions: { maxRetries: 0 } });
  expect(await run.wait()).toBe(RunStatus.PARTIAL_FAILURE);
  return run.getPartitionDetails();
}

/** Runs `body` as a DataFrame-mode run `runId` over `keys` on the stage of `dir`, and returns each partition's `out.json`. */
async function read(dir: string, runId: string, keys: readonly string[], body: string, prelude = '') {
  const module = await writeModule(dir, `
    const attempt = (work) => work.then((value) => value, (error) => ({ error: error.name, option: error.option, message: error.message }));
    ${body}
  `, { name: `${runId}.mjs`, prelude });
  const run = await new DPF(module, { stage: join(dir, 'stage') }).run({ partitionBy: 'k', source: source(keys), runId, executionOptions: { maxRetries: 0 } });
  expect(await run.wait()).toBe(RunStatus.SUCCESS);
  const out: Record<string, Record<string, unknown>> = {};
  for (const [id, details] of Object.entries(await run.getPartitionDetails())) out[id] = (await details.artifacts.get('out.json')) as Record<string, unknown>;
  return out;
}

describe('downloadFromStage by run and partition id', () => {
  it("reads each partition's model from the training run by its id, by details.stagePath, and by the raw id in a stagePath", async () => {
    const dir = await tempDir();
    const trained = await train(dir);
    expect(Object.fromEntries(Object.entries(trained).map(([id, details]) => [id, details.stagePath]))).toEqual({
      'A|B': 'train/A%7CB',
      'A%7CB': 'train/A%257CB',
      'a/b': 'train/a%2Fb',
      'Zürich ☃': 'train/Zürich ☃',
      '50%': 'train/50%25',
      plain: 'train/plain',
      bad: 'train/bad',
    });
    const paths = Object.fromEntries(Object.entries(trained).map(([id, details]) => [id, details.stagePath]));
    const out = await read(
      dir,
      'infer',
      KEYS,
      `
      await context.uploadToStage({
        byDefault: await attempt(context.downloadFromStage('model.json', { runId: 'train' })),
        byId: await attempt(context.downloadFromStage('model.json', { runId: 'train', partitionId: context.partitionId })),
        byStagePath: await attempt(context.downloadFromStage('model.json', { stagePath: PATHS[context.partitionId] })),
        byRawId: await attempt(context.downloadFromStage('model.json', { stagePath: 'train/' + context.partitionId })),
        other: await attempt(context.downloadFromStage('model.json', { runId: 'train', partitionId: 'a/b', readFunction: (path) => fs.readFileSync(path, 'utf8') })),
      }, 'out.json');
    `,
      `import fs from 'node:fs'; const PATHS = ${JSON.stringify(paths)};`,
    );
    for (const id of KEYS.filter((key) => key !== 'bad')) {
      expect(out[id]!.byDefault, id).toEqual({ id });
      expect(out[id]!.byId, id).toEqual({ id });
      expect(out[id]!.byStagePath, id).toEqual({ id });
      expect(out[id]!.other, id).toBe('{"id":"a/b"}');
    }
    // A raw id in a stagePath names its partition when it is no partition's folder…
    for (const id of ['A|B', 'a/b', 'Zürich ☃', '50%', 'plain']) expect(out[id]!.byRawId, id).toEqual({ id });
    // …and a folder always names its own partition: `A%7CB` is the folder of `A|B`.
    expect(out['A%7CB']!.byRawId).toEqual({ id: 'A|B' });
    // The partition that failed to train has no model, and says so.
    expect(out['bad']!.byDefault).toMatchObject({ error: 'ArtifactNotFoundError' });
    expect(out['bad']!.byDefault!).toHaveProperty('message', expect.stringContaining('partition "bad" of run "train" is FAILED, not DONE'));
    expect((out['bad']!.byDefault as { message: string }).message).toContain("resume run \"train\" (onExistingArtifacts: 'resume')");
    expect(out['bad']!.byStagePath).toMatchObject({ error: 'ArtifactNotFoundError', message: expect.stringContaining('FAILED, not DONE') });
  });

  it('says what is wrong: no such run, partition or artifact, and options that cannot go together', async () => {
    const dir = await tempDir();
    await train(dir);
    const out = await read(
      dir,
      'errors',
      ['x'],
      `
      const d = (name, options) => attempt(context.downloadFromStage(name, options));
      await context.uploadToStage({
        noRun: await d('model.json', { runId: 'nope', partitionId: 'plain' }),
        noPartition: await d('model.json', { runId: 'train', partitionId: 'plian' }),
        notThisPartition: await d('model.json', { runId: 'train' }),
        noArtifact: await d('nope.json', { runId: 'train', partitionId: 'plain' }),
        stagePathAndRunId: await d('model.json', { stagePath: 'train/plain', runId: 'train' }),
        stagePathAndPartitionId: await d('model.json', { stagePath: 'train/plain', partitionId: 'plain' }),
        siblingOfThisRun: await d('model.json', { partitionId: 'plain' }),
        thisRun: await d('model.json', { runId: 'errors', partitionId: 'x' }),
        stagePathIntoThisRun: await d('model.json', { stagePath: '/errors/x/' }),
        badRunId: await d('model.json', { runId: '../train', partitionId: 'plain' }),
        misspelt: await d('model.json', { runid: 'train' }),
        notAnId: await d('model.json', { runId: 'train', partitionId: 7 }),
      }, 'out.json');
    `,
    );
    const errors = out['x']!;
    expect(errors.noRun).toMatchObject({ error: 'RunNotFoundError', message: expect.stringContaining(`there is no run "nope" on the stage ${join(dir, 'stage')}`) });
    expect(errors.noPartition).toMatchObject({ error: 'ArtifactNotFoundError' });
    const noPartition = (errors.noPartition as { message: string }).message;
    expect(noPartition).toContain('run "train" has no partition "plian" (did you mean "plain"?)');
    expect(noPartition).toContain('it has 7 partitions: "50%"');
    expect(noPartition).toContain('Give partitionId as that run names its partitions');
    expect(errors.notThisPartition).toMatchObject({ error: 'ArtifactNotFoundError', message: expect.stringContaining('run "train" has no partition "x"') });
    expect(errors.noArtifact).toMatchObject({ error: 'ArtifactNotFoundError', message: expect.stringContaining('partition "plain" of run "train" has no artifact "nope.json"; it has: model.json') });
    expect(errors.stagePathAndRunId).toMatchObject({ error: 'InvalidOptionError', option: 'downloadFromStage.stagePath', message: expect.stringContaining('cannot be given with runId') });
    expect(errors.stagePathAndPartitionId).toMatchObject({ error: 'InvalidOptionError', option: 'downloadFromStage.stagePath', message: expect.stringContaining('cannot be given with partitionId') });
    expect(errors.siblingOfThisRun).toMatchObject({ error: 'InvalidOptionError', option: 'downloadFromStage.partitionId', message: expect.stringContaining('names a partition of this run, "errors", which is still running') });
    expect(errors.thisRun).toMatchObject({ error: 'InvalidOptionError', option: 'downloadFromStage.runId', message: expect.stringContaining('"errors" is this run') });
    // A folder of the running run is refused as its partitions are: what it holds depends on the order partitions run.
    expect(errors.stagePathIntoThisRun).toMatchObject({ error: 'InvalidOptionError', option: 'downloadFromStage.stagePath', message: expect.stringContaining('"/errors/x/" is a folder of this run, "errors", which is still running') });
    expect(errors.badRunId).toMatchObject({ error: 'InvalidOptionError', option: 'downloadFromStage.runId', message: expect.stringContaining('"../train"') });
    expect(errors.misspelt).toMatchObject({ error: 'InvalidOptionError', option: 'downloadFromStage.runid', message: expect.stringContaining('did you mean `runId`?') });
    expect(errors.notAnId).toMatchObject({ error: 'InvalidOptionError', option: 'downloadFromStage.partitionId', message: expect.stringContaining('got 7') });
  });

  it('reads the models of a stage-mode run, whose partition ids are file paths with folders', async () => {
    const dir = await tempDir();
    const files = { 'top.csv': 'x\n1\n', 'east/ATL.csv': 'x\n2\n', 'east/sub/JFK 50%.csv': 'x\n3\n' };
    await writeFiles(join(dir, 'input'), files);
    const stage = join(dir, 'stage');
    const trainer = await writeModule(dir, `await context.uploadToStage({ id: context.partitionId, rows: (await data.toRecords()).length }, 'model.json');`, { name: 'train.mjs' });
    const trained = await new DPF(trainer, { stage }).runFromStage({ stageLocation: join(dir, 'input'), runId: 'train-files', filePattern: '**/*.csv' });
    expect(await trained.wait()).toBe(RunStatus.SUCCESS);
    const details = await trained.getPartitionDetails();
    expect(Object.keys(details).sort()).toEqual(['east/ATL.csv', 'east/sub/JFK 50%.csv', 'top.csv']);
    expect(details['east/sub/JFK 50%.csv']!.stagePath).toBe('train-files/east/sub/JFK 50%25.csv');
    const paths = Object.fromEntries(Object.entries(details).map(([id, d]) => [id, d.stagePath]));
    const reader = await writeModule(
      dir,
      `await context.uploadToStage({
        byId: await context.downloadFromStage('model.json', { runId: 'train-files' }),
        byStagePath: await context.downloadFromStage('model.json', { stagePath: PATHS[context.partitionId] }),
        byRawId: await context.downloadFromStage('model.json', { stagePath: 'train-files/' + context.partitionId }),
      }, 'out.json');`,
      { name: 'read.mjs', prelude: `const PATHS = ${JSON.stringify(paths)};` },
    );
    const read = await new DPF(reader, { stage }).runFromStage({ stageLocation: join(dir, 'input'), runId: 'read-files', filePattern: '**/*.csv', executionOptions: { maxRetries: 0 } });
    expect(await read.wait()).toBe(RunStatus.SUCCESS);
    const rows = { 'top.csv': 1, 'east/ATL.csv': 1, 'east/sub/JFK 50%.csv': 1 };
    for (const [id, d] of Object.entries(await read.getPartitionDetails())) {
      const model = { id, rows: rows[id as keyof typeof rows] };
      expect(await d.artifacts.get('out.json'), id).toEqual({ byId: model, byStagePath: model, byRawId: model });
    }
  });

  it('finds a partition that became DONE after it was first looked up (RunIndexes.findByPartition, for the models layer)', async () => {
    const dir = await tempDir();
    const stagePath = join(dir, 'stage');
    const ready = join(dir, 'late-is-ready');
    const module = await writeModule(dir, `
      if (context.partitionId === 'late' && !fs.existsSync(${JSON.stringify(ready)})) throw new Error('not yet');
      await context.uploadToStage({ id: context.partitionId }, 'model.json');
    `, { prelude: `import fs from 'node:fs';` });
    const dpf = new DPF(module, { stage: stagePath });
    const first = await dpf.run({ partitionBy: 'k', source: source(['early', 'late']), runId: 'train', executionOptions: { maxRetries: 0 } });
    expect(await first.wait()).toBe(RunStatus.PARTIAL_FAILURE);

    const finder = new RunIndexes(LocalStage.attach(stagePath));
    const stage = LocalStage.attach(stagePath);
    const early = await finder.findByPartition('train', 'early', 'model.json', 'ManyModelInference');
    expect(await readArtifactRef(stage, early, 'model.json', 'the model of "early"')).toEqual({ id: 'early' });
    await expect(finder.findByPartition('train', 'late', 'model.json', 'ManyModelInference')).rejects.toThrow(ArtifactNotFoundError);
    await expect(finder.findByPartition('train', 'late', 'model.json', 'ManyModelInference')).rejects.toThrow(/^ManyModelInference: partition "late" of run "train" is FAILED, not DONE/);
    await expect(finder.findByPartition('training', 'late', 'model.json', 'ManyModelInference')).rejects.toThrow(RunNotFoundError);

    await writeFiles(dir, { 'late-is-ready': '' });
    const resumed = await dpf.run({ partitionBy: 'k', source: source(['early', 'late']), runId: 'train', onExistingArtifacts: 'resume' });
    expect(await resumed.wait()).toBe(RunStatus.SUCCESS);
    expect((await resumed.getPartitionDetails())['late']!.status).toBe(PartitionStatus.DONE);
    // The same finder reads the run's journal again: `late` is DONE now.
    const late = await finder.findByPartition('train', 'late', 'model.json', 'ManyModelInference');
    expect(await readArtifactRef(stage, late, 'model.json', 'the model of "late"')).toEqual({ id: 'late' });
  });
});
