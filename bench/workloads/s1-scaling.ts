import { join } from 'node:path';
import { DPF, RunStatus } from 'dpf';
import { type BenchOptions, FUNCTIONS, freshDir, median, type Result, time } from '../harness.js';

/** S1: 64 partitions of ≈ 50 ms of CPU-bound work, with 2 workers against 1. */
export async function s1(options: BenchOptions): Promise<Result> {
  const partitions = options.smoke ? 8 : 64;
  const stage = await freshDir('stage-s1');
  const dpf = new DPF(join(FUNCTIONS, 'spin.mjs'), { stage });
  const runWith = (workers: number) =>
    time(options.runs, async (run) => {
      const handle = await dpf.run({
        partitionBy: 'k',
        source: `SELECT i AS k FROM range(${partitions}) t(i)`,
        runId: `s1-${workers}-${run + 1}`,
        onExistingArtifacts: 'overwrite',
        executionOptions: { availableCpus: workers },
      });
      if ((await handle.wait()) !== RunStatus.SUCCESS) throw new Error('S1 run failed');
    });
  const one = median(await runWith(1));
  const two = median(await runWith(2));
  const speedUp = one / two;
  return {
    id: 'S1',
    workload: `${partitions} partitions of ≈ 50 ms CPU each, 2 workers`,
    dpf: two,
    reference: one,
    referenceName: 'the same with 1 worker',
    figure: `${speedUp.toFixed(2)}× speed-up`,
    target: '≥ 1.85×',
    met: speedUp >= 1.85,
    notes: [],
  };
}
