/**
 * `npx tsx bench/cold.ts W1|W2`: one run in a fresh process — imports, DuckDB start, worker
 * threads and JIT all cold — the time a one-off script sees (the bench's medians are warm runs).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DPF, RunStatus } from 'dpf';
import { FUNCTIONS, freshDir, seconds } from './harness.js';
import { w1Dataset } from './workloads/w1-mean-per-key.js';

const workload = process.argv[2] ?? 'W1';
const flights = join(dirname(fileURLToPath(import.meta.resolve('vega-datasets'))), '..', 'data', 'flights-3m.parquet');
const source = workload === 'W1' ? `SELECT * FROM '${await w1Dataset(1_000_000, 10_000)}'` : `SELECT * FROM '${flights}'`;
const stage = await freshDir(`stage-cold-${workload}`);
const started = performance.now();
const dpf = new DPF(join(FUNCTIONS, workload === 'W1' ? 'mean.mjs' : 'delay-regression.mjs'), { stage });
const run = await dpf.run({ partitionBy: workload === 'W1' ? 'key' : 'origin', source, runId: 'cold' });
if ((await run.wait()) !== RunStatus.SUCCESS) throw new Error('run failed');
await run.query('SELECT * FROM r', { r: 'result.json' });
console.log(`${workload} cold, in a fresh process: ${seconds((performance.now() - started) / 1000)}`);
