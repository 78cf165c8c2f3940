import { type SerializedError, serializeError, WorkerCrashError } from '../errors.js';
import { retryDelayMs, type ResolvedExecutionOptions } from '../execution-options.js';
import type { PlannedPartition } from '../model/partition.js';
import type { ArtifactRef, CommittedAttempt, LogRef } from '../model/refs.js';
import { refsPresent } from '../stage/stored-ref.js';
import type { Stage } from '../stage/stage.js';
import { PartitionStatus } from '../status.js';
import { type Executor, type ExecutorHost, lossError, type Task, type WorkerLoss } from './executor.js';
import type { TaskOutcome } from './protocol.js';
import type { SessionLedger } from './session-ledger.js';
import { Schedule } from './schedule.js';

/** What the run policy runs: the partitions of one run, and which of them to run now. */
export interface ExecutionPlan {
  /** Where the attempts' files are (a dead attempt the session database committed must have its files there). */
  stage: Stage;
  options: ResolvedExecutionOptions;
  partitions: readonly PlannedPartition[];
  /** Indices of the partitions to run. */
  todo: readonly number[];
  /** Attempts each partition had before this run (resumed runs keep counting). */
  previousAttempts: (index: number) => number;
  /** The run's uid: the session ledger's entries of this run carry it. */
  runUid: string;
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

/** A final or intermediate status of an attempt, as the policy reports it. */
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

/** Where the policy reports partition transitions (the run's journal). */
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
  /** Something a reader of the run should know (a worker refused its partitions, the queue lost its jobs). */
  note(message: string): void;
}

/** Workers that die this many times in a row before they are ready mean the module cannot run in a worker. */
const MAX_DEATHS_BEFORE_READY = 3;

/**
 * The run policy: runs every planned partition to a final status through an executor (executor.ts),
 * whatever runs the attempts. It hands out batches of tasks, retries failed attempts with backoff,
 * blames the running task of a worker that died (unless the session database says it committed),
 * and stops on cancel or fail-fast.
 */
export class RunPolicy implements ExecutorHost {
  private readonly schedule: Schedule;
  private readonly attempts = new Map<number, number>();
  private readonly attemptsNow = new Map<number, number>();
  /**
   * The dispatch number of each partition's task given to the executor and not ended yet (-1:
   * none): outcomes and losses must name it exactly. An array, not a map: it is touched twice per
   * task, and a run may have a million tiny ones.
   */
  private readonly inFlight: Int32Array;
  /** Partitions whose attempt's worker died, while the fate of that attempt is worked out. */
  private readonly ending = new Set<number>();
  private readonly retryTimers = new Map<number, NodeJS.Timeout>();
  /** The logs of each partition's failed attempts in this run: never cleared away (see clearUnrecorded). */
  private readonly failedLogs = new Map<number, Set<string>>();
  private remaining: number;
  private stopping: 'cancel' | 'fail-fast' | undefined;
  private resolveDone!: () => void;
  private readonly done = new Promise<void>((resolve) => (this.resolveDone = resolve));
  private finished = false;
  private deathsBeforeReady = 0;
  private dispatches = 0;

  constructor(
    private readonly plan: ExecutionPlan,
    private readonly reporter: ExecutionReporter,
    private readonly executor: Executor,
  ) {
    this.schedule = new Schedule(plan.partitions, plan.todo, plan.writtenRows);
    this.remaining = plan.todo.length;
    this.inFlight = new Int32Array(plan.partitions.length).fill(-1);
  }

  /** Runs every planned partition to a final status. */
  run(): Promise<void> {
    if (this.remaining === 0) {
      this.finish();
      return this.done;
    }
    this.executor.start(this);
    return this.done;
  }

