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
  const byFolder = folderIndex(partitions);
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
 * keeping `keep` too: what the driver reported that its journal may not hold yet. It looks only
 * at that partition's records, so it costs little in a run of a million partitions. Another
 * partition's folder inside it (on S3 the objects `x` and `x/y.csv` can both be inputs) is left
 * alone.
 */
export async function clearPartitionFolder(stage: Stage, layout: RunLayout, partitions: readonly PlannedPartition[], state: RunState, index: number, keep: ReadonlySet<string>): Promise<void> {
  const present = await stage.list(`${layout.partitionFolder(partitions[index]!.folder)}/`);
  const partition = state.partitions[index];
  const referenced = new Set<string>(keep);
  for (const ref of partition?.artifacts ?? []) referenced.add(ref.key);
  for (const ref of partition?.logs ?? []) referenced.add(ref.key);
  const folders = folderIndex(partitions);
  const root = `${layout.root}/`;
  const own = (path: string): boolean => ownerOf(path.slice(root.length), folders) === index;
  await Promise.all(present.filter((entry) => !referenced.has(entry.path) && own(entry.path)).map((entry) => stage.delete(entry.path)));
}

const folderIndexes = new WeakMap<readonly PlannedPartition[], ReadonlyMap<string, number>>();
/** The partitions by folder, made once per partition list. */
function folderIndex(partitions: readonly PlannedPartition[]): ReadonlyMap<string, number> {
  let index = folderIndexes.get(partitions);
  if (index === undefined) {
    index = new Map(partitions.map((partition, i) => [partition.folder, i]));
    folderIndexes.set(partitions, index);
  }
  return index;
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
