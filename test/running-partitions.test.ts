import { describe, expect, it } from 'vitest';
import type { JournalRecord, PartitionRecord } from '../src/model/journal.js';
import { RunState } from '../src/run/run-state.js';
import { PartitionStatus } from '../src/status.js';

const START: JournalRecord = { t: 'start', epoch: 1, owner: 'o1', pid: 1, host: 'h', at: 1, partitions: 6, list: 1, todo: 6 };
const done = (i: number, at: number): PartitionRecord => ({ t: 'partition', i, s: PartitionStatus.DONE, a: 1, at, d: i });

function statuses(state: RunState): string[] {
  return state.partitions.map((partition) => partition.status);
}

/**
 * Workers are sent tasks ahead of time and run them one after another: the journal's fold counts as
 * RUNNING only the first task of each worker that it has not finished.
 */
describe('RUNNING partitions', () => {
  it('are the first unfinished task of each worker; the rest wait, PENDING, until the one before them ends', () => {
    const state = new RunState(6);
    const changes: PartitionRecord[] = [];
    state.apply(
      [START, { t: 'running', i: [0, 1, 2], a: [1, 1, 1], d: [0, 1, 2], at: 2, w: 0 }, { t: 'running', i: [3, 4], a: [1, 1], d: [3, 4], at: 2, w: 1 }],
      (_, change) => changes.push(change),
    );
    expect(statuses(state)).toEqual(['RUNNING', 'PENDING', 'PENDING', 'RUNNING', 'PENDING', 'PENDING']);
    expect(state.count(PartitionStatus.RUNNING)).toBe(2);
    expect(state.partitions[1]!.attempts).toBe(1);
    expect(changes.map((change) => `${change.i}:${change.s}`)).toEqual(['0:RUNNING', '3:RUNNING']);

    changes.length = 0;
    state.apply([done(0, 3)], (_, change) => changes.push(change));
    expect(statuses(state)).toEqual(['DONE', 'RUNNING', 'PENDING', 'RUNNING', 'PENDING', 'PENDING']);
    expect(state.partitions[1]!.startedAt).toBe(3);
    expect(changes.map((change) => `${change.i}:${change.s}`)).toEqual(['0:DONE', '1:RUNNING']);

    // A task that leaves a worker unstarted (cancelled) is not started on its way out.
    changes.length = 0;
    state.apply([{ t: 'cancel', at: 4 }, { t: 'partition', i: 4, s: PartitionStatus.CANCELLED, a: 1, at: 4 }, { t: 'partition', i: 3, s: PartitionStatus.CANCELLED, a: 1, at: 4 }, { t: 'partition', i: 5, s: PartitionStatus.CANCELLED, a: 0, at: 4 }], (_, change) => changes.push(change));
    expect(changes.map((change) => `${change.i}:${change.s}`)).toEqual(['4:CANCELLED', '3:CANCELLED', '5:CANCELLED']);
    expect(state.count(PartitionStatus.RUNNING)).toBe(1);
  });

  it('is reported for a task that ran and ended in the same records as the one before it (a watcher sees every partition RUNNING, then DONE)', () => {
    const state = new RunState(6);
    const changes: PartitionRecord[] = [];
    state.apply(
      [START, { t: 'running', i: [0, 1, 2], a: [1, 1, 1], d: [0, 1, 2], at: 2, w: 0 }, { ...done(0, 3), from: 2 }, { ...done(1, 4), from: 3 }, { ...done(2, 5), from: 4 }],
      (_, change) => changes.push(change),
    );
    expect(changes.map((change) => `${change.i}:${change.s}@${change.at}`)).toEqual(['0:RUNNING@2', '0:DONE@3', '1:RUNNING@3', '1:DONE@4', '2:RUNNING@4', '2:DONE@5']);
    expect(state.count(PartitionStatus.DONE)).toBe(3);
    expect(state.count(PartitionStatus.RUNNING)).toBe(0);
    expect(state.count(PartitionStatus.PENDING)).toBe(3);
  });

  it('survive a checkpoint: a reader starting there sees the same, and what follows', () => {
    const state = new RunState(6);
    state.apply([START, { t: 'running', i: [0, 1, 2], a: [1, 1, 1], d: [0, 1, 2], at: 2, w: 0 }, { t: 'running', i: [3], a: [1], d: [3], at: 2, w: 1 }]);
    const restored = RunState.fromCheckpoint(JSON.parse(JSON.stringify(state.checkpoint('u1', 0))));
    expect(statuses(restored)).toEqual(statuses(state));
    const next: JournalRecord[] = [done(0, 3), { t: 'running', i: [4], a: [1], d: [4], at: 3, w: 1 }, done(3, 4)];
    state.apply(next);
    restored.apply(next);
    expect(statuses(restored)).toEqual(['DONE', 'RUNNING', 'PENDING', 'DONE', 'RUNNING', 'PENDING']);
    expect(statuses(restored)).toEqual(statuses(state));
  });

  it('is reported for a task that ran and failed, to be retried, in the same records as the one before it', () => {
    const state = new RunState(2);
    const changes: Array<[string, number | undefined]> = [];
    state.apply([{ ...START, partitions: 2 } as JournalRecord, { t: 'running', i: [0, 1], a: [1, 1], d: [0, 1], at: 2, w: 0 }]);
    const retried: PartitionRecord = { t: 'partition', i: 1, s: PartitionStatus.PENDING, a: 1, at: 4, from: 3, d: 1, error: { name: 'Error', message: 'once' } };
    // On the worker it ran in: its lane is known when it is seen RUNNING (the timeline needs it).
    state.apply([done(0, 3), retried], (index, change) => changes.push([`${index}:${change.s}`, state.partitions[index]!.worker]));
    expect(changes).toEqual([
      ['0:DONE', undefined],
      ['1:RUNNING', 0],
      ['1:PENDING', undefined],
    ]);
    expect(statuses(state)).toEqual(['DONE', 'PENDING']);
    expect(state.count(PartitionStatus.RUNNING)).toBe(0);
  });

  it('are every task of a batch in journals written before workers were named', () => {
    const state = new RunState(3);
    state.apply([START, { t: 'running', i: [0, 1, 2], a: [1, 1, 1], d: [0, 1, 2], at: 2 }]);
    expect(state.count(PartitionStatus.RUNNING)).toBe(3);
  });

  it('never start a task a replaced driver had sent: it waits for the new driver', () => {
    const state = new RunState(3);
    const start = { ...START, partitions: 3 } as JournalRecord;
    state.apply([start, { t: 'running', i: [0, 1], a: [1, 1], d: [0, 1], at: 2, w: 0 }]);
    // The resume puts what the old driver left unfinished back to PENDING.
    state.apply([{ ...start, epoch: 2, owner: 'o2' } as JournalRecord, { t: 'partition', i: 0, s: PartitionStatus.PENDING, a: 1, at: 5 }]);
    expect(statuses(state)).toEqual(['PENDING', 'PENDING', 'PENDING']);
  });
});
