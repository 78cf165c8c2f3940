/**
 * `npx tsx bench/packing.ts`: W1's 10,000 small results written as packed artifacts (the default)
 * and as one file per partition (`packSmallArtifacts: false`), in one process, median of 3 runs
 * after a warm-up each — the measurement behind packing small artifacts (BENCHMARKS.md).
 */
import { join } from 'node:path';
import { DPF, RunStatus } from 'dpf';
import { FUNCTIONS, freshDir, median, seconds, time } from './harness.js';
import { w1Dataset } from './workloads/w1-mean-per-key.js';

const file = await w1Dataset(1_000_000, 10_000);
for (const packSmallArtifacts of [true, false]) {
  const stage = await freshDir(`stage-packing-${packSmallArtifacts}`);
  const dpf = new DPF(join(FUNCTIONS, 'mean.mjs'), { stage });
  const runs: number[] = [];
  const queries: number[] = [];
  await time(3, async (run) => {
    const started = performance.now();
    const handle = await dpf.run({ partitionBy: 'key', source: `SELECT * FROM '${file}'`, runId: `p-${run + 1}`, executionOptions: { packSmallArtifacts } });
    if ((await handle.wait()) !== RunStatus.SUCCESS) throw new Error('run failed');
    const ran = performance.now();
    await handle.query('SELECT partition_id, rows, mean FROM results', { results: 'result.json' });
    if (run >= 0) {
      runs.push((ran - started) / 1000);
      queries.push((performance.now() - ran) / 1000);
    }
  });
  console.log(`${packSmallArtifacts ? 'packed' : 'files '}: run ${seconds(median(runs))}, results query ${seconds(median(queries))}`);
}
