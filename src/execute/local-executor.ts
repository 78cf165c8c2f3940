import { appendFile, mkdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PartitionTimeoutError, type SerializedError, serializeError, WorkerCrashError } from '../errors.js';
import { gpuSliceFor, localWorkerCount, retryDelayMs, type ResolvedExecutionOptions } from '../execution-options.js';
import type { PlannedPartition } from '../model/partition.js';
import type { ArtifactRef, CommittedAttempt, LogRef } from '../model/refs.js';
import type { ModuleReference } from '../model/run-spec.js';
import { attemptToken } from '../model/journal.js';
import { PARTITION_LOG, type RunLayout } from '../stage/run-layout.js';
import { refsPresent } from '../stage/stored-ref.js';
import type { Stage } from '../stage/stage.js';
import { PartitionStatus } from '../status.js';
import type { DuckDBSessionHost } from './duckdb-session-host.js';
import type { SessionTarget, TaskOutcome, WorkerMessage } from './protocol.js';
import type { SessionLedger } from './session-ledger.js';
import { Schedule } from './schedule.js';
import type { WorkerExit, WorkerHandle, WorkerSpawnOptions } from './worker-handle.js';
import { workerPool } from './worker-pool.js';

/** What an executor runs: the partitions of one run, and which of them to run now. */
export interface ExecutionPlan {
  stage: Stage;
  layout: RunLayout;
  module: ModuleReference;
  options: ResolvedExecutionOptions;
  partitions: readonly PlannedPartition[];
  /** Indices of the partitions to run. */
  todo: readonly number[];
  /** Attempts each partition had before this run (resumed runs keep counting). */
  previousAttempts: (index: number) => number;
  /** The run's uid, and the epoch and lease token of its driver (attempt tokens start with it). */
  runUid: string;
  epoch: number;
  tokenPrefix: string;
  /** The partition list the workers read. */
  partitionList: number;
  /** DataFrame mode: the folder of the run's planned rows. */
  inputFolder: string | undefined;
  /** A local folder for the run's files in transit; the executor's workers put theirs under it. */
  scratch: string;
  /** Where `context.withSession` connects (with credentials: sent to workers in memory only). */
  session: SessionTarget;
  /** Serves DuckDB sessions when `session` is a DuckDB file. */
  sessionHost: DuckDBSessionHost | undefined;
  /** The session database's ledger: an attempt whose worker died may have committed its rows. */
  ledger: SessionLedger | undefined;
  /** Rows of the run's input written so far, when it is still being written; undefined when complete. */
  writtenRows: number | undefined;
  /**
   * Deletes what the attempts of a partition that is not DONE stored that no record refers to
   * (an attempt whose worker died may have stored files before it could report), keeping `keep`
   * too (logs of this run's failed attempts, reported but maybe not in the journal yet).
   */
  clearUnrecorded(index: number, keep: ReadonlySet<string>): Promise<void>;
}

/** A final or intermediate status of an attempt, as the executor reports it. */
export interface AttemptReport {
  status: PartitionStatus;
  attempt: number;
  /** The attempt's dispatch number (its token is the driver's lease token and it); absent for a partition that ends without an attempt. */
  dispatch?: number;
  /** An adopted attempt's whole token (another driver's). */
  token?: string;
  startedAt: number;
  finishedAt: number;
  numRows?: number;
  error?: SerializedError;
  artifacts?: ArtifactRef[];
  logs?: LogRef[];
  adopted?: true;
}

/** Where the executor reports partition transitions (the run's journal). */
export interface ExecutionReporter {
  /** A batch of partitions went to worker `worker`, which runs them in turn after what it was sent before. */
  running(indices: number[], attempts: number[], dispatches: number[], at: number, worker: number): void;
  /** The attempt failed and the partition will be tried again: it is PENDING. */
  retrying(index: number, report: AttemptReport): void;
  finished(index: number, report: AttemptReport): void;
  /**
   * Writing to the stage failed in a worker (a full disk, the store refusing): the run cannot make
   * progress, so it stops rather than failing partition after partition; resume it once fixed.
   */
  stageFailed(error: SerializedError): void;
}

