import { DriverHandedOverError, RunInProgressError, StageError } from '../errors.js';
import { RunLease } from './lease.js';
import type { DriveJobData } from '../model/queue-job.js';
import { RunLayout } from '../stage/run-layout.js';
import { openStage } from '../stage/open-stage.js';
import { PartitionStatus, type RunStatus } from '../status.js';
import { RunFollower } from './run-follower.js';
import { readRunSpec } from './run-spec.js';
import { startRun } from './start-run.js';

/** What became of a drive job. */
export type DriveOutcome =
  | { kind: 'ended'; status: RunStatus }
  /** `leaving` aborted: the driver stopped without ending the run, for another worker to take it on. */
  | { kind: 'handed-over' }
  /** The run is gone from the stage, or was overwritten by another run of the same id since: nothing to drive. */
  | { kind: 'gone' };

/**
 * Drives a queue run in this process (a `dpf worker` took its drive job): takes the run's lease —
 * as a resume does, so after a driver that died its committed attempts are adopted and the rest
 * run again — and runs the partitions not finished through the queue, with what the run was
 * submitted with (module, options, session database). Throws RunInProgressError while another
 * driver holds the run (the job is tried again later).
 */
export async function driveQueuedRun(data: DriveJobData, queue: { url: string; name: string }, leaving: AbortSignal): Promise<DriveOutcome> {
  const stage = await openStage(data.stage, { create: false });
  // A stage this worker does not reach is this worker's problem (another may), not the run's.
  if (stage === undefined) throw new StageError(data.stage, `this worker does not reach the run's stage ${data.stage}: mount it at the same path (or give this worker access to it)`);
  const layout = new RunLayout(data.runId);
  const spec = await readRunSpec(stage, layout);
  if (spec === undefined || spec.uid !== data.uid) return { kind: 'gone' };
  const follower = await RunFollower.load(stage, layout, spec);
  const state = follower.state;
  if (state.ended) return { kind: 'ended', status: state.status };
  const start = state.start;
  if (start?.module === undefined || start.options === undefined) {
    throw new RunInProgressError(`run "${spec.runId}" has no start to drive it from yet`);
  }
  // What the run still has to do: what its submitter asked for, less what is done (a driver that
  // died left some RUNNING: they run again, or are adopted from the session ledger).
  const partitions = follower.partitions.filter((_, index) => {
    const status = state.partitions[index]!.status;
    return status === PartitionStatus.PENDING || status === PartitionStatus.RUNNING;
  });
  const run = await startRun({
    stage,
    runId: spec.runId,
    input: spec.input,
    folderEncoding: spec.folderEncoding,
    module: start.module,
    options: start.options,
    // Recorded without a password: this machine's PGPASSWORD or ~/.pgpass supplies it.
    session: start.session ?? { kind: 'none' },
    partitions,
    onExistingArtifacts: 'resume',
    queue: { ...queue, role: 'drive' },
  });
  const handOver = (): void => void run.handOver();
  leaving.addEventListener('abort', handOver, { once: true });
  // The worker may have begun leaving while the run was being taken.
  if (leaving.aborted) handOver();
  try {
    return { kind: 'ended', status: await run.wait({ showProgress: false }) };
  } catch (error) {
    if (error instanceof DriverHandedOverError) return { kind: 'handed-over' };
    throw error;
  } finally {
    leaving.removeEventListener('abort', handOver);
  }
}

/**
 * No worker could drive the run: says so where its followers look, by taking its lease and
 * releasing it with the reason (they see the run abandoned, and why; a resume takes it up again).
 */
export async function giveUpDriving(data: DriveJobData, error: Error): Promise<void> {
  const stage = await openStage(data.stage, { create: false });
  if (stage === undefined) return;
  const lease = await RunLease.take(stage, new RunLayout(data.runId));
  if (!(lease instanceof RunLease)) return;
  await lease.release(`no dpf worker could drive the run: ${error.message}`);
}
