import { existsSync } from 'node:fs';
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidOptionError, ManyModelInference, ManyModelTraining, PartitionStatus, RunStatus } from 'dpf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelProject, scoredRows } from './support/many-models.js';
import { startWorker } from './support/queue-workers.js';
import { type RedisTestServer, startRedisServer } from './support/redis-server.js';
import { POSTGRES_URL, postgres, uniqueName } from './helpers.js';

/** The model and its serde, shared by the training and scoring modules. */
const MODEL_MODULE = `
import { jsonSerde } from 'dpf';
export class Line {
  constructor(slope, intercept) { this.slope = slope; this.intercept = intercept; }
  predict(x) { return this.slope * x + this.intercept; }
  toJSON() { return { slope: this.slope, intercept: this.intercept }; }
  static load(json) { return new Line(json.slope, json.intercept); }
}
export const serde = jsonSerde({ loader: Line });
`;

const TRAIN_MODULE = `
import { Line } from './model.mjs';
export { serde } from './model.mjs';
export default async function train(data) {
  const { x, y } = await data.toColumns();
  const n = x.length;
  const mx = x.reduce((a, b) => a + b, 0) / n, my = y.reduce((a, b) => a + b, 0) / n;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < n; i++) { sxy += (x[i] - mx) * (y[i] - my); sxx += (x[i] - mx) ** 2; }
  return new Line(sxy / sxx, my - (sxy / sxx) * mx);
}
`;

/**
 * Scores each row and appends the partition to `calls.txt`
 * (and its process id to `pids.txt`); fails the partition named by `args.failUnlessMarker` until a file `marker` exists next to the module.
 */
const SCORE_MODULE = `
import { appendFileSync, existsSync } from 'node:fs';
export { serde } from './model.mjs';
export default async function score(data, model, context) {
  appendFileSync(new URL('./calls.txt', import.meta.url), context.partitionId + '\\n');
  appendFileSync(new URL('./pids.txt', import.meta.url), process.pid + '\\n');
  if (context.args?.failUnlessMarker === context.partitionId && !existsSync(new URL('./marker', import.meta.url))) throw new Error('scoring service down');
  const { x } = await data.toColumns();
  return Array.from(x, (value) => ({ x: value, predicted: model.predict(value) }));
}
`;

const TRAINING_SOURCE = 'SELECT k, x::DOUBLE AS x, ((k + 1) * x + 10 * k)::DOUBLE AS y FROM range(4) t(k), range(20) s(x)';
const NEW_SOURCE = 'SELECT k, x::DOUBLE AS x FROM range(4) t(k), range(100, 103) s(x)';
const line = (k: number, x: number): number => (k + 1) * x + 10 * k;

const project = () => modelProject({ model: MODEL_MODULE, train: TRAIN_MODULE, score: SCORE_MODULE });

const predictions = scoredRows;

/** Writes one CSV per store: `slope·x + intercept` rows (with y when `withY`). */
async function csvFiles(dir: string, stores: Record<string, [number, number]>, xs: number[], withY: boolean): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, [slope, intercept]] of Object.entries(stores)) {
    const rows = xs.map((x) => (withY ? `${x},${slope * x + intercept}` : `${x}`));
    await writeFile(join(dir, name), `${withY ? 'x,y' : 'x'}\n${rows.join('\n')}\n`);
  }
}

