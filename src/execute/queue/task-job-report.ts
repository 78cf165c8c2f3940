import type { SerializedError } from '../../errors.js';
import type { HandedBack, QueuedLoss } from '../../model/queue-job.js';
import type { TaskOutcome } from '../protocol.js';

/**
 * What a task job reports: outcomes as its attempts end (in job progress, then the rest as its
 * return value), and what became of the tasks that have none.
 */
export interface TaskJobReport {
  /** Outcomes since the last report; the return value has all of the job's (the driver takes each once). */
  outcomes: TaskOutcome[];
  /** The index of the task running now, if one is (so the driver knows what a lost worker was on). */
  running?: number;
  /** Set on the return value: the worker slot that ran the tasks was lost. */
  loss?: QueuedLoss;
  /** Tasks the worker handed back unstarted since the last report (in progress too, so they run elsewhere while the job's running partition goes on). */
  handedBack?: HandedBack;
  /** Set on the return value: the module cannot run in this worker at all (it does not load, or this worker's copy differs). */
  refused?: SerializedError;
  /** The first progress of a job: this worker has the run's module and runs the batch. */
  accepted?: true;
}
