import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  bytesSerde,
  InvalidOptionError,
  jsonSerde,
  ManyModelTraining,
  ModelNotFoundError,
  ModelSerdeError,
  PartitionStatus,
  RunStatus,
  TrainingRun,
  type ModelSerde,
} from 'dpf';
import { describe, expect, it } from 'vitest';
import { duckdb, ROOT, runNodeScript, tempDir, writeFiles } from './helpers.js';

/** y = slope·x + intercept per key, exactly: key k has slope k + 1 and intercept 10·k. */
const SOURCE = 'SELECT k, x::DOUBLE AS x, ((k + 1) * x + 10 * k)::DOUBLE AS y FROM range(4) t(k), range(20) s(x)';

/**
 * A training module with a small model class of its own (toJSON and a static load, as mljs models
 * have) and its serde exported, as a user writes it.
 */
const LINE_MODULE = `
import { jsonSerde } from 'dpf';
export class Line {
  constructor(slope, intercept) { this.slope = slope; this.intercept = intercept; }
  predict(x) { return this.slope * x + this.intercept; }
  toJSON() { return { name: 'Line', slope: this.slope, intercept: this.intercept }; }
  static load(json) { if (json.name !== 'Line') throw new Error('not a Line'); return new Line(json.slope, json.intercept); }
}
export const serde = jsonSerde({ loader: Line });
export default async function train(data, context) {
  const { x, y } = await data.toColumns();
  if (context.args?.empty === context.partitionId) return undefined;
  const n = x.length;
  const mx = x.reduce((a, b) => a + b, 0) / n, my = y.reduce((a, b) => a + b, 0) / n;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < n; i++) { sxy += (x[i] - mx) * (y[i] - my); sxx += (x[i] - mx) ** 2; }
  await context.uploadToStage({ rows: n }, 'metrics.json');
  return new Line(sxy / sxx, my - (sxy / sxx) * mx);
}
`;

async function lineModule(dir: string): Promise<string> {
  const path = join(dir, 'train.mjs');
  await writeFile(path, LINE_MODULE);
  return path;
}

