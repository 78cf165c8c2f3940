import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { InvalidOptionError, RunExistsError, RunInProgressError, RunNotFoundError, SessionDatabaseError, StageError } from '../errors.js';
import { readInputManifest } from '../data/input-segments.js';
import { type DriverSessions, openDriverSessions } from '../execute/open-session-ledger.js';
import { describeSessionTarget, sameSessionDatabase, storedSessionTarget } from '../execute/session-url.js';
import type { JournalRecord, PartitionRecord, StartRecord } from '../model/journal.js';
import type { PlannedPartition } from '../model/partition.js';
import type { CommittedAttempt } from '../model/refs.js';
import type { FolderEncoding, ModuleReference, ResolvedExecutionOptions, RunSpec, SessionTarget } from '../model/run-spec.js';
import { FORMATS } from '../model/stored-json.js';
import type { PlannedInput } from '../plan/dataframe-partitions.js';
import { RunLayout } from '../stage/run-layout.js';
import type { Stage } from '../stage/stage.js';
import { PartitionStatus } from '../status.js';
import { DPFRun } from './dpf-run.js';
import { describeHolder, type LeaseHolder, readLease, RunLease } from './lease.js';
import { type DriverPlan, RunDriver } from './run-driver.js';
import { storedQueueTarget } from '../execute/queue/queue-connection.js';
import { RunFollower } from './run-follower.js';
import { encodePartitions, readRunSpec } from './run-spec.js';
import { clearUnrecordedFiles } from './unrecorded-files.js';
import { canonical, sameArgs } from '../run-args.js';

/** What to do when the stage already holds a run with the same runId. */
export type OnExistingArtifacts = 'error' | 'overwrite' | 'resume';

/** A planned run, ready to be put on the stage and started. */
export interface RunRequest {
  stage: Stage;
  runId: string;
  input: RunSpec['input'];
  folderEncoding: FolderEncoding;
  module: ModuleReference;
  options: ResolvedExecutionOptions;
  /** Where `context.withSession` connects, with its credentials (kept in memory, recorded without them). */
  session: SessionTarget;
  /** The partitions this request asks for. */
  partitions: readonly PlannedPartition[];
  onExistingArtifacts: OnExistingArtifacts;
  /** DataFrame mode, new run: the planned rows, written to the run's input while it runs. */
  rows?: PlannedInput;
  /** Run the partitions through this queue instead of this machine's pool (see queue-submit.ts). */
  queue?: QueueRequest;
}

/** A queue run's queue, and this process's part in it. */
export interface QueueRequest {
  /** The Redis URL (with its credentials: kept in memory, recorded without them) and the queue's name. */
  url: string;
  name: string;
  /**
   * `submit`: put the run on the stage and its drive job on the queue, and return (a `dpf
   * worker` drives it). `drive`: this process is that worker; it drives the run here, sending
   * its partitions to the queue.
   */
  role: 'submit' | 'drive';
}

/**
 * Refuses early — before planning reads a large source — a run that {@link startRun} would
 * refuse: one a live driver is executing, or an existing one with `onExistingArtifacts: 'error'`.
 */
export async function checkRunCanStart(stage: Stage, runId: string, onExistingArtifacts: OnExistingArtifacts): Promise<void> {
  const layout = new RunLayout(runId);
  if (!(await runExists(stage, layout))) {
    if (onExistingArtifacts === 'resume') throw runNotFound(stage, runId);
    return;
  }
  const lease = await readLease(stage, layout).catch(() => undefined);
  if (lease !== undefined) {
    const holder = describeHolder(lease.content);
    if (holder.alive) throw inProgress(runId, holder);
  }
  if (onExistingArtifacts === 'error') throw runExistsError(stage, runId);
}

