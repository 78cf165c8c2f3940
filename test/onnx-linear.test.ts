import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import MultivariateLinearRegression from 'ml-regression-multivariate-linear';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { InvalidOptionError } from 'dpf';
import { afterEach, describe, expect, it } from 'vitest';
import { linearModelToOnnx } from '../examples/models/linear-onnx.js';

/**
 * The ONNX bytes of examples/models/linear-onnx.ts scored by a real ONNX runtime
 * (onnxruntime-node's CPU build, shipped inside its npm package).
 */

const sessions: InferenceSession[] = [];
afterEach(async () => {
  while (sessions.length > 0) await sessions.pop()!.release();
});

async function session(bytes: Uint8Array): Promise<InferenceSession> {
  // One thread each: the machine's cores are shared.
  const s = await InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  sessions.push(s);
  return s;
}

const linear = (rows: number[][], weights: number[], bias: number) => rows.map((row) => row.reduce((sum, x, i) => sum + x * weights[i]!, bias));

describe('linearModelToOnnx', () => {
  it('scores X·w + b on a float32 tensor, for any number of rows', async () => {
    const weights = [0.75, -2.5, 3.125, 0.01];
    const bias = -4.2;
    const s = await session(linearModelToOnnx(weights, bias));
    expect(s.inputNames).toEqual(['X']);
    expect(s.outputNames).toEqual(['Y']);
    for (const n of [1, 7, 1000]) {
      const rows = Array.from({ length: n }, (_, r) => weights.map((_, c) => ((r * 31 + c * 17) % 23) / 4 - 2.5));
      const { Y } = await s.run({ X: new Tensor('float32', Float32Array.from(rows.flat()), [n, weights.length]) });
      expect(Y!.type).toBe('float32');
      expect(Y!.dims).toEqual([n, 1]);
      const expected = linear(rows, weights, bias);
      const got = Array.from(Y!.data as Float32Array);
      // float32 coefficients and arithmetic: about seven significant digits.
      got.forEach((y, i) => expect(Math.abs(y - expected[i]!)).toBeLessThan(1e-5 * Math.max(1, Math.abs(expected[i]!))));
    }
  });

  it('keeps float64 coefficients: an mljs regression fitted on stocks.csv scores its holdout through ONNX as it does itself', async () => {
    // AAPL's monthly price from its three previous months' prices; the last 12 months held out.
    const stocks = join(dirname(fileURLToPath(import.meta.resolve('vega-datasets'))), '..', 'data', 'stocks.csv');
    const db = await DuckDBInstance.create(':memory:');
    const connection = await db.connect();
    const rows = (
      await connection.runAndReadAll(`
        WITH s AS (
          SELECT date, price FROM read_csv('${stocks}', header = true, dateformat = '%b %d %Y',
            columns = {'symbol': 'VARCHAR', 'date': 'DATE', 'price': 'DOUBLE'}) WHERE symbol = 'AAPL'
        ), lagged AS (
          SELECT date, price, lag(price, 1) OVER w AS lag1, lag(price, 2) OVER w AS lag2, lag(price, 3) OVER w AS lag3
          FROM s WINDOW w AS (ORDER BY date)
        )
        SELECT lag1, lag2, lag3, price, row_number() OVER (ORDER BY date DESC) <= 12 AS holdout
        FROM lagged WHERE lag3 IS NOT NULL ORDER BY date`)
    ).getRowObjectsJS() as { lag1: number; lag2: number; lag3: number; price: number; holdout: boolean }[];
    connection.closeSync();
    db.closeSync();
    const features = (r: (typeof rows)[number]) => [r.lag1, r.lag2, r.lag3];
    const train = rows.filter((r) => !r.holdout);
    const holdout = rows.filter((r) => r.holdout);
    expect([train.length, holdout.length]).toEqual([108, 12]);

    const model = new MultivariateLinearRegression(train.map(features), train.map((r) => [r.price]));
    // mljs keeps one row of weights per input column, then the intercept's.
    const weights = model.weights.slice(0, 3).map((row) => row[0]!);
    const bias = model.weights[3]![0]!;
    const s = await session(linearModelToOnnx(weights, bias, { elementType: 'float64' }));
    const { Y } = await s.run({ X: new Tensor('float64', Float64Array.from(holdout.flatMap(features)), [holdout.length, 3]) });
    expect(Y!.type).toBe('float64');
    const expected = model.predict(holdout.map(features)).map((p) => p[0]!);
    Array.from(Y!.data as Float64Array).forEach((y, i) => expect(Math.abs(y - expected[i]!)).toBeLessThan(1e-9));
  });

  it('names its input and output as asked', async () => {
    const s = await session(linearModelToOnnx([2], 1, { inputName: 'features', outputName: 'score' }));
    const { score } = await s.run({ features: new Tensor('float32', Float32Array.from([0, 1, 2.5]), [3, 1]) });
    expect(Array.from(score!.data as Float32Array)).toEqual([1, 3, 6]);
  });

  it('refuses a model it cannot write, saying which value is wrong', () => {
    expect(() => linearModelToOnnx([], 0)).toThrow(InvalidOptionError);
    expect(() => linearModelToOnnx([1, Number.NaN], 0)).toThrow(/weights\[1\]: is NaN/);
    expect(() => linearModelToOnnx([1], Number.POSITIVE_INFINITY)).toThrow(/bias: is Infinity/);
    expect(() => linearModelToOnnx([1], 0, { inputName: 'X', outputName: 'X' })).toThrow(InvalidOptionError);
    expect(() => linearModelToOnnx([1], 0, { elementType: 'int8' as 'float32' })).toThrow(/elementType/);
  });
});
