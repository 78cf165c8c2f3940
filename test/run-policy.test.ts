import { describe, expect, it } from 'vitest';
import { resolveExecutionOptions } from '../src/execution-options.js';
import type { Executor, ExecutorHost, Task, WorkerLoss } from '../src/execute/executor.js';
import type { TaskOutcome } from '../src/execute/protocol.js';
import { type AttemptReport, type ExecutionReporter, RunPolicy } from '../src/execute/run-policy.js';
import type { PlannedPartition } from '../src/model/partition.js';
import { attachStage } from '../src/stage/open-stage.js';
import { PartitionStatus } from '../src/status.js';
import { tempDir } from './helpers.js';

/**
 * The run policy against the executor contract (executor.ts), driven by hand: what the local pool
 * and the queue executor may rely on. The transports themselves run in the other tests.
 */

/** An executor whose host the test drives. */
class ScriptedExecutor implements Executor {
  host!: ExecutorHost;
  wakes = 0;
  aborted: string | undefined;
  closed = false;
  private woken: (() => void) | undefined;
  start(host: ExecutorHost): void {
    this.host = host;
  }
  wake(): void {
    this.wakes++;
    this.woken?.();
  }
  /** Resolves at the next wake. */
  nextWake(): Promise<void> {
    return new Promise((resolve) => (this.woken = resolve));
  }
  abort(reason: 'cancel' | 'fail-fast'): void {
    this.aborted = reason;
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

/** Records what the policy reports; `settled(i)` resolves once partition i has a final status. */
class Recorder implements ExecutionReporter {
  readonly runs: { indices: number[]; dispatches: number[] }[] = [];
  readonly retries: [number, AttemptReport][] = [];
  readonly finals = new Map<number, AttemptReport>();
  private readonly waiters = new Map<number, () => void>();
  running(indices: number[], _attempts: number[], dispatches: number[]): void {
    this.runs.push({ indices, dispatches });
  }
  retrying(index: number, report: AttemptReport): void {
    this.retries.push([index, report]);
    this.waiters.get(index)?.();
  }
  finished(index: number, report: AttemptReport): void {
    this.finals.set(index, report);
    this.waiters.get(index)?.();
  }
  stageFailed(): void {}
  readonly notes: string[] = [];
  note(message: string): void {
    this.notes.push(message);
  }
  /** Resolves at the partition's next report (a retry or its final status). */
  next(index: number): Promise<void> {
    return new Promise((resolve) => this.waiters.set(index, resolve));
  }
}

function partitions(count: number): PlannedPartition[] {
  return Array.from({ length: count }, (_, i) => ({ id: `p${i}`, folder: `p${i}`, size: 1, input: { kind: 'file' as const, path: `p${i}` } }));
}

async function policy(count: number, options: Record<string, unknown> = {}) {
  const stage = await attachStage(await tempDir(), false);
  const list = partitions(count);
  const executor = new ScriptedExecutor();
  const reporter = new Recorder();
  const cleared: { index: number; keep: string[] }[] = [];
  const run = new RunPolicy(
    {
      stage,
      options: resolveExecutionOptions({ retryBackoffMs: 0, ...options }),
      partitions: list,
      todo: list.map((_, i) => i),
      previousAttempts: () => 0,
      runUid: 'uid',
      ledger: undefined,
      writtenRows: undefined,
      clearUnrecorded: (index, keep) => {
        cleared.push({ index, keep: [...keep] });
        return Promise.resolve();
      },
    },
    reporter,
    executor,
  );
  const done = run.run();
  return { run, done, executor, reporter, cleared, host: executor.host };
}

function outcome(task: Task, status: TaskOutcome['status'] = 'DONE'): TaskOutcome {
  return { ...task, status, startedAt: 1, finishedAt: 2 };
}

function loss(fields: Partial<WorkerLoss>): WorkerLoss {
  return { running: undefined, startedAt: 1, at: 2, unstarted: [], cause: 'crash', description: 'it exited with code 1', beforeReady: false, logs: [], ...fields };
}

describe('the run policy', () => {
  it('takes an outcome only of the task it names: a lost worker’s late outcome does not count once its task was sent again', async () => {
    const { done, executor, reporter, host } = await policy(1);
    const [first] = host.take(2);
    host.started([first!], 1, 0);
    host.lost(loss({ unstarted: [first!] }));
    // Its task runs again, same attempt, under a new dispatch number; the executor is told.
    expect(executor.wakes).toBe(1);
    const [again] = host.take(2);
    expect(again).toMatchObject({ index: 0, attempt: first!.attempt });
    expect(again!.dispatch).not.toBe(first!.dispatch);
    host.outcomes([outcome(first!)]);
    expect(reporter.finals.size).toBe(0);
    host.outcomes([outcome(again!)]);
    await done;
    expect(reporter.finals.get(0)).toMatchObject({ status: PartitionStatus.DONE, dispatch: again!.dispatch });
    expect(executor.closed).toBe(true);
  });

  it('blames a lost worker’s running task by cause: a timeout FAILS it, a crash is INTERNAL_ERROR; its stored log is kept', async () => {
    const { done, executor, reporter, cleared, host } = await policy(1, { maxRetries: 1, timeoutMs: 100 });
    const [first] = host.take(2);
    host.started([first!], 1, 0);
    let reported = reporter.next(0);
    const retryDue = executor.nextWake();
    host.lost(loss({ running: first!, cause: 'timeout', logs: [{ attempt: 1, key: 'runs/r/p0/log-1', length: 10 }] }));
    await reported;
    expect(reporter.retries[0]?.[1]).toMatchObject({ status: PartitionStatus.PENDING, attempt: 1, error: { name: 'PartitionTimeoutError', message: expect.stringContaining('"p0" ran longer than timeoutMs (100 ms)') } });
    // The attempt's folder is cleared before it runs again, but not of the log the executor stored.
    expect(cleared).toEqual([{ index: 0, keep: ['runs/r/p0/log-1'] }]);
    await retryDue;
    const [second] = host.take(2);
    expect(second).toMatchObject({ index: 0, attempt: 2 });
    host.started([second!], 3, 1);
    reported = reporter.next(0);
    host.lost(loss({ running: second!, cause: 'crash', description: 'it was killed by SIGSEGV' }));
    await reported;
    await done;
    expect(reporter.finals.get(0)).toMatchObject({
      status: PartitionStatus.INTERNAL_ERROR,
      attempt: 2,
      dispatch: second!.dispatch,
      error: { name: 'WorkerCrashError', message: 'the worker running partition "p0" died: it was killed by SIGSEGV' },
    });
  });

  it('fails every partition when workers die before they are ready three times in a row; a worker killed from outside does not count, a batch started does reset', async () => {
    const { done, reporter, host } = await policy(3);
    host.lost(loss({ beforeReady: true }));
    host.lost(loss({ beforeReady: true, cause: 'killed' }));
    host.lost(loss({ beforeReady: true }));
    const [task] = host.take(6);
    host.started([task!], 1, 0);
    host.lost(loss({ beforeReady: true }));
    host.lost(loss({ beforeReady: true }));
    expect(reporter.finals.size).toBe(0);
    host.lost(loss({ beforeReady: true, description: 'it exited with code 7' }));
    await done;
    // The queued partitions and the one in flight alike.
    expect([...reporter.finals.keys()].sort()).toEqual([0, 1, 2]);
    for (const report of reporter.finals.values()) {
      expect(report).toMatchObject({ status: PartitionStatus.INTERNAL_ERROR, error: { message: 'workers die while loading the partition module: it exited with code 7' } });
    }
  });

  it('on stop, cancels what is queued, aborts the executor, and cancels what comes back unstarted', async () => {
    const { run, done, executor, reporter, host } = await policy(3);
    // Two batches of one task each on one worker: the first running, the second waiting behind it.
    const [running] = host.take(1);
    const [waiting] = host.take(1);
    host.started([running!], 1, 0);
    host.started([waiting!], 1, 0);
    run.stop('cancel');
    expect(executor.aborted).toBe('cancel');
    expect(reporter.finals.size).toBe(1);
    expect(host.take(6)).toEqual([]);
    host.outcomes([outcome(running!, 'CANCELLED'), outcome(waiting!, 'SKIPPED')]);
    await done;
    expect([...reporter.finals.values()].map((report) => report.status)).toEqual([PartitionStatus.CANCELLED, PartitionStatus.CANCELLED, PartitionStatus.CANCELLED]);
    // The waiting one never ran: it keeps the attempts it had.
    expect(reporter.finals.get(waiting!.index)?.attempt).toBe(0);
  });
});