/**
 * Puts a run on the stage and starts executing it in this process.
 *
 * - Taking the run is one conditional write of its lease (see lease.ts): two processes starting,
 *   resuming or overwriting the same run at the same instant cannot both win.
 * - A new run is published by a create-if-absent of its spec, after its partition list.
 * - `'error'` refuses an existing run; `'overwrite'` deletes it (its spec first, so it disappears
 *   at once) and starts afresh; `'resume'` keeps its DONE partitions and runs the requested ones
 *   that are not DONE (adding partitions it did not have). A run a live driver is executing is
 *   never touched.
 */
export async function startRun(request: RunRequest): Promise<DPFRun> {
  const { stage, runId } = request;
  const layout = new RunLayout(runId);
  if (!(await runExists(stage, layout))) {
    if (request.onExistingArtifacts === 'resume') throw runNotFound(stage, runId);
    return createRun(request, layout, 1);
  }
  const unpublished = await isUnpublished(stage, layout);
  if (!unpublished) await checkRunCanStart(stage, runId, request.onExistingArtifacts);
  const spec = unpublished
    ? undefined
    : await readRunSpec(stage, layout).catch((error: unknown) => {
        // A damaged run can still be overwritten.
        if (request.onExistingArtifacts === 'overwrite' && !(error instanceof StageError)) return undefined;
        throw error;
      });
  const lease = await RunLease.take(stage, layout);
  if (!(lease instanceof RunLease)) throw inProgress(runId, lease);
  try {
    if (request.onExistingArtifacts === 'resume' && !unpublished) {
      if (spec === undefined) {
        throw new RunExistsError(
          `${stage.describe(runId)} exists but is not a dpf run, so there is nothing to resume; use another runId, or 'overwrite' to replace the folder`,
        );
      }
      return await resumeRun(request, layout, spec, lease);
    }
    // Overwrite (or a run whose creation was cut short before it was published): the spec goes
    // first, so readers see no run at once; epochs keep rising, so a replaced driver of the old
    // run can write nothing the new one would read.
    await stage.delete(layout.spec);
    await stage.deletePrefix(`${layout.root}/`);
    await lease.release();
    return await createRun(request, layout, lease.epoch + 1);
  } catch (error) {
    await lease.release().catch(() => undefined);
    throw error;
  }
}

async function createRun(request: RunRequest, layout: RunLayout, minEpoch: number): Promise<DPFRun> {
  const { stage, partitions } = request;
  const lease = await RunLease.take(stage, layout, minEpoch);
  if (!(lease instanceof RunLease)) {
    throw new RunExistsError(`Another process created run "${request.runId}" on ${stage.location} at the same moment; choose another runId, or wait for it`);
  }
  let sessions: DriverSessions | undefined;
  try {
    const spec: RunSpec = {
      dpf: 'run',
      format: FORMATS.run,
      runId: request.runId,
      uid: randomBytes(8).toString('hex'),
      input: request.input,
      folderEncoding: request.folderEncoding,
      createdAt: new Date().toISOString(),
    };
    sessions = await openDriverSessions(request.session);
    // On PostgreSQL the run's epoch row exists from the start: a later resume raises it, and a
    // commit of this driver then waits for that (or sees it), never slipping in unfenced. It is
    // written before the run is published: a database that refuses it leaves no run behind.
    if (request.session.kind === 'postgres') await fenceNewRun(sessions, spec.uid, lease.epoch);
    // A new run's partition list is always list 1 (readers look there before its start record).
    await stage.put(layout.partitionList(1), encodePartitions(partitions));
    if ((await stage.create(layout.spec, JSON.stringify(spec, null, 2))) === undefined) {
      throw new RunExistsError(`Another process created run "${request.runId}" on ${stage.location} at the same moment; choose another runId`);
    }
    const follower = new RunFollower(stage, layout, spec);
    follower.partitions = [...partitions];
    const todo = partitions.map((_, index) => index);
    const start = startRecord(request, lease, partitions.length, 1, todo.length, request.input.mode === 'dataframe' ? lease.epoch : undefined);
    const seq = await follower.takeOver(lease, () => [start]);
    return await begin(request, { stage, layout, spec, partitions, state: follower.state, todo, lease, seq, session: request.session, sessions, input: request.rows });
  } catch (error) {
    await sessions?.close().catch(() => undefined);
    await lease.release().catch(() => undefined);
    throw error;
  }
}

