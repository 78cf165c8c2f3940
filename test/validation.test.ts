import { join } from 'node:path';
import { DPF, InputLocationError, InvalidOptionError, ModuleLoadError, RunStatus } from 'dpf';
import { describe, expect, it } from 'vitest';
import { exists, listFiles, tempDir, writeFiles, writeModule } from './helpers.js';

/** A stage holding one finished run, an input folder, and a module; what a refused call must not touch. */
async function fixture() {
  const dir = await tempDir();
  const input = join(dir, 'input');
  await writeFiles(input, { 'a.csv': 'x\n1\n', 'sub/b.csv': 'x\n2\n' });
  const stage = join(dir, 'stage');
  const module = await writeModule(dir, `await context.uploadToStage('ok', 'ok.txt');`, { prelude: 'export const notAFunction = 1;' });
  const dpf = new DPF(module, { stage });
  expect(await (await dpf.runFromStage({ stageLocation: input, runId: 'existing', filePattern: '*.csv' })).wait()).toBe(RunStatus.SUCCESS);
  return { dir, input, stage, module, dpf, before: await listFiles(stage) };
}

describe('bad input is refused before any work, and the stage is left as it was', () => {
  it.each([
    ['a missing stage location', { stageLocation: 'nope/nowhere' }, InputLocationError, /does not exist/],
    ['an empty stage location', { stageLocation: '' }, InputLocationError, /stageLocation must be the folder/],
    ['a stage location that is a file', { stageLocation: 'input/a.csv' }, InputLocationError, /is a file, not a folder/],
    ['a glob that matches no file', { filePattern: '*.parquet' }, InputLocationError, /No file under .* matches filePattern "\*\.parquet".*a\.csv/],
    ['a glob that misses files in sub-folders', { filePattern: 'b.csv' }, InputLocationError, /\*\*\/b\.csv/],
    ['partitionIds naming files that do not exist', { partitionIds: ['a.csv', 'ghost.csv'] }, InputLocationError, /ghost\.csv/],
    ['partitionIds leaving the input folder', { partitionIds: ['../stage/existing/_dpf/run.json'] }, InputLocationError, /not a path relative/],
    ['an empty partitionIds', { partitionIds: [] }, InputLocationError, /partitionIds is empty/],
    ['a runId with a slash', { runId: 'a/b' }, InvalidOptionError, /runId: "a\/b" cannot name a run folder/],
    ['a runId of dots', { runId: '..' }, InvalidOptionError, /cannot name a run folder/],
    ['a runId starting with the state folder prefix', { runId: '_dpf' }, InvalidOptionError, /cannot name a run folder/],
    ['an empty runId', { runId: '' }, InvalidOptionError, /runId: must not be empty/],
    ['a misspelled run option', { partitonIds: ['a.csv'] }, InvalidOptionError, /partitonIds: unknown option; did you mean `partitionIds`\? the known options are: stageLocation, runId/],
    ['a misspelled execution option', { executionOptions: { maxRetry: 2 } }, InvalidOptionError, /executionOptions\.maxRetry: unknown option; did you mean `maxRetries`\?/],
    ['a wrongly cased execution option', { executionOptions: { timeoutms: 5 } }, InvalidOptionError, /executionOptions\.timeoutms: unknown option; did you mean `timeoutMs`\?/],
    ['an unknown option like no known one', { executionOptions: { colour: 'red' } }, InvalidOptionError, /executionOptions\.colour: unknown option; the known options are: maxRetries/],
    ['zero CPUs per worker', { executionOptions: { numCpusPerWorker: 0 } }, InvalidOptionError, /numCpusPerWorker: expected a number > 0, got 0/],
    ['negative CPUs per worker', { executionOptions: { numCpusPerWorker: -2 } }, InvalidOptionError, /numCpusPerWorker: expected a number > 0, got -2/],
    ['negative retries', { executionOptions: { maxRetries: -1 } }, InvalidOptionError, /maxRetries: expected an integer ≥ 0/],
    ['a timeout that is not a number', { executionOptions: { timeoutMs: '10s' } }, InvalidOptionError, /timeoutMs: expected an integer ≥ 1, got "10s"/],
    ['a log limit too small to hold a line', { executionOptions: { maxLogBytes: 10 } }, InvalidOptionError, /executionOptions\.maxLogBytes: expected an integer ≥ 1024, got 10/],
    ['an unknown isolation', { executionOptions: { isolation: 'vm' } }, InvalidOptionError, /isolation: expected one of 'thread', 'process'/],
    ['more GPUs than the machine has', { executionOptions: { numGpusPerWorker: 1, availableGpus: 0 } }, InvalidOptionError, /offers 0/],
    ['GPUs with thread isolation', { executionOptions: { numGpusPerWorker: 1, availableGpus: 2, isolation: 'thread' } }, InvalidOptionError, /needs isolation: 'process'/],
    ['an unknown onExistingArtifacts', { onExistingArtifacts: 'replace' }, InvalidOptionError, /expected one of 'error', 'overwrite', 'resume'/],
  ])('%s', async (_, override, errorClass, message) => {
    const { dir, input, stage, dpf, before } = await fixture();
    const options = { stageLocation: input, runId: 'fresh', filePattern: '**/*.csv', ...override } as Record<string, unknown>;
    if (typeof options.stageLocation === 'string' && options.stageLocation !== '' && !options.stageLocation.startsWith('/')) {
      options.stageLocation = join(dir, options.stageLocation);
    }
    const attempt = dpf.runFromStage(options as never);
    await expect(attempt).rejects.toBeInstanceOf(errorClass);
    await expect(attempt).rejects.toThrow(message);
    expect(await listFiles(stage)).toEqual(before);
  });

  it('refuses a module that does not exist, or one of another kind', async () => {
    const dir = await tempDir();
    expect(() => new DPF(join(dir, 'missing.ts'), { stage: join(dir, 'stage') })).toThrow(ModuleLoadError);
    expect(() => new DPF(join(dir, 'missing.ts'), { stage: join(dir, 'stage') })).toThrow(/does not exist/);
    await writeFiles(dir, { 'data.csv': 'x\n' });
    expect(() => new DPF(join(dir, 'data.csv'), { stage: join(dir, 'stage') })).toThrow("is not a .ts, .mts, .cts, .tsx, .js, .mjs, .cjs file");
    expect(await exists(join(dir, 'stage'))).toBe(false);
  });

  it('refuses a module without the named export, or whose export is not a function, listing what it has', async () => {
    const { module, stage, input, before } = await fixture();
    const missing = new DPF({ module, exportName: 'train' }, { stage });
    await expect(missing.runFromStage({ stageLocation: input, runId: 'x', filePattern: '*.csv' })).rejects.toThrow(/has no export named "train"; its function exports are: default/);
    const notFunction = new DPF({ module, exportName: 'notAFunction' }, { stage });
    await expect(notFunction.runFromStage({ stageLocation: input, runId: 'x', filePattern: '*.csv' })).rejects.toThrow(/"notAFunction" .* is not a function/);
    expect(await listFiles(stage)).toEqual(before);
  });

  it('refuses a module that fails to import, with its error', async () => {
    const dir = await tempDir();
    await writeFiles(dir, { 'broken.mjs': 'throw new Error("no model file");\nexport default () => {};', 'input/a.csv': 'x\n1\n' });
    const dpf = new DPF(join(dir, 'broken.mjs'), { stage: join(dir, 'stage') });
    await expect(dpf.runFromStage({ stageLocation: join(dir, 'input'), runId: 'x', filePattern: '*.csv' })).rejects.toThrow(/Importing the partition module .* failed: no model file/);
  });

  it('refuses stage options it cannot use', async () => {
    const dir = await tempDir();
    const module = await writeModule(dir, '');
    expect(() => new DPF(module, { stage: '' })).toThrow(/stage: expected a folder, e.g. "\.\/stage", or an S3 prefix/);
    expect(() => new DPF(module, { stage: 'https://bucket.example.com/prefix' })).toThrow(/stage: .*a local folder .* or under s3:\/\/bucket\/prefix/);
    expect(() => new DPF(module, { stage: 's3://Bad_Bucket/prefix' })).toThrow(/stage: "Bad_Bucket" is not a valid S3 bucket name/);
    expect(() => new DPF(module, { stage: 's3://bucket/a/../b' })).toThrow(/stage: .*must not hold "\.\."/);
    expect(() => new DPF(module, { stage: 's3://bucket/prefix', sessionDatabase: 'mysql://x' })).toThrow(/sessionDatabase: expected a DuckDB database file path or a postgres:\/\/ URL/);
    expect(() => new DPF(module, { stage: join(dir, 's'), extra: true } as never)).toThrow(/options\.extra: unknown option; the known options are: stage, sessionDatabase/);
    expect(() => new DPF(module, { stage: join(dir, 's'), sessionDatabse: 'x.duckdb' } as never)).toThrow(/options\.sessionDatabse: unknown option; did you mean `sessionDatabase`\?/);
  });
});
