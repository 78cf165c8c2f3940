import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Job, WaitingError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { ModuleLoadError, RunInProgressError, serializeError, type SerializedError } from '../../errors.js';
import type { DriveJobData, QueuedLoss, QueuedRun, TaskJobData } from '../../model/queue-job.js';
import type { TaskJobReport } from './task-job-report.js';
import type { ModuleReference } from '../../model/run-spec.js';
import { driveQueuedRun, giveUpDriving } from '../../run/queue-drive.js';
import { readPartitions } from '../../run/run-spec.js';
import { attachStage } from '../../stage/open-stage.js';
import type { Stage } from '../../stage/stage.js';
import { readLease } from '../../run/lease.js';
import { RunLayout } from '../../stage/run-layout.js';
import type { ExecutorHost, Task, WorkerLoss } from '../executor.js';
import { LocalPool } from '../local-pool.js';
import { localModule } from '../module-identity.js';
import type { TaskOutcome } from '../protocol.js';
import { QueueNames, runStopped, type StopMessage } from './queue-connection.js';
import { redisConnection } from './redis-connection.js';

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
/** A StageError of a read (local stage: "reading …", "listing …"; S3: the request's name). */
const READ_FAILURE = /^(reading|listing|GET|HEAD|List)/i;
/** Pool workers that die this many times in a row while loading the module mean it cannot run here. */
const MAX_DEATHS_BEFORE_READY = 3;
/** How often a worker looks at the keys of the runs whose attempts it runs, for stops it did not hear. */
const STOP_POLL_MS = 1_000;
/** A drive job that fails (for another reason than the run being driven elsewhere) is tried this many times, on any worker. */
const DRIVE_TRIES = 5;
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
  private readonly stages = new Map<string, Promise<Stage>>();
  private stopPoll: NodeJS.Timeout | undefined;
  private closing = false;
  /** Aborted when the worker leaves: the runs it drives are handed over. */
  private readonly leaving = new AbortController();
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
      this.drivers = new Worker(this.names.drivers, (job: Job<DriveJobData>, token?: string) => this.drive(job, token), {
        connection: connection(),
        concurrency: DRIVER_CONCURRENCY,
        maxStalledCount: DRIVER_MAX_STALLED,
        ...settings,
      });
      this.drivers.on('error', (error) => options.log(`queue: ${error.message}`));
    }
    await Promise.all([this.tasks.waitUntilReady(), this.drivers?.waitUntilReady()]);
    let polling = false;
    this.stopPoll = setInterval(() => {
      if (polling) return;
      polling = true;
      void this.pollStops().finally(() => (polling = false));
    }, STOP_POLL_MS);
  }

  /** Drains: takes no more jobs, lets running partitions finish, hands the rest back; resolves when every job it held is back with the queue. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.stopPoll !== undefined) clearInterval(this.stopPoll);
    // Runs this worker drives go to other workers; its partitions finish or go back to the queue.
    this.leaving.abort();
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
    for (const run of this.runs.values()) {
      if (run.uid === message.uid && run.epoch <= message.upTo) run.abort(message.reason);
    }
  }

  /** A task job: the batch runs in the run's pool here, unless the run is stopping, superseded, or cannot run here. */
  private async runBatch(job: Job<TaskJobData>): Promise<TaskJobReport> {
    const { run, tasks } = job.data;
    const handBack = (reason: string): TaskJobReport => ({ outcomes: [], handedBack: { tasks, reason } });
    if (this.closing) return handBack(`worker ${this.id} is shutting down`);
    if (this.stageFailure !== undefined) return handBack(`worker ${this.id} cannot write to the stage (${this.stageFailure})`);
    const stopped = await this.stopped(run);
    if (stopped !== undefined) return handBack(stopped);
    const key = `${run.uid}.${run.epoch}`;
    let context = this.runs.get(key);
    if (context === undefined) {
      context = new RunContext(run, this.options, (error) => this.onStageFailed(error), () => this.runs.delete(key));
      this.runs.set(key, context);
    }
    return context.run(job);
  }

  /** Why jobs of this run's driver may no longer run, if so (its key in Redis, then its lease on the stage). */
  private async stopped(run: QueuedRun): Promise<string | undefined> {
    const fields = await this.redis.hmget(this.names.run(run.uid), 'epoch', 'stop', 'stopEpoch').catch(() => undefined);
    if (fields === undefined) return "the queue's Redis did not answer";
    const stopped = runStopped(fields, run.epoch);
    if (stopped !== undefined) return stopped;
    // The stage has the last word: a run cancelled or overwritten by a process that cannot reach
    // Redis (a follower's cancel of a run between drivers) has a lease of a newer epoch.
    const stage = await this.stageOf(run).catch(() => undefined);
    const lease = stage === undefined ? undefined : await readLease(stage, new RunLayout(run.runId)).catch(() => undefined);
    if (lease !== undefined && lease.content.epoch > run.epoch) return 'a newer driver of the run took over';
    return undefined;
  }

  private stageOf(run: QueuedRun): Promise<Stage> {
    let stage = this.stages.get(run.stage);
    if (stage === undefined) {
      stage = attachStage(run.stage, run.caseInsensitive);
      stage.catch(() => this.stages.delete(run.stage));
      this.stages.set(run.stage, stage);
    }
    return stage;
  }

  /** Every second, runs with attempts here look at their key: a stop whose message was missed (a reconnect) still reaches them. */
  private async pollStops(): Promise<void> {
    for (const run of [...this.runs.values()]) {
      if (!run.busy) continue;
      const stopped = await this.stopped(run.spec);
      if (stopped !== undefined && stopped !== "the queue's Redis did not answer") run.abort('cancel');
    }
  }

  /** A stage write failed here: this worker stops taking jobs (the queue gives them to others). */
  private onStageFailed(error: SerializedError): void {
    if (this.stageFailure !== undefined) return;
    this.stageFailure = error.message;
    this.options.log(`cannot write to the stage: ${error.message}; this worker takes no more jobs (fix the stage, then restart it)`);
    void this.tasks?.pause(true).catch(() => undefined);
    void this.drivers?.pause(true).catch(() => undefined);
  }

  private async drive(job: Job<DriveJobData>, token: string | undefined): Promise<string> {
    try {
      const outcome = await driveQueuedRun(job.data, { url: this.options.url, name: this.options.name }, this.leaving.signal);
      if (outcome.kind === 'handed-over') {
        // Back to the queue without spending an attempt: the next worker takes the run on at once.
        this.options.log(`handed run "${job.data.runId}" back to the queue for another worker to drive`);
        await job.moveToWait(token);
        throw new WaitingError();
      }
      const said = outcome.kind === 'gone' ? `run "${job.data.runId}" is gone from the stage; nothing to drive` : `run "${job.data.runId}" ended ${outcome.status}`;
      this.options.log(said);
      return said;
    } catch (error) {
      // Another driver holds the run (it may still be alive): BullMQ tries again shortly.
      if (error instanceof RunInProgressError || error instanceof WaitingError) throw error;
      this.options.log(`driving run "${job.data.runId}" failed: ${(error as Error).message}`);
      // Another worker may fare better (its PGPASSWORD, its mount of the stage) — a few times;
      // then the run is given up where its followers see it: abandoned, saying why.
      // (Counted apart from BullMQ's attempts, which also count the tries while another driver held the run.)
      const failures = (job.data.failures ?? 0) + 1;
      await job.updateData({ ...job.data, failures }).catch(() => undefined);
      if (failures < DRIVE_TRIES) throw error;
      await giveUpDriving(job.data, error as Error).catch(() => undefined);
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
  /** Outcomes and hand-backs sent as progress: the return value repeats them, should a progress report have been lost. */
  sent: TaskOutcome[];
  sentBack: Task[];
  loss: QueuedLoss | undefined;
  /** Tasks handed back and not sent yet (they go with the next report, see send). */
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
  readonly epoch: number;
  private pool: LocalPool | undefined;
  private module: Promise<ModuleReference> | undefined;
  private readonly waiting: JobRun[] = [];
  private readonly byDispatch = new Map<number, JobRun>();
  private idleTimer: NodeJS.Timeout | undefined;
  private stopped: string | undefined;
  private deathsBeforeReady = 0;
  /** This worker's folder for the run's files in transit (uploads before they are stored, dying attempts' logs). */
  private readonly scratch: string;
  /** A stage write failed here: why hand-backs come (the driver's journal says so). */
  private stageFailure: string | undefined;

  constructor(
    readonly spec: QueuedRun,
    private readonly options: QueueWorkerOptions,
    private readonly onStageFailed: (error: SerializedError) => void,
    private readonly onClosed: () => void,
  ) {
    this.uid = spec.uid;
    this.epoch = spec.epoch;
    // Its own folder: a context of the run made again while an idle one is closing must not share it.
    this.scratch = join(tmpdir(), 'dpf-worker', `${spec.runId}-${spec.tokenPrefix}-${process.pid}-${randomBytes(4).toString('hex')}`);
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
      const entry: JobRun = { job, tasks, open: new Map(tasks.map((task) => [task.dispatch, task])), unsent: [], sent: [], sentBack: [], loss: undefined, handedBack: [], refused: undefined, sending: Promise.resolve(), timer: undefined, resolve };
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
      scratch: this.scratch,
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

  /**
   * Nothing waits in the pool's eyes: each job goes whole to a free slot (a slot holding a second
   * job while another slot is idle would run it late), and BullMQ holds the rest.
   */
  get queued(): number {
    return 0;
  }

  /** Whether the run has jobs here. */
  get busy(): boolean {
    return this.byDispatch.size > 0;
  }

  take(): Task[] {
    const next = this.waiting.shift();
    return next === undefined ? [] : next.tasks;
  }

  /**
   * The pool gave a job's batch to a worker that has loaded the module. The driver hears the job
   * start from BullMQ ('active'); it is told here that the run's module runs on this worker
   * (refusals elsewhere then mean only that some workers are out of date).
   */
  started(tasks: readonly Task[]): void {
    this.deathsBeforeReady = 0;
    const entry = tasks.length === 0 ? undefined : this.byDispatch.get(tasks[0]!.dispatch);
    if (entry === undefined) return;
    const accepted: TaskJobReport = { outcomes: [], accepted: true };
    entry.sending = entry.sending.then(() => entry.job.updateProgress(accepted as unknown as object)).catch(() => undefined);
  }

  outcomes(outcomes: readonly TaskOutcome[]): void {
    for (const outcome of outcomes) {
      const entry = this.byDispatch.get(outcome.dispatch);
      if (entry === undefined || !entry.open.delete(outcome.dispatch)) continue;
      this.byDispatch.delete(outcome.dispatch);
      // A write to the stage failed here: the attempt is handed back for another worker, not failed.
      // (A failed read is the stage's problem, not this worker's: it stops the run, as on one machine.)
      if (outcome.status === 'FAILED' && outcome.error?.name === 'StageError' && !READ_FAILURE.test(outcome.error.message)) {
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
    // A worker that dies while it loads the module, again and again, means the module cannot run
    // here: the run's batches are refused (as on one machine, after three in a row).
    if (loss.beforeReady && loss.cause !== 'killed' && ++this.deathsBeforeReady >= MAX_DEATHS_BEFORE_READY) {
      return this.unusable(serializeError(new ModuleLoadError(`workers die while loading the partition module here: ${loss.description}`)));
    }
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
    for (const touchedEntry of touched) {
      if (touchedEntry.open.size === 0) this.finish(touchedEntry);
      else this.scheduleProgress(touchedEntry);
    }
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
    this.stageFailure ??= error.message;
    this.onStageFailed(error);
  }

  /** The driver stops the run: running attempts see their signal, the rest is handed back. */
  abort(reason: 'cancel' | 'fail-fast'): void {
    this.handBackWaiting(reason);
    this.pool?.abort(reason);
  }

  /** The worker is leaving: batches not started go back; running partitions finish. */
  drain(): void {
    this.handBackWaiting('draining');
    this.pool?.drain();
  }

  /** From now on the run's jobs go back, saying why; those the pool has not taken yet go back now. */
  private handBackWaiting(why: string): void {
    this.stopped = why;
    for (const entry of this.waiting.splice(0)) {
      entry.handedBack = [...entry.open.values()];
      for (const task of entry.open.values()) this.byDispatch.delete(task.dispatch);
      entry.open.clear();
      this.finish(entry);
    }
  }

  async close(): Promise<void> {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.onClosed();
    const pool = this.pool;
    this.pool = undefined;
    await pool?.close();
    await rm(this.scratch, { recursive: true, force: true }).catch(() => undefined);
  }

  private scheduleProgress(entry: JobRun): void {
    entry.timer ??= setTimeout(() => {
      entry.timer = undefined;
      this.send(entry, false);
    }, PROGRESS_MS);
  }

  /**
   * Sends the job's outcomes and hand-backs so far as its progress (`final`: as its return value,
   * after every progress report). Hand-backs do not wait for the job's end: a partition of the
   * batch still running (for hours, maybe) must not keep the rest of the batch from other workers.
   */
  private send(entry: JobRun, final: boolean): void {
    const outcomes = entry.unsent;
    entry.unsent = [];
    const handedBack = entry.handedBack;
    entry.handedBack = [];
    const back = handedBack.length > 0 ? { handedBack: { tasks: handedBack.flatMap((task) => [task.index, task.attempt, task.dispatch]), reason: this.handBackReason() } } : {};
    const running = [...entry.open.values()][0]?.index;
    if (!final) {
      if (outcomes.length === 0 && handedBack.length === 0) return;
      const report: TaskJobReport = { outcomes, ...(running !== undefined ? { running } : {}), ...back };
      entry.sent.push(...outcomes);
      entry.sentBack.push(...handedBack);
      entry.sending = entry.sending.then(() => entry.job.updateProgress(report as unknown as object)).catch(() => undefined);
      return;
    }
    const all = [...entry.sentBack, ...handedBack];
    const report: TaskJobReport = {
      outcomes: [...entry.sent, ...outcomes],
      ...(entry.loss !== undefined ? { loss: entry.loss } : {}),
      ...(entry.refused !== undefined ? { refused: entry.refused } : {}),
      ...(all.length > 0 ? { handedBack: { tasks: all.flatMap((task) => [task.index, task.attempt, task.dispatch]), reason: this.handBackReason() } } : {}),
    };
    void entry.sending.then(() => entry.resolve(report));
  }

  /** Why this worker hands tasks back, for the run's journal. */
  private handBackReason(): string {
    if (this.stopped !== undefined) return this.stopped;
    if (this.stageFailure !== undefined) return `this worker cannot write to the stage and takes no more jobs (${this.stageFailure})`;
    return 'not run here';
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
