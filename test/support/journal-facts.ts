import type { JournalRecord } from '../../src/model/journal.js';
import { JournalReader } from '../../src/run/journal.js';
import { readRunSpec } from '../../src/run/run-spec.js';
import { RunState } from '../../src/run/run-state.js';
import { openStage } from '../../src/stage/open-stage.js';
import { RunLayout } from '../../src/stage/run-layout.js';

/**
 * What a run's journal says, read the way every reader folds it (fenced-out and foreign segments
 * skipped): how many DONE records each partition has among the records the fold applied, and
 * which attempt the last one was.
 */
export async function journalFacts(stage: string, runId: string): Promise<{ doneRecords: Map<number, number>; records: JournalRecord[]; state: RunState }> {
  const opened = (await openStage(stage, { create: false }))!;
  const layout = new RunLayout(runId);
  const spec = (await readRunSpec(opened, layout))!;
  const state = new RunState(0);
  const records: JournalRecord[] = [];
  const { segments } = await new JournalReader(opened, layout).readNew();
  state.applySegments(opened, segments, spec.uid, (applied) => records.push(...applied));
  const doneRecords = new Map<number, number>();
  for (const record of records) {
    if (record.t === 'partition' && record.s === 'DONE') doneRecords.set(record.i, (doneRecords.get(record.i) ?? 0) + 1);
  }
  return { doneRecords, records, state };
}
