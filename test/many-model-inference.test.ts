import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InferenceRun, InvalidOptionError, ManyModelInference, ManyModelTraining, ModelNotFoundError, PartitionStatus, RunStatus } from 'dpf';
import { describe, expect, it } from 'vitest';
import { modelProject, scoredRows } from './support/many-models.js';
import { duckdb } from './helpers.js';

/** y = slope·x + intercept per key k of 0..3: slope k + 1, intercept 10·k. */
const TRAINING_SOURCE = 'SELECT k, x::DOUBLE AS x, ((k + 1) * x + 10 * k)::DOUBLE AS y FROM range(4) t(k), range(20) s(x)';
/** New rows to score: keys 0..5 (4 and 5 were never trained), x of 100..102. */
const NEW_SOURCE = 'SELECT k, x::DOUBLE AS x FROM range(6) t(k), range(100, 103) s(x)';

/**
 * The model and its serde, in a module of their own that the training and inference modules both
 * export the serde from (as a user shares it). Every load is written to `loads.txt` next to it,
 * one line per load naming the worker, so the test can count loads per worker.
 */
const MODEL_MODULE = `
import { appendFileSync } from 'node:fs';
import { threadId } from 'node:worker_threads';
import { jsonSerde } from 'dpf';
export class Line {
  constructor(slope, intercept) { this.slope = slope; this.intercept = intercept; }
  predict(x) { return this.slope * x + this.intercept; }
  toJSON() { return { slope: this.slope, intercept: this.intercept }; }
  static load(json) {
    appendFileSync(new URL('./loads.txt', import.meta.url), process.pid + ':' + threadId + '\\n');
    return new Line(json.slope, json.intercept);
  }
}
export const serde = jsonSerde({ loader: Line });
`;

/** Least squares per partition; \`args.shift\` moves the intercept (a "retrained" model), \`args.fail\` fails a partition. */
const TRAIN_MODULE = `
import { Line } from './model.mjs';
export { serde } from './model.mjs';
export default async function train(data, context) {
  if (context.args?.fail === context.partitionId) throw new Error('training diverged');
  const { x, y } = await data.toColumns();
  const n = x.length;
  const mx = x.reduce((a, b) => a + b, 0) / n, my = y.reduce((a, b) => a + b, 0) / n;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < n; i++) { sxy += (x[i] - mx) * (y[i] - my); sxx += (x[i] - mx) ** 2; }
  return new Line(sxy / sxx, my - (sxy / sxx) * mx + (context.args?.shift ?? 0));
}
`;

/** Scores each row; as records, or (args.arrow) as an Arrow table. */
const SCORE_MODULE = `
import { tableFromArrays } from 'apache-arrow';
export { serde } from './model.mjs';
export default async function score(data, model, context) {
  const { x } = await data.toColumns();
  const predicted = Array.from(x, (value) => model.predict(value));
  if (context.args?.arrow) return tableFromArrays({ x: Float64Array.from(x), predicted: Float64Array.from(predicted) });
  return Array.from(x, (value, i) => ({ x: value, predicted: predicted[i] }));
}
`;

const project = () => modelProject({ model: MODEL_MODULE, train: TRAIN_MODULE, score: SCORE_MODULE });

async function train(stage: string, module: string, runId: string, options: { partitionIds?: string[]; args?: Record<string, unknown> } = {}): Promise<RunStatus> {
  const run = await new ManyModelTraining(module, { stage }).run({ partitionBy: 'k', source: TRAINING_SOURCE, runId, ...options });
  return run.wait();
}

const predictions = scoredRows;

const line = (k: number, x: number, shift = 0): number => (k + 1) * x + 10 * k + shift;