/** How long stopped workers get to end their attempts before they are terminated. */
const STOP_GRACE_MS = 3_000;
/** A worker blocked this long past `timeoutMs` is terminated. */
const TIMEOUT_GRACE_MS = 1_000;
/** Batches a worker holds at once: the next is there when one ends, so it never waits for the driver. */
const BATCHES_IN_FLIGHT = 2;
/** Workers that die this many times in a row before they are ready mean the module cannot run in a worker. */
const MAX_DEATHS_BEFORE_READY = 3;

/** A task sent to a worker: which partition, which attempt, its dispatch number. */
interface InFlightTask {
  index: number;
  attempt: number;
  dispatch: number;
}

interface Slot {
  index: number;
  handle: WorkerHandle;
  ready: boolean;
  /** Tasks sent and not reported yet, in the order the worker runs them; the first is running. */
  inFlight: InFlightTask[];
  /** Batches sent whose end the worker has not reported. */
  batches: number;
  lastActivity: number;
  timedOut: boolean;
  /** Nothing of this run can still be running in the worker: it may serve the next run. */
  reusable: boolean;
  /** Threads: the task the worker is running, as it notes it (see WorkerSetup.running). */
  running: { buffer: SharedArrayBuffer; index: Int32Array; startedAt: Float64Array } | undefined;
}

/**
 * The local executor: a pool of workers on this machine (threads, or child processes with
 * `isolation: 'process'`). It hands out batches of task descriptors, retries failed attempts
 * with backoff, replaces workers that die, enforces timeouts on workers that block, and stops on
 * cancel or fail-fast.
 */
export class LocalExecutor {
  private readonly schedule: Schedule;
  private readonly slots: Slot[] = [];
  private readonly attempts = new Map<number, number>();
  private readonly attemptsNow = new Map<number, number>();
  private readonly retryTimers = new Map<number, NodeJS.Timeout>();
  /** The logs of each partition's failed attempts in this run: never cleared away (see clearUnrecorded). */
  private readonly failedLogs = new Map<number, Set<string>>();
  private remaining: number;
  private stopping: 'cancel' | 'fail-fast' | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private stopTimer: NodeJS.Timeout | undefined;
  private resolveDone!: () => void;
  private readonly done = new Promise<void>((resolve) => (this.resolveDone = resolve));
  private finished = false;
  private deathsBeforeReady = 0;
  private dispatches = 0;
  /** The driver's environment as the run starts: its workers' (a replacement started later too). */
  private readonly environment = driverEnvironment();

  constructor(
    private readonly plan: ExecutionPlan,
    private readonly reporter: ExecutionReporter,
  ) {
    this.schedule = new Schedule(plan.partitions, plan.todo, plan.writtenRows);
    this.remaining = plan.todo.length;
  }

  /** Runs every planned partition to a final status. */
  run(): Promise<void> {
    if (this.remaining === 0) {
      this.finish();
      return this.done;
    }
    const workers = Math.min(localWorkerCount(this.plan.options), this.plan.todo.length);
    for (let i = 0; i < workers; i++) this.slots.push(this.spawn(i));
    if (this.plan.options.timeoutMs !== undefined) {
      const interval = Math.max(50, Math.min(1000, this.plan.options.timeoutMs / 4));
      this.watchdog = setInterval(() => this.checkTimeouts(), interval);
    }
    return this.done;
  }

  /** More of the run's input is written: partitions whose rows all are can run. */
  release(writtenRows: number): void {
    if (this.finished) return;
    this.schedule.release(writtenRows);
    for (const slot of this.slots) this.dispatch(slot);
  }