async function resumeRun(request: RunRequest, layout: RunLayout, spec: RunSpec, lease: RunLease): Promise<DPFRun> {
  const { stage } = request;
  const follower = await RunFollower.load(stage, layout, spec);
  // A lease deleted by hand restarts at epoch 1: the journal's epochs must keep rising.
  if (lease.epoch <= follower.state.epoch) await lease.raiseEpoch(follower.state.epoch + 1);
  const previousModule = follower.state.start?.module;
  checkResumeMatches(spec, previousModule, request.input, request.module);
  // A resume or rerun that gives no args calls the function with the run's.
  if (request.module.args === undefined && previousModule?.args !== undefined) request = { ...request, module: { ...request.module, args: previousModule.args } };
  const previousSession = follower.state.start?.session;
  if (previousSession !== undefined && !sameSessionDatabase(previousSession, request.session)) {
    throw new InvalidOptionError(
      'sessionDatabase',
      `run "${spec.runId}" wrote its sessions to ${describeSessionTarget(previousSession)}, not ${describeSessionTarget(request.session)}; ` +
        'resume it with the same sessionDatabase, so that no partition writes its rows twice',
    );
  }
  // A DataFrame run keeps its input, or — given its rows again — writes them to a folder of this epoch.
  const input = spec.input.mode !== 'dataframe' ? undefined : request.rows !== undefined ? lease.epoch : (follower.state.start?.input ?? 1);
  if (spec.input.mode === 'dataframe' && request.rows === undefined && (await readInputManifest(stage, layout.inputFolder(input!)))?.complete !== true) {
    throw new RunExistsError(
      `run "${spec.runId}" stopped before its input was fully written, so it cannot be resumed without its source; give the source again, or run it again with onExistingArtifacts: 'overwrite'`,
    );
  }
  const partitions = [...follower.partitions];
  const indexById = new Map(partitions.map((partition, index) => [partition.id, index]));
  const requested: number[] = [];
  for (const partition of request.partitions) {
    let index = indexById.get(partition.id);
    if (index === undefined) {
      index = partitions.push(partition) - 1;
      indexById.set(partition.id, index);
    }
    requested.push(index);
  }
  const listChanged = partitions.length > follower.partitions.length;
  const list = listChanged ? lease.epoch : (follower.state.start?.list ?? 1);
  if (listChanged) await stage.put(layout.partitionList(list), encodePartitions(partitions));
  follower.partitions = partitions;
  follower.state.grow(partitions.length);

  const sessions = await openDriverSessions(request.session);
  try {
    const committed = await fenceSessions(sessions, spec.uid, lease.epoch, (note) => follower.state.note(note));
    let present = await stage.list(`${layout.root}/`);
    const build = async (again: boolean): Promise<JournalRecord[]> => {
      // Decided again after a late segment of the old driver: what it wrote since is on the stage now.
      if (again) present = await stage.list(`${layout.root}/`);
      const state = follower.state;
      const at = Date.now();
      const adopted: PartitionRecord[] = [];
      const notes: JournalRecord[] = [];
      const todo = new Set<number>();
      for (const index of requested) {
        const partition = state.partitions[index]!;
        const entry = committed.get(index);
        // A committed attempt the journal does not know is adopted — if what it left on the stage is still there.
        if (partition.status !== PartitionStatus.DONE && entry !== undefined && missingArtifact([...entry.artifacts, ...entry.logs], present) === undefined) {
          adopted.push(adoptedRecord(index, entry));
          continue;
        }
        if (partition.status !== PartitionStatus.DONE) {
          todo.add(index);
          continue;
        }
        const gone = missingArtifact(partition.artifacts ?? [], present);
        if (gone !== undefined) {
          notes.push({ t: 'note', at, message: `partition "${partitions[index]!.id}" was DONE but its artifact ${stage.describe(gone)} is gone: it runs again` });
          todo.add(index);
        }
      }
      const transitions: PartitionRecord[] = [];
      state.partitions.forEach((partition, index) => {
        // What it runs again becomes PENDING; what an interrupted driver left unfinished and this
        // run does not take up becomes CANCELLED.
        if (todo.has(index)) {
          if (partition.status !== PartitionStatus.PENDING) transitions.push({ t: 'partition', i: index, s: PartitionStatus.PENDING, a: partition.attempts, at });
        } else if ((partition.status === PartitionStatus.PENDING || partition.status === PartitionStatus.RUNNING) && !adopted.some((record) => record.i === index)) {
          transitions.push({ t: 'partition', i: index, s: PartitionStatus.CANCELLED, a: partition.attempts, at });
        }
      });
      const start = startRecord(request, lease, partitions.length, list, todo.size, input);
      return [start, ...notes, ...adopted, ...transitions];
    };
    const seq = await follower.takeOver(lease, build);
    const todo = requested.filter((index) => follower.state.partitions[index]!.status === PartitionStatus.PENDING);
    await clearUnrecordedFiles(stage, layout, follower.partitions, follower.state, new Set(todo), present);
    // A cancel asked for while a queue run was between drivers is for its next driver to carry out.
    if (request.queue?.role !== 'drive') await stage.delete(layout.cancelRequest);
    return await begin(request, { stage, layout, spec, partitions, state: follower.state, todo, lease, seq, session: request.session, sessions, input: request.rows });
  } catch (error) {
    await sessions.close().catch(() => undefined);
    throw error;
  }
}

