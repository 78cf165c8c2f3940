import { randomBytes } from 'node:crypto';
import { InvalidOptionError, RunExistsError, RunInProgressError } from '../errors.js';
import { readInputManifest } from '../data/input-segments.js';
import type { PlannedInput } from '../plan/dataframe-partitions.js';
import type { PlannedPartition } from '../plan/partition.js';
import { RunLayout } from '../stage/run-layout.js';
import { joinStagePath, type Stage } from '../stage/stage.js';
import { PartitionStatus } from '../status.js';
import { DPFRun } from './dpf-run.js';
import { JournalReader } from './journal.js';
import { RunDriver } from './run-driver.js';
import { isHolderAlive, type LockHolder, readLockHolder, RunLock } from './run-lock.js';
import { encodePartitions, readPartitions, readRunSpec, type RunSpec } from './run-spec.js';
import { RunState } from './run-state.js';

/** What to do when the stage already holds a run with the same runId. */
export type OnExistingArtifacts = 'error' | 'overwrite' | 'resume';

/** A planned run, ready to be put on the stage and started. */
export interface RunRequest {
  stage: Stage;
  spec: RunSpec;
  /** The partitions this request asks for. */
  partitions: readonly PlannedPartition[];
  onExistingArtifacts: OnExistingArtifacts;
  /** DataFrame mode, new run: the planned rows, written to the run's input while it runs. */
  input?: PlannedInput;
}

/**
 * Refuses early — before planning reads a large source — a run that {@link startRun} would
 * refuse: one a live driver is executing, or an existing one with `onExistingArtifacts: 'error'`.
 */
export async function checkRunCanStart(stage: Stage, runId: string, onExistingArtifacts: OnExistingArtifacts): Promise<void> {
  const layout = new RunLayout(runId);
  if (!(await stage.exists(layout.root))) return;
  const holder = await readLockHolder(stage, layout);
  if (holder !== undefined && isHolderAlive(holder)) throw inProgress(runId, holder);
  if (onExistingArtifacts === 'error') throw runExists(stage, runId);
}

/**
 * Puts a run on the stage and starts executing it in this process.
 *
 * - A new run is assembled in a temporary folder (spec, partition list, lock) and published by
 *   one rename, so no one ever sees half a run and two drivers cannot both create it.
 * - `'error'` refuses an existing run; `'overwrite'` moves it aside and deletes it, then starts
 *   afresh; `'resume'` keeps its DONE partitions and runs the requested ones that are not DONE
 *   (adding partitions it did not have). A run a live driver is executing is never touched.
 */
export async function startRun(request: RunRequest): Promise<DPFRun> {
  const { stage, spec } = request;
  const layout = new RunLayout(spec.runId);
  if (await stage.exists(layout.root)) {
    await checkRunCanStart(stage, spec.runId, request.onExistingArtifacts);
    const lock = await RunLock.take(stage, layout);
    if (!(lock instanceof RunLock)) throw inProgress(spec.runId, lock);
    try {
      if (request.onExistingArtifacts === 'resume') {
        if ((await readRunSpec(stage, layout)) !== undefined) return await resumeRun(request, layout, lock);
        throw new RunExistsError(
          `${stage.location}/${spec.runId} exists but is not a dpf run, so there is nothing to resume; ` +
            "use another runId, or 'overwrite' to replace the folder",
        );
      }
      await discardRun(stage, layout);
    } catch (error) {
      await lock.release().catch(() => undefined);
      throw error;
    }
  }
  return createRun(request, layout);
}

async function createRun(request: RunRequest, layout: RunLayout): Promise<DPFRun> {
  const { stage, spec, partitions } = request;
  const lock = RunLock.forNewRun(stage, layout);
  const draft = `.dpf-new-${spec.runId}-${randomBytes(4).toString('hex')}`;
  const draftLayout = new RunLayout(draft);
  await stage.write(draftLayout.spec, JSON.stringify(spec, null, 2));
  await stage.write(draftLayout.partitions, encodePartitions(partitions));
  await stage.write(draftLayout.lock, lock.content);
  try {
    await stage.move(draft, layout.root);
  } catch {
    await stage.remove(draft);
    throw new RunExistsError(`Another process created run "${spec.runId}" on ${stage.location} at the same moment; choose another runId`);
  }
  const todo = partitions.map((_, index) => index);
  const state = new RunState(partitions.length);
  return DPFRun.live(stage, spec, partitions, state, (onCommitted) =>
    new RunDriver({ stage, layout, spec, partitions, state, todo, generation: 1, resumed: false, lock, ...(request.input !== undefined ? { input: request.input } : {}) }, onCommitted),
  );
}