  /** The run's input could not be written: the partitions still waiting for rows fail. */
  failHeld(error: SerializedError): void {
    if (this.finished) return;
    const now = Date.now();
    for (const index of this.schedule.drainHeld()) {
      this.finishPartition(index, { status: PartitionStatus.INTERNAL_ERROR, attempt: this.attempts.get(index) ?? this.plan.previousAttempts(index), startedAt: now, finishedAt: now, error });
    }
  }

  /** Stops the run: queued partitions are CANCELLED, running ones aborted through their signal. */
  stop(reason: 'cancel' | 'fail-fast'): void {
    if (this.stopping !== undefined || this.finished) return;
    this.stopping = reason;
    const now = Date.now();
    for (const [index, timer] of this.retryTimers) {
      clearTimeout(timer);
      this.finishPartition(index, { status: PartitionStatus.CANCELLED, attempt: this.attempts.get(index) ?? 0, startedAt: now, finishedAt: now });
    }
    this.retryTimers.clear();
    for (const index of this.schedule.drain()) {
      this.finishPartition(index, { status: PartitionStatus.CANCELLED, attempt: this.attempts.get(index) ?? this.plan.previousAttempts(index), startedAt: now, finishedAt: now });
    }
    for (const slot of this.slots) if (slot.inFlight.length > 0) slot.handle.send({ type: 'abort', reason });
    this.stopTimer = setTimeout(() => {
      for (const slot of this.slots) if (slot.inFlight.length > 0) void slot.handle.terminate();
    }, STOP_GRACE_MS);
    this.checkDone();
  }

  private spawn(index: number): Slot {
    const handle = workerPool.acquire(spawnOptions(this.plan.options, index, this.environment));
    const buffer = handle.options.isolation === 'thread' ? new SharedArrayBuffer(16) : undefined;
    const running = buffer === undefined ? undefined : { buffer, index: new Int32Array(buffer, 0, 1), startedAt: new Float64Array(buffer, 8, 1) };
    running?.index.fill(-1);
    const slot: Slot = { index, ready: false, inFlight: [], batches: 0, lastActivity: Date.now(), timedOut: false, reusable: true, handle, running };
    handle.attach(
      (message) => this.onMessage(slot, message),
      (exit) => this.onExit(slot, exit),
    );
    handle.send({
      type: 'setup',
      stageLocation: this.plan.stage.location,
      caseInsensitive: this.plan.stage.caseInsensitive,
      runId: this.plan.layout.runId,
      runUid: this.plan.runUid,
      epoch: this.plan.epoch,
      tokenPrefix: this.plan.tokenPrefix,
      partitionList: this.plan.partitionList,
      inputFolder: this.plan.inputFolder,
      scratch: this.plan.scratch,
      module: this.plan.module,
      timeoutMs: this.plan.options.timeoutMs,
      duckdb: handle.options.duckdb,
      session: this.plan.session,
      packArtifacts: this.plan.options.packSmallArtifacts,
      maxLogBytes: this.plan.options.maxLogBytes,
      running: buffer,
    });
    return slot;
  }

  private onMessage(slot: Slot, message: WorkerMessage): void {
    if (this.finished) return;
    slot.lastActivity = Date.now();
    switch (message.type) {
      case 'ready':
        slot.ready = true;
        this.deathsBeforeReady = 0;
        this.dispatch(slot);
        break;
      case 'setup-failed':
        this.failEverything(message.error);
        break;
      case 'session': {
        const host = this.plan.sessionHost;
        if (host === undefined) {
          slot.handle.send({ type: 'session-result', id: message.id, error: { name: 'DPFError', message: 'this run has no DuckDB session database' } });
          break;
        }
        void host.handle(message.request).then((result) => slot.handle.send({ type: 'session-result', id: message.id, ...result }));
        break;
      }
      case 'results':
        for (const outcome of message.outcomes) {
          // Outcomes come in the order the tasks were sent; one of a worker already counted dead
          // (its exit seen before its last message) was handled then, and is not recorded twice.
          const task = slot.inFlight[0];
          if (task === undefined || task.index !== outcome.index || task.attempt !== outcome.attempt) continue;
          slot.inFlight.shift();
          if (outcome.orphaned === true) slot.reusable = false;
          this.onOutcome(outcome, task.dispatch);
        }
        if (message.batchDone) {
          slot.batches--;
          this.dispatch(slot);
        }
        break;
    }
  }