/**
 * Executes the run the driver has taken: here (the local pool, or the queue when this process
 * drives a queue run), or — a run submitted to a queue — hands it to the queue's workers.
 */
async function begin(request: RunRequest, plan: DriverPlan): Promise<DPFRun> {
  const { stage, spec, partitions, state } = plan;
  // The queue's modules (BullMQ, ioredis: a tenth of a second to import) load only for queue runs.
  if (request.queue?.role === 'submit') return (await import('./queue-submit.js')).submitToQueue(plan, request.queue);
  const queue = request.queue === undefined ? undefined : { url: request.queue.url, name: request.queue.name, Executor: (await import('../execute/queue/queue-executor.js')).QueueExecutor };
  return DPFRun.live(stage, spec, partitions, state, (onCommitted) => new RunDriver({ ...plan, queue }, onCommitted));
}

function startRecord(request: RunRequest, lease: RunLease, partitions: number, list: number, todo: number, input: number | undefined): StartRecord {
  return {
    ...(request.queue !== undefined ? { queue: storedQueueTarget(request.queue), ...(request.queue.role === 'submit' ? { purpose: 'submit' as const } : {}) } : {}),
    ...(input !== undefined ? { input } : {}),
    t: 'start',
    epoch: lease.epoch,
    owner: lease.owner,
    pid: process.pid,
    host: hostname(),
    at: Date.now(),
    partitions,
    list,
    todo,
    module: request.module,
    options: request.options,
    session: storedSessionTarget(request.session),
  };
}

/** Fences older drivers out of the session database and reads the attempts it committed. */
async function fenceSessions(sessions: DriverSessions, runUid: string, epoch: number, note: (message: string) => void): Promise<Map<number, CommittedAttempt>> {
  if (sessions.ledger === undefined) return new Map();
  try {
    await sessions.ledger.fence(runUid, epoch);
    return await sessions.ledger.committed(runUid);
  } catch (error) {
    if (sessions.host !== undefined) {
      // A DuckDB file another live process holds: each attempt's commit still consults the ledger.
      note(`could not open the session database to adopt committed attempts: ${(error as Error).message}`);
      return new Map();
    }
    throw new SessionDatabaseError(
      `Resuming the run needs its session database, to find the attempts that committed rows before the driver stopped, and it cannot be reached: ${(error as Error).message}; check sessionDatabase (and PGPASSWORD)`,
      { cause: error },
    );
  }
}

