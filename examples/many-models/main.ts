/**
 * Many models over vega-datasets' stocks.csv: one model per symbol trained on all but the last
 * twelve months, inspected, then scored on the held-out months with ManyModelInference; one
 * symbol retrained in a new run; and the same as ONNX models scored through onnxruntime-node.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { ManyModelInference, ManyModelTraining } from 'dpf';
import type { TrendEnsemble } from './ensemble.js';

const csv = join(dirname(fileURLToPath(import.meta.resolve('vega-datasets'))), '..', 'data', 'stocks.csv');
// t: months since January 2000; the last twelve (t ≥ 111: April 2009 to March 2010) are held out.
const stocks = `SELECT symbol, date_diff('month', DATE '2000-01-01', date)::DOUBLE AS t, month(date)::DOUBLE AS month, price
  FROM read_csv('${csv}', header = true, dateformat = '%b %d %Y', columns = {'symbol': 'VARCHAR', 'date': 'DATE', 'price': 'DOUBLE'})`;
const history = `SELECT * FROM (${stocks}) WHERE t < 111`;
const holdout = `SELECT * FROM (${stocks}) WHERE t >= 111`;
const stage = resolve('stage');
const fresh = { onExistingArtifacts: 'overwrite' } as const;

// 1. Train: one TrendEnsemble per symbol; args reach every partition as context.args.
const training = new ManyModelTraining<TrendEnsemble>(new URL('./train.ts', import.meta.url), { stage });
const trained = await training.run({ partitionBy: 'symbol', source: history, runId: 'stocks-train', args: { trees: 10 }, ...fresh });
console.log('training:', await trained.wait());

// 2. Inspect: a live model, and SQL over every symbol's metrics — checked against DuckDB's regression.
const aapl = await trained.getModel('AAPL');
console.log('AAPL, March 2010 (t = 122):', aapl.predict([[122, 3]])[0]!.toFixed(2));
const metrics = await trained.run.query('SELECT partition_id AS symbol, rows, slope, intercept FROM metrics ORDER BY symbol', { metrics: 'metrics.json' });
const duckdb = await (await DuckDBInstance.create(':memory:')).connect();
const direct = (await duckdb.runAndReadAll(`SELECT symbol, regr_slope(price, t) AS slope, regr_intercept(price, t) AS intercept FROM (${history}) GROUP BY symbol`)).getRowObjectsJS();
const worst = Math.max(...metrics.toArray().map((row) => {
  const theirs = direct.find((other) => other.symbol === row.symbol)!;
  return Math.max(Math.abs(row.slope - Number(theirs.slope)), Math.abs(row.intercept - Number(theirs.intercept)));
}));
console.log(`trend lines of ${metrics.numRows} symbols equal DuckDB's regr_slope/regr_intercept: ${worst < 1e-9} (largest difference ${worst.toExponential(1)})`);

// 3. Score the held-out months, each symbol with its own model, also into a table of the session database.
const inference = new ManyModelInference(new URL('./score.ts', import.meta.url), { stage, trainingRunId: 'stocks-train', predictionsTable: 'stock_predictions' });
const scored = await inference.run({ partitionBy: 'symbol', source: holdout, runId: 'stocks-score', ...fresh });
console.log('scoring:', await scored.wait());
const rmse = 'SELECT partition_id AS symbol, count(*)::INTEGER AS months, round(sqrt(avg((predicted - price) ^ 2)), 2) AS rmse, any_value(model_run_id) AS model_run_id FROM predictions GROUP BY ALL ORDER BY symbol';
console.table((await scored.predictions(rmse)).toArray().map((row) => row.toJSON()));

// 4. Retrain a drifted symbol in a new run; scoring with both runs takes each symbol's newest model.
const retrained = await training.run({ partitionBy: 'symbol', source: history, runId: 'stocks-retrain', partitionIds: ['GOOG'], args: { trees: 30 }, ...fresh });
await retrained.wait();
const both = new ManyModelInference(new URL('./score.ts', import.meta.url), { stage, trainingRunId: ['stocks-train', 'stocks-retrain'] });
const rescored = await both.run({ partitionBy: 'symbol', source: holdout, runId: 'stocks-rescore', ...fresh });
await rescored.wait();
const sources = await rescored.predictions('SELECT partition_id AS symbol, any_value(model_run_id) AS model_run_id FROM predictions GROUP BY ALL ORDER BY symbol');
console.log('models by symbol:', Object.fromEntries(sources.toArray().map((row) => [row.symbol, row.model_run_id])));

// 5. The same as ONNX bytes, scored through onnxruntime-node.
const onnx = new URL('./onnx.ts', import.meta.url);
const onnxTrained = await new ManyModelTraining({ module: onnx, exportName: 'train' }, { stage }).run({ partitionBy: 'symbol', source: history, runId: 'stocks-onnx', ...fresh });
await onnxTrained.wait();
const onnxScored = await new ManyModelInference({ module: onnx, exportName: 'score' }, { stage, trainingRunId: 'stocks-onnx' }).run({ partitionBy: 'symbol', source: holdout, runId: 'stocks-onnx-score', ...fresh });
console.log('ONNX scoring:', await onnxScored.wait(), `(${(await onnxScored.predictions()).numRows} predictions)`);
console.log(`Predictions are also in the table stock_predictions of ${join(stage, 'dpf.duckdb')}`);
if ([trained, scored, retrained, rescored, onnxTrained, onnxScored].some((run) => run.status !== 'SUCCESS') || worst >= 1e-9) process.exitCode = 1;