  /** More of the run's input is written: partitions whose rows all are can run. */
  release(writtenRows: number): void {
    if (this.finished) return;
    this.schedule.release(writtenRows);
    this.executor.wake();
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
    // Nothing to abort when that ended the run (and no stop timer to keep the process waiting).
    if (!this.finished) this.executor.abort(reason);
    this.checkDone();
  }

  get queued(): number {
    return this.schedule.size;
  }

  take(slots: number): Task[] {
    if (this.stopping !== undefined || this.finished) return [];
    const indices = this.schedule.takeBatch(slots);
    const tasks: Task[] = new Array(indices.length);
    for (let i = 0; i < indices.length; i++) {
      const index = indices[i]!;
      const attempt = (this.attempts.get(index) ?? this.plan.previousAttempts(index)) + 1;
      this.attempts.set(index, attempt);
      this.attemptsNow.set(index, (this.attemptsNow.get(index) ?? 0) + 1);
      const dispatch = this.dispatches++;
      this.inFlight[index] = dispatch;
      tasks[i] = { index, attempt, dispatch };
    }
    return tasks;
  }

  started(tasks: readonly Task[], at: number, worker: number): void {
    if (this.finished) return;
    this.deathsBeforeReady = 0;
    const indices: number[] = new Array(tasks.length);
    const attempts: number[] = new Array(tasks.length);
    const dispatches: number[] = new Array(tasks.length);
    for (let i = 0; i < tasks.length; i++) {
      const task = tasks[i]!;
      indices[i] = task.index;
      attempts[i] = task.attempt;
      dispatches[i] = task.dispatch;
    }
    this.reporter.running(indices, attempts, dispatches, at, worker);
  }

  outcomes(outcomes: readonly TaskOutcome[]): void {
    for (const outcome of outcomes) {
      if (this.finished) return;
      // One of a worker already counted dead (its exit seen before its last message) was handled
      // then, and is not recorded twice.
      if (!this.holds(outcome)) continue;
      this.inFlight[outcome.index] = -1;
      this.onOutcome(outcome);
    }
  }

  lost(loss: WorkerLoss): void {
    if (this.finished) return;
    // Tasks it held and never started (or whose outcomes died with it) run again.
    let returned = false;
    for (const task of loss.unstarted) {
      if (!this.holds(task)) continue;
      this.inFlight[task.index] = -1;
      this.returnUnstarted(task.index);
      returned = true;
    }
    if (loss.running !== undefined && this.holds(loss.running)) {
      this.inFlight[loss.running.index] = -1;
      // The partition stays in flight (remaining) until its fate is recorded.
      this.ending.add(loss.running.index);
      void this.endDeadAttempt(loss.running, loss);
    }
    // A worker killed from outside (SIGKILL, SIGTERM) says nothing about the module; one that
    // exits or crashes by itself while loading it does.
    if (loss.beforeReady && loss.cause !== 'killed' && ++this.deathsBeforeReady >= MAX_DEATHS_BEFORE_READY) {
      return this.failEverything(serializeError(new WorkerCrashError(`workers die while loading the partition module: ${loss.description}`)));
    }
    if (returned) this.executor.wake();
    this.checkDone();
  }

  /** The module loads in the driver but not in a worker: nothing can run. */
  unusable(error: SerializedError): void {
    this.failEverything(error);
  }

  stageFailed(error: SerializedError): void {
    if (this.finished) return;
    this.reporter.stageFailed(error);
  }

  note(message: string): void {
    if (!this.finished) this.reporter.note(message);
  }

  /** Whether a task the executor names is the one the policy gave out for its partition. */
  private holds(task: Task): boolean {
    return task.dispatch >= 0 && this.inFlight[task.index] === task.dispatch;
  }

