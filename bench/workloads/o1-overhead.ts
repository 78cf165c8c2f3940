import { join } from 'node:path';
import { DPF, RunStatus } from 'dpf';
import { Piscina } from 'piscina';
import { type BenchOptions, FUNCTIONS, freshDir, median, type Result, time } from '../harness.js';

/**
 * O1: 100,000 partitions whose function does nothing — what the framework itself costs per
 * partition (planning, scheduling, dispatch, status records). Reference: piscina with the same
 * thread count running 100,000 no-op tasks.
 */
export async function o1(options: BenchOptions): Promise<Result> {
  const partitions = options.smoke ? 2_000 : 100_000;
  const threads = 2;
  const stage = await freshDir('stage-o1');
  const dpf = new DPF(join(FUNCTIONS, 'noop.mjs'), { stage });
  const dpfTimes = await time(options.runs, async (run) => {
    const handle = await dpf.run({
      partitionBy: 'k',
      source: `SELECT i AS k FROM range(${partitions}) t(i)`,
      runId: `o1-${run + 1}`,
      onExistingArtifacts: 'overwrite',
      executionOptions: { availableCpus: threads },
    });
    if ((await handle.wait()) !== RunStatus.SUCCESS) throw new Error('O1 run failed');
  });
  const pool = new Piscina({ filename: join(FUNCTIONS, 'noop.mjs'), minThreads: threads, maxThreads: threads });
  const referenceTimes = await time(options.runs, async () => {
    await Promise.all(Array.from({ length: partitions }, () => pool.run(null)));
  });
  await pool.destroy();
  const perPartition = (median(dpfTimes) / partitions) * 1e6;
  const perTask = (median(referenceTimes) / partitions) * 1e6;
  return {
    id: 'O1',
    workload: `${partitions.toLocaleString('en')} partitions that do nothing, ${threads} workers`,
    dpf: median(dpfTimes),
    reference: median(referenceTimes),
    referenceName: `piscina, ${threads} threads, no-op tasks`,
    figure: `${perPartition.toFixed(1)} µs/partition (piscina ${perTask.toFixed(1)} µs/task)`,
    target: '≤ 25 µs/partition',
    met: perPartition <= 25,
    notes: [],
  };
}
