import type { JournalRecord } from '../../src/model/journal.js';
import { JournalReader } from '../../src/run/journal.js';
import { readRunSpec } from '../../src/run/run-spec.js';
import { RunState } from '../../src/run/run-state.js';
import { openStage } from '../../src/stage/open-stage.js';
import { RunLayout } from '../../src/stage/run-layout.js';

/** What a run's journal says, as every reader folds it, and what its raw segments show. */
export interface JournalFacts {
  /** DONE records per partition among the records the fold applied. */
  doneRecords: Map<number, number>;
  /** The pid of the driver whose segment holds each partition's last applied DONE record. */
  doneBy: Map<number, number>;
  records: JournalRecord[];
  state: RunState;
  /**
   * Segments of this run written, in slot order, after a newer epoch's start record by a driver of
   * an older epoch: what a replaced driver committed after it lost the run. Fencing keeps it empty
   * (the fold would skip them, so only the raw segments can show it).
   */
  lateSegments: string[];
}

export async function journalFacts(stage: string, runId: string): Promise<JournalFacts> {
  const opened = (await openStage(stage, { create: false }))!;
  const layout = new RunLayout(runId);
  const spec = (await readRunSpec(opened, layout))!;
  const state = new RunState(0);
  const records: JournalRecord[] = [];
  const doneBy = new Map<number, number>();
  const { segments } = await new JournalReader(opened, layout).readNew();
  const pidOf = new Map<string, number>();
  for (const segment of segments) {
    if (!segment.ok) continue;
    for (const record of segment.records) if (record.t === 'start') pidOf.set(record.owner, record.pid);
  }
  state.applySegments(opened, segments, spec.uid, 0, (applied) => {
    records.push(...applied);
    for (const record of applied) if (record.t === 'partition' && record.s === 'DONE') doneBy.set(record.i, pidOf.get(state.owner!) ?? -1);
  });
  const doneRecords = new Map<number, number>();
  for (const record of records) {
    if (record.t === 'partition' && record.s === 'DONE') doneRecords.set(record.i, (doneRecords.get(record.i) ?? 0) + 1);
  }
  const lateSegments: string[] = [];
  let newest = 0;
  for (const segment of segments) {
    if (!segment.ok || segment.header.run !== spec.uid) continue;
    if (segment.header.epoch < newest) lateSegments.push(segment.path);
    if (segment.records[0]?.t === 'start') newest = Math.max(newest, segment.header.epoch);
  }
  return { doneRecords, doneBy, records, state, lateSegments };
}
