import { PartitionTimeoutError, type SerializedError, serializeError, WorkerCrashError } from '../errors.js';
import { gpuSliceFor, localWorkerCount, type ResolvedExecutionOptions } from '../execution-options.js';
import type { PlannedPartition, TaskDescriptor } from '../plan/partition.js';
import type { PackedArtifact } from '../stage/artifact-pack.js';
import type { RunLayout } from '../stage/run-layout.js';
import type { Stage } from '../stage/stage.js';
import { PartitionStatus } from '../status.js';
import type { ModuleReference } from './partition-module.js';
import type { DuckDBSessionHost } from './duckdb-session-host.js';
import type { SessionTarget, TaskOutcome, WorkerMessage } from './protocol.js';
import { Schedule } from './schedule.js';
import { type WorkerExit, WorkerHandle } from './worker-handle.js';

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
  /** The run was resumed: partition folders may hold files of interrupted attempts. */
  resumed: boolean;
  /** Where `context.withSession` connects. */
  session: SessionTarget;
  /** Serves DuckDB sessions when `session` is a DuckDB file. */
  sessionHost: DuckDBSessionHost | undefined;
}

/** A final or intermediate status of an attempt, as the executor reports it. */
export interface AttemptReport {
  status: PartitionStatus;
  attempt: number;
  startedAt: number;
  finishedAt: number;
  numRows?: number;
  error?: SerializedError;
  packed?: PackedArtifact[];
}

/** Where the executor reports partition transitions (the run's journal). */
export interface ExecutionReporter {
  running(index: number, attempt: number, at: number): void;
  /** The attempt failed and the partition will be tried again: it is PENDING. */
  retrying(index: number, report: AttemptReport): void;
  finished(index: number, report: AttemptReport): void;
}

/** How long stopped workers get to end their attempts before they are terminated. */
const STOP_GRACE_MS = 3_000;
/** A worker blocked this long past `timeoutMs` is terminated. */
const TIMEOUT_GRACE_MS = 1_000;
const MAX_RETRY_DELAY_MS = 30_000;
/** Workers that die this many times in a row before they are ready mean the module cannot run in a worker. */
const MAX_DEATHS_BEFORE_READY = 3;

interface Slot {
  index: number;
  handle: WorkerHandle;
  ready: boolean;
  batch: TaskDescriptor[] | undefined;
  reported: number;
  lastActivity: number;
  timedOut: boolean;
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
  private remaining: number;
  private stopping: 'cancel' | 'fail-fast' | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private stopTimer: NodeJS.Timeout | undefined;
  private resolveDone!: () => void;
  private readonly done = new Promise<void>((resolve) => (this.resolveDone = resolve));
  private finished = false;
  private deathsBeforeReady = 0;

  constructor(
    private readonly plan: ExecutionPlan,
    private readonly reporter: ExecutionReporter,
  ) {
    this.schedule = new Schedule(plan.partitions, plan.todo);
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
    for (const slot of this.slots) if (slot.batch !== undefined) slot.handle.send({ type: 'abort', reason });
    this.stopTimer = setTimeout(() => {
      for (const slot of this.slots) if (slot.batch !== undefined) void slot.handle.terminate();
    }, STOP_GRACE_MS);
    this.checkDone();
  }

  private spawn(index: number): Slot {
    const gpus = gpuSliceFor(this.plan.options, index);
    const slot: Slot = {
      index,
      ready: false,
      batch: undefined,
      reported: 0,
      lastActivity: Date.now(),
      timedOut: false,
      handle: new WorkerHandle(
        {
          isolation: this.plan.options.isolation,
          memoryLimitMb: this.plan.options.memoryLimitMb,
          env: gpus === undefined ? {} : { CUDA_VISIBLE_DEVICES: gpus },
        },
        (message) => this.onMessage(slot, message),
      ),
    };
    slot.handle.onExit((exit) => this.onExit(slot, exit));
    const { options } = this.plan;
    slot.handle.send({
      type: 'setup',
      stageLocation: this.plan.stage.location,
      runId: this.plan.layout.runId,
      module: this.plan.module,
      timeoutMs: options.timeoutMs,
      duckdb: { threads: Math.max(1, Math.floor(options.numCpusPerWorker)), ...(options.memoryLimitMb !== undefined ? { memoryLimitMb: options.memoryLimitMb } : {}) },
      session: this.plan.session,
      packArtifacts: options.packSmallArtifacts,
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
          slot.reported++;
          this.onOutcome(outcome);
        }
        if (message.batchDone) {
          slot.batch = undefined;
          this.dispatch(slot);
        }
        break;
    }
  }