  private dispatch(slot: Slot): void {
    while (this.stopping === undefined && !this.finished && slot.ready && slot.batches < this.batchesInFlight()) {
      const indices = this.schedule.takeBatch(this.slots.length * BATCHES_IN_FLIGHT);
      if (indices.length === 0) break;
      this.send(slot, indices);
    }
    this.checkDone();
  }

  /**
   * A second batch waits in a worker only while plenty of work is left; near the end, or with
   * few partitions, each batch goes to whichever worker is free, so none sits idle.
   */
  private batchesInFlight(): number {
    return this.schedule.size > this.slots.length * 8 ? BATCHES_IN_FLIGHT : 1;
  }

  private send(slot: Slot, indices: number[]): void {
    const now = Date.now();
    const attempts: number[] = new Array(indices.length);
    const dispatches: number[] = new Array(indices.length);
    const message = new Int32Array(indices.length * 3);
    for (let i = 0; i < indices.length; i++) {
      const index = indices[i]!;
      const attempt = (this.attempts.get(index) ?? this.plan.previousAttempts(index)) + 1;
      const dispatch = this.dispatches++;
      this.attempts.set(index, attempt);
      this.attemptsNow.set(index, (this.attemptsNow.get(index) ?? 0) + 1);
      attempts[i] = attempt;
      dispatches[i] = dispatch;
      message[i * 3] = index;
      message[i * 3 + 1] = attempt;
      message[i * 3 + 2] = dispatch;
      slot.inFlight.push({ index, attempt, dispatch });
    }
    this.reporter.running(indices, attempts, dispatches, now, slot.index);
    if (slot.inFlight.length === indices.length) slot.lastActivity = now;
    slot.batches++;
    slot.handle.send({ type: 'run', tasks: message });
  }

  private onOutcome(outcome: TaskOutcome, dispatch: number): void {
    if (outcome.status === 'DONE') this.schedule.observe(outcome.index, outcome.finishedAt - outcome.startedAt);
    const report: AttemptReport = {
      status: PartitionStatus.DONE,
      attempt: outcome.attempt,
      ...(outcome.token !== undefined ? { token: outcome.token } : { dispatch }),
      startedAt: outcome.startedAt,
      finishedAt: outcome.finishedAt,
      ...(outcome.numRows !== undefined ? { numRows: outcome.numRows } : {}),
      ...(outcome.error !== undefined ? { error: outcome.error } : {}),
      ...(outcome.artifacts !== undefined ? { artifacts: outcome.artifacts } : {}),
      ...(outcome.logs !== undefined && outcome.logs.length > 0 ? { logs: outcome.logs } : {}),
      ...(outcome.adopted === true ? { adopted: true as const } : {}),
    };
    switch (outcome.status) {
      case 'DONE':
        return this.finishPartition(outcome.index, report);
      case 'CANCELLED':
        return this.finishPartition(outcome.index, { ...report, status: PartitionStatus.CANCELLED });
      case 'SKIPPED':
        return this.returnUnstarted(outcome.index);
      case 'FAILED':
        if (outcome.error?.name === 'StageError') {
          this.finishPartition(outcome.index, { ...report, status: PartitionStatus.FAILED });
          return this.reporter.stageFailed(outcome.error);
        }
        return this.failAttempt(outcome.index, { ...report, status: PartitionStatus.FAILED });
    }
  }

