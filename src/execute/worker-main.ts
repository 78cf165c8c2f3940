/**
 * The worker side of the local pool: the entry point of each worker thread and of each child
 * process (`isolation: 'process'`). It imports the partition module once, then runs the batches
 * of tasks the driver sends, one attempt at a time, and reports their outcomes.
 */
import { join } from 'node:path';
import { parentPort } from 'node:worker_threads';
import { configureDuckDB } from '../data/duckdb-settings.js';
import { configureMemoryLimit } from '../data/memory-budget.js';
import { loadArrow, loadTableValues } from '../data/lazy-modules.js';
import { PartitionCancelledError, serializeError } from '../errors.js';
import type { PlannedPartition } from '../model/partition.js';
import type { TaskDescriptor } from '../plan/partition.js';
import { RunIndexes } from '../run/run-indexes.js';
import { readPartitions } from '../run/run-spec.js';
import { PackWriter } from '../stage/artifact-pack.js';
import { attachStage } from '../stage/open-stage.js';
import { RunLayout } from '../stage/run-layout.js';
import type { Stage } from '../stage/stage.js';
import type { SessionProvider } from './attempt-session.js';
import { exitWithDriver } from './driver-watchdog.js';
import { DuckDBSessionClient } from './duckdb-session-client.js';
import { attributed, ownerOfEscaped } from './escaped-errors.js';
import { installLogCapture } from './log-capture.js';
import { alreadyReported, type AttemptResult, PartitionAttempt, type RunnerEnvironment, runnerEnvironment } from './partition-runner.js';
import { loadPartitionFunction } from './partition-module.js';
import type { AbortMessage, DriverMessage, SessionTarget, TaskOutcome, WorkerMessage, WorkerSetup } from './protocol.js';
import { importForRun } from './run-environment.js';
import { frozenArgs } from '../run-args.js';

/**
 * Outcomes are sent together unless this long has passed since the last report: each report
 * costs a pack write, a request of its own on an object store, so reports to a remote stage
 * wait longer (a DONE is visible a little later, and a crash loses at most this much work).
 */
const REPORT_INTERVAL_MS = { local: 50, remote: 250 };
let reportInterval = REPORT_INTERVAL_MS.local;

interface Channel {
  /** Sends a message; resolves once it has left this worker (a child process's IPC write is asynchronous). */
  send(message: WorkerMessage): Promise<void>;
  onMessage(listener: (message: DriverMessage) => void): void;
}

const channel: Channel | undefined = parentPort
  ? {
      send: (message) => {
        parentPort!.postMessage(message);
        return Promise.resolve();
      },
      onMessage: (listener) => parentPort!.on('message', listener),
    }
  : process.send
    ? {
        send: (message) => new Promise<void>((resolve) => process.send!(message, undefined, undefined, () => resolve())),
        onMessage: (listener) => process.on('message', listener as (message: unknown) => void),
      }
    : undefined;

let environment: RunnerEnvironment | undefined;
let current: PartitionAttempt | undefined;
let abortReason: AbortMessage['reason'] | undefined;
/** Told to drain: held tasks that have not started are skipped, the running one ends as it will. */
let draining = false;
let queue: Promise<void> = Promise.resolve();
let duckdbSessions: DuckDBSessionClient | undefined;
const postgresPools = new Map<string, SessionProvider>();
/** The driver's attempt-token prefix for this run. */
let tokenPrefix = '';
/** Batches the driver sent that have not started yet. */
let batchesWaiting = 0;
/** The batches sent and not ended (packed tasks), the running one first, and how many of its tasks have begun (or been skipped). */
const batchesHeld: Int32Array[] = [];
let begunInFirst = 0;
/** Tasks a drain handed back before their turn: passed over without a second outcome. */
const handedBack = new Set<number>();
/** The run's partition list, read from the stage once per run. */
let partitions: Promise<PlannedPartition[]> | undefined;
/** See WorkerSetup.running; undefined in a child process, which reports every outcome at once. */
let running: { index: Int32Array; startedAt: Float64Array } | undefined;

