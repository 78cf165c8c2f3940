import type { PackedArtifact } from '../stage/artifact-pack.js';
import type { PackedArtifactFinder } from '../stage/attempt-artifacts.js';
import { RunLayout } from '../stage/run-layout.js';
import type { Stage } from '../stage/stage.js';
import { JournalReader } from './journal.js';
import { readPartitions } from './run-spec.js';
import { RunState } from './run-state.js';

/**
 * Where the packed artifacts of the runs on a stage are, by partition folder — read once per run
 * from its partition list and journal, so a partition function can `downloadFromStage` what
 * another run's partition packed (a model trained by an earlier run, say).
 */
export class RunIndexes implements PackedArtifactFinder {
  private readonly runs = new Map<string, Promise<Map<string, readonly PackedArtifact[]> | undefined>>();

  constructor(private readonly stage: Stage) {}

  async find(folder: string, name: string): Promise<PackedArtifact | undefined> {
    const [runId, ...rest] = folder.split('/');
    if (runId === undefined || rest.length === 0) return undefined;
    const index = await this.index(runId);
    return index?.get(rest.join('/'))?.find((artifact) => artifact.name === name);
  }

  private index(runId: string): Promise<Map<string, readonly PackedArtifact[]> | undefined> {
    let index = this.runs.get(runId);
    if (index === undefined) {
      index = this.load(runId).catch(() => undefined);
      this.runs.set(runId, index);
    }
    return index;
  }

  private async load(runId: string): Promise<Map<string, readonly PackedArtifact[]> | undefined> {
    const layout = new RunLayout(runId);
    if (!(await this.stage.exists(layout.partitions))) return undefined;
    const partitions = await readPartitions(this.stage, layout);
    const state = new RunState(partitions.length);
    state.apply(await new JournalReader(this.stage, layout.journal).readNew());
    const index = new Map<string, readonly PackedArtifact[]>();
    partitions.forEach((partition, i) => {
      const packed = state.partitions[i]?.packed;
      if (packed !== undefined && packed.length > 0) index.set(partition.folder, packed);
    });
    return index;
  }
}