async function resumeRun(request: RunRequest, layout: RunLayout, lock: RunLock): Promise<DPFRun> {
  const { stage, spec } = request;
  const previous = (await readRunSpec(stage, layout))!;
  const mismatch = inputMismatch(previous, spec);
  if (mismatch !== undefined) {
    throw new InvalidOptionError('onExistingArtifacts', `run "${spec.runId}" ${mismatch}; 'resume' continues the same input — use 'overwrite' or another runId`);
  }
  if (previous.input.mode === 'dataframe' && (await readInputManifest(stage, layout.inputFolder))?.complete !== true) {
    throw new RunExistsError(
      `run "${spec.runId}" stopped before its input was fully written, so it cannot be resumed; run it again with onExistingArtifacts: 'overwrite'`,
    );
  }
  const partitions = [...(await readPartitions(stage, layout))];
  const state = new RunState(partitions.length);
  state.apply(await new JournalReader(stage, layout.journal).readNew());
  const indexById = new Map(partitions.map((partition, index) => [partition.id, index]));
  const todo: number[] = [];
  for (const partition of request.partitions) {
    let index = indexById.get(partition.id);
    if (index === undefined) {
      index = partitions.push(partition) - 1;
      indexById.set(partition.id, index);
    }
    if (state.partitions[index]?.status !== PartitionStatus.DONE) todo.push(index);
  }
  state.grow(partitions.length);
  const resumedSpec: RunSpec = { ...spec, createdAt: previous.createdAt, folderEncoding: previous.folderEncoding };
  await stage.write(layout.spec, JSON.stringify(resumedSpec, null, 2));
  await stage.write(layout.partitions, encodePartitions(partitions));
  await stage.remove(layout.cancelRequest);
  return DPFRun.live(stage, resumedSpec, partitions, state, (onCommitted) =>
    new RunDriver(
      { stage, layout, spec: resumedSpec, partitions, state, todo, generation: state.generation + 1, resumed: true, lock },
      onCommitted,
    ),
  );
}

/** Moves a run aside (one rename, so it disappears at once) and deletes it. */
async function discardRun(stage: Stage, layout: RunLayout): Promise<void> {
  const trash = joinStagePath(`.dpf-trash-${layout.runId}-${randomBytes(4).toString('hex')}`);
  await stage.move(layout.root, trash);
  await stage.remove(trash);
}

function inputMismatch(previous: RunSpec, next: RunSpec): string | undefined {
  const [before, after] = [previous.input, next.input];
  if (before.mode !== after.mode) return `is a ${before.mode}-mode run, not a ${after.mode}-mode one`;
  if (before.mode === 'stage' && after.mode === 'stage' && before.location !== after.location) {
    return `was planned from ${before.location}, not ${after.location}`;
  }
  if (before.mode === 'dataframe' && after.mode === 'dataframe' && before.partitionBy.join() !== after.partitionBy.join()) {
    return `is partitioned by ${before.partitionBy.join(', ')}, not ${after.partitionBy.join(', ')}`;
  }
  return undefined;
}

function runExists(stage: Stage, runId: string): RunExistsError {
  return new RunExistsError(
    `A run "${runId}" already exists on the stage ${stage.location}. Pass onExistingArtifacts: 'overwrite' to replace it, ` +
      `'resume' to keep its DONE partitions and run the rest, or choose another runId`,
  );
}

function inProgress(runId: string, holder: LockHolder): RunInProgressError {
  return new RunInProgressError(
    `Run "${runId}" is being executed right now by pid ${holder.pid} on ${holder.host} (since ${new Date(holder.startedAt).toISOString()}); ` +
      'wait for it (DPFRun.restoreFrom(runId, stage).wait()), cancel it, or choose another runId',
  );
}