describe('ManyModelTraining', () => {
  it('saves the model each partition returns through the serde, and gives back live models', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const module = await lineModule(dir);
    const training = new ManyModelTraining<{ slope: number; intercept: number; predict(x: number): number }>(module, { stage });
    const run = await training.run({ partitionBy: 'k', source: SOURCE, runId: 'lines' });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const model = await run.getModel('2');
    expect(model.slope).toBeCloseTo(3, 9);
    expect(model.intercept).toBeCloseTo(20, 9);
    expect(model.predict(5)).toBeCloseTo(35, 9);
    // The artifact is the model's JSON, readable by anyone.
    expect(await run.run.partitionDetails('2')!.artifacts.get('model.json')).toMatchObject({ name: 'Line', slope: expect.closeTo(3, 9) });
    const all = [];
    for await (const entry of run.models()) all.push({ id: entry.partitionId, runId: entry.runId, at10: entry.model.predict(10) });
    expect(all.sort((a, b) => a.id.localeCompare(b.id))).toEqual(
      [0, 1, 2, 3].map((k) => ({ id: String(k), runId: 'lines', at10: expect.closeTo((k + 1) * 10 + 10 * k, 9) })),
    );
    // The coefficients equal DuckDB's own regression.
    const expected = await duckdb<{ k: number; slope: number; intercept: number }>(`SELECT k::INTEGER AS k, regr_slope(y, x) AS slope, regr_intercept(y, x) AS intercept FROM (${SOURCE}) GROUP BY k`);
    for (const { k, slope, intercept } of expected) {
      const trained = await run.getModel(String(k));
      expect(Math.abs(trained.slope - slope)).toBeLessThan(1e-9);
      expect(Math.abs(trained.intercept - intercept)).toBeLessThan(1e-9);
    }
    // Other artifacts of the function sit beside the model, queryable as any run's.
    const metrics = await run.run.query('SELECT sum(rows)::INTEGER AS rows FROM metrics', { metrics: 'metrics.json' });
    expect(metrics.toArray()[0].toJSON()).toEqual({ rows: 80 });
  });

  it('fails a partition whose function returns nothing, saying so, without retrying it', async () => {
    const dir = await tempDir();
    const training = new ManyModelTraining<{ slope: number }>(await lineModule(dir), { stage: join(dir, 'stage') });
    const run = await training.run({ partitionBy: 'k', source: SOURCE, runId: 'empty', args: { empty: '1' }, executionOptions: { maxRetries: 2, retryBackoffMs: 1 } });
    expect(await run.wait()).toBe(RunStatus.PARTIAL_FAILURE);
    const failed = run.run.partitionDetails('1')!;
    expect(failed.status).toBe(PartitionStatus.FAILED);
    expect(failed.attempts).toBe(1);
    expect(failed.error?.name).toBe('ModelSerdeError');
    expect(failed.error?.message).toMatch(/returned undefined for partition "1": return the trained model, which dpf saves as model\.json/);
    await expect(run.getModel('1')).rejects.toThrow(ModelNotFoundError);
    await expect(run.getModel('1')).rejects.toThrow(/partition "1" of training run "empty" is FAILED.*ModelSerdeError/);
    await expect(run.getModel('nine')).rejects.toThrow(/has no partition "nine"/);
    expect((await run.getModel('0')).slope).toBeCloseTo(1, 9);
  });

  it('a restored training run gives the models in another process, with the serde it was trained with', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const run = await new ManyModelTraining(await lineModule(dir), { stage }).run({ partitionBy: 'k', source: SOURCE, runId: 'kept' });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const other = runNodeScript(`
      import { TrainingRun } from 'dpf';
      const training = await TrainingRun.restoreFrom('kept', ${JSON.stringify(stage)});
      const model = await training.getModel('3');
      console.log(JSON.stringify({ kind: model.constructor.name, at2: model.predict(2) }));
    `);
    const { code, stdout, stderr } = await other.done;
    expect(code, stderr).toBe(0);
    expect(JSON.parse(stdout.trim())).toEqual({ kind: 'Line', at2: expect.closeTo(4 * 2 + 30, 9) });
    // A plain run is not a training run.
    await expect(TrainingRun.restoreFrom('nope', stage)).rejects.toThrow(/No run "nope"/);
  });

  it('saves bytes with bytesSerde, and models of a custom serde exported by the module', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    await writeFiles(dir, {
      'bytes.mjs': `export default async (data, context) => Buffer.from('model of ' + context.partitionId);`,
      'custom.mjs': `
        import fs from 'node:fs';
        export const csvSerde = {
          filename: 'weights.csv.txt',
          save: (model, path) => fs.writeFileSync(path, model.weights.join(',')),
          load: (path) => ({ weights: fs.readFileSync(path, 'utf8').split(',').map(Number) }),
        };
        export default async (data, context) => ({ weights: [Number(context.partitionId), 2.5] });
      `,
      'not-bytes.mjs': `export default async () => ({ weights: [1] });`,
    });
    const bytes = await new ManyModelTraining<Buffer>(join(dir, 'bytes.mjs'), { stage, serde: bytesSerde({ filename: 'model.onnx' }) }).run({ partitionBy: 'k', source: SOURCE, runId: 'bytes' });
    expect(await bytes.wait()).toBe(RunStatus.SUCCESS);
    expect((await bytes.getModel('2')).toString()).toBe('model of 2');

    const { csvSerde } = (await import(join(dir, 'custom.mjs'))) as { csvSerde: ModelSerde<{ weights: number[] }> };
    const custom = await new ManyModelTraining(join(dir, 'custom.mjs'), { stage, serde: csvSerde }).run({ partitionBy: 'k', source: SOURCE, runId: 'custom' });
    expect(await custom.wait()).toBe(RunStatus.SUCCESS);
    expect(await custom.getModel('3')).toEqual({ weights: [3, 2.5] });
    expect((await custom.run.partitionDetails('3')!.artifacts.get('weights.csv.txt')) as string).toBe('3,2.5');
    expect(await (await TrainingRun.restoreFrom('custom', stage)).getModel('1')).toEqual({ weights: [1, 2.5] });

    // A model bytesSerde cannot save fails its partition, naming what to return.
    const wrong = await new ManyModelTraining(join(dir, 'not-bytes.mjs'), { stage, serde: bytesSerde() }).run({ partitionBy: 'k', source: 'SELECT 1 AS k', runId: 'wrong' });
    expect(await wrong.wait()).toBe(RunStatus.FAILURE);
    expect(wrong.run.partitionDetails('1')!.error?.message).toMatch(/bytesSerde \("model\.bin"\) saves bytes, and the model is a Object; return a Uint8Array/);
  });

  it('refuses before any work a serde workers cannot get, and bad serde options', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    await writeFiles(dir, { 'plain.mjs': `export default async () => ({ w: 1 });` });
    const local: ModelSerde = { filename: 'm.bin', save: () => undefined, load: () => ({}) };
    const training = new ManyModelTraining(join(dir, 'plain.mjs'), { stage, serde: local });
    await expect(training.run({ partitionBy: 'k', source: 'SELECT 1 AS k', runId: 'r' })).rejects.toThrow(InvalidOptionError);
    await expect(training.run({ partitionBy: 'k', source: 'SELECT 1 AS k', runId: 'r' })).rejects.toThrow(/serde: workers .* cannot get this serde \("m\.bin"\).*export it from .*plain\.mjs/);
    const withLoader = new ManyModelTraining(join(dir, 'plain.mjs'), { stage, serde: jsonSerde({ loader: (json: unknown) => json }) });
    await expect(withLoader.run({ partitionBy: 'k', source: 'SELECT 1 AS k', runId: 'r' })).rejects.toThrow(/or leave out its loader/);
    const { existsSync } = await import('node:fs');
    expect(existsSync(join(stage, 'r'))).toBe(false);
    expect(() => jsonSerde({ filename: 'model.bin' })).toThrow(/jsonSerde\.filename: "model\.bin" must end in \.json/);
    expect(() => bytesSerde({ filename: 'model.json' })).toThrow(/bytesSerde\.filename: .* extension dpf reads as a format/);
    expect(() => jsonSerde({ filename: '../m.json' })).toThrow(InvalidOptionError);
    expect(() => new ManyModelTraining(join(dir, 'plain.mjs'), { stage, serde: { filename: 'x' } as unknown as ModelSerde })).toThrow(/serde: expected a ModelSerde/);
    expect(ModelSerdeError).toBeDefined();
  });
});

