import { hostname } from 'node:os';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { type Job, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { RunInProgressError, serializeError, type SerializedError } from '../../errors.js';
import type { DriveJobData, QueuedLoss, QueuedRun, TaskJobData, TaskJobReport } from '../../model/queue-job.js';
import type { ModuleReference } from '../../model/run-spec.js';
import { driveQueuedRun } from '../../run/queue-drive.js';
import { readPartitions } from '../../run/run-spec.js';
import { attachStage } from '../../stage/open-stage.js';
import { RunLayout } from '../../stage/run-layout.js';
import type { ExecutorHost, Task, WorkerLoss } from '../executor.js';
import { LocalPool } from '../local-pool.js';
import { localModule } from '../module-identity.js';
import type { TaskOutcome } from '../protocol.js';
import { QueueNames, redisConnection, type StopMessage } from './queue-connection.js';

/** Options of a queue worker (`dpf worker`). */
export interface QueueWorkerOptions {
  /** The queue's Redis URL. */
  url: string;
  /** The queue's name (the runs' `queue.name`). */
  name: string;
  /** Partitions this worker runs at once (its local pool's size). */
  concurrency: number;
  /** Overrides the runs' `isolation` for the partitions run here. */
  isolation: 'thread' | 'process' | undefined;
  /** The project folder (where package.json is): runs' modules are found in it, and must be the same copy. */
  project: string;
  /** Whether this worker also drives runs (takes their drive jobs). */
  drive: boolean;
  /** BullMQ's lock duration: a worker that has not renewed a job's lock for this long is taken for dead, and its job's partitions run elsewhere. */
  lockDurationMs: number;
  /** How often this worker looks for jobs whose worker died (BullMQ's stalled check). */
  stalledIntervalMs: number;
  /** Where the worker says what it does and what went wrong (the CLI prints it on stderr). */
  log: (line: string) => void;
}

/** Outcomes of a job wait at most this long before they are sent as the job's progress. */
const PROGRESS_MS = 100;
/**
 * A run this worker has had no job of for this long gives its pool back (its threads then serve the next run warm).
 * 1 s, not 5 s: with 5 s every other back-to-back run started new threads, 0.4–0.6 s (BENCHMARKS.md "Q1, W1Q, W2Q").
 */
const RUN_IDLE_MS = 1_000;
/** Drive jobs a worker takes at once (a driver mostly waits on its workers). */
const DRIVER_CONCURRENCY = 8;
/** A driver's job is moved back to the queue when its worker dies, however often that happens. */
const DRIVER_MAX_STALLED = 1_000;

/**
 * A `dpf worker`: takes batches of partitions from the queue and runs them in its own local pool
 * (threads, or child processes), one pool per run, reporting each attempt's outcome back through
 * the job; and — unless told not to — drives runs (takes their drive jobs, see queue-drive.ts).
 *
 * It runs only code it has: a run's module is looked up in this worker's project by its path
 * there and must have the content hash the run was submitted with; a copy that differs refuses
 * the run's batches (the driver offers them to other workers, and fails the run if every worker
 * refuses). A worker whose stage writes fail hands its batches back and stops taking jobs.
 * `close()` (SIGTERM) drains: no job is taken any more, running partitions finish, the rest of
 * its batches are handed back, and runs it drives are handed to another worker.
 */
export class QueueWorker {
  private readonly names: QueueNames;
  private readonly redis: Redis;
  private readonly subscriber: Redis;
  private readonly connections: Redis[] = [];
  private tasks: Worker | undefined;
  private drivers: Worker | undefined;
  private readonly runs = new Map<string, RunContext>();
  private closing = false;
  private stageFailure: string | undefined;
  readonly id = `${hostname()}:${process.pid}`;

  constructor(private readonly options: QueueWorkerOptions) {
    this.names = new QueueNames(options.name);
    const onError = (error: Error): void => options.log(`redis: ${error.message}`);
    this.redis = redisConnection(options.url, onError);
    this.subscriber = redisConnection(options.url, onError);
  }

  async start(): Promise<void> {
    const { options } = this;
    await this.subscriber.subscribe(this.names.control);
    this.subscriber.on('message', (_channel, text: string) => this.onControl(text));
    const settings = { lockDuration: options.lockDurationMs, stalledInterval: options.stalledIntervalMs };
    const connection = (): Redis => {
      const redis = redisConnection(options.url, (error) => options.log(`redis: ${error.message}`));
      this.connections.push(redis);
      return redis;
    };
    // A task job whose worker died goes to failed at once (maxStalledCount 0), never back to the
    // queue: its driver must hear of the loss, and run the partitions again as new attempts.
    this.tasks = new Worker(this.names.tasks, (job: Job<TaskJobData>) => this.runBatch(job), {
      connection: connection(),
      concurrency: options.concurrency,
      maxStalledCount: 0,
      ...settings,
    });
    this.tasks.on('error', (error) => options.log(`queue: ${error.message}`));
    if (options.drive) {
      this.drivers = new Worker(this.names.drivers, (job: Job<DriveJobData>) => this.drive(job), {
        connection: connection(),
        concurrency: DRIVER_CONCURRENCY,
        maxStalledCount: DRIVER_MAX_STALLED,
        ...settings,
      });
      this.drivers.on('error', (error) => options.log(`queue: ${error.message}`));
    }
    await Promise.all([this.tasks.waitUntilReady(), this.drivers?.waitUntilReady()]);
  }

  /** Drains: takes no more jobs, lets running partitions finish, hands the rest back; resolves when every job it held is back with the queue. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const run of this.runs.values()) run.drain();
    await Promise.allSettled([this.tasks?.close(), this.drivers?.close()]);
    await Promise.allSettled([...this.runs.values()].map((run) => run.close()));
    await this.subscriber.quit().catch(() => undefined);
    for (const redis of [this.redis, this.subscriber, ...this.connections]) redis.disconnect();
  }

  private onControl(text: string): void {
    let message: StopMessage;
    try {
      message = JSON.parse(text) as StopMessage;
    } catch {
      return;
    }
    for (const run of this.runs.values()) if (run.uid === message.uid) run.abort(message.reason);
  }

  /** A task job: the batch runs in the run's pool here, unless the run is stopping, superseded, or cannot run here. */
  private async runBatch(job: Job<TaskJobData>): Promise<TaskJobReport> {
    const { run, tasks } = job.data;
    const handBack = (reason: string): TaskJobReport => ({ outcomes: [], handedBack: { tasks, reason } });
    if (this.closing) return handBack(`worker ${this.id} is shutting down`);
    if (this.stageFailure !== undefined) return handBack(`worker ${this.id} cannot write to the stage (${this.stageFailure})`);
    const [epoch, stop] = await this.redis.hmget(this.names.run(run.uid), 'epoch', 'stop');
    if (stop !== null) return handBack(`the run is stopping (${stop})`);
    if (epoch !== null && Number(epoch) > run.epoch) return handBack('a newer driver of the run took over');
    const key = `${run.uid}.${run.epoch}`;
    let context = this.runs.get(key);
    if (context === undefined) {
      context = new RunContext(run, this.options, (error) => this.onStageFailed(error), () => this.runs.delete(key));
      this.runs.set(key, context);
    }
    return context.run(job);
  }

  /** A stage write failed here: this worker stops taking jobs (the queue gives them to others). */
  private onStageFailed(error: SerializedError): void {
    if (this.stageFailure !== undefined) return;
    this.stageFailure = error.message;
    this.options.log(`cannot write to the stage: ${error.message}; this worker takes no more jobs (fix the stage, then restart it)`);
    void this.tasks?.pause(true).catch(() => undefined);
    void this.drivers?.pause(true).catch(() => undefined);
  }

  private async drive(job: Job<DriveJobData>): Promise<string> {
    try {
      const outcome = await driveQueuedRun(job.data, { url: this.options.url, name: this.options.name });
      const said = outcome.kind === 'gone' ? `run "${job.data.runId}" is gone from the stage; nothing to drive` : `run "${job.data.runId}" ended ${outcome.status}`;
      this.options.log(said);
      return said;
    } catch (error) {
      // Another driver holds the run (it may still be alive): BullMQ tries again with backoff.
      if (error instanceof RunInProgressError) throw error;
      this.options.log(`driving run "${job.data.runId}" failed: ${(error as Error).message}`);
      return `failed: ${(error as Error).message}`;
    }
  }
}

/** One batch of a run in this worker: its tasks, and what the driver has not been sent yet. */
interface JobRun {
  job: Job<TaskJobData>;
  tasks: Task[];
  /** Tasks without an outcome yet. */
  open: Map<number, Task>;
  unsent: TaskOutcome[];
  loss: QueuedLoss | undefined;
  handedBack: Task[];
  refused: SerializedError | undefined;
  /** Progress reports go one at a time, in order; the return value only after them. */
  sending: Promise<void>;
  timer: NodeJS.Timeout | undefined;
  resolve: (report: TaskJobReport) => void;
}

/**
 * A run as this worker runs it: a local pool (the same executor as a run on one machine) whose
 * batches are the run's jobs this worker took, and whose reports go back to each job.
 */
class RunContext implements ExecutorHost {
  readonly uid: string;
  private pool: LocalPool | undefined;
  private module: Promise<ModuleReference> | undefined;
  private readonly waiting: JobRun[] = [];
  private readonly byDispatch = new Map<number, JobRun>();
  private idleTimer: NodeJS.Timeout | undefined;
  private stopped: string | undefined;

  constructor(
    private readonly spec: QueuedRun,
    private readonly options: QueueWorkerOptions,
    private readonly onStageFailed: (error: SerializedError) => void,
    private readonly onClosed: () => void,
  ) {
    this.uid = spec.uid;
  }

  async run(job: Job<TaskJobData>): Promise<TaskJobReport> {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const tasks: Task[] = [];
    const packed = job.data.tasks;
    for (let i = 0; i < packed.length; i += 3) tasks.push({ index: packed[i]!, attempt: packed[i + 1]!, dispatch: packed[i + 2]! });
    try {
      this.module ??= localModule(this.spec.module, this.options.project);
      await this.module;
    } catch (error) {
      this.module = undefined;
      this.options.log(`refused a batch of run "${this.spec.runId}": ${(error as Error).message}`);
      return { outcomes: [], refused: serializeError(error) };
    }
    return new Promise<TaskJobReport>((resolve) => {
      const entry: JobRun = { job, tasks, open: new Map(tasks.map((task) => [task.dispatch, task])), unsent: [], loss: undefined, handedBack: [], refused: undefined, sending: Promise.resolve(), timer: undefined, resolve };
      for (const task of tasks) this.byDispatch.set(task.dispatch, entry);
      if (this.stopped !== undefined) {
        entry.handedBack = tasks;
        return this.finish(entry);
      }
      this.waiting.push(entry);
      void this.ensurePool().then((pool) => pool.wake(), (error: unknown) => this.unusable(serializeError(error)));
    });
  }

  private async ensurePool(): Promise<LocalPool> {
    if (this.pool !== undefined) return this.pool;
    const module = await this.module!;
    const stage = await attachStage(this.spec.stage, this.spec.caseInsensitive);
    const layout = new RunLayout(this.spec.runId);
    const partitions = await readPartitions(stage, layout, this.spec.partitionList);
    if (this.pool !== undefined) return this.pool;
    const { options } = this.spec;
    this.pool = new LocalPool({
      stage,
      layout,
      partitions,
      runUid: this.spec.uid,
      epoch: this.spec.epoch,
      tokenPrefix: this.spec.tokenPrefix,
      partitionList: this.spec.partitionList,
      inputFolder: this.spec.inputFolder,
      scratch: join(tmpdir(), 'dpf-worker', `${this.spec.runId}-${this.spec.tokenPrefix}-${process.pid}`),
      module,
      session: this.spec.session,
      sessionHost: undefined,
      workers: this.options.concurrency,
      options: { ...options, isolation: this.options.isolation ?? options.isolation },
    });
    this.pool.start(this);
    return this.pool;
  }

  // ExecutorHost: the pool asks for batches and reports what became of them.

  get queued(): number {
    let tasks = 0;
    for (const entry of this.waiting) tasks += entry.tasks.length;
    return tasks;
  }

  take(): Task[] {
    const next = this.waiting.shift();
    return next === undefined ? [] : next.tasks;
  }

  started(): void {
    // The driver hears a job start from BullMQ ('active').
  }

  outcomes(outcomes: readonly TaskOutcome[]): void {
    for (const outcome of outcomes) {
      const entry = this.byDispatch.get(outcome.dispatch);
      if (entry === undefined || !entry.open.delete(outcome.dispatch)) continue;
      this.byDispatch.delete(outcome.dispatch);
      // A write to the stage failed here: the attempt is handed back for another worker, not failed.
      if (outcome.status === 'FAILED' && outcome.error?.name === 'StageError') {
        entry.handedBack.push(entry.tasks.find((task) => task.dispatch === outcome.dispatch)!);
        this.stageFailed(outcome.error);
      } else if (outcome.status === 'SKIPPED') {
        entry.handedBack.push(entry.tasks.find((task) => task.dispatch === outcome.dispatch)!);
      } else {
        entry.unsent.push(outcome);
      }
      if (entry.open.size === 0) this.finish(entry);
      else this.scheduleProgress(entry);
    }
  }

  lost(loss: WorkerLoss): void {
    const touched = new Set<JobRun>();
    const claim = (task: Task): JobRun | undefined => {
      const entry = this.byDispatch.get(task.dispatch);
      if (entry === undefined || !entry.open.delete(task.dispatch)) return undefined;
      this.byDispatch.delete(task.dispatch);
      touched.add(entry);
      return entry;
    };
    // The running task's job reports the loss; the tasks the slot never started go back from their jobs.
    const running = loss.running;
    const entry = running === undefined ? undefined : claim(running);
    if (entry !== undefined) {
      const { unstarted: _, running: __, ...rest } = loss;
      entry.loss = { ...rest, running: [running!.index, running!.attempt, running!.dispatch], unstarted: [] };
    }
    for (const task of loss.unstarted) claim(task)?.handedBack.push(task);
    for (const touchedEntry of touched) if (touchedEntry.open.size === 0) this.finish(touchedEntry);
  }

  unusable(error: SerializedError): void {
    this.options.log(`run "${this.spec.runId}" cannot run here: ${error.message}`);
    this.stopped = error.message;
    for (const entry of new Set(this.byDispatch.values())) {
      entry.refused = error;
      for (const task of entry.open.values()) this.byDispatch.delete(task.dispatch);
      entry.open.clear();
      this.finish(entry);
    }
    this.waiting.length = 0;
    void this.close();
  }

  note(message: string): void {
    this.options.log(`run "${this.spec.runId}": ${message}`);
  }

  stageFailed(error: SerializedError): void {
    this.onStageFailed(error);
  }

  /** The driver stops the run: running attempts see their signal, the rest is handed back. */
  abort(reason: 'cancel' | 'fail-fast'): void {
    this.stopped = reason;
    for (const entry of this.waiting.splice(0)) {
      entry.handedBack = [...entry.open.values()];
      for (const task of entry.open.values()) this.byDispatch.delete(task.dispatch);
      entry.open.clear();
      this.finish(entry);
    }
    this.pool?.abort(reason);
  }

  /** The worker is leaving: batches not started go back; running partitions finish. */
  drain(): void {
    this.stopped = 'draining';
    for (const entry of this.waiting.splice(0)) {
      entry.handedBack = [...entry.open.values()];
      for (const task of entry.open.values()) this.byDispatch.delete(task.dispatch);
      entry.open.clear();
      this.finish(entry);
    }
    this.pool?.drain();
  }

  async close(): Promise<void> {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.onClosed();
    const pool = this.pool;
    this.pool = undefined;
    await pool?.close();
  }

  private scheduleProgress(entry: JobRun): void {
    entry.timer ??= setTimeout(() => {
      entry.timer = undefined;
      this.send(entry, false);
    }, PROGRESS_MS);
  }

  /** Sends the job's outcomes so far as its progress (`final`: as its return value, after every progress report). */
  private send(entry: JobRun, final: boolean): void {
    const outcomes = entry.unsent;
    entry.unsent = [];
    const running = [...entry.open.values()][0]?.index;
    if (!final) {
      if (outcomes.length === 0) return;
      const report: TaskJobReport = { outcomes, ...(running !== undefined ? { running } : {}) };
      entry.sending = entry.sending.then(() => entry.job.updateProgress(report as unknown as object)).catch(() => undefined);
      return;
    }
    const report: TaskJobReport = {
      outcomes,
      ...(entry.loss !== undefined ? { loss: entry.loss } : {}),
      ...(entry.refused !== undefined ? { refused: entry.refused } : {}),
      ...(entry.handedBack.length > 0 ? { handedBack: { tasks: entry.handedBack.flatMap((task) => [task.index, task.attempt, task.dispatch]), reason: this.stopped ?? 'not run here' } } : {}),
    };
    void entry.sending.then(() => entry.resolve(report));
  }

  private finish(entry: JobRun): void {
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    entry.timer = undefined;
    this.send(entry, true);
    if (this.byDispatch.size === 0 && this.waiting.length === 0 && this.idleTimer === undefined) {
      this.idleTimer = setTimeout(() => void this.close(), RUN_IDLE_MS);
      this.idleTimer.unref();
    }
  }
}