  /** A task that never started: cancelled when stopping, otherwise queued again under the same attempt number. */
  private returnUnstarted(index: number): void {
    const attempt = this.attempts.get(index)!;
    if (this.stopping !== undefined) {
      const now = Date.now();
      this.finishPartition(index, { status: PartitionStatus.CANCELLED, attempt: attempt - 1, startedAt: now, finishedAt: now });
      return;
    }
    this.attempts.set(index, attempt - 1);
    this.attemptsNow.set(index, this.attemptsNow.get(index)! - 1);
    this.schedule.putFirst(index);
  }

  /** An attempt failed (threw, timed out, or its worker died): retry it, or fail the partition for good. */
  private failAttempt(index: number, report: AttemptReport): void {
    if (report.logs !== undefined && report.logs.length > 0) {
      const logs = this.failedLogs.get(index) ?? new Set<string>();
      for (const ref of report.logs) logs.add(ref.key);
      this.failedLogs.set(index, logs);
    }
    const retryable = report.error?.retryable !== false;
    const used = this.attemptsNow.get(index) ?? 1;
    if (this.stopping === undefined && retryable && used <= this.plan.options.maxRetries) {
      this.reporter.retrying(index, { ...report, status: PartitionStatus.PENDING });
      const delay = retryDelayMs(this.plan.options, used);
      this.retryTimers.set(
        index,
        setTimeout(() => {
          this.retryTimers.delete(index);
          this.schedule.putFirst(index);
          for (const slot of this.slots) this.dispatch(slot);
        }, delay),
      );
      return;
    }
    this.finishPartition(index, report);
    if (this.plan.options.failFast) this.stop('fail-fast');
  }

  private finishPartition(index: number, report: AttemptReport): void {
    this.reporter.finished(index, report);
    this.remaining--;
    this.checkDone();
  }

  private onExit(slot: Slot, exit: WorkerExit): void {
    if (this.finished) return;
    // The task that was running: as the thread noted it, else the first not reported. Tasks before
    // it finished but their outcomes died with the worker: they run again.
    const noted = slot.running === undefined ? undefined : Atomics.load(slot.running.index, 0);
    const position = noted === undefined ? 0 : slot.inFlight.findIndex((task) => task.index === noted);
    const running = position < 0 ? undefined : slot.inFlight[position];
    const unstarted = slot.inFlight.filter((_, i) => i !== position);
    slot.inFlight = [];
    slot.batches = 0;
    for (const task of unstarted) this.returnUnstarted(task.index);
    if (running !== undefined) {
      void this.plan.sessionHost?.rollback([this.tokenOf(running)]);
      const now = Date.now();
      const startedAt = slot.lastActivity;
      const partition = this.plan.partitions[running.index]!;
      const error = this.stopping !== undefined
        ? undefined
        : slot.timedOut
          ? new PartitionTimeoutError(`partition "${partition.id}" ran longer than timeoutMs (${this.plan.options.timeoutMs} ms) and blocked its worker, which was terminated`)
          : new WorkerCrashError(`the worker running partition "${partition.id}" died: ${describeExit(exit)}`);
      // The partition stays in flight (remaining) until its log is written and its fate recorded.
      void this.endDeadAttempt(running, error, startedAt, now, slot.timedOut);
    }
    // A worker killed from outside (SIGKILL, SIGTERM) says nothing about the module; one that
    // exits or crashes by itself while loading it does.
    const killedFromOutside = exit.signal === 'SIGKILL' || exit.signal === 'SIGTERM' || exit.signal === 'SIGINT';
    if (!slot.ready && !killedFromOutside && ++this.deathsBeforeReady >= MAX_DEATHS_BEFORE_READY) {
      return this.failEverything(serializeError(new WorkerCrashError(`workers die while loading the partition module: ${describeExit(exit)}`)));
    }
    if (this.stopping === undefined && this.remaining > 0) {
      const replacement = this.spawn(slot.index);
      this.slots[this.slots.indexOf(slot)] = replacement;
    }
    this.checkDone();
  }