async function fenceNewRun(sessions: DriverSessions, runUid: string, epoch: number): Promise<void> {
  try {
    await sessions.ledger!.fence(runUid, epoch);
  } catch (error) {
    throw new SessionDatabaseError(`The run's session database cannot be reached: ${(error as Error).message}; check sessionDatabase (and PGPASSWORD)`, { cause: error });
  }
}

function adoptedRecord(index: number, entry: CommittedAttempt): PartitionRecord {
  const record: PartitionRecord = {
    t: 'partition',
    i: index,
    s: PartitionStatus.DONE,
    a: entry.attempt,
    at: entry.finishedAt,
    from: entry.startedAt,
    k: entry.token,
    art: entry.artifacts,
    log: entry.logs,
    adopted: true,
  };
  if (entry.numRows !== undefined) record.rows = entry.numRows;
  return record;
}

/** The first artifact of a DONE partition that is gone from the stage (or cut short), if any. */
function missingArtifact(artifacts: readonly { key: string; offset?: number; length: number }[], present: readonly { path: string; size: number }[]): string | undefined {
  const sizes = new Map(present.map((entry) => [entry.path, entry.size]));
  for (const artifact of artifacts) {
    const size = sizes.get(artifact.key);
    if (size === undefined || size < (artifact.offset ?? 0) + artifact.length || (artifact.offset === undefined && size !== artifact.length)) return artifact.key;
  }
  return undefined;
}

/**
 * A run whose creation stopped before its spec was published (its driver died while creating it):
 * only dpf's own state is there. It is no run yet, so any start replaces it.
 */
async function isUnpublished(stage: Stage, layout: RunLayout): Promise<boolean> {
  if ((await stage.head(layout.spec)) !== undefined) return false;
  const entries = await stage.list(`${layout.root}/`);
  return entries.length > 0 && entries.every((entry) => entry.path.startsWith(`${layout.stateFolder}/`));
}

async function runExists(stage: Stage, layout: RunLayout): Promise<boolean> {
  return (await stage.list(`${layout.root}/`, { limit: 1 })).length > 0;
}

/**
 * Refuses a resume that would not continue the same run: another input folder or mode, other
 * partition columns, another source, or another function. `'resume'` never quietly runs with
 * what the run was planned with instead of what was asked.
 */
export function checkResumeMatches(spec: RunSpec, previousModule: ModuleReference | undefined, input: RunSpec['input'], module: ModuleReference): void {
  const before = spec.input;
  const refuse = (option: string, difference: string, keep: string): never => {
    throw new InvalidOptionError(
      option,
      `run "${spec.runId}" ${difference}; 'resume' continues a run as it was started — ${keep}, or start another run (another runId, or onExistingArtifacts: 'overwrite')`,
    );
  };
  if (before.mode !== input.mode) refuse('onExistingArtifacts', `is a ${before.mode}-mode run, not a ${input.mode}-mode one`, `resume it with ${before.mode === 'stage' ? 'runFromStage' : 'run'}`);
  if (before.mode === 'stage' && input.mode === 'stage' && before.location !== input.location) {
    refuse('stageLocation', `was planned from ${before.location}, not ${input.location}`, `give stageLocation: ${JSON.stringify(before.location)}`);
  }
  if (before.mode === 'dataframe' && input.mode === 'dataframe') {
    const samePartitionBy = before.partitionBy.length === input.partitionBy.length && before.partitionBy.every((column, i) => column.toLowerCase() === input.partitionBy[i]!.toLowerCase());
    if (!samePartitionBy) {
      const given = before.partitionBy.length === 1 ? JSON.stringify(before.partitionBy[0]) : JSON.stringify(before.partitionBy);
      refuse('partitionBy', `is partitioned by ${before.partitionBy.join(', ')}, not ${input.partitionBy.join(', ')}`, `give partitionBy: ${given}`);
    }
    if (input.columns !== undefined && !sameColumns(before.columns, input.columns, before.partitionBy)) {
      refuse('columns', `was planned with ${before.columns === undefined ? 'every column' : `columns ${before.columns.join(', ')}`}, not ${input.columns.join(', ')}`, before.columns === undefined ? 'leave columns out' : `give columns: ${JSON.stringify(before.columns)}, or leave it out`);
    }
    if (sameText(before.source) !== sameText(input.source)) {
      refuse('source', `was planned from the source ${before.source}, not ${input.source}`, 'give the same source, or leave it out (a resumed run reads the input it planned)');
    }
  }
  if (previousModule === undefined) return;
  if (previousModule.url !== module.url || previousModule.exportName !== module.exportName) {
    refuse('module', `runs the function ${describeModule(previousModule)}, not ${describeModule(module)}`, 'to rerun its partitions with a fix, fix that module and resume with it');
  }
  if (module.args !== undefined && !sameArgs(previousModule.args, module.args)) {
    refuse('args', `was started with args ${canonical(previousModule.args)}, not ${canonical(module.args)}`, 'give the same args or leave them out (the run keeps its own)');
  }
  if (previousModule.layer?.module !== module.layer?.module) {
    refuse('module', `is ${describeLayer(previousModule.layer)}, not ${describeLayer(module.layer)}`, `resume it the way it was started (${describeLayer(previousModule.layer)})`);
  }
  if (previousModule.layer !== undefined && !sameArgs(previousModule.layer.options, module.layer!.options)) {
    const layerName = describeLayer(previousModule.layer).replace(/^a run of (the layer )?/, '');
    refuse('module', `was started with the ${layerName} options ${canonical(previousModule.layer.options)}, not ${canonical(module.layer!.options)}`, `give the same ${layerName} options as when it started`);
  }
}