// Most partitions read tables: load apache-arrow while the worker waits for its first task.
void loadArrow().then(loadTableValues).catch(() => undefined);

if (channel === undefined) {
  console.error('dpf worker: started without a driver; this module is run by dpf itself');
  process.exit(2);
} else {
  const driver = channel;
  driver.onMessage((message) => {
    switch (message.type) {
      case 'setup':
        queue = queue.then(() => setUp(driver, message));
        break;
      case 'run':
        abortReason = undefined;
        draining = false;
        batchesWaiting++;
        batchesHeld.push(message.tasks);
        // A batch that cannot even be read (the run's partition list is gone) ends the worker's
        // usefulness for the run: the driver hears it as a setup failure, not silence.
        queue = queue
          .then(async () => {
            batchesWaiting--;
            try {
              await runBatch(driver, await descriptors(message.tasks));
            } finally {
              batchesHeld.shift();
              begunInFirst = 0;
            }
          })
          .catch((error: unknown) => void driver.send({ type: 'setup-failed', error: serializeError(error) }));
        break;
      case 'session-result':
        duckdbSessions?.receive(message);
        break;
      case 'drain':
        draining = true;
        handBackUnstarted(driver);
        break;
      case 'abort':
        abortReason = message.reason;
        current?.stop(message.reason, new PartitionCancelledError(message.reason === 'cancel' ? 'the run was cancelled' : 'fail-fast: another partition failed'));
        break;
    }
  });
  // An error escaping partition code through a timer or a forgotten promise does not kill the
  // worker: it fails the attempt whose code raised it while that runs, else it is reported
  // against it (escaped-errors.ts) — never blamed on another partition.
  const escaped = (error: unknown): void => {
    // An un-awaited call's error its attempt already failed with (partition-runner.ts) is not reported again.
    if (alreadyReported(error)) return;
    const owner = ownerOfEscaped(current);
    if (owner?.running === true && owner.attempt.stop('crash', error)) return;
    const partition = owner === undefined ? undefined : { runId: owner.runId, id: owner.attempt.task.id, attempt: owner.attempt.task.attempt };
    void driver.send({ type: 'escaped-error', error: serializeError(error), ...(partition !== undefined ? { partition } : {}) });
  };
  process.on('uncaughtException', escaped);
  process.on('unhandledRejection', escaped);
  if (parentPort === null) {
    // A child process whose driver died (even by SIGKILL) loses its IPC channel: it must not
    // linger. One blocked in synchronous code cannot hear that; its watchdog thread ends it.
    process.on('disconnect', () => process.exit(1));
    exitWithDriver();
    // Ctrl-C reaches the whole process group, children too: the driver decides what it means
    // (cancel: running attempts see their signal and end), so a child does not die of it.
    // Should the driver die of it instead, the lost channel above ends the child.
    process.on('SIGINT', () => undefined);
  }
}