describe('ManyModelInference run other ways', () => {
  it('scores files in stage mode with the model trained on the file of the same name, and follows onMissingModel for a new file', async () => {
    const { dir, stage, train, score } = await project();
    const trainDir = join(dir, 'train-files');
    const newDir = join(dir, 'new-files');
    await csvFiles(trainDir, { 'a.csv': [2, 1], 'b.csv': [-1, 5] }, [0, 1, 2, 3, 4, 5], true);
    await csvFiles(newDir, { 'a.csv': [0, 0], 'b.csv': [0, 0], 'c.csv': [0, 0] }, [10, 11], false);
    const training = await new ManyModelTraining(train, { stage }).runFromStage({ stageLocation: trainDir, filePattern: '*.csv', runId: 'stores' });
    expect(await training.wait()).toBe(RunStatus.SUCCESS);

    const strict = await new ManyModelInference(score, { stage, trainingRunId: 'stores' }).runFromStage({ stageLocation: newDir, filePattern: '*.csv', runId: 'strict' });
    expect(await strict.wait()).toBe(RunStatus.PARTIAL_FAILURE);
    const details = await strict.run.getPartitionDetails();
    expect(details['c.csv']).toMatchObject({ status: PartitionStatus.FAILED, error: { message: expect.stringMatching(/no model for partition "c\.csv"/) } });

    const run = await new ManyModelInference(score, { stage, trainingRunId: 'stores', onMissingModel: { fallback: 'a.csv' } }).runFromStage({ stageLocation: newDir, filePattern: '*.csv', runId: 'scored' });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const rows = await predictions(run);
    const expected = { 'a.csv': (x: number) => 2 * x + 1, 'b.csv': (x: number) => -x + 5, 'c.csv': (x: number) => 2 * x + 1 } as Record<string, (x: number) => number>;
    expect(rows).toHaveLength(6);
    for (const row of rows) expect(row).toEqual({ partition_id: row.partition_id, x: row.x, predicted: expect.closeTo(expected[row.partition_id]!(row.x), 9), model_run_id: 'stores' });
    expect(await run.modelSource('b.csv')).toEqual({ runId: 'stores', partitionId: 'b.csv', fallback: false });
    expect(await run.modelSource('c.csv')).toEqual({ runId: 'stores', partitionId: 'a.csv', fallback: true });
  });

  it('scores in child processes with process isolation', async () => {
    const { dir, stage, train, score } = await project();
    const training = await new ManyModelTraining(train, { stage }).run({ partitionBy: 'k', source: TRAINING_SOURCE, runId: 'lines' });
    expect(await training.wait()).toBe(RunStatus.SUCCESS);
    const run = await new ManyModelInference(score, { stage, trainingRunId: 'lines' }).run({ partitionBy: 'k', source: NEW_SOURCE, runId: 'isolated', executionOptions: { isolation: 'process' } });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const rows = await predictions(run);
    expect(rows).toHaveLength(12);
    for (const row of rows) expect(row.predicted).toBeCloseTo(line(Number(row.partition_id), row.x), 9);
    expect(await run.modelSource('3')).toEqual({ runId: 'lines', partitionId: '3', fallback: false });
    // The layer and the function ran in child processes, not in this one.
    const pids = new Set((await readFile(join(dir, 'pids.txt'), 'utf8')).trim().split('\n'));
    expect(pids.size).toBeGreaterThan(0);
    expect(pids.has(String(process.pid))).toBe(false);
  });

  it('resumes a run to score only the partition that failed, and refuses a resume with other inference options', async () => {
    const { dir, stage, train, score } = await project();
    const training = await new ManyModelTraining(train, { stage }).run({ partitionBy: 'k', source: TRAINING_SOURCE, runId: 'lines' });
    expect(await training.wait()).toBe(RunStatus.SUCCESS);
    const inference = new ManyModelInference(score, { stage, trainingRunId: 'lines' });
    const first = await inference.run({ partitionBy: 'k', source: NEW_SOURCE, runId: 'scores', args: { failUnlessMarker: '2' } });
    expect(await first.wait()).toBe(RunStatus.PARTIAL_FAILURE);
    expect((await first.run.getPartitionDetails())['2']).toMatchObject({ status: PartitionStatus.FAILED });
    const calls = async (): Promise<string[]> => (await readFile(join(dir, 'calls.txt'), 'utf8')).trim().split('\n').sort();
    // Partition 2 may be tried more than once (retries); each of the others once.
    expect((await calls()).filter((id) => id !== '2')).toEqual(['0', '1', '3']);

    await writeFile(join(dir, 'calls.txt'), '');
    await appendFile(join(dir, 'marker'), '');
    const resumed = await inference.run({ partitionBy: 'k', source: NEW_SOURCE, runId: 'scores', onExistingArtifacts: 'resume', partitionIds: ['2'] });
    expect(await resumed.wait()).toBe(RunStatus.SUCCESS);
    expect(await calls()).toEqual(['2']);
    const rows = await predictions(resumed);
    expect(rows).toHaveLength(12);
    for (const row of rows) expect(row.predicted).toBeCloseTo(line(Number(row.partition_id), row.x), 9);

    const other = await new ManyModelTraining(train, { stage }).run({ partitionBy: 'k', source: TRAINING_SOURCE, runId: 'lines2' });
    expect(await other.wait()).toBe(RunStatus.SUCCESS);
    for (const options of [{ trainingRunId: 'lines2' }, { trainingRunId: 'lines', onMissingModel: 'skip' as const }]) {
      const attempt = async (): Promise<unknown> =>
        new ManyModelInference(score, { stage, ...options }).run({ partitionBy: 'k', source: NEW_SOURCE, runId: 'scores', onExistingArtifacts: 'resume', partitionIds: ['2'] });
      await expect(attempt()).rejects.toThrow(InvalidOptionError);
      await expect(attempt()).rejects.toThrow(/run "scores" was started with the ManyModelInference options .*give the same ManyModelInference options/);
    }
    expect(existsSync(join(stage, 'scores'))).toBe(true);
  });

  it('trains and scores through the queue on dpf worker processes', async () => {
    const { stage, train, score } = await project();
    await startWorker(redis.url, { concurrency: 2 });
    const executionOptions = { useHeadNode: false };
    const training = await new ManyModelTraining(train, { stage, queue: redis.url }).run({ partitionBy: 'k', source: TRAINING_SOURCE, runId: 'lines', executionOptions });
    expect(await training.wait()).toBe(RunStatus.SUCCESS);
    const run = await new ManyModelInference(score, { stage, queue: redis.url, trainingRunId: 'lines' }).run({ partitionBy: 'k', source: NEW_SOURCE, runId: 'queued', executionOptions });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const rows = await predictions(run);
    expect(rows).toHaveLength(12);
    for (const row of rows) expect(row).toEqual({ partition_id: row.partition_id, x: row.x, predicted: expect.closeTo(line(Number(row.partition_id), row.x), 9), model_run_id: 'lines' });
    expect(await run.modelSource('1')).toEqual({ runId: 'lines', partitionId: '1', fallback: false });
    // A queue run has no session database unless given one: a predictionsTable is refused up front.
    expect(() => new ManyModelInference(score, { stage, queue: redis.url, trainingRunId: 'lines', predictionsTable: 'scored' })).toThrow(InvalidOptionError);
    expect(() => new ManyModelInference(score, { stage, queue: redis.url, trainingRunId: 'lines', predictionsTable: 'scored' })).toThrow(/predictionsTable.*queue run has no session database.*postgres:\/\//);
  });

  it('appends predictions to a predictionsTable in a PostgreSQL session database', async () => {
    const { stage, train, score } = await project();
    const table = uniqueName('scored');
    const training = await new ManyModelTraining(train, { stage, sessionDatabase: POSTGRES_URL }).run({ partitionBy: 'k', source: TRAINING_SOURCE, runId: uniqueName('lines') });
    expect(await training.wait()).toBe(RunStatus.SUCCESS);
    try {
      const inference = new ManyModelInference(score, { stage, sessionDatabase: POSTGRES_URL, trainingRunId: training.run.runId, predictionsTable: table });
      const run = await inference.run({ partitionBy: 'k', source: NEW_SOURCE, runId: uniqueName('scores') });
      expect(await run.wait()).toBe(RunStatus.SUCCESS);
      // The table holds the function's columns and model_run_id (no partition_id: the rows say which partition only through the function's own columns).
      const rows = await postgres<{ x: number; predicted: number; model_run_id: string }>(`SELECT x, predicted, model_run_id FROM ${table} ORDER BY predicted`);
      const expected = [0, 1, 2, 3].flatMap((k) => [100, 101, 102].map((x) => ({ x, predicted: line(k, x) }))).sort((a, b) => a.predicted - b.predicted);
      expect(rows).toHaveLength(12);
      rows.forEach((row, i) => expect(row).toEqual({ x: expected[i]!.x, predicted: expect.closeTo(expected[i]!.predicted, 9), model_run_id: training.run.runId }));
    } finally {
      await postgres(`DROP TABLE IF EXISTS ${table}`);
    }
  });
});

let redis: RedisTestServer;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis.stop();
});
