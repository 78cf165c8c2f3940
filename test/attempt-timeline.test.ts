import { join } from 'node:path';
import { DPF, DPFRun, RunStatus } from 'dpf';
import { describe, expect, it } from 'vitest';
import type { AttemptTimeline } from '../src/run/attempt-timeline.js';
import { tempDir, writeFiles, writeModule } from './helpers.js';

/** The attempts of one partition, in order: [attempt, outcome, lane]. */
function attemptsOf(timeline: AttemptTimeline, id: string): Array<[number, string, string]> {
  const index = timeline.ids.indexOf(id);
  const rows: Array<[number, string, string]> = [];
  for (let k = 0; k < timeline.partition.length; k++) {
    if (timeline.partition[k] === index) rows.push([timeline.attempt[k]!, timeline.outcome[k]!, timeline.lanes[timeline.lane[k]!]!]);
  }
  return rows;
}

describe("a run's attempt timeline", () => {
  it('has every attempt on the lane of the worker that ran it, retries and failures marked, no two at once on a lane', async () => {
    const dir = await tempDir();
    const ids = Array.from({ length: 12 }, (_, i) => `p${String(i).padStart(2, '0')}.csv`);
    await writeFiles(join(dir, 'input'), Object.fromEntries(ids.map((id) => [id, 'x\n1\n'])));
    // p03 fails once then succeeds; p07 always fails.
    const module = await writeModule(dir, `if (context.partitionId === 'p07.csv' || (context.partitionId === 'p03.csv' && context.attempt === 1)) throw new Error('no ' + context.attempt);`);
    const run = await new DPF(module, { stage: join(dir, 'stage') }).runFromStage({
      stageLocation: join(dir, 'input'),
      runId: 'timeline',
      filePattern: '*.csv',
      executionOptions: { maxRetries: 2, retryBackoffMs: 0, availableCpus: 2 },
    });
    expect(await run.wait()).toBe(RunStatus.PARTIAL_FAILURE);

    const restored = await DPFRun.restoreFrom('timeline', join(dir, 'stage'));
    const timeline = await restored.attemptTimeline().refresh();
    const details = await restored.getPartitionDetails();
    expect(timeline.ids.sort()).toEqual([...ids].sort());
    // As many attempts as the partitions made, each ended.
    expect(timeline.partition.length).toBe(Object.values(details).reduce((sum, partition) => sum + partition.attempts, 0));
    expect(timeline.end.every((end, k) => end !== null && end >= timeline.start[k]!)).toBe(true);
    expect(attemptsOf(timeline, 'p03.csv').map(([attempt, outcome]) => [attempt, outcome])).toEqual([
      [1, 'RETRIED'],
      [2, 'DONE'],
    ]);
    expect(attemptsOf(timeline, 'p07.csv').map(([attempt, outcome]) => [attempt, outcome])).toEqual([
      [1, 'RETRIED'],
      [2, 'RETRIED'],
      [3, 'FAILED'],
    ]);
    expect(attemptsOf(timeline, 'p00.csv').map(([attempt, outcome]) => [attempt, outcome])).toEqual([[1, 'DONE']]);
    // Two workers: at most two lanes, and a worker runs one attempt at a time.
    expect(timeline.lanes.length).toBeGreaterThanOrEqual(1);
    expect(timeline.lanes.length).toBeLessThanOrEqual(2);
    expect(timeline.lanes.every((label) => /^worker \d+$/.test(label))).toBe(true);
    for (let lane = 0; lane < timeline.lanes.length; lane++) {
      const spans = timeline.start
        .map((start, k) => [start, timeline.end[k]!, timeline.lane[k]] as const)
        .filter(([, , l]) => l === lane)
        .sort((a, b) => a[0] - b[0]);
      for (let n = 1; n < spans.length; n++) expect(spans[n]![0]).toBeGreaterThanOrEqual(spans[n - 1]![1]);
    }
  });

  it("gives a resumed run's workers lanes of their own, and reads only what the journal gained on refresh", async () => {
    const dir = await tempDir();
    await writeFiles(join(dir, 'input'), { 'a.csv': 'x\n1\n', 'b.csv': 'x\n1\n' });
    const gate = join(dir, 'fixed');
    const module = await writeModule(dir, `if (context.partitionId === 'b.csv' && !fs.existsSync(${JSON.stringify(gate)})) throw new Error('not yet');`, { prelude: `import fs from 'node:fs';` });
    const dpf = new DPF(module, { stage: join(dir, 'stage') });
    const options = { stageLocation: join(dir, 'input'), runId: 'resumed', filePattern: '*.csv', executionOptions: { maxRetries: 0, availableCpus: 1 } };
    expect(await (await dpf.runFromStage(options)).wait()).toBe(RunStatus.PARTIAL_FAILURE);

    const reader = (await DPFRun.restoreFrom('resumed', join(dir, 'stage'))).attemptTimeline();
    const first = await reader.refresh();
    expect(first.lanes).toEqual(['worker 1']);
    expect(attemptsOf(first, 'b.csv')).toEqual([[1, 'FAILED', 'worker 1']]);

    await writeFiles(dir, { fixed: '' });
    expect(await (await dpf.runFromStage({ ...options, partitionIds: ['b.csv'], onExistingArtifacts: 'resume' })).wait()).toBe(RunStatus.SUCCESS);
    const second = await reader.refresh();
    expect(second.lanes).toEqual(['driver 1 · worker 1', 'driver 2 · worker 1']);
    expect(attemptsOf(second, 'b.csv')).toEqual([
      [1, 'FAILED', 'driver 1 · worker 1'],
      [2, 'DONE', 'driver 2 · worker 1'],
    ]);
    expect(attemptsOf(second, 'a.csv')).toEqual([[1, 'DONE', 'driver 1 · worker 1']]);
  });
});
