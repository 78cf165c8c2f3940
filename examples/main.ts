/**
 * `npm start`: profiles every tabular file that ships in the vega-datasets package (CSV, TSV,
 * Arrow and Parquet — 3 million flights among them), one partition per file, in parallel on this
 * machine, and converts the ones that are not Parquet yet to Parquet.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DPF, type RunStatus } from 'dpf';

// The package exports only its JavaScript entry (build/index.js); its data folder sits beside build/.
const datasets = join(dirname(fileURLToPath(import.meta.resolve('vega-datasets'))), '..', 'data');
const stage = resolve('stage');

const dpf = new DPF(new URL('./profile.ts', import.meta.url), { stage });
const started = Date.now();
const run = await dpf.runFromStage({
  stageLocation: datasets,
  runId: 'vega-profile',
  filePattern: '*.{csv,tsv,arrow,parquet}',
  onExistingArtifacts: 'overwrite',
  executionOptions: { maxRetries: 1, timeoutMs: 120_000 },
});
console.log(`Profiling ${run.numPartitions} files from ${datasets}`);
const status: RunStatus = await run.wait({ showProgress: true });
const seconds = ((Date.now() - started) / 1000).toFixed(1);

const progress = await run.getProgress();
const failed = [...progress.FAILED, ...progress.INTERNAL_ERROR];
console.log(`\nStatus: ${status} — ${progress.DONE.length} done, ${failed.length} failed, in ${seconds} s`);
for (const details of failed) console.log(`  ${details.partitionId}: ${details.error?.name}: ${details.error?.message}`);

const profiles = await Promise.all(progress.DONE.map((details) => details.artifacts.get<{ file: string; rows: number; columns: unknown[] }>('profile.json')));
profiles.sort((a, b) => b.rows - a.rows);
console.log('\nLargest files:');
for (const profile of profiles.slice(0, 5)) console.log(`  ${profile.file.padEnd(28)} ${String(profile.rows).padStart(9)} rows  ${profile.columns.length} columns`);

console.log(`\nArtifacts: ${join(stage, run.runId)}/<file>/{profile.json,data.parquet,partition.log}`);
console.log(`Inspect:   npm run dpf -- status ${run.runId} --stage ${stage}`);
if (status !== 'SUCCESS') process.exitCode = 1;
