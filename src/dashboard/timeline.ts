import type { AttemptTimelineReader } from '../run/attempt-timeline.js';
import type { DPFRun } from '../run/dpf-run.js';
import type { Timeline } from './api-types.js';

interface KeptReader {
  reader: AttemptTimelineReader;
  /** The fold under way: one at a time per run, each folding only what the journal gained. */
  reading: Promise<Timeline> | undefined;
}

const readers = new WeakMap<DPFRun, KeptReader>();

/**
 * Every attempt of every partition of a run, columnar (see run/attempt-timeline.ts): one reader
 * kept per run, so that a page polling a live run's timeline folds each journal segment once.
 */
export async function runTimeline(run: DPFRun): Promise<Timeline> {
  let kept = readers.get(run);
  if (kept === undefined) {
    kept = { reader: run.attemptTimeline(), reading: undefined };
    readers.set(run, kept);
  }
  const current = kept;
  current.reading ??= current.reader.refresh().finally(() => (current.reading = undefined));
  return current.reading;
}