  /**
   * Ends the attempt a dead worker was running: its log (what the worker wrote to its spool as it
   * died, and why it died) is stored, and — when its session may have committed before the
   * worker died — the session database's ledger says whether the partition is in fact DONE.
   */
  private async endDeadAttempt(task: InFlightTask, error: Error | undefined, startedAt: number, now: number, timedOut: boolean): Promise<void> {
    // Asked also when the run is stopping: a worker killed by a cancel may have committed first.
    const ledger = await this.committedAttempt(task.index);
    if (this.finished) return;
    const committed = ledger.committed;
    if (committed !== undefined && (await refsPresent(this.plan.stage, [...committed.artifacts, ...committed.logs]).catch(() => false))) {
      const logs = await this.storeDeathLog(task, error, now).catch(() => []);
      if (this.finished) return;
      this.finishPartition(task.index, {
        status: PartitionStatus.DONE,
        attempt: task.attempt,
        token: committed.token,
        startedAt: committed.startedAt,
        finishedAt: committed.finishedAt,
        artifacts: committed.artifacts,
        logs: [...committed.logs, ...logs],
        adopted: true,
        ...(committed.numRows !== undefined ? { numRows: committed.numRows } : {}),
      });
      return;
    }
    // Files it stored before it died are nobody's: gone before the partition runs again (a
    // failure to delete them costs only their names, which the next attempt then writes around).
    // Unless the session database could not say whether it committed: then they may be its
    // rows' artifacts, and a resume's adoption decides.
    if (ledger.known) await this.plan.clearUnrecorded(task.index, this.failedLogs.get(task.index) ?? new Set()).catch(() => undefined);
    const logs = await this.storeDeathLog(task, error, now).catch(() => []);
    if (this.finished) return;
    if (error === undefined) {
      this.finishPartition(task.index, { status: PartitionStatus.CANCELLED, attempt: task.attempt, dispatch: task.dispatch, startedAt, finishedAt: now, logs });
      return;
    }
    const status = timedOut ? PartitionStatus.FAILED : PartitionStatus.INTERNAL_ERROR;
    this.failAttempt(task.index, { status, attempt: task.attempt, dispatch: task.dispatch, startedAt, finishedAt: now, error: serializeError(error), logs });
  }

  /**
   * The attempt of a partition the session database committed, if any; `known: false` when the
   * database could not be asked (without a session database nothing is ever committed there).
   */
  private async committedAttempt(index: number): Promise<{ known: boolean; committed?: CommittedAttempt }> {
    if (this.plan.ledger === undefined) return { known: true };
    try {
      const committed = (await this.plan.ledger.committed(this.plan.runUid)).get(index);
      return committed === undefined ? { known: true } : { known: true, committed };
    } catch {
      // The database cannot be asked: the retry's commit consults the ledger itself.
      return { known: false };
    }
  }

  private async storeDeathLog(task: InFlightTask, error: Error | undefined, now: number): Promise<LogRef[]> {
    const token = this.tokenOf(task);
    // The worker spooled the attempt's log there as it went, and the rest as it died.
    const spooled = join(this.plan.scratch, 'spool', `${token}.log`);
    try {
      if (error !== undefined) {
        await mkdir(dirname(spooled), { recursive: true });
        await appendFile(spooled, `${new Date(now).toISOString()} [attempt ${task.attempt}] [dpf] ${error.message}\n`);
      }
      const length = (await stat(spooled).catch(() => undefined))?.size ?? 0;
      if (length === 0) return [];
      const folder = this.plan.partitions[task.index]!.folder;
      const key = this.plan.layout.attemptFile(folder, token, PARTITION_LOG);
      await this.plan.stage.put(key, { file: spooled });
      return [{ attempt: task.attempt, key, length }];
    } finally {
      await rm(spooled, { force: true });
    }
  }