async function setUp(driver: Channel, setup: WorkerSetup): Promise<void> {
  try {
    configureDuckDB(setup.duckdb);
    configureMemoryLimit(setup.memoryLimitMb);
    const stage: Stage = await attachStage(setup.stageLocation, setup.caseInsensitive);
    const fn = await importForRun(setup.module, () => loadPartitionFunction(setup.module));
    const layout = new RunLayout(setup.runId);
    environment = runnerEnvironment({
      stage,
      layout,
      fn: attributed(fn, setup.runId, () => current),
      args: frozenArgs(setup.module.args),
      timeoutMs: setup.timeoutMs,
      runUid: setup.runUid,
      epoch: setup.epoch,
      sessions: await sessionProvider(driver, setup.session),
      packArtifacts: setup.packArtifacts,
      packs: new PackWriter(stage, layout),
      finder: new RunIndexes(stage),
      scratch: join(setup.scratch, 'attempts'),
      spool: join(setup.scratch, 'spool'),
      maxLogBytes: setup.maxLogBytes,
      inputFolder: setup.inputFolder,
    });
    tokenPrefix = setup.tokenPrefix;
    reportInterval = stage.local ? REPORT_INTERVAL_MS.local : REPORT_INTERVAL_MS.remote;
    partitions = readPartitions(stage, layout, setup.partitionList);
    // Read when the first batch comes; a failure then reaches the driver, never as an unhandled rejection.
    partitions.catch(() => undefined);
    running = setup.running === undefined ? undefined : { index: new Int32Array(setup.running, 0, 1), startedAt: new Float64Array(setup.running, 8, 1) };
    installLogCapture();
    void driver.send({ type: 'ready' });
  } catch (error) {
    void driver.send({ type: 'setup-failed', error: serializeError(error) });
  }
}

/** The task descriptors of a batch: (index, attempt, dispatch) triples, as packTasks (executor.ts) packs them, resolved against the run's partition list. */
async function descriptors(tasks: Int32Array): Promise<TaskDescriptor[]> {
  const list = await partitions!;
  const out: TaskDescriptor[] = [];
  for (let i = 0; i < tasks.length; i += 3) {
    const index = tasks[i]!;
    const partition = list[index]!;
    const task: TaskDescriptor = { index, id: partition.id, folder: partition.folder, input: partition.input, attempt: tasks[i + 1]!, owner: tokenPrefix, dispatch: tasks[i + 2]! };
    if (partition.key !== undefined) task.key = partition.key;
    out.push(task);
  }
  return out;
}

async function sessionProvider(driver: Channel, target: SessionTarget): Promise<SessionProvider | undefined> {
  if (target.kind === 'none') return undefined;
  if (target.kind === 'duckdb') {
    duckdbSessions = new DuckDBSessionClient((message) => void driver.send(message));
    return duckdbSessions;
  }
  // One pool per database for the worker's life: a worker kept for the next run must not open a
  // new pool (and leave the old one's connections behind) at every run.
  let pool = postgresPools.get(target.url);
  if (pool === undefined) {
    const { PostgresSessions } = await import('./postgres-session.js');
    pool = new PostgresSessions(target.url);
    postgresPools.set(target.url, pool);
  }
  return pool;
}

/**
 * Reports go out one at a time and in order, across batches; the small artifacts and logs of the
 * reported attempts are packed (one new pack object) before their outcomes leave, so a DONE is
 * never ahead of its artifacts. The next batch starts without waiting for the pack write.
 */
let reporting: Promise<void> = Promise.resolve();
/** Outcomes not reported yet (of this batch, or of the last one when the next was waiting). */
let pending: AttemptResult[] = [];
let lastReport = Date.now();
let reportTimer: NodeJS.Timeout | undefined;

/** Reports the pending outcomes (after packing their bytes), in order with every earlier report. */
function report(driver: Channel, batchDone: boolean): Promise<void> {
  if (reportTimer !== undefined) clearTimeout(reportTimer);
  reportTimer = undefined;
  const results = pending;
  pending = [];
  lastReport = Date.now();
  reporting = reporting.then(async () => driver.send({ type: 'results', outcomes: await packed(results), batchDone }));
  return reporting;
}

/**
 * A drain hands back at once every task sent and not begun, as SKIPPED outcomes ahead of the
 * running task's (the pool takes SKIPPED ones out of order): a queue worker that is leaving gives
 * them to other workers now, not when its running partition ends, which may be hours later.
 */
