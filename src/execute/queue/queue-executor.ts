import { type Job, Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { serializeError, type SerializedError } from '../../errors.js';
import type { HandedBack, QueuedLoss, QueuedRun, TaskJobData } from '../../model/queue-job.js';
import type { TaskJobReport } from './task-job-report.js';
import { type Executor, type ExecutorHost, packTasks, type Task } from '../executor.js';
import { MARK_RUN, QueueNames, STOP_RUN, type StopMessage } from './queue-connection.js';
import { redisConnection } from './redis-connection.js';

/**
 * Batch slots the schedule sizes batches for: the driver cannot know how many workers will take
 * the run's jobs, so it cuts the work as for this many (large early batches, small late ones, at
 * most 512 tasks each) and adds them all at once; BullMQ hands them to whichever worker is free.
 * 8, not 16: a job costs a worker 2–4 ms (round trips, its pack); 16 cut W1 into 795 jobs, half of ≤ 4 tasks, 8 into 442 (BENCHMARKS.md "Q1, W1Q, W2Q").
 */
const QUEUE_SLOTS = 8;
/** Batches go to Redis in bulk requests of at most this many jobs. */
const ADD_BULK = 500;
/** How often the driver checks that Redis still has the run (a restart without persistence loses every job) and asks after jobs it heard nothing of. */
const RECONCILE_MS = 1_000;
/** A job the driver heard nothing of for this long is looked up in Redis (its events may have been missed). */
const SILENT_JOB_MS = 5_000;
/** A refused batch waits this long before it is offered again (another worker may take it). */
const REFUSED_DELAY_MS = 500;
/** A run none of whose tasks any worker ran, refused this many times, cannot run on this queue's workers. */
const MAX_REFUSALS = 5;
/** Priorities: hand-backs and retries first, then the batches in the schedule's order (largest first). BullMQ's lowest priority is 2^21. */
const FIRST = 1;
const LOWEST = 2 ** 21;

/** What the driver knows of one job: its tasks, which have not been reported, and what runs now. */
interface JobState {
  id: string;
  /** The number the run's journal knows the job's worker by. */
  worker: number;
  tasks: Task[];
  /** Tasks not reported yet, by dispatch. */
  pending: Map<number, Task>;
  started: boolean;
  /** The index of the task its worker said it was running. */
  running: number | undefined;
  heardAt: number;
  refusals: number;
}

/**
 * The queue executor's driver side: the run's batches become BullMQ jobs in Redis, taken by
 * `dpf worker` processes on any machine (queue-worker.ts); their reports come back as BullMQ
 * events (progress, then the return value). A job whose worker dies stalls — BullMQ's stalled
 * check moves it to failed once its lock expires — and the policy hears a lost worker. A Redis
 * that restarted without its data is noticed (the run's key is gone) and every unreported task
 * is treated as lost: the policy queues it again, so the run carries on from its own state.
 */
export class QueueExecutor implements Executor {
  private readonly names: QueueNames;
  private readonly queue: Queue;
  private readonly events: QueueEvents;
  private readonly redis: Redis;
  /** The connections of the queue and its events (BullMQ does not close connections it was given). */
  private readonly connections: Redis[];
  private host!: ExecutorHost;
  private readonly jobs = new Map<string, JobState>();
  private jobSeq = 0;
  private ready: Promise<void> | undefined;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private reconciling = false;
  private stopping: 'cancel' | 'fail-fast' | undefined;
  private closed = false;
  /** Whether any worker ran a task of the run (then refusals only mean some workers are out of date). */
  private ranSomewhere = false;
  private refusalsNoted = new Set<string>();
  private adding: Promise<void> = Promise.resolve();

  constructor(
    private readonly run: QueuedRun,
    queue: { url: string; name: string },
  ) {
    this.names = new QueueNames(queue.name);
    // Redis away is noticed by what it stops doing, not by its errors: jobs added while it is away
    // and runs it lost are taken up by the reconciliation once it is back.
    const onError = (): void => undefined;
    this.redis = redisConnection(queue.url, onError);
    this.connections = [redisConnection(queue.url, onError), redisConnection(queue.url, onError)];
    this.queue = new Queue(this.names.tasks, { connection: this.connections[0]! });
    this.queue.on('error', onError);
    this.events = new QueueEvents(this.names.tasks, { connection: this.connections[1]! });
    this.events.on('error', onError);
  }

  start(host: ExecutorHost): void {
    this.host = host;
    this.events.on('active', ({ jobId }) => this.onActive(jobId));
    this.events.on('progress', ({ jobId, data }) => this.onReport(jobId, data as TaskJobReport, false));
    this.events.on('completed', ({ jobId, returnvalue }) => this.onReport(jobId, returnvalue as unknown as TaskJobReport, true));
    this.events.on('failed', ({ jobId, failedReason }) => this.onFailed(jobId, failedReason));
    this.ready = (async () => {
      await this.events.waitUntilReady();
      await this.markRun();
      this.fill();
      this.reconcileTimer = setInterval(() => void this.reconcile(), RECONCILE_MS);
    })();
    this.ready.catch((error: unknown) => this.host.unusable(serializeError(error)));
  }

  wake(): void {
    if (this.ready === undefined) return;
    void this.ready.then(() => this.fill(), () => undefined);
  }

  abort(reason: 'cancel' | 'fail-fast'): void {
    if (this.stopping !== undefined) return;
    this.stopping = reason;
    void (async () => {
      await this.ready?.catch(() => undefined);
      // Workers read the stop before each batch; those running the run's attempts hear it at once.
      await this.redis.eval(STOP_RUN, 1, this.names.run(this.run.uid), reason, this.run.epoch, 0).catch(() => undefined);
      const message: StopMessage = { uid: this.run.uid, reason, upTo: this.run.epoch };
      await this.redis.publish(this.names.control, JSON.stringify(message)).catch(() => undefined);
      // Jobs no worker took are taken back (their partitions are CANCELLED); one a worker took
      // meanwhile is handed back by it, having seen the stop.
      for (const job of [...this.jobs.values()]) {
        if (job.started) continue;
        const removed = await this.queue.remove(job.id).catch(() => 0);
        if (removed === 1 && this.jobs.delete(job.id)) this.lose(job, undefined, 'stopped', 'the run is stopping');
      }
    })();
  }

  async close(detached = false): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.reconcileTimer !== undefined) clearInterval(this.reconcileTimer);
    await this.ready?.catch(() => undefined);
    await this.adding.catch(() => undefined);
    // The run's key stays a day, saying it ended: a late job of it is skipped, not run. (Handed
    // over, it goes on: the next driver marks the key with its own epoch.)
    const key = this.names.run(this.run.uid);
    if (!detached) await this.redis.eval(STOP_RUN, 1, key, this.stopping ?? 'ended', this.run.epoch, 86_400).catch(() => undefined);
    await Promise.allSettled([this.events.close(), this.queue.close()]);
    for (const connection of [this.redis, ...this.connections]) connection.disconnect();
  }

  /**
   * Marks the run in Redis: workers skip jobs of an older epoch, and the key's absence later means
   * Redis lost its data. Resolves whether the key had to be made.
   */
  private async markRun(): Promise<boolean> {
    const made = (await this.redis.eval(MARK_RUN, 1, this.names.run(this.run.uid), this.run.epoch)) === 1;
    // Attempts an earlier driver of the run left running are run again by this one: they stop.
    const superseded: StopMessage = { uid: this.run.uid, reason: 'cancel', upTo: this.run.epoch - 1 };
    await this.redis.publish(this.names.control, JSON.stringify(superseded));
    return made;
  }

  /** Takes every ready batch from the policy and adds it as a job. */
  private fill(): void {
    if (this.closed || this.stopping !== undefined) return;
    const added: JobState[] = [];
    for (let tasks = this.host.take(QUEUE_SLOTS); tasks.length > 0; tasks = this.host.take(QUEUE_SLOTS)) {
      added.push(this.track(tasks, 0));
    }
    if (added.length > 0) this.add(added, this.jobSeq === added.length ? 'schedule' : 'first');
  }

  private track(tasks: Task[], refusals: number): JobState {
    const seq = this.jobSeq++;
    const job: JobState = {
      id: `${this.run.uid}.${this.run.epoch}.${seq}`,
      worker: seq,
      tasks,
      pending: new Map(tasks.map((task) => [task.dispatch, task])),
      started: false,
      running: undefined,
      heardAt: Date.now(),
      refusals,
    };
    this.jobs.set(job.id, job);
    return job;
  }

  /** Adds jobs in bulk, in order; `schedule`: the run's first batches, by the schedule's order; `first`: ahead of them. */
  private add(jobs: JobState[], order: 'schedule' | 'first', delay = 0): void {
    this.adding = this.adding.then(async () => {
      for (let i = 0; i < jobs.length; i += ADD_BULK) {
        const chunk = jobs.slice(i, i + ADD_BULK).filter((job) => this.jobs.has(job.id));
        await this.queue
          .addBulk(
            chunk.map((job) => ({
              name: 'tasks',
              data: { run: this.run, tasks: Array.from(packTasks(job.tasks)) } satisfies TaskJobData,
              opts: {
                jobId: job.id,
                priority: order === 'first' ? FIRST : Math.min(LOWEST, FIRST + 1 + job.worker),
                ...(delay > 0 ? { delay } : {}),
                attempts: 1,
                removeOnComplete: { age: 3_600 },
                removeOnFail: { age: 3_600 },
              },
            })),
          )
          // Redis is away: the reconciliation adds them again once it is back.
          .catch(() => undefined);
      }
    });
  }

  private onActive(jobId: string): void {
    const job = this.jobs.get(jobId);
    if (job === undefined || job.started) return;
    job.started = true;
    job.heardAt = Date.now();
    this.host.started(job.tasks, job.heardAt, job.worker);
  }

  private onReport(jobId: string, report: TaskJobReport | undefined, final: boolean): void {
    const job = this.jobs.get(jobId);
    if (job === undefined || report === undefined || report === null) return;
    job.heardAt = Date.now();
    if (!job.started) this.onActive(jobId);
    if (report.accepted === true) this.ranSomewhere = true;
    const outcomes = report.outcomes.filter((outcome) => job.pending.delete(outcome.dispatch));
    if (outcomes.length > 0) {
      this.ranSomewhere = true;
      this.host.outcomes(outcomes);
    }
    job.running = report.running;
    // Handed back in progress too: a worker that drains (or whose stage writes fail) gives back
    // its batch's unstarted tasks at once, while the batch's running partition goes on.
    if (report.handedBack !== undefined) this.handedBack(job, report.handedBack);
    if (!final) return;
    this.jobs.delete(jobId);
    if (report.refused !== undefined) return this.refused(job, report.refused);
    if (report.loss !== undefined) this.lostSlot(job, report.loss);
    // Whatever is still unreported (left by a lost slot) runs again.
    if (job.pending.size > 0) this.lose(job, undefined, 'stopped', 'handed back');
  }

  /** Tasks the job's worker handed back unstarted: they run again elsewhere (no attempt was made). */
  private handedBack(job: JobState, back: HandedBack): void {
    const tasks = takePending(job, back.tasks);
    if (tasks.length === 0) return;
    this.host.note(`a worker handed back ${tasks.length} partition(s): ${back.reason}`);
    this.host.lost({ running: undefined, startedAt: job.heardAt, at: Date.now(), unstarted: tasks, cause: 'stopped', description: `handed back: ${back.reason}`, beforeReady: false, logs: [] });
  }

  /** A worker's pool slot died with tasks of the job (its worker process lives, and said so). */
  private lostSlot(job: JobState, loss: QueuedLoss): void {
    const running = loss.running === undefined ? undefined : job.pending.get(loss.running[2]);
    if (running !== undefined) job.pending.delete(running.dispatch);
    const unstarted = takePending(job, loss.unstarted);
    this.host.lost({ running, startedAt: loss.startedAt, at: loss.at, unstarted, cause: loss.cause, description: loss.description, beforeReady: loss.beforeReady, logs: loss.logs });
  }

  /** A worker whose copy of the module differs (or cannot load it) refused the batch. */
  private refused(job: JobState, error: SerializedError): void {
    if (!this.refusalsNoted.has(error.message)) {
      this.refusalsNoted.add(error.message);
      this.host.note(`a worker refused the run's partitions: ${error.message}`);
    }
    if (!this.ranSomewhere && job.refusals + 1 >= MAX_REFUSALS) {
      // The workers' own error (a ModuleMismatchError, a ModuleLoadError), saying it was every worker.
      this.host.unusable({ ...error, message: `every worker that took the run's partitions refused them (${job.refusals + 1} times); the last said: ${error.message}` });
      return;
    }
    if (this.stopping !== undefined) return this.lose(job, undefined, 'stopped', 'refused');
    // The same tasks (no attempt was made) wait a moment, so a worker that can run them takes them;
    // only those still unreported (any the worker reported or handed back first are the policy's again).
    const tasks = job.tasks.filter((task) => job.pending.has(task.dispatch));
    if (tasks.length === 0) return;
    const again = this.track(tasks, job.refusals + 1);
    this.add([again], 'first', REFUSED_DELAY_MS);
  }

  /** The job's worker stopped renewing its lock: BullMQ's stalled check failed the job (its process died, or its machine went away). */
  private onFailed(jobId: string, reason: string): void {
    const job = this.jobs.get(jobId);
    if (job === undefined) return;
    this.jobs.delete(jobId);
    this.lose(job, job.started ? 'running' : undefined, 'killed', `its worker stopped answering (BullMQ: ${reason}): the worker process was killed, or its machine was lost`);
  }

  /**
   * Reports the job's unreported tasks as lost: the one its worker was running (as last
   * reported, else the first unreported) when `running` is asked, the rest unstarted.
   */
  private lose(job: JobState, running: 'running' | undefined, cause: 'killed' | 'stopped', description: string): void {
    const pending = [...job.pending.values()];
    job.pending.clear();
    if (pending.length === 0) return;
    const position = running === undefined ? -1 : Math.max(0, pending.findIndex((task) => task.index === job.running));
    this.host.lost({
      running: position < 0 ? undefined : pending[position],
      startedAt: job.heardAt,
      at: Date.now(),
      unstarted: pending.filter((_, i) => i !== position),
      cause,
      description,
      beforeReady: false,
      logs: [],
    });
  }

  /**
   * Redis restarted without its data (the run's key is gone): every job is gone with it, so its
   * tasks are lost (a running one counts as an attempt) and the policy queues them again. A job
   * the driver heard nothing of for a while is looked up, in case its events were missed.
   */
  private async reconcile(): Promise<void> {
    if (this.closed || this.reconciling) return;
    // One at a time: ticks queued while Redis was away must not each recover from its loss.
    this.reconciling = true;
    try {
      if ((await this.redis.exists(this.names.run(this.run.uid))) === 0) {
        // Made here, so the loss is recovered from once (a driver of another epoch may race).
        if (!(await this.markRun())) return;
        const jobs = [...this.jobs.values()];
        this.jobs.clear();
        this.host.note(`the queue's Redis lost the run's jobs (restarted without persistence?): ${jobs.length} batch(es) are queued again`);
        for (const job of jobs) this.lose(job, job.started ? 'running' : undefined, 'killed', 'the queue lost its jobs (Redis restarted without its data) while it ran');
        this.fill();
        return;
      }
      const now = Date.now();
      for (const job of [...this.jobs.values()]) {
        if (now - job.heardAt < SILENT_JOB_MS) continue;
        job.heardAt = now;
        await this.lookUp(job);
      }
    } catch {
      // Redis is away: the next tick asks again.
    } finally {
      this.reconciling = false;
    }
  }

  /** Asks Redis what became of a job whose events did not arrive. */
  private async lookUp(job: JobState): Promise<void> {
    const found: Job | undefined = await this.queue.getJob(job.id);
    if (!this.jobs.has(job.id)) return;
    if (found === undefined) {
      this.jobs.delete(job.id);
      this.lose(job, job.started ? 'running' : undefined, 'killed', 'its job disappeared from the queue');
      return;
    }
    if (found.finishedOn === undefined) return;
    if (found.failedReason !== undefined && found.failedReason !== '') this.onFailed(job.id, found.failedReason);
    else this.onReport(job.id, found.returnvalue as TaskJobReport, true);
  }
}

/** The job's unreported tasks among packed (index, attempt, dispatch) triples, taken out of its pending ones. */
function takePending(job: JobState, packed: readonly number[]): Task[] {
  const tasks: Task[] = [];
  for (let i = 0; i < packed.length; i += 3) {
    const task = job.pending.get(packed[i + 2]!);
    if (task === undefined) continue;
    job.pending.delete(task.dispatch);
    tasks.push(task);
  }
  return tasks;
}