describe('ManyModelTraining with an mljs model on real data', () => {
  it('fits one SimpleLinearRegression per symbol of vega-datasets stocks.csv, equal to DuckDB regr_slope/regr_intercept', async () => {
    const dir = await tempDir();
    const stocks = join(ROOT, 'node_modules/vega-datasets/data/stocks.csv');
    const source = `SELECT symbol, date_diff('month', DATE '2000-01-01', date)::DOUBLE AS t, price
      FROM read_csv('${stocks}', header = true, dateformat = '%b %d %Y', columns = {'symbol': 'VARCHAR', 'date': 'DATE', 'price': 'DOUBLE'})`;
    await writeFiles(dir, {
      'train.ts': `
        import { jsonSerde, type DataConnector, type PartitionContext } from 'dpf';
        import { SimpleLinearRegression } from 'ml-regression-simple-linear';
        export const serde = jsonSerde({ loader: SimpleLinearRegression });
        export default async function train(data: DataConnector, context: PartitionContext<{ holdout: number }>) {
          const { t, price } = await data.toColumns();
          const n = t.length - context.args.holdout;
          return new SimpleLinearRegression(Array.from(t as Float64Array).slice(0, n), Array.from(price as Float64Array).slice(0, n));
        }
      `,
    });
    const run = await new ManyModelTraining<{ slope: number; intercept: number; predict(x: number): number }>(join(dir, 'train.ts'), { stage: join(dir, 'stage') }).run({
      partitionBy: 'symbol',
      orderBy: 't',
      source,
      runId: 'stocks',
      args: { holdout: 12 },
    });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const expected = await duckdb<{ symbol: string; slope: number; intercept: number }>(`
      SELECT symbol, regr_slope(price, t) AS slope, regr_intercept(price, t) AS intercept FROM (
        SELECT *, row_number() OVER (PARTITION BY symbol ORDER BY t DESC) AS back FROM (${source})) WHERE back > 12 GROUP BY symbol`);
    expect(expected).toHaveLength(5);
    for (const { symbol, slope, intercept } of expected) {
      const model = await run.getModel(symbol);
      expect(model.constructor.name).toBe('SimpleLinearRegression');
      expect(Math.abs(model.slope - slope)).toBeLessThan(1e-9);
      expect(Math.abs(model.intercept - intercept)).toBeLessThan(1e-9);
      expect(model.predict(130)).toBeCloseTo(slope * 130 + intercept, 6);
    }
  });
});
