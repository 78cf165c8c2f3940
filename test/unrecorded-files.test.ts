import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { PlannedPartition } from '../src/model/partition.js';
import { RunState } from '../src/run/run-state.js';
import { clearPartitionFolder } from '../src/run/unrecorded-files.js';
import { LocalStage } from '../src/stage/local-stage.js';
import { RunLayout } from '../src/stage/run-layout.js';
import { PartitionStatus } from '../src/status.js';
import { tempDir } from './helpers.js';

describe("clearing a dead attempt's files", () => {
  it("deletes only that partition's unrecorded files: not its recorded ones, not what it was told to keep, not a partition's folder inside it", async () => {
    const stage = await LocalStage.open(join(await tempDir(), 'stage'));
    const layout = new RunLayout('r');
    // On S3 the objects `x` and `x/y.csv` can both be inputs: the second's folder is inside the first's.
    const partitions: PlannedPartition[] = ['x', 'x/y.csv'].map((id) => ({ id, folder: id, size: 1, input: { kind: 'file', path: id } }));
    const state = new RunState(2);
    state.apply([
      { t: 'start', epoch: 1, owner: 'o', pid: 1, host: 'h', at: 1, partitions: 2, list: 1, todo: 2 },
      { t: 'partition', i: 0, s: PartitionStatus.PENDING, a: 1, at: 2, log: [{ attempt: 1, key: 'r/x/.dpf-attempt-o.1/partition.log', length: 1 }] },
      { t: 'partition', i: 1, s: PartitionStatus.DONE, a: 1, at: 2, art: [{ name: 'out.bin', key: 'r/x/y.csv/out.bin', length: 1 }] },
    ]);
    for (const key of ['r/x/big.bin', 'r/x/.dpf-attempt-o.2/big.bin', 'r/x/.dpf-attempt-o.1/partition.log', 'r/x/.dpf-attempt-o.3/partition.log', 'r/x/y.csv/out.bin', 'r/x/y.csv/stray.bin']) {
      await stage.put(key, 'b');
    }
    await clearPartitionFolder(stage, layout, partitions, state, 0, new Set(['r/x/.dpf-attempt-o.3/partition.log']));
    expect((await stage.list('r/')).map((entry) => entry.path).sort()).toEqual([
      'r/x/.dpf-attempt-o.1/partition.log',
      'r/x/.dpf-attempt-o.3/partition.log',
      'r/x/y.csv/out.bin',
      'r/x/y.csv/stray.bin',
    ]);
  });
});
