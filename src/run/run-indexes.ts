import { ArtifactNotFoundError } from '../errors.js';
import type { ArtifactRef } from '../model/refs.js';
import type { ArtifactFinder } from '../stage/attempt-artifacts.js';
import { RunLayout } from '../stage/run-layout.js';
import type { Stage } from '../stage/stage.js';
import { PartitionStatus } from '../status.js';
import { RunFollower } from './run-follower.js';
import { readRunSpec } from './run-spec.js';

/**
 * Where the artifacts of the runs on a stage are, by partition folder — read once per run from
 * its journal, so a partition function can `downloadFromStage` what another run's partition
 * uploaded (a model trained by an earlier run, say).
 */
export class RunIndexes implements ArtifactFinder {
  private readonly runs = new Map<string, Promise<RunIndex | undefined>>();

  constructor(private readonly stage: Stage) {}

  async find(folder: string, name: string): Promise<ArtifactRef | undefined> {
    const [runId, ...rest] = folder.split('/');
    if (runId === undefined || rest.length === 0) return undefined;
    const index = await this.index(runId);
    const partition = index?.get(rest.join('/'));
    if (partition === undefined) return undefined;
    if (partition.status !== PartitionStatus.DONE) {
      throw new ArtifactNotFoundError(`downloadFromStage: partition "${partition.id}" of run "${runId}" is ${partition.status}, not DONE, so it has no artifacts to read`);
    }
    const artifact = partition.artifacts.find((candidate) => candidate.name === name);
    if (artifact === undefined) {
      throw new ArtifactNotFoundError(
        `downloadFromStage: partition "${partition.id}" of run "${runId}" has no artifact "${name}"; it has: ${partition.artifacts.map((candidate) => candidate.name).join(', ') || 'none'}`,
      );
    }
    return artifact;
  }

  private index(runId: string): Promise<RunIndex | undefined> {
    let index = this.runs.get(runId);
    if (index === undefined) {
      index = this.load(runId);
      this.runs.set(runId, index);
      // A run being read may not exist yet: look again next time.
      index.catch(() => this.runs.delete(runId));
    }
    return index;
  }

  private async load(runId: string): Promise<RunIndex | undefined> {
    const layout = new RunLayout(runId);
    const spec = await readRunSpec(this.stage, layout);
    if (spec === undefined) return undefined;
    const { partitions, state } = await RunFollower.load(this.stage, layout, spec);
    const index: RunIndex = new Map();
    partitions.forEach((partition, i) => {
      const partitionState = state.partitions[i]!;
      index.set(partition.folder, { id: partition.id, status: partitionState.status, artifacts: partitionState.artifacts ?? [] });
    });
    return index;
  }
}

/** A run's partitions by folder. */
type RunIndex = Map<string, { id: string; status: PartitionStatus; artifacts: readonly ArtifactRef[] }>;