function handBackUnstarted(driver: Channel): void {
  const now = Date.now();
  const outcomes: TaskOutcome[] = [];
  batchesHeld.forEach((tasks, batch) => {
    for (let i = batch === 0 ? begunInFirst * 3 : 0; i < tasks.length; i += 3) {
      if (handedBack.has(tasks[i + 2]!)) continue;
      handedBack.add(tasks[i + 2]!);
      outcomes.push({ index: tasks[i]!, attempt: tasks[i + 1]!, dispatch: tasks[i + 2]!, status: 'SKIPPED', startedAt: now, finishedAt: now });
    }
  });
  if (outcomes.length > 0) reporting = reporting.then(() => driver.send({ type: 'results', outcomes, batchDone: false }));
}

async function runBatch(driver: Channel, tasks: TaskDescriptor[]): Promise<void> {
  for (const task of tasks) {
    begunInFirst++;
    if (handedBack.delete(task.dispatch)) continue;
    if (abortReason !== undefined || draining || environment === undefined) {
      const now = Date.now();
      pending.push({ outcome: { index: task.index, attempt: task.attempt, dispatch: task.dispatch, status: 'SKIPPED', startedAt: now, finishedAt: now }, packed: [] });
      continue;
    }
    current = new PartitionAttempt(environment, task);
    if (running !== undefined) {
      running.startedAt[0] = Date.now();
      Atomics.store(running.index, 0, task.index);
    }
    const result = await current.run();
    if (running !== undefined) Atomics.store(running.index, 0, -1);
    current = undefined;
    pending.push(result);
    // Failures go out at once (retries and fail-fast depend on them); successes of quick
    // partitions travel together, at most reportInterval late — in threads, where the driver
    // can see which task is running; a child process reports each one at once.
    // A child process waits until the outcome has left: a process.exit in the next task must not
    // swallow it, or the driver would blame the wrong partition.
    if (running === undefined) await report(driver, false);
    else if (result.outcome.status !== 'DONE' || Date.now() - lastReport >= reportInterval) void report(driver, false);
    else reportTimer ??= setTimeout(() => void report(driver, false), reportInterval - (Date.now() - lastReport));
  }
  // The driver hears at once that the batch is over (it sends the next). Its successes go now
  // when no batch is waiting; otherwise with the next timed report, in the same pack.
  if (batchesWaiting === 0 || pending.some((result) => result.outcome.status !== 'DONE')) void report(driver, true);
  else reporting = reporting.then(() => driver.send({ type: 'results', outcomes: [], batchDone: true }));
}

/**
 * Writes the results' small artifacts and logs as one pack and puts their references in the
 * outcomes. When the pack cannot be written, the DONE attempts among them are FAILED (their
 * artifacts would be lost), and their files on the stage are deleted again.
 */
async function packed(results: readonly AttemptResult[]): Promise<TaskOutcome[]> {
  const outcomes = results.map((result) => result.outcome);
  const bytes: Uint8Array[] = [];
  for (const result of results) for (const item of result.packed) bytes.push(item.bytes);
  if (bytes.length === 0 || environment === undefined) return outcomes;
  const env = environment;
  try {
    const { key, offsets, crcs } = await env.packs.write(bytes);
    let j = 0;
    for (const result of results) {
      const outcome = result.outcome;
      for (const item of result.packed) {
        if (item.name === undefined) (outcome.logs ??= []).push({ attempt: outcome.attempt, key, offset: offsets[j]!, length: item.bytes.byteLength, crc: crcs[j]! });
        else (outcome.artifacts ??= []).push({ name: item.name, key, offset: offsets[j]!, length: item.bytes.byteLength, crc: crcs[j]! });
        j++;
      }
    }
    return outcomes;
  } catch (error) {
    return Promise.all(
      results.map(async (result) => {
        if (result.outcome.status !== 'DONE' || result.packed.length === 0) return result.outcome;
        await Promise.all((result.outcome.artifacts ?? []).map((ref) => env.stage.delete(ref.key).catch(() => undefined)));
        const { artifacts: _, ...rest } = result.outcome;
        return { ...rest, status: 'FAILED' as const, error: serializeError(error) };
      }),
    );
  }
}
