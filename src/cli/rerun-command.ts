import { rerunFailed } from '../rerun-failed.js';
import { PartitionStatus } from '../status.js';
import { formatCount } from './display-text.js';
import { followRun, RunInterrupts } from './follow-run.js';

/**
 * `dpf rerun RUN --failed`: reruns the run's partitions that are not DONE ({@link rerunFailed}),
 * shows their progress and the run's summary, and returns the exit code (0 only for SUCCESS).
 */
export async function rerunCommand(runId: string, stage: string, stageFlag: string): Promise<number> {
  const interrupts = new RunInterrupts('dpf rerun');
  try {
    const run = await rerunFailed(runId, stage);
    const counts = run.statusCounts();
    const rerun = counts.get(PartitionStatus.PENDING)! + counts.get(PartitionStatus.RUNNING)!;
    process.stderr.write(`rerunning ${formatCount(rerun)} of the ${formatCount(run.numPartitions)} partition(s) of run ${runId}; ${formatCount(counts.get(PartitionStatus.DONE)!)} DONE kept\n`);
    return await followRun(run, interrupts, stageFlag);
  } finally {
    interrupts.dispose();
  }
}
