import { appendFile, mkdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { gpuSliceFor, localWorkerCount, type ResolvedExecutionOptions } from '../execution-options.js';
import type { PlannedPartition } from '../model/partition.js';
import type { LogRef } from '../model/refs.js';
import { attemptToken } from '../model/journal.js';
import { PARTITION_LOG, type RunLayout } from '../stage/run-layout.js';
import type { Stage } from '../stage/stage.js';
import type { DuckDBSessionHost } from './duckdb-session-host.js';
import { type Executor, type ExecutorHost, type LossCause, lossError, packTasks, type Task, type WorkerLoss } from './executor.js';
import type { RunAttempts, SessionTarget, TaskOutcome, WorkerMessage } from './protocol.js';
import type { WorkerExit, WorkerHandle, WorkerSpawnOptions } from './worker-handle.js';
import { workerPool } from './worker-pool.js';

/**
 * What a pool runs: one run's partitions, as its workers' setup message needs them. The driver
 * builds it from its plan; a `dpf worker` from a queue job's data (it opens the stage and reads
 * the partition list itself). Nothing of the run's journal or ledger: the pool only runs tasks.
 */
export interface PoolRun extends RunAttempts {
  /** The stage: workers open it by its location; the pool stores a dead attempt's log there. */
  stage: Stage;
  layout: RunLayout;
  /** The run's partitions, by index: a dead attempt's error names its partition, its log goes to its folder. */
  partitions: readonly Pick<PlannedPartition, 'id' | 'folder'>[];
  options: ResolvedExecutionOptions;
  /** How many workers to run (the driver: no more than the partitions it has to run). */
  workers: number;
  /** Where `context.withSession` connects (with credentials: sent to workers in memory only). */
  session: SessionTarget;
  /** Serves DuckDB sessions when `session` is a DuckDB file (only in the driver: a DuckDB file has one writer). */
  sessionHost: DuckDBSessionHost | undefined;
}

/** How long stopped workers get to end their attempts before they are terminated. */
const STOP_GRACE_MS = 3_000;
/** A worker blocked this long past `timeoutMs` is terminated. */
const TIMEOUT_GRACE_MS = 1_000;
/** Batches a worker holds at once: the next is there when one ends, so it never waits for the driver. */
const BATCHES_IN_FLIGHT = 2;

interface Slot {
  index: number;
  handle: WorkerHandle;
  ready: boolean;
  /** Tasks sent and not reported yet, in the order the worker runs them; the first is running. */
  inFlight: Task[];
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
 * The local pool: workers on this machine (threads, or child processes with
 * `isolation: 'process'`) that run the batches of tasks its host gives them. It replaces workers
 * that die (reporting what they held), terminates workers that block past `timeoutMs`, and stops
 * its workers on abort. What becomes of a task is its host's to decide.
 */
export class LocalPool implements Executor {
  private host!: ExecutorHost;
  private readonly slots: Slot[] = [];
  private aborted: 'cancel' | 'fail-fast' | undefined;
  /** Draining (a queue worker leaving): no more batches; what the workers hold and have not started comes back SKIPPED. */
  private draining = false;
  private closed = false;
  private watchdog: NodeJS.Timeout | undefined;
  private stopTimer: NodeJS.Timeout | undefined;
  /** The driver's environment as the run starts: its workers' (a replacement started later too). */
  private readonly environment = driverEnvironment();

  constructor(private readonly run: PoolRun) {}

  start(host: ExecutorHost): void {
    this.host = host;
    for (let i = 0; i < this.run.workers; i++) this.slots.push(this.spawn(i));
    if (this.run.options.timeoutMs !== undefined) {
      const interval = Math.max(50, Math.min(1000, this.run.options.timeoutMs / 4));
      this.watchdog = setInterval(() => this.checkTimeouts(), interval);
    }
  }

  wake(): void {
    for (const slot of this.slots) this.dispatch(slot);
  }

  abort(reason: 'cancel' | 'fail-fast'): void {
    if (this.aborted !== undefined || this.closed) return;
    this.aborted = reason;
    for (const slot of this.slots) if (slot.inFlight.length > 0) slot.handle.send({ type: 'abort', reason });
    this.stopTimer = setTimeout(() => {
      for (const slot of this.slots) if (slot.inFlight.length > 0) void slot.handle.terminate();
    }, STOP_GRACE_MS);
  }

  /**
   * Stops taking batches and tells the workers to skip what they hold and have not started (those
   * come back as SKIPPED outcomes at once, ahead of the running attempts'); running attempts go on
   * to their end. A queue worker that is leaving does this, so its partitions finish or go back to
   * the queue, none lost.
   */
  drain(): void {
    if (this.draining || this.closed) return;
    this.draining = true;
    for (const slot of this.slots) if (slot.inFlight.length > 0) slot.handle.send({ type: 'drain' });
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    if (this.watchdog !== undefined) clearInterval(this.watchdog);
    if (this.stopTimer !== undefined) clearTimeout(this.stopTimer);
    // Healthy idle workers wait for the next run; any other is stopped.
    const stopping = this.slots.map((slot) => {
      if (slot.ready && slot.reusable && slot.handle.reusable && slot.inFlight.length === 0 && !slot.timedOut && this.aborted === undefined) {
        workerPool.release(slot.handle);
        return Promise.resolve();
      }
      slot.handle.attach(undefined, undefined);
      return slot.handle.terminate();
    });
    return Promise.all(stopping).then(() => undefined);
  }

  private spawn(index: number): Slot {
    const handle = workerPool.acquire(spawnOptions(this.run.options, index, this.environment));
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
      stageLocation: this.run.stage.location,
      caseInsensitive: this.run.stage.caseInsensitive,
      runId: this.run.layout.runId,
      runUid: this.run.runUid,
      epoch: this.run.epoch,
      tokenPrefix: this.run.tokenPrefix,
      partitionList: this.run.partitionList,
      inputFolder: this.run.inputFolder,
      scratch: this.run.scratch,
      module: this.run.module,
      timeoutMs: this.run.options.timeoutMs,
      duckdb: handle.options.duckdb,
      memoryLimitMb: handle.options.memoryLimitMb,
      session: this.run.session,
      packArtifacts: this.run.options.packSmallArtifacts,
      maxLogBytes: this.run.options.maxLogBytes,
      running: buffer,
    });
    return slot;
  }

  private onMessage(slot: Slot, message: WorkerMessage): void {
    if (this.closed) return;
    slot.lastActivity = Date.now();
    switch (message.type) {
      case 'ready':
        slot.ready = true;
        this.dispatch(slot);
        break;
      case 'setup-failed':
        this.host.unusable(message.error);
        break;
      case 'session': {
        const host = this.run.sessionHost;
        if (host === undefined) {
          slot.handle.send({ type: 'session-result', id: message.id, error: { name: 'DPFError', message: 'this run has no DuckDB session database' } });
          break;
        }
        void host.handle(message.request).then((result) => slot.handle.send({ type: 'session-result', id: message.id, ...result }));
        break;
      }
      case 'results': {
        const reported: TaskOutcome[] = [];
        for (const outcome of message.outcomes) {
          // Outcomes come in the order the tasks were sent; one of a worker already counted dead
          // (its exit seen before its last message) was reported lost then, and is not reported again.
          const task = slot.inFlight[0];
          if (task === undefined || task.dispatch !== outcome.dispatch) {
            // A drain hands back the tasks not begun ahead of the running one's outcome (worker-main.ts).
            const at = outcome.status === 'SKIPPED' ? slot.inFlight.findIndex((held) => held.dispatch === outcome.dispatch) : -1;
            if (at > 0) {
              slot.inFlight.splice(at, 1);
              reported.push(outcome);
            }
            continue;
          }
          slot.inFlight.shift();
          if (outcome.orphaned === true) slot.reusable = false;
          reported.push(outcome);
        }
        if (reported.length > 0) this.host.outcomes(reported);
        if (message.batchDone) {
          slot.batches--;
          this.dispatch(slot);
        }
        break;
      }
    }
  }

  private dispatch(slot: Slot): void {
    while (this.aborted === undefined && !this.draining && !this.closed && slot.ready && slot.batches < this.batchesInFlight()) {
      const tasks = this.host.take(this.slots.length * BATCHES_IN_FLIGHT);
      if (tasks.length === 0) break;
      this.send(slot, tasks);
    }
  }

  /**
   * A second batch waits in a worker only while plenty of work is left; near the end, or with
   * few partitions, each batch goes to whichever worker is free, so none sits idle.
   */
  private batchesInFlight(): number {
    return this.host.queued > this.slots.length * 8 ? BATCHES_IN_FLIGHT : 1;
  }

  private send(slot: Slot, tasks: Task[]): void {
    const now = Date.now();
    for (const task of tasks) slot.inFlight.push(task);
    this.host.started(tasks, now, slot.index);
    if (slot.inFlight.length === tasks.length) slot.lastActivity = now;
    slot.batches++;
    slot.handle.send({ type: 'run', tasks: packTasks(tasks) });
  }

  private onExit(slot: Slot, exit: WorkerExit): void {
    if (this.closed) return;
    const now = Date.now();
    // The task that was running: as the thread noted it, else the first not reported. Tasks before
    // it finished but their outcomes died with the worker: they run again.
    const noted = slot.running === undefined ? undefined : Atomics.load(slot.running.index, 0);
    const position = noted === undefined ? 0 : slot.inFlight.findIndex((task) => task.index === noted);
    const running = position < 0 ? undefined : slot.inFlight[position];
    const unstarted = slot.inFlight.filter((_, i) => i !== position);
    slot.inFlight = [];
    slot.batches = 0;
    const beforeReady = !slot.ready;
    // Nothing more goes to it (a host that hears of the loss may hand out its tasks at once).
    slot.ready = false;
    // A worker killed from outside (SIGKILL, SIGTERM) says nothing about the module; one that
    // exits or crashes by itself while loading it does.
    const killedFromOutside = exit.signal === 'SIGKILL' || exit.signal === 'SIGTERM' || exit.signal === 'SIGINT';
    const cause: LossCause = this.aborted !== undefined ? 'stopped' : slot.timedOut ? 'timeout' : killedFromOutside ? 'killed' : 'crash';
    const loss: WorkerLoss = { running, startedAt: slot.lastActivity, at: now, unstarted, cause, description: describeExit(exit), beforeReady, logs: [] };
    if (running === undefined) this.host.lost(loss);
    else {
      void this.run.sessionHost?.rollback([this.tokenOf(running)]);
      // Its log is stored before the loss is reported: the host may then clear the attempt's folder.
      const error = lossError(loss, this.run.partitions[running.index]!.id, this.run.options.timeoutMs);
      void this.storeDeathLog(running, error, now)
        .catch(() => [])
        .then((logs) => {
          if (!this.closed) this.host.lost({ ...loss, logs });
        });
    }
    if (this.aborted === undefined && !this.closed) {
      const replacement = this.spawn(slot.index);
      this.slots[this.slots.indexOf(slot)] = replacement;
    }
  }

  private async storeDeathLog(task: Task, error: Error | undefined, now: number): Promise<LogRef[]> {
    const token = this.tokenOf(task);
    // The worker spooled the attempt's log there as it went, and the rest as it died.
    const spooled = join(this.run.scratch, 'spool', `${token}.log`);
    try {
      if (error !== undefined) {
        await mkdir(dirname(spooled), { recursive: true });
        await appendFile(spooled, `${new Date(now).toISOString()} [attempt ${task.attempt}] [dpf] ${error.message}\n`);
      }
      const length = (await stat(spooled).catch(() => undefined))?.size ?? 0;
      if (length === 0) return [];
      const folder = this.run.partitions[task.index]!.folder;
      const key = this.run.layout.attemptFile(folder, token, PARTITION_LOG);
      await this.run.stage.put(key, { file: spooled });
      return [{ attempt: task.attempt, key, length }];
    } finally {
      await rm(spooled, { force: true });
    }
  }

  private tokenOf(task: Task): string {
    return attemptToken(this.run.tokenPrefix, task.dispatch);
  }

  private checkTimeouts(): void {
    const limit = this.run.options.timeoutMs! + TIMEOUT_GRACE_MS;
    const now = Date.now();
    for (const slot of this.slots) {
      const startedAt = slot.running !== undefined && Atomics.load(slot.running.index, 0) >= 0 ? slot.running.startedAt[0]! : slot.lastActivity;
      if (slot.inFlight.length > 0 && !slot.timedOut && now - startedAt > limit) {
        slot.timedOut = true;
        void slot.handle.terminate();
      }
    }
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
