import type { PlannedPartition } from '../model/partition.js';
import { RUN_STATE_FOLDER, type RunLayout } from '../stage/run-layout.js';
import type { Stage } from '../stage/stage.js';
import type { RunState } from './run-state.js';

/**
 * Deletes the files in the folders of `owners` (partitions that are not DONE) that no record of
 * the run refers to: what attempts stored before they died, were killed or timed out — under the
 * artifact's own name, or in their `.dpf-attempt-{token}/` folder. Only the journal makes a file
 * part of the run, so these are never read; they are deleted so the folder shows only what the
 * run kept, and so the next attempt gets the artifact's own name. The logs of failed attempts
 * are recorded, and kept.
 *
 * `present` is a listing of (at least) those folders. Only one attempt of a partition runs at a
 * time, so no file of a running attempt is in a folder this is called for.
 */
export async function clearUnrecordedFiles(
  stage: Stage,
  layout: RunLayout,
  partitions: readonly PlannedPartition[],
  state: RunState,
  owners: ReadonlySet<number>,
  present: readonly { path: string }[],
  keep: ReadonlySet<string> = new Set(),
): Promise<void> {
  if (owners.size === 0) return;
  const byFolder = new Map(partitions.map((partition, index) => [partition.folder, index]));
  const referenced = new Set<string>(keep);
  for (const partition of state.partitions) {
    for (const ref of partition.artifacts ?? []) referenced.add(ref.key);
    for (const ref of partition.logs) referenced.add(ref.key);
  }
  const root = `${layout.root}/`;
  const unrecorded = present
    .map((entry) => entry.path)
    .filter((path) => path.startsWith(root) && !path.startsWith(`${root}${RUN_STATE_FOLDER}/`) && !referenced.has(path))
    .filter((path) => {
      const owner = ownerOf(path.slice(root.length), byFolder);
      return owner !== undefined && owners.has(owner);
    });
  await Promise.all(unrecorded.map((path) => stage.delete(path)));
}

/**
 * Deletes what {@link clearUnrecordedFiles} would in one partition's folder (its attempt died),
 * keeping `keep` too: what the driver reported that its journal may not hold yet.
 */
export async function clearPartitionFolder(stage: Stage, layout: RunLayout, partitions: readonly PlannedPartition[], state: RunState, index: number, keep: ReadonlySet<string>): Promise<void> {
  const present = await stage.list(`${layout.partitionFolder(partitions[index]!.folder)}/`);
  await clearUnrecordedFiles(stage, layout, partitions, state, new Set([index]), present, keep);
}

/** The partition whose folder holds a path (the deepest one: stage-mode folders nest). */
function ownerOf(relative: string, byFolder: ReadonlyMap<string, number>): number | undefined {
  const segments = relative.split('/');
  for (let length = segments.length - 1; length > 0; length--) {
    const owner = byFolder.get(segments.slice(0, length).join('/'));
    if (owner !== undefined) return owner;
  }
  return undefined;
}
