import { StageDamagedError } from '../errors.js';
import type { PartitionInput, PlannedPartition, StoredKey } from '../model/partition.js';
import type { DataFrameInput, RunSpec, StageInput } from '../model/run-spec.js';
import { FORMATS, parseStored, type StoredHeader } from '../model/stored-json.js';
import type { RunLayout } from '../stage/run-layout.js';
import type { Stage } from '../stage/stage.js';

export type { DataFrameInput, RunSpec, StageInput };

/** What to do about a damaged spec or partition list. */
const DAMAGED_RUN_FIX = "restore the file from a backup, or run the run again with onExistingArtifacts: 'overwrite'";

/** The planned partitions in `_dpf/partitions/{epoch}.json`, column by column (compact for many partitions). */
interface StoredPartitions extends StoredHeader<'partitions'> {
  ids: string[];
  folders: string[];
  sizes: number[];
  inputs: PartitionInput[];
  /** DataFrame mode: the typed keys (JSON-safe). */
  keys?: StoredKey[];
}

export function encodePartitions(partitions: readonly PlannedPartition[]): string {
  const stored: StoredPartitions = {
    dpf: 'partitions',
    format: FORMATS.partitions,
    ids: partitions.map((p) => p.id),
    folders: partitions.map((p) => p.folder),
    sizes: partitions.map((p) => p.size),
    inputs: partitions.map((p) => p.input),
  };
  if (partitions.some((p) => p.key !== undefined)) stored.keys = partitions.map((p) => p.key ?? null);
  return JSON.stringify(stored);
}

/** The run's partition list `list` (see StartRecord.list). */
export async function readPartitions(stage: Stage, layout: RunLayout, list: number): Promise<PlannedPartition[]> {
  const path = layout.partitionList(list);
  const where = stage.describe(path);
  const object = await stage.get(path);
  if (object === undefined) {
    throw new StageDamagedError(where, `run "${layout.runId}" has no partition list ${where}: the file is missing; ${DAMAGED_RUN_FIX}`);
  }
  const stored = parseStored<StoredPartitions>(object.bytes.toString('utf8'), where, 'partitions', DAMAGED_RUN_FIX);
  const count = stored.ids?.length;
  if (!Array.isArray(stored.ids) || [stored.folders, stored.sizes, stored.inputs].some((column) => !Array.isArray(column) || column.length !== count)) {
    throw new StageDamagedError(where, `${where} does not hold a whole partition list: the file is damaged; ${DAMAGED_RUN_FIX}`);
  }
  return stored.ids.map((id, i) => {
    const partition: PlannedPartition = { id, folder: stored.folders[i]!, size: stored.sizes[i]!, input: stored.inputs[i]! };
    if (stored.keys !== undefined) partition.key = stored.keys[i]!;
    return partition;
  });
}

/** The run's spec, or undefined when no run of that id is on the stage. */
export async function readRunSpec(stage: Stage, layout: RunLayout): Promise<RunSpec | undefined> {
  const object = await stage.get(layout.spec);
  if (object === undefined) return undefined;
  const where = stage.describe(layout.spec);
  const spec = parseStored<RunSpec>(object.bytes.toString('utf8'), where, 'run', DAMAGED_RUN_FIX);
  if (typeof spec.uid !== 'string' || spec.input === undefined || spec.folderEncoding === undefined) {
    throw new StageDamagedError(where, `${where} is not a whole run spec: the file is damaged; ${DAMAGED_RUN_FIX}`);
  }
  return spec;
}
