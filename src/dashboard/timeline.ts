import type { DPFRun } from '../run/dpf-run.js';
import type { Timeline } from './api-types.js';

/**
 * Every attempt of every partition of a run, columnar. Until the journal's fold into attempts
 * (run/attempt-timeline.ts) is here, no attempts.
 */
export async function runTimeline(run: DPFRun): Promise<Timeline> {
  void run;
  return { lanes: [], ids: [], partition: [], lane: [], attempt: [], start: [], end: [], outcome: [] };
}