  private tokenOf(task: InFlightTask): string {
    return attemptToken(this.plan.tokenPrefix, task.dispatch);
  }

  private checkTimeouts(): void {
    const limit = this.plan.options.timeoutMs! + TIMEOUT_GRACE_MS;
    const now = Date.now();
    for (const slot of this.slots) {
      const startedAt = slot.running !== undefined && Atomics.load(slot.running.index, 0) >= 0 ? slot.running.startedAt[0]! : slot.lastActivity;
      if (slot.inFlight.length > 0 && !slot.timedOut && now - startedAt > limit) {
        slot.timedOut = true;
        void slot.handle.terminate();
      }
    }
  }

  /** The module loads in the driver but not in a worker: nothing can run. */
  private failEverything(error: SerializedError): void {
    if (this.finished) return;
    const now = Date.now();
    const pending = [...this.schedule.drain(), ...this.retryTimers.keys()];
    for (const timer of this.retryTimers.values()) clearTimeout(timer);
    this.retryTimers.clear();
    for (const slot of this.slots) for (const task of slot.inFlight) pending.push(task.index);
    for (const index of pending) {
      this.finishPartition(index, { status: PartitionStatus.INTERNAL_ERROR, attempt: this.attempts.get(index) ?? 0, startedAt: now, finishedAt: now, error });
    }
    this.finish();
  }

  private checkDone(): void {
    if (this.remaining === 0) this.finish();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.watchdog !== undefined) clearInterval(this.watchdog);
    if (this.stopTimer !== undefined) clearTimeout(this.stopTimer);
    for (const timer of this.retryTimers.values()) clearTimeout(timer);
    // Healthy idle workers wait for the next run; any other is stopped.
    const stopping = this.slots.map((slot) => {
      if (slot.ready && slot.reusable && slot.handle.reusable && slot.inFlight.length === 0 && !slot.timedOut && this.stopping === undefined) {
        workerPool.release(slot.handle);
        return Promise.resolve();
      }
      slot.handle.attach(undefined, undefined);
      return slot.handle.terminate();
    });
    void Promise.all(stopping).then(() => this.resolveDone());
  }
}

/** Starts the worker threads of a run with these options ahead of it, to boot while it is planned. */
export function prewarmWorkers(options: ResolvedExecutionOptions, partitions = Infinity): void {
  workerPool.prewarm(spawnOptions(options, 0), Math.min(localWorkerCount(options), partitions));
}

/** The spawn options of worker `slot` of a run with these options, starting under `environment`. */
export function spawnOptions(options: ResolvedExecutionOptions, slot: number, environment = driverEnvironment()): WorkerSpawnOptions {
  const gpus = gpuSliceFor(options, slot);
  return {
    isolation: options.isolation,
    memoryLimitMb: options.memoryLimitMb,
    environment,
    env: gpus === undefined ? {} : { CUDA_VISIBLE_DEVICES: gpus },
    duckdb: { threads: Math.max(1, Math.floor(options.numCpusPerWorker)), ...(options.memoryLimitMb !== undefined ? { memoryLimitMb: options.memoryLimitMb } : {}) },
  };
}

/** The driver's process.env now: what workers of a run starting now must see. */
function driverEnvironment(): Record<string, string> {
  const environment: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) if (value !== undefined) environment[name] = value;
  return environment;
}

function describeExit(exit: WorkerExit): string {
  const said = exit.lastWords === '' ? '' : `; its last output:\n${exit.lastWords}`;
  if (exit.outOfMemory) {
    return `it ran out of memory${exit.message ? ` (${exit.message})` : ''}; raise executionOptions.memoryLimitMb or read the partition with batches()${said}`;
  }
  if (exit.signal !== null) return `it was killed by ${exit.signal}${said}`;
  return `it exited with code ${exit.code}${exit.message ? ` (${exit.message})` : ''}${said}`;
}