function describeLayer(layer: ModuleReference['layer']): string {
  if (layer === undefined) return 'a run of DPF';
  if (layer.module === 'models/training-layer') return 'a run of ManyModelTraining';
  if (layer.module === 'models/inference-layer') return 'a run of ManyModelInference';
  return `a run of the layer ${layer.module}`;
}

/**
 * Whether `columns` given to a resume name the columns a run was planned with (`planned`;
 * undefined: every column): as a set, in any case, the partition columns (always given) aside.
 */
function sameColumns(planned: readonly string[] | undefined, columns: readonly string[], partitionBy: readonly string[]): boolean {
  if (planned === undefined) return false;
  const keys = new Set(partitionBy.map((name) => name.toLowerCase()));
  const set = (names: readonly string[]): Set<string> => new Set(names.map((name) => name.toLowerCase()).filter((name) => !keys.has(name)));
  const [before, now] = [set(planned), set(columns)];
  return before.size === now.size && [...now].every((name) => before.has(name));
}

/** SQL text compared without the differences of layout that do not change it. */
function sameText(text: string): string {
  return text.trim().replace(/\s+/g, ' ');
}

function describeModule(module: ModuleReference): string {
  const path = module.url.startsWith('file:') ? fileURLToPath(module.url) : module.url;
  return module.exportName === 'default' ? path : `${path} (export "${module.exportName}")`;
}

function runNotFound(stage: Stage, runId: string): RunNotFoundError {
  return new RunNotFoundError(
    `There is no run "${runId}" on the stage ${stage.location} to resume: check the runId and the stage; ` +
      "to start it as a new run, leave out onExistingArtifacts (or give 'error')",
  );
}

function runExistsError(stage: Stage, runId: string): RunExistsError {
  return new RunExistsError(
    `A run "${runId}" already exists on the stage ${stage.location}. Pass onExistingArtifacts: 'overwrite' to replace it, ` +
      `'resume' to keep its DONE partitions and run the rest, or choose another runId`,
  );
}

function inProgress(runId: string, holder: LeaseHolder): RunInProgressError {
  return new RunInProgressError(
    `Run "${runId}" is being executed right now by pid ${holder.pid} on ${holder.host} (since ${new Date(holder.startedAt).toISOString()}, ` +
      `last heard ${new Date(holder.renewedAt).toISOString()}); wait for it (DPFRun.restoreFrom(runId, stage).wait()), cancel it, or choose another runId`,
  );
}
