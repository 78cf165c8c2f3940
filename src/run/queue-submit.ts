import { Queue } from 'bullmq';
import { SUBMITTED_NOTE } from '../model/lease.js';
import type { DriveJobData } from '../model/queue-job.js';
import { QueueNames } from '../execute/queue/queue-connection.js';
import { redisConnection } from '../execute/queue/redis-connection.js';
import { DPFRun } from './dpf-run.js';
import type { DriverPlan } from './run-driver.js';

/**
 * A drive job is tried again every 2 s while another driver holds the run (a driver alive on
 * another worker, or this process's head node): when that driver dies, a worker takes the run
 * over within seconds of its lease going stale. Tries spent that way are not limited; a drive
 * that fails otherwise is tried DRIVE_TRIES times (queue-worker.ts).
 */
const DRIVE_ATTEMPTS = Number.MAX_SAFE_INTEGER;
const DRIVE_BACKOFF_MS = 2_000;


/**
 * Submits a run to a queue: its spec, partition list and start are on the stage already; this
 * writes its planned input in full (workers on other machines read their rows from the stage),
 * releases the run's lease, and adds the run's drive job. A `dpf worker` that takes it drives the
 * run (queue-worker.ts); the returned handle follows the run through the stage, so the
 * submitting process may exit at any time after this resolves.
 */
export async function submitToQueue(plan: DriverPlan, queue: { url: string; name: string }): Promise<DPFRun> {
  const { stage, layout, spec, lease, input, sessions } = plan;
  try {
    await sessions.close().catch(() => undefined);
    if (input !== undefined) {
      const stop = new AbortController();
      lease.whenLost((error) => stop.abort(error));
      await input.write(stage, layout.inputFolder(plan.state.start!.input!), () => undefined, stop.signal);
    }
    // The drive job first: should it fail, the run is released saying so (not left waiting for a
    // driver nobody will send). A worker that takes it before the release tries again in 2 s.
    await addDriveJob(queue, { stage: stage.location, runId: spec.runId, uid: spec.uid }, lease.epoch);
    await lease.release(SUBMITTED_NOTE);
  } catch (error) {
    await lease.release(`submitting the run failed: ${(error as Error).message}`).catch(() => undefined);
    throw error;
  } finally {
    await input?.dispose();
  }
  return DPFRun.follow(stage, spec);
}

/** Adds a run's drive job: retried with backoff while the run cannot be taken; moved back to the queue when its worker dies (see queue-worker.ts). */
export async function addDriveJob(queue: { url: string; name: string }, data: DriveJobData, epoch: number): Promise<void> {
  const connection = redisConnection(queue.url);
  const drivers = new Queue(new QueueNames(queue.name).drivers, { connection });
  drivers.on('error', () => undefined);
  try {
    await drivers.add('drive', data, {
      jobId: `run.${data.uid}.${epoch}`,
      attempts: DRIVE_ATTEMPTS,
      backoff: { type: 'fixed', delay: DRIVE_BACKOFF_MS },
      removeOnComplete: { age: 86_400 },
      removeOnFail: { age: 86_400 },
    });
  } finally {
    await drivers.close();
    connection.disconnect();
  }
}
