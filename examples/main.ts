/**
 * `npm start`: a delay model per origin airport over the 3 million flights of vega-datasets'
 * flights-3m.parquet — DataFrame mode, one partition per airport, in parallel on this machine —
 * then one SQL query over every airport's model, checked against DuckDB computing the same
 * figures directly from the Parquet file.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { DPF } from 'dpf';

// The package exports only its JavaScript entry (build/index.js); its data folder sits beside build/.
const flights = join(dirname(fileURLToPath(import.meta.resolve('vega-datasets'))), '..', 'data', 'flights-3m.parquet');
const stage = resolve('stage');

const dpf = new DPF(new URL('./delay-model.ts', import.meta.url), { stage });
const started = Date.now();
const run = await dpf.run({
  partitionBy: 'origin',
  source: `SELECT origin, delay, distance FROM '${flights}'`,
  runId: 'delay-by-origin',
  onExistingArtifacts: 'overwrite',
  executionOptions: { maxRetries: 1 },
});
console.log(`Planned ${run.numPartitions} airports from ${flights} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
const status = await run.wait({ showProgress: true });
const seconds = ((Date.now() - started) / 1000).toFixed(1);
const progress = await run.getProgress();
const failed = [...progress.FAILED, ...progress.INTERNAL_ERROR];
console.log(`\nStatus: ${status} — ${progress.DONE.length} airports done, ${failed.length} failed, in ${seconds} s`);
for (const details of failed) console.log(`  ${details.partitionId}: ${details.error?.name}: ${details.error?.message}`);

// One table over every partition's model.json.
const worst = await run.query(
  `SELECT partition_id AS origin, flights::INTEGER AS flights, round(meanDelay, 2) AS mean_delay, round(slope * 1000, 3) AS delay_per_1000_miles
   FROM models WHERE flights >= 10000 ORDER BY meanDelay DESC LIMIT 10`,
  { models: 'model.json' },
);
console.log('\nBusiest airports with the longest mean delay:');
console.table(worst.toArray().map((row) => row.toJSON()));

// Check every model against DuckDB computing the same figures from the source.
const models = await run.query('SELECT partition_id AS origin, flights, meanDelay, slope FROM models', { models: 'model.json' });
const duckdb = await (await DuckDBInstance.create(':memory:')).connect();
const direct = new Map(
  (await duckdb.runAndReadAll(`SELECT origin, count(*) AS n, avg(delay) AS mean, regr_slope(delay, distance) AS slope FROM '${flights}' GROUP BY origin`))
    .getRowObjectsJS()
    .map((row) => [row.origin as string, row]),
);
let worstDifference = 0;
for (const model of models.toArray().map((row) => row.toJSON())) {
  const expected = direct.get(model.origin as string)!;
  if (Number(expected.n) !== Number(model.flights)) throw new Error(`${model.origin}: ${model.flights} flights, DuckDB counts ${expected.n}`);
  for (const [mine, theirs] of [[model.meanDelay, expected.mean], [model.slope, expected.slope]] as Array<[number | null, number | null]>) {
    if (mine === null || theirs === null) continue;
    worstDifference = Math.max(worstDifference, Math.abs(mine - theirs) / Math.max(Math.abs(theirs), 1e-12));
  }
}
console.log(`\nAll ${models.numRows} models agree with DuckDB's avg and regr_slope (largest relative difference ${worstDifference.toExponential(1)}).`);
console.log(`Stage:     ${join(stage, run.runId)} (each airport's model.json and log, packed in _dpf/packs/; npm run dpf -- logs shows a log)`);
console.log(`Inspect:   npm run dpf -- status ${run.runId} --stage ${stage}`);
console.log(`           npm run dpf -- artifacts ${run.runId} ATL model.json --stage ${stage}`);
console.log(`Dashboard: npm run dpf -- dashboard --stage ${stage}    then open http://127.0.0.1:8610/#/runs/${run.runId}`);
if (status !== 'SUCCESS' || worstDifference > 1e-9) process.exitCode = 1;
