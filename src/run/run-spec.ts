import { RunNotFoundError } from '../errors.js';
import type { ModuleReference } from '../execute/partition-module.js';
import type { SessionTarget } from '../execute/protocol.js';
import type { ResolvedExecutionOptions } from '../execution-options.js';
import type { PartitionInput, PlannedPartition } from '../plan/partition.js';
import type { StoredKey } from '../plan/partition-keys.js';
import type { FolderEncoding } from '../stage/partition-folder.js';
import type { RunLayout } from '../stage/run-layout.js';
import type { Stage } from '../stage/stage.js';

/** Stage mode's input: the absolute input folder and the glob that chose its files. */
export interface StageInput {
  mode: 'stage';
  location: string;
  filePattern: string;
}

/** DataFrame mode's input: what was partitioned, by which columns (the rows are in `_dpf/input/`). */
export interface DataFrameInput {
  mode: 'dataframe';
  partitionBy: string[];
  source: string;
  rows: number;
}

/** What a run is: kept in `_dpf/run.json`, so anyone can restore, inspect or resume it. */
export interface RunSpec {
  format: 1;
  runId: string;
  input: StageInput | DataFrameInput;
  module: ModuleReference;
  executionOptions: ResolvedExecutionOptions;
  /** Where `context.withSession` connects. */
  session: SessionTarget;
  folderEncoding: FolderEncoding;
  createdAt: string;
}

/** The planned partitions in `_dpf/partitions.json`, column by column (compact for many partitions). */
interface StoredPartitions {
  ids: string[];
  folders: string[];
  sizes: number[];
  inputs: PartitionInput[];
  /** DataFrame mode: the typed keys (JSON-safe). */
  keys?: StoredKey[];
}

export function encodePartitions(partitions: readonly PlannedPartition[]): string {
  const stored: StoredPartitions = {
    ids: partitions.map((p) => p.id),
    folders: partitions.map((p) => p.folder),
    sizes: partitions.map((p) => p.size),
    inputs: partitions.map((p) => p.input),
  };
  if (partitions.some((p) => p.key !== undefined)) stored.keys = partitions.map((p) => p.key ?? null);
  return JSON.stringify(stored);
}

export async function readPartitions(stage: Stage, layout: RunLayout): Promise<PlannedPartition[]> {
  const bytes = await stage.read(layout.partitions);
  if (bytes === undefined) throw new RunNotFoundError(`run "${layout.runId}" has no partition list on the stage ${stage.location}`);
  const stored = JSON.parse(bytes.toString('utf8')) as StoredPartitions;
  return stored.ids.map((id, i) => {
    const partition: PlannedPartition = { id, folder: stored.folders[i]!, size: stored.sizes[i]!, input: stored.inputs[i]! };
    if (stored.keys !== undefined) partition.key = stored.keys[i]!;
    return partition;
  });
}

/** The run's spec, or undefined when no run of that id is on the stage. */
export async function readRunSpec(stage: Stage, layout: RunLayout): Promise<RunSpec | undefined> {
  const bytes = await stage.read(layout.spec);
  return bytes === undefined ? undefined : (JSON.parse(bytes.toString('utf8')) as RunSpec);
}