  private dispatch(slot: Slot): void {
    if (this.stopping !== undefined || this.finished || !slot.ready || slot.batch !== undefined) return this.checkDone();
    const indices = this.schedule.takeBatch(this.slots.length);
    if (indices.length === 0) return this.checkDone();
    const now = Date.now();
    const tasks = indices.map((index) => {
      const attempt = (this.attempts.get(index) ?? this.plan.previousAttempts(index)) + 1;
      this.attempts.set(index, attempt);
      this.attemptsNow.set(index, (this.attemptsNow.get(index) ?? 0) + 1);
      this.reporter.running(index, attempt, now);
      const partition = this.plan.partitions[index]!;
      return {
        index,
        id: partition.id,
        folder: partition.folder,
        input: partition.input,
        ...(partition.key !== undefined ? { key: partition.key } : {}),
        attempt,
        clearFolder: this.plan.resumed || attempt > 1,
      } satisfies TaskDescriptor;
    });
    slot.batch = tasks;
    slot.reported = 0;
    slot.lastActivity = now;
    slot.handle.send({ type: 'run', tasks });
  }

  private onOutcome(outcome: TaskOutcome): void {
    const report: AttemptReport = {
      status: PartitionStatus.DONE,
      attempt: outcome.attempt,
      startedAt: outcome.startedAt,
      finishedAt: outcome.finishedAt,
      ...(outcome.numRows !== undefined ? { numRows: outcome.numRows } : {}),
      ...(outcome.error !== undefined ? { error: outcome.error } : {}),
      ...(outcome.packed !== undefined && outcome.packed.length > 0 ? { packed: outcome.packed } : {}),
    };
    switch (outcome.status) {
      case 'DONE':
        return this.finishPartition(outcome.index, report);
      case 'CANCELLED':
        return this.finishPartition(outcome.index, { ...report, status: PartitionStatus.CANCELLED });
      case 'SKIPPED':
        return this.returnUnstarted(outcome.index);
      case 'FAILED':
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
    const retryable = report.error?.retryable !== false;
    const used = this.attemptsNow.get(index) ?? 1;
    if (this.stopping === undefined && retryable && used <= this.plan.options.maxRetries) {
      this.reporter.retrying(index, { ...report, status: PartitionStatus.PENDING });
      const delay = Math.min(MAX_RETRY_DELAY_MS, this.plan.options.retryBackoffMs * 2 ** (used - 1));
      this.retryTimers.set(
        index,
        setTimeout(() => {
          this.retryTimers.delete(index);
          this.schedule.putFirst(index);
          for (const slot of this.slots) if (slot.batch === undefined) this.dispatch(slot);
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
    const batch = slot.batch ?? [];
    const running = batch[slot.reported];
    slot.batch = undefined;
    if (running !== undefined) {
      void this.plan.sessionHost?.rollback([`${running.index}:${running.attempt}`]);
      const now = Date.now();
      if (this.stopping !== undefined) {
        this.finishPartition(running.index, { status: PartitionStatus.CANCELLED, attempt: running.attempt, startedAt: slot.lastActivity, finishedAt: now });
      } else {
        const error = slot.timedOut
          ? new PartitionTimeoutError(`partition "${running.id}" ran longer than timeoutMs (${this.plan.options.timeoutMs} ms) and blocked its worker, which was terminated`)
          : new WorkerCrashError(`the worker running partition "${running.id}" died: ${describeExit(exit)}`);
        void this.plan.stage
          .append(this.plan.layout.partitionLog(running.folder), `${new Date(now).toISOString()} [attempt ${running.attempt}] [dpf] ${error.message}\n`)
          .catch(() => undefined);
        const status = slot.timedOut ? PartitionStatus.FAILED : PartitionStatus.INTERNAL_ERROR;
        this.failAttempt(running.index, { status, attempt: running.attempt, startedAt: slot.lastActivity, finishedAt: now, error: serializeError(error) });
      }
      for (const task of batch.slice(slot.reported + 1)) this.returnUnstarted(task.index);
    }
    if (!slot.ready && ++this.deathsBeforeReady >= MAX_DEATHS_BEFORE_READY) {
      return this.failEverything(serializeError(new WorkerCrashError(`workers die while loading the partition module: ${describeExit(exit)}`)));
    }
    if (this.stopping === undefined && this.remaining > 0) {
      const replacement = this.spawn(slot.index);
      this.slots[this.slots.indexOf(slot)] = replacement;
    }
    this.checkDone();
  }

  private checkTimeouts(): void {
    const limit = this.plan.options.timeoutMs! + TIMEOUT_GRACE_MS;
    const now = Date.now();
    for (const slot of this.slots) {
      if (slot.batch !== undefined && !slot.timedOut && now - slot.lastActivity > limit) {
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
    for (const slot of this.slots) for (const task of (slot.batch ?? []).slice(slot.reported)) pending.push(task.index);
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
    void Promise.all(this.slots.map((slot) => slot.handle.terminate())).then(() => this.resolveDone());
  }
}

function describeExit(exit: WorkerExit): string {
  const said = exit.lastWords === '' ? '' : `; its last output:\n${exit.lastWords}`;
  if (exit.outOfMemory) {
    return `it ran out of memory${exit.message ? ` (${exit.message})` : ''}; raise executionOptions.memoryLimitMb or read the partition with batches()${said}`;
  }
  if (exit.signal !== null) return `it was killed by ${exit.signal}${said}`;
  return `it exited with code ${exit.code}${exit.message ? ` (${exit.message})` : ''}${said}`;
}
