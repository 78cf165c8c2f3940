import { RunNotFoundError } from '../errors.js';
import { openStage } from '../stage/open-stage.js';
import { RunLayout } from '../stage/run-layout.js';
import type { Stage } from '../stage/stage.js';
import { DPFRun } from './dpf-run.js';
import { readRunSpec } from './run-spec.js';

/** What a folder on a stage holds, read as a run: its handle, or why it cannot be read. */
export type StageRun = { runId: string; run: DPFRun } | { runId: string; damaged: string };

/**
 * The folders on a stage that may be runs (every top-level folder), and the stage's location as
 * dpf resolved it; none when the stage does not exist. `dpf runs` and the dashboard list runs so.
 */
export async function stageFolders(location: string): Promise<{ location: string; folders: string[]; stage: Stage | undefined }> {
  const stage = await openStage(location, { create: false });
  return { location: stage?.location ?? location, folders: stage === undefined ? [] : await stage.listFolders(''), stage };
}

/** The uid of the run stored in a folder now (it changes when the run is overwritten by another of its id); undefined when there is none or it cannot be read. */
export async function storedRunUid(stage: Stage, runId: string): Promise<string | undefined> {
  return (await readRunSpec(stage, new RunLayout(runId)).catch(() => undefined))?.uid;
}

/** The run in a stage folder; undefined when the folder is not a run. */
export async function restoreStageRun(runId: string, location: string): Promise<StageRun | undefined> {
  try {
    return { runId, run: await DPFRun.restoreFrom(runId, location) };
  } catch (error) {
    if (error instanceof RunNotFoundError) return undefined;
    return { runId, damaged: (error as Error).message };
  }
}
