import type { JournalRecord, PartitionRecord } from '../../src/model/journal.js';
import type { PlannedPartition } from '../../src/model/partition.js';
import type { RunSpec } from '../../src/model/run-spec.js';
import { FORMATS } from '../../src/model/stored-json.js';
import { encodeSegment } from '../../src/run/journal.js';
import { encodePartitions } from '../../src/run/run-spec.js';
import { LocalStage } from '../../src/stage/local-stage.js';
import { RunLayout } from '../../src/stage/run-layout.js';
import { PartitionStatus, type RunStatus } from '../../src/status.js';

/**
 * Writes a finished DataFrame-mode run of `count` partitions (ids `k0`, `k1`, …) onto a stage with
 * dpf's own writers — spec, partition list, journal segments — as a driver would have left it,
 * without running it: a run of a million partitions for what reads runs, in seconds. Partitions
 * in `failed` are FAILED, the others DONE.
 */
export async function writeFinishedRun(stageFolder: string, runId: string, count: number, failed: ReadonlySet<number>): Promise<void> {
  const stage = await LocalStage.open(stageFolder);
  const layout = new RunLayout(runId);
  const spec: RunSpec = {
    dpf: 'run',
    format: FORMATS.run,
    runId,
    uid: `written-${runId}`,
    input: { mode: 'dataframe', partitionBy: ['k'], source: 'SELECT * FROM written', rows: count },
    folderEncoding: { keepSlashes: false, caseInsensitive: stage.caseInsensitive },
    createdAt: new Date(Date.UTC(2024, 0, 1)).toISOString(),
  };
  const partitions: PlannedPartition[] = new Array(count);
  for (let i = 0; i < count; i++) partitions[i] = { id: `k${i}`, folder: `k${i}`, size: 1, input: { kind: 'rows', start: i, rows: 1 }, key: `k${i}` };
  await stage.put(layout.partitionList(1), encodePartitions(partitions));
  await stage.create(layout.spec, JSON.stringify(spec));
  const identity = { run: spec.uid, epoch: 1, writer: 'writer' };
  const at = Date.UTC(2024, 0, 1);
  const start: JournalRecord = { t: 'start', epoch: 1, owner: 'writer', pid: 1, host: 'written', at, partitions: count, list: 1, todo: count, input: 1 };
  await stage.create(layout.segment(0), encodeSegment(identity, 0, [start]));
  const records: JournalRecord[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const record: PartitionRecord = { t: 'partition', i, s: failed.has(i) ? PartitionStatus.FAILED : PartitionStatus.DONE, a: 1, at: at + 2, from: at + 1, d: i, rows: 1 };
    if (failed.has(i)) record.error = { name: 'Error', message: `k${i} failed` };
    records[i] = record;
  }
  const status: RunStatus = failed.size === 0 ? 'SUCCESS' : failed.size === count ? 'FAILURE' : 'PARTIAL_FAILURE';
  records.push({ t: 'end', epoch: 1, at: at + 3, status });
  await stage.create(layout.segment(1), encodeSegment(identity, 1, records));
}