  private onOutcome(outcome: TaskOutcome): void {
    if (outcome.status === 'DONE') this.schedule.observe(outcome.index, outcome.finishedAt - outcome.startedAt);
    const report: AttemptReport = {
      status: PartitionStatus.DONE,
      attempt: outcome.attempt,
      ...(outcome.token !== undefined ? { token: outcome.token } : { dispatch: outcome.dispatch }),
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
          this.executor.wake();
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

  /**
   * Ends the attempt a dead worker was running: its log (what the worker wrote as it died, and why
   * it died) the executor stored, and — when its session may have committed before the worker
   * died — the session database's ledger says whether the partition is in fact DONE.
   */
  private async endDeadAttempt(task: Task, loss: WorkerLoss): Promise<void> {
    try {
      const error = lossError(loss, this.plan.partitions[task.index]!.id, this.plan.options.timeoutMs);
      // Asked also when the run is stopping: a worker killed by a cancel may have committed first.
      const ledger = await this.committedAttempt(task.index);
      if (this.finished) return;
      const committed = ledger.committed;
      if (committed !== undefined && (await refsPresent(this.plan.stage, [...committed.artifacts, ...committed.logs]).catch(() => false))) {
        if (this.finished) return;
        this.finishPartition(task.index, {
          status: PartitionStatus.DONE,
          attempt: task.attempt,
          token: committed.token,
          startedAt: committed.startedAt,
          finishedAt: committed.finishedAt,
          artifacts: committed.artifacts,
          logs: [...committed.logs, ...loss.logs],
          adopted: true,
          ...(committed.numRows !== undefined ? { numRows: committed.numRows } : {}),
        });
        return;
      }
      // Files it stored before it died are nobody's: gone before the partition runs again (a
      // failure to delete them costs only their names, which the next attempt then writes around).
      // Unless the session database could not say whether it committed: then they may be its
      // rows' artifacts, and a resume's adoption decides. Its log, stored already, stays.
      if (ledger.known) {
        const keep = new Set(this.failedLogs.get(task.index));
        for (const ref of loss.logs) keep.add(ref.key);
        await this.plan.clearUnrecorded(task.index, keep).catch(() => undefined);
      }
      if (this.finished) return;
      const now = loss.at;
      if (error === undefined) {
        this.finishPartition(task.index, { status: PartitionStatus.CANCELLED, attempt: task.attempt, dispatch: task.dispatch, startedAt: loss.startedAt, finishedAt: now, logs: loss.logs });
        return;
      }
      const status = loss.cause === 'timeout' ? PartitionStatus.FAILED : PartitionStatus.INTERNAL_ERROR;
      this.failAttempt(task.index, { status, attempt: task.attempt, dispatch: task.dispatch, startedAt: loss.startedAt, finishedAt: now, error: serializeError(error), logs: loss.logs });
    } finally {
      this.ending.delete(task.index);
    }
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

  /** Every partition not done yet fails with `error`, and the run ends. */
  private failEverything(error: SerializedError): void {
    if (this.finished) return;
    const now = Date.now();
    const pending = [...this.schedule.drain(), ...this.retryTimers.keys(), ...this.ending];
    for (let index = 0; index < this.inFlight.length; index++) if (this.inFlight[index]! >= 0) pending.push(index);
    for (const timer of this.retryTimers.values()) clearTimeout(timer);
    this.retryTimers.clear();
    for (const index of pending) {
      this.finishPartition(index, { status: PartitionStatus.INTERNAL_ERROR, attempt: this.attempts.get(index) ?? 0, startedAt: now, finishedAt: now, error });
    }
    this.finish();
  }

  private checkDone(): void {
    if (this.remaining === 0) this.finish();
  }

  /**
   * Stops without ending the partitions in flight (another driver takes the run on): nothing more
   * is reported, the executor is closed — a queue's jobs keep running, for the next driver to
   * settle — and `run()` resolves.
   */
  detach(): void {
    this.finish(true);
  }

  private finish(detached = false): void {
    if (this.finished) return;
    this.finished = true;
    for (const timer of this.retryTimers.values()) clearTimeout(timer);
    void this.executor.close(detached).then(() => this.resolveDone());
  }
}
