import { describe, expect, it } from 'vitest';
import { Schedule } from '../src/execute/schedule.js';
import type { PlannedPartition } from '../src/model/partition.js';

function partitions(count: number, size = 100): PlannedPartition[] {
  return Array.from({ length: count }, (_, i) => ({ id: `p${i}`, folder: `p${i}`, size, input: { kind: 'file', path: `p${i}` } }));
}

describe('the schedule', () => {
  it('splits the last tasks among the workers, however quick the earlier ones were', () => {
    const list = partitions(1000);
    const schedule = new Schedule(list, list.map((_, i) => i), undefined);
    // Quick partitions: 5 ms of measured work is many of them, so early batches are big.
    for (let i = 0; i < 10; i++) schedule.observe(i, 0.01);
    const first = schedule.takeBatch(4);
    expect(first.length).toBeGreaterThan(100);
    while (schedule.size > 4) schedule.takeBatch(4);
    // Four tasks left and four batch slots (2 workers, 2 batches each): one task each, so a last
    // partition slower than its size said does not make one worker run the others after it.
    const last = [schedule.takeBatch(4), schedule.takeBatch(4), schedule.takeBatch(4), schedule.takeBatch(4)];
    expect(last.map((batch) => batch.length)).toEqual([1, 1, 1, 1]);
    expect(schedule.size).toBe(0);
  });

  it('hands out every task once, largest first, a task put back before the rest', () => {
    const list = [...partitions(3, 10), ...partitions(2, 1000)].map((partition, i) => ({ ...partition, id: `p${i}`, folder: `p${i}` }));
    const schedule = new Schedule(list, [0, 1, 2, 3, 4], undefined);
    const first = schedule.takeBatch(2);
    expect([3, 4]).toContain(first[0]);
    // The first task comes back (a retry): it goes out again before anything else.
    schedule.putFirst(first[0]!);
    const next = schedule.takeBatch(2);
    expect(next[0]).toBe(first[0]);
    const seen = [...first.slice(1), ...next];
    for (let batch = schedule.takeBatch(2); batch.length > 0; batch = schedule.takeBatch(2)) seen.push(...batch);
    expect([...seen].sort()).toEqual([0, 1, 2, 3, 4]);
  });
});
