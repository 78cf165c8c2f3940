import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { JournalRecord } from '../src/model/journal.js';
import { FORMATS } from '../src/model/stored-json.js';
import { JournalWriter } from '../src/run/journal.js';
import { RunFollower } from '../src/run/run-follower.js';
import { encodePartitions } from '../src/run/run-spec.js';
import { LocalStage } from '../src/stage/local-stage.js';
import { RunLayout } from '../src/stage/run-layout.js';
import { PartitionStatus } from '../src/status.js';
import { tempDir } from './helpers.js';

/**
 * Readers of a long run start at its newest checkpoint (the state folded up to a segment) and read
 * only the segments after it; a damaged checkpoint is skipped for an older one or the whole journal.
 */
describe('journal checkpoints', () => {
  it('start a reader after the checkpoint, with the same state as reading every segment', async () => {
    const stage = await LocalStage.open(join(await tempDir(), 'stage'));
    const layout = new RunLayout('long');
    const spec = { dpf: 'run' as const, format: FORMATS.run, runId: 'long', uid: 'u1', input: { mode: 'stage' as const, location: '/in', filePattern: '*' }, folderEncoding: { keepSlashes: true, caseInsensitive: false }, createdAt: '' };
    await stage.put(layout.spec, JSON.stringify(spec));
    const partitions = Array.from({ length: 6 }, (_, i) => ({ id: `p${i}`, folder: `p${i}`, size: 1, input: { kind: 'file' as const, path: `/in/p${i}` } }));
    await stage.put(layout.partitionList(1), encodePartitions(partitions));
    const segments: JournalRecord[][] = [
      [{ t: 'start', epoch: 1, owner: 'o1', pid: 1, host: 'h', at: 1, partitions: 6, list: 1, todo: 6 }],
      [{ t: 'running', i: [0, 1, 2], a: [1, 1, 1], d: [0, 1, 2], at: 2 }],
      [{ t: 'partition', i: 0, s: PartitionStatus.DONE, a: 1, at: 3, d: 0, art: [{ name: 'r.json', key: 'long/_dpf/packs/w-0.pack', offset: 0, length: 2, crc: 1 }] }],
      [{ t: 'partition', i: 1, s: PartitionStatus.FAILED, a: 1, at: 4, d: 1, error: { name: 'Error', message: 'no' } }],
      [{ t: 'partition', i: 2, s: PartitionStatus.DONE, a: 1, at: 5, d: 2 }, { t: 'end', epoch: 1, at: 6, status: 'PARTIAL_FAILURE' }],
    ];
    const writer = new JournalWriter(stage, layout, { run: 'u1', epoch: 1, writer: 'o1' }, 0, { onCommitted: () => undefined, onFailed: () => undefined, assertOwner: async () => undefined });
    for (const records of segments) {
      for (const record of records) writer.record(record);
      await writer.flush();
    }
    const whole = await RunFollower.load(stage, layout, spec);
    expect(whole.state.status).toBe('PARTIAL_FAILURE');

    // A checkpoint after segment 2, then the segments it covers are gone: the reader must start there.
    const upTo2 = new RunFollower(stage, layout, spec);
    for (const records of segments.slice(0, 3)) upTo2.state.apply(records);
    await stage.create(layout.checkpoint(2), JSON.stringify(upTo2.state.checkpoint('u1', 2)));
    for (const seq of [0, 1, 2]) await stage.delete(layout.segment(seq));
    const fromCheckpoint = await RunFollower.load(stage, layout, spec);
    expect(fromCheckpoint.state.status).toBe('PARTIAL_FAILURE');
    expect(fromCheckpoint.state.partitions.map((p) => [p.status, p.attempts, p.artifacts?.length ?? null])).toEqual(
      whole.state.partitions.map((p) => [p.status, p.attempts, p.artifacts?.length ?? null]),
    );
    expect(fromCheckpoint.state.partitions[0]!.artifacts).toEqual([{ name: 'r.json', key: 'long/_dpf/packs/w-0.pack', offset: 0, length: 2, crc: 1 }]);
    expect(fromCheckpoint.nextSeq).toBe(5);

    // A damaged checkpoint is passed over, with a note.
    await writeFile(stage.describe(layout.checkpoint(2)), '{"dpf":"checkpoint"');
    await rm(stage.describe(layout.segment(3)));
    const afterDamage = new RunFollower(stage, layout, spec);
    await afterDamage.refresh().catch(() => undefined);
    expect(afterDamage.state.notes).toContainEqual(expect.stringMatching(/ignoring the damaged checkpoint .*000000000002\.json/));
  });
});