describe('ManyModelInference', () => {
  it("scores each partition with its own model, saves predictions with the model's run, and appends them to a table", async () => {
    const { stage, train: trainModule, score } = await project();
    expect(await train(stage, trainModule, 'lines')).toBe(RunStatus.SUCCESS);
    const inference = new ManyModelInference(score, { stage, trainingRunId: 'lines', predictionsTable: 'scored' });
    const run = await inference.run({ partitionBy: 'k', source: `${NEW_SOURCE} WHERE k < 4`, runId: 'scores' });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const rows = await predictions(run);
    expect(rows).toHaveLength(12);
    for (const row of rows) expect(row).toEqual({ partition_id: row.partition_id, x: row.x, predicted: expect.closeTo(line(Number(row.partition_id), row.x), 9), model_run_id: 'lines' });
    expect(await run.modelSource('2')).toEqual({ runId: 'lines', partitionId: '2', fallback: false });
    // The same rows are in the session database's table, once each, with the run and partition
    // first; running the inference again over the same run id replaces them rather than adding.
    const scoredTable = async () =>
      duckdb<{ n: bigint; runs: string; partitions: bigint; columns: string }>(
        `ATTACH '${join(stage, 'dpf.duckdb')}' AS s (READ_ONLY); SELECT count(*) AS n, string_agg(DISTINCT model_run_id) AS runs, count(DISTINCT (run_id, partition_id)) AS partitions, ` +
          `(SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_catalog = 's' AND table_name = 'scored') AS columns FROM s.scored`,
      );
    const expected = [{ n: 12n, runs: 'lines', partitions: 4n, columns: 'run_id,partition_id,x,predicted,model_run_id' }];
    expect(await scoredTable()).toEqual(expected);
    const again = await inference.run({ partitionBy: 'k', source: `${NEW_SOURCE} WHERE k < 4`, runId: 'scores', onExistingArtifacts: 'overwrite' });
    expect(await again.wait()).toBe(RunStatus.SUCCESS);
    expect(await scoredTable()).toEqual(expected);
    // A restored run (any process) says the same.
    const restored = await InferenceRun.restoreFrom('scores', stage);
    expect(await predictions(restored)).toEqual(rows);
    await expect(InferenceRun.restoreFrom('lines', stage)).rejects.toThrow(/not a ManyModelInference run/);
  });

  it("fails a partition without a model by default, saying why, and 'skip' leaves it DONE unscored", async () => {
    const { stage, train: trainModule, score } = await project();
    await train(stage, trainModule, 'lines');
    const failing = await new ManyModelInference(score, { stage, trainingRunId: 'lines' }).run({ partitionBy: 'k', source: NEW_SOURCE, runId: 'strict' });
    expect(await failing.wait()).toBe(RunStatus.PARTIAL_FAILURE);
    const details = await failing.run.getPartitionDetails();
    for (const id of ['4', '5']) {
      expect(details[id]).toMatchObject({ status: PartitionStatus.FAILED, attempts: 1 });
      expect(details[id]!.error).toMatchObject({ name: ModelNotFoundError.name, message: expect.stringMatching(new RegExp(`no model for partition "${id}": run "lines" has no partition "${id}".*onMissingModel`)) });
    }
    expect(Object.values(details).filter((partition) => partition.status === PartitionStatus.DONE)).toHaveLength(4);

    const skipping = await new ManyModelInference(score, { stage, trainingRunId: 'lines', onMissingModel: 'skip' }).run({ partitionBy: 'k', source: NEW_SOURCE, runId: 'lenient' });
    expect(await skipping.wait()).toBe(RunStatus.SUCCESS);
    expect(await skipping.modelSource('5')).toEqual({ runId: null, partitionId: null, fallback: false });
    expect(await skipping.run.partitionDetails('5')!.artifacts.list()).toEqual(['model-source.json']);
    expect(await skipping.run.partitionDetails('5')!.logs()).toMatch(/no training run has a model for partition "5".*skipped/);
    expect(new Set((await predictions(skipping)).map((row) => row.partition_id))).toEqual(new Set(['0', '1', '2', '3']));
  });

  it("scores a partition without a model with the fallback's, saying so, and refuses a fallback that has none before any work", async () => {
    const { stage, train: trainModule, score } = await project();
    await train(stage, trainModule, 'lines');
    const inference = new ManyModelInference(score, { stage, trainingRunId: 'lines', onMissingModel: { fallback: '0' } });
    const run = await inference.run({ partitionBy: 'k', source: NEW_SOURCE, runId: 'fallback', args: { arrow: true } });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    expect(await run.modelSource('5')).toEqual({ runId: 'lines', partitionId: '0', fallback: true });
    expect(await run.modelSource('3')).toEqual({ runId: 'lines', partitionId: '3', fallback: false });
    const rows = await predictions(run);
    // Partitions 4 and 5 are scored by partition 0's line, y = x.
    expect(rows.filter((row) => row.partition_id === '5').map((row) => row.predicted)).toEqual([100, 101, 102]);
    expect(rows.filter((row) => row.partition_id === '3').map((row) => row.predicted)).toEqual([100, 101, 102].map((x) => expect.closeTo(line(3, x), 9)));

    const missing = new ManyModelInference(score, { stage, trainingRunId: 'lines', onMissingModel: { fallback: 'global' } });
    await expect(missing.run({ partitionBy: 'k', source: NEW_SOURCE, runId: 'no-fallback' })).rejects.toThrow(InvalidOptionError);
    await expect(missing.run({ partitionBy: 'k', source: NEW_SOURCE, runId: 'no-fallback' })).rejects.toThrow(/onMissingModel\.fallback.*training run "lines" has no partition "global"/);
    expect(existsSync(join(stage, 'no-fallback'))).toBe(false);
  });

  it('takes each model from the newest training run that has it DONE, or from the run modelRuns names', async () => {
    const { stage, train: trainModule, score } = await project();
    expect(await train(stage, trainModule, 'v1')).toBe(RunStatus.SUCCESS);
    // Retrain the drifted partitions 1 and 2 in a new run; 2 fails there, so its model stays v1's.
    expect(await train(stage, trainModule, 'v2', { partitionIds: ['1', '2'], args: { shift: 1000, fail: '2' } })).toBe(RunStatus.PARTIAL_FAILURE);
    // Given oldest first: the order given does not matter, the runs' creation does.
    const newest = await new ManyModelInference(score, { stage, trainingRunId: ['v1', 'v2'] }).run({ partitionBy: 'k', source: `${NEW_SOURCE} WHERE k < 4`, runId: 'newest' });
    expect(await newest.wait()).toBe(RunStatus.SUCCESS);
    const rows = await predictions(newest);
    const runOf = Object.fromEntries(rows.map((row) => [row.partition_id, row.model_run_id]));
    expect(runOf).toEqual({ '0': 'v1', '1': 'v2', '2': 'v1', '3': 'v1' });
    for (const row of rows) expect(row.predicted).toBeCloseTo(line(Number(row.partition_id), row.x, row.model_run_id === 'v2' ? 1000 : 0), 9);
    expect(await newest.modelSource('1')).toEqual({ runId: 'v2', partitionId: '1', fallback: false });

    const chosen = await new ManyModelInference(score, { stage, trainingRunId: ['v2', 'v1'], modelRuns: { '1': 'v1' } }).run({ partitionBy: 'k', source: `${NEW_SOURCE} WHERE k < 4`, runId: 'chosen' });
    expect(await chosen.wait()).toBe(RunStatus.SUCCESS);
    expect(new Set((await predictions(chosen)).map((row) => row.model_run_id))).toEqual(new Set(['v1']));

    // A choice that cannot hold is refused before any work.
    expect(() => new ManyModelInference(score, { stage, trainingRunId: 'v2', modelRuns: { '1': 'v1' } })).toThrow(/modelRuns\["1"\].*add the run to trainingRunId/);
    const failedChoice = new ManyModelInference(score, { stage, trainingRunId: ['v1', 'v2'], modelRuns: { '2': 'v2' } });
    await expect(failedChoice.run({ partitionBy: 'k', source: NEW_SOURCE, runId: 'bad-choice' })).rejects.toThrow(/modelRuns\["2"\].*partition "2" of training run "v2" is FAILED/);
  });

  it('loads a shared model once per worker with the cache, and once per partition without it', async () => {
    const { dir, stage, train: trainModule, score } = await project();
    await train(stage, trainModule, 'lines');
    const loads = async (): Promise<string[]> => (existsSync(join(dir, 'loads.txt')) ? (await readFile(join(dir, 'loads.txt'), 'utf8')).trim().split('\n') : []);
    // Ten new keys (10..19) with no model of their own: all scored by partition 0's model.
    const source = 'SELECT k, x::DOUBLE AS x FROM range(10, 20) t(k), range(3) s(x)';
    const cached = await new ManyModelInference(score, { stage, trainingRunId: 'lines', onMissingModel: { fallback: '0' } }).run({ partitionBy: 'k', source, runId: 'cached' });
    expect(await cached.wait()).toBe(RunStatus.SUCCESS);
    const withCache = await loads();
    expect(withCache.length).toBeGreaterThan(0);
    expect(new Set(withCache).size).toBe(withCache.length);
    expect(withCache.length).toBeLessThanOrEqual(2);

    await writeFile(join(dir, 'loads.txt'), '');
    const uncached = await new ManyModelInference(score, { stage, trainingRunId: 'lines', onMissingModel: { fallback: '0' }, cacheModels: 0 }).run({ partitionBy: 'k', source, runId: 'uncached' });
    expect(await uncached.wait()).toBe(RunStatus.SUCCESS);
    expect(await loads()).toHaveLength(10);
  });

  it('refuses bad training runs and options before any work', async () => {
    const { dir, stage, train: trainModule, score } = await project();
    await train(stage, trainModule, 'lines');
    const source = `${NEW_SOURCE} WHERE k < 4`;
    const refused = async (options: Partial<ConstructorParameters<typeof ManyModelInference>[1]>, message: RegExp): Promise<void> => {
      const attempt = async (): Promise<unknown> => new ManyModelInference(score, { stage, trainingRunId: 'lines', ...options }).run({ partitionBy: 'k', source, runId: 'refused' });
      await expect(attempt()).rejects.toThrow(InvalidOptionError);
      await expect(attempt()).rejects.toThrow(message);
      expect(existsSync(join(stage, 'refused'))).toBe(false);
    };
    await refused({ trainingRunId: [] }, /trainingRunId.*non-empty array/);
    await refused({ trainingRunId: ['lines', 'lines'] }, /names a run twice/);
    await refused({ onMissingModel: 'ignore' as never }, /onMissingModel.*'error', 'skip' or \{ fallback/);
    await refused({ cacheModels: -1 }, /cacheModels.*integer ≥ 0/);
    await refused({ modelRuns: ['lines'] as never }, /modelRuns: expected an object of partition id → training run id/);
    // The training run's models are JSON; a bytes serde named otherwise cannot load them.
    await writeFile(join(dir, 'bytes-score.mjs'), `import { bytesSerde } from 'dpf';\nexport const serde = bytesSerde({ filename: 'model.onnx' });\nexport default () => [];\n`);
    await expect(new ManyModelInference(join(dir, 'bytes-score.mjs'), { stage, trainingRunId: 'lines' }).run({ partitionBy: 'k', source, runId: 'refused' })).rejects.toThrow(
      /serde.*loads "model.onnx", and the training runs saved their models as "model.json"/,
    );
    // The training run's serde is an export of its module, which this run's workers cannot see.
    await writeFile(join(dir, 'no-serde-score.mjs'), 'export default () => [];\n');
    await expect(new ManyModelInference(join(dir, 'no-serde-score.mjs'), { stage, trainingRunId: 'lines' }).run({ partitionBy: 'k', source, runId: 'refused' })).rejects.toThrow(
      /serde.*exported as "serde" from .*train\.mjs.*export \{ serde \} from '\.\/train\.mjs'/,
    );
    // A plain DPF run is not a training run.
    const { DPF } = await import('dpf');
    await writeFile(join(dir, 'plain.mjs'), 'export default () => {};\n');
    await (await new DPF(join(dir, 'plain.mjs'), { stage }).run({ partitionBy: 'k', source: TRAINING_SOURCE, runId: 'plain' })).wait();
    await refused({ trainingRunId: 'plain' }, /run "plain" is not a ManyModelTraining run/);
  });

  it("gives the function the saved JSON when the training run used the built-in serde and the inference module names none", async () => {
    const { dir, stage } = await project();
    await writeFile(join(dir, 'mean-train.mjs'), 'export default async (data) => { const { y } = await data.toColumns(); return { mean: y.reduce((a, b) => a + b, 0) / y.length }; };\n');
    await writeFile(join(dir, 'mean-score.mjs'), 'export default async (data, model) => { const { x } = await data.toColumns(); return Array.from(x, (value) => ({ x: value, predicted: model.mean })); };\n');
    await train(stage, join(dir, 'mean-train.mjs'), 'means');
    const run = await new ManyModelInference(join(dir, 'mean-score.mjs'), { stage, trainingRunId: 'means' }).run({ partitionBy: 'k', source: `${NEW_SOURCE} WHERE k < 4`, runId: 'scored' });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const means = await duckdb<{ k: number; mean: number }>(`SELECT k::INTEGER AS k, avg(y) AS mean FROM (${TRAINING_SOURCE}) GROUP BY k`);
    const rows = await predictions(run);
    for (const { k, mean } of means) expect(rows.filter((row) => row.partition_id === String(k)).map((row) => row.predicted)).toEqual([mean, mean, mean]);
  });

  it('fails a partition whose predictions carry a column dpf adds, naming it', async () => {
    const { dir, stage, train: trainModule } = await project();
    await train(stage, trainModule, 'lines');
    await writeFile(join(dir, 'clash.mjs'), "export { serde } from './model.mjs';\nexport default async (data, model, context) => [{ partition_id: context.partitionId, predicted: 1 }];\n");
    const run = await new ManyModelInference(join(dir, 'clash.mjs'), { stage, trainingRunId: 'lines' }).run({ partitionBy: 'k', source: 'SELECT 1 AS k, 2.0 AS x', runId: 'clash' });
    expect(await run.wait()).toBe(RunStatus.FAILURE);
    expect(run.run.partitionDetails('1')!.error).toMatchObject({ name: 'SerializationError', message: expect.stringMatching(/column "partition_id", one of those dpf adds.*rename that column/) });
  });

  it('refuses a training run still in progress', async () => {
    const { dir, stage, score } = await project();
    // A training function that waits for a marker file: the run is in progress until the test writes it.
    await writeFile(
      join(dir, 'slow-train.mjs'),
      `import { existsSync } from 'node:fs';\nexport { serde } from './model.mjs';\nimport { Line } from './model.mjs';\n` +
        `export default async function train() {\n  while (!existsSync(new URL('./go', import.meta.url))) await new Promise((r) => setTimeout(r, 20));\n  return new Line(1, 0);\n}\n`,
    );
    const training = await new ManyModelTraining(join(dir, 'slow-train.mjs'), { stage }).run({ partitionBy: 'k', source: TRAINING_SOURCE, runId: 'slow' });
    await expect(new ManyModelInference(score, { stage, trainingRunId: 'slow' }).run({ partitionBy: 'k', source: NEW_SOURCE, runId: 'early' })).rejects.toThrow(/training run "slow" is still in progress/);
    await writeFile(join(dir, 'go'), '');
    expect(await training.wait()).toBe(RunStatus.SUCCESS);
    expect(existsSync(join(stage, 'early'))).toBe(false);
  });
});
