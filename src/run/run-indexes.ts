import { closestName } from '../closest-name.js';
import { ArtifactNotFoundError, RunNotFoundError } from '../errors.js';
import type { ArtifactRef } from '../model/refs.js';
import type { ArtifactFinder } from '../stage/attempt-artifacts.js';
import { RunLayout } from '../stage/run-layout.js';
import type { Stage } from '../stage/stage.js';
import { PartitionStatus } from '../status.js';
import { RunFollower } from './run-follower.js';
import { readRunSpec } from './run-spec.js';

/**
 * Where the artifacts of the runs on a stage are — read from each run's journal and partition
 * list, once per run and again when a partition asked for is not (yet) DONE there — so a
 * partition function can `downloadFromStage` what another run's partition uploaded (a model
 * trained by an earlier run, say). The one place that finds another run's artifact: by the
 * partition's folder (`stagePath`) or by its id ({@link RunIndexes.findByPartition}).
 *
 * A partition's folder is the one its own run recorded in its partition list (that run's folder
 * encoding, shortened names included): nothing here encodes or decodes a folder name.
 */
export class RunIndexes implements ArtifactFinder {
  private readonly runs = new Map<string, Promise<RunIndex | undefined>>();

  constructor(private readonly stage: Stage) {}

  async find(folder: string, name: string, operation = 'downloadFromStage'): Promise<ArtifactRef | undefined> {
    const [runId, ...rest] = folder.split('/');
    if (runId === undefined || runId === '' || rest.length === 0) return undefined;
    const index = await this.index(runId);
    if (index === undefined) return undefined;
    const path = rest.join('/');
    const partition = await index.lookup(() => index.byStagePath(path));
    return partition === undefined ? undefined : artifactOf(runId, partition, name, operation);
  }

  async findByPartition(runId: string, partitionId: string, name: string, operation = 'downloadFromStage'): Promise<ArtifactRef> {
    const index = await this.index(runId);
    if (index === undefined) {
      throw new RunNotFoundError(
        `${operation}: there is no run "${runId}" on the stage ${this.stage.location} (no ${this.stage.describe(new RunLayout(runId).spec)}); ` +
          'check the runId (the run whose artifacts to read, as it was started) and that this DPF uses the stage that run was on',
      );
    }
    const partition = await index.lookup(() => index.byId(partitionId));
    if (partition === undefined) throw index.noSuchPartition(partitionId, operation);
    return artifactOf(runId, partition, name, operation);
  }

  private index(runId: string): Promise<RunIndex | undefined> {
    let index = this.runs.get(runId);
    if (index === undefined) {
      index = this.load(runId);
      this.runs.set(runId, index);
      // A run being read may not exist yet (or its spec not be readable): look again next time.
      index.then(
        (loaded) => loaded === undefined && this.runs.delete(runId),
        () => this.runs.delete(runId),
      );
    }
    return index;
  }

  private async load(runId: string): Promise<RunIndex | undefined> {
    const layout = new RunLayout(runId);
    const spec = await readRunSpec(this.stage, layout);
    if (spec === undefined) return undefined;
    return new RunIndex(runId, await RunFollower.load(this.stage, layout, spec));
  }
}

/** One partition of a run, as the run's journal has it now. */
interface IndexedPartition {
  id: string;
  status: PartitionStatus;
  artifacts: readonly ArtifactRef[];
}

/** A run's partitions by folder and by id, following the run's journal. */
class RunIndex {
  private readonly byFolderIndex = new Map<string, number>();
  private readonly byIdIndex = new Map<string, number>();
  private refreshing: Promise<void> | undefined;

  constructor(
    private readonly runId: string,
    private readonly follower: RunFollower,
  ) {
    this.grow();
  }

  /**
   * The partition `find` names — found at once if it is DONE, else after reading what the run's
   * journal gained since (it may have finished since this worker first read it).
   */
  async lookup(find: () => number | undefined): Promise<IndexedPartition | undefined> {
    const first = find();
    if (first !== undefined && this.partition(first).status === PartitionStatus.DONE) return this.partition(first);
    await this.refresh();
    const found = find();
    return found === undefined ? undefined : this.partition(found);
  }

  byId(id: string): number | undefined {
    return this.byIdIndex.get(id);
  }

  /**
   * The partition a `stagePath` below the run names: the one whose folder it is, else the one
   * whose id it is (`train/A|B` for the folder `train/A%7CB`). A folder always means its own
   * partition — `details.stagePath` must name it whatever other ids there are — so a path that
   * is one partition's folder and another's id (the id `A%7CB`, next to `A|B`) is the folder's.
   */
  byStagePath(path: string): number | undefined {
    return this.byFolderIndex.get(path) ?? this.byIdIndex.get(path);
  }

  noSuchPartition(partitionId: string, operation: string): ArtifactNotFoundError {
    const ids = this.follower.partitions.map((partition) => partition.id);
    const near = closestName(partitionId, ids);
    const some = ids.slice(0, 5).map((id) => JSON.stringify(id)).join(', ');
    return new ArtifactNotFoundError(
      `${operation}: run "${this.runId}" has no partition "${partitionId}"${near === undefined ? '' : ` (did you mean "${near}"?)`}; ` +
        `it has ${ids.length} partition${ids.length === 1 ? '' : 's'}${ids.length === 0 ? '' : `: ${some}${ids.length > 5 ? ', …' : ''}`}. ` +
        `Give partitionId as that run names its partitions (its getPartitionDetails() keys): a DataFrame key as text (a composite key as "col=value/col=value"), ` +
        'or a stage-mode file path relative to its input location',
    );
  }

  private partition(index: number): IndexedPartition {
    const state = this.follower.state.partitions[index]!;
    return { id: this.follower.partitions[index]!.id, status: state.status, artifacts: state.artifacts ?? [] };
  }

  /** Reads what the run's journal gained since the last look (one read at a time, shared by the callers waiting for it). */
  private refresh(): Promise<void> {
    this.refreshing ??= this.follower
      .refresh()
      .then(() => this.grow())
      .finally(() => {
        this.refreshing = undefined;
      });
    return this.refreshing;
  }

  /** Indexes the partitions a resume added to the run. */
  private grow(): void {
    const { partitions } = this.follower;
    for (let i = this.byIdIndex.size; i < partitions.length; i++) {
      this.byFolderIndex.set(partitions[i]!.folder, i);
      this.byIdIndex.set(partitions[i]!.id, i);
    }
  }
}

/** Partition `partition`'s artifact `name`, or an ArtifactNotFoundError saying why it has none. */
function artifactOf(runId: string, partition: IndexedPartition, name: string, operation: string): ArtifactRef {
  if (partition.status !== PartitionStatus.DONE) {
    const fix =
      partition.status === PartitionStatus.PENDING || partition.status === PartitionStatus.RUNNING
        ? `wait for run "${runId}" to finish (or resume it with onExistingArtifacts: 'resume' if its driver is gone)`
        : `resume run "${runId}" (onExistingArtifacts: 'resume') to run it again, or read another partition`;
    throw new ArtifactNotFoundError(`${operation}: partition "${partition.id}" of run "${runId}" is ${partition.status}, not DONE, so it has no artifacts to read; ${fix}`);
  }
  const artifact = partition.artifacts.find((candidate) => candidate.name === name);
  if (artifact === undefined) {
    throw new ArtifactNotFoundError(
      `${operation}: partition "${partition.id}" of run "${runId}" has no artifact "${name}"; it has: ${partition.artifacts.map((candidate) => candidate.name).join(', ') || 'none'}`,
    );
  }
  return artifact;
}
