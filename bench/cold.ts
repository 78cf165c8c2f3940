/**
 * `npx tsx bench/cold.ts W1|W2`: one run in a fresh Node process — imports, DuckDB start, worker
 * threads and JIT all cold — the time a one-off script sees (the bench's medians are warm runs).
 * The input file is prepared here; the run happens in a child `node` that imports nothing but
 * dpf, timed from the child's start (`performance.now()` counts from it) to the run's results
 * queried, so Node's own start and importing dpf are counted.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FUNCTIONS, freshDir, ROOT, seconds } from './harness.js';
import { w1Dataset } from './workloads/w1-mean-per-key.js';

const workload = process.argv[2] ?? 'W1';
const flights = join(dirname(fileURLToPath(import.meta.resolve('vega-datasets'))), '..', 'data', 'flights-3m.parquet');
const source = workload === 'W1' ? `SELECT * FROM '${await w1Dataset(1_000_000, 10_000)}'` : `SELECT * FROM '${flights}'`;
const stage = await freshDir(`stage-cold-${workload}`);
const script = `
  const { DPF, RunStatus } = await import('dpf');
  const imported = performance.now();
  const dpf = new DPF(${JSON.stringify(join(FUNCTIONS, workload === 'W1' ? 'mean.mjs' : 'delay-regression.mjs'))}, { stage: ${JSON.stringify(stage)} });
  const run = await dpf.run({ partitionBy: ${JSON.stringify(workload === 'W1' ? 'key' : 'origin')}, source: ${JSON.stringify(source)}, runId: 'cold' });
  if ((await run.wait()) !== RunStatus.SUCCESS) throw new Error('run failed');
  await run.query('SELECT * FROM r', { r: 'result.json' });
  console.log(JSON.stringify({ imported, ended: performance.now() }));
`;
const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
if (child.status !== 0) throw new Error(`the cold run failed:\n${child.stderr}`);
const { imported, ended } = JSON.parse(child.stdout.trim().split('\n').pop()!) as { imported: number; ended: number };
console.log(`${workload} cold, in a fresh process: ${seconds(ended / 1000)} from Node's start to the queried results (Node's start and importing dpf ${seconds(imported / 1000)})`);
