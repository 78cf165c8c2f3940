import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DPF, type ExecutionOptions, PartitionStatus, RunStatus } from 'dpf';
import { describe, expect, it } from 'vitest';
import { resolveExecutionOptions, retryDelayMs } from '../src/execution-options.js';
import { tempDir, writeFiles, writeModule } from './helpers.js';
import { markStarted, startedAtLeast, UNTIL_ABORTED, until } from './support/barriers.js';

/**
 * Runs `body` (or `body(dir)`, given the test's folder) over files named `ids` (each holding one
 * CSV row, or the content given) and returns the run and its details.
 */
async function runFiles(ids: string[] | Record<string, string>, body: string | ((dir: string) => string), executionOptions: ExecutionOptions, prelude = '') {
  const dir = await tempDir();
  await writeFiles(join(dir, 'input'), Array.isArray(ids) ? Object.fromEntries(ids.map((id) => [id, 'x\n1\n'])) : ids);
  const module = await writeModule(dir, typeof body === 'string' ? body : body(dir), { prelude });
  const run = await new DPF(module, { stage: join(dir, 'stage') }).runFromStage({
    stageLocation: join(dir, 'input'),
    runId: 'failures',
    filePattern: '*',
    executionOptions: { retryBackoffMs: 0, ...executionOptions },
  });
  return { dir, run, status: await run.wait(), details: await run.getPartitionDetails() };
}

describe('a function that throws', () => {
  it('is retried maxRetries times, then FAILED with its error; the other partitions are DONE', async () => {
    const { status, details } = await runFiles(['ok.csv', 'bad.csv'], `if (context.partitionId === 'bad.csv') throw new TypeError('bad row ' + context.attempt);`, { maxRetries: 2 });
    expect(status).toBe(RunStatus.PARTIAL_FAILURE);
    expect(details['ok.csv']).toMatchObject({ status: PartitionStatus.DONE, attempts: 1 });
    expect(details['bad.csv']).toMatchObject({ status: PartitionStatus.FAILED, attempts: 3 });
    expect(details['bad.csv']!.error).toMatchObject({ name: 'TypeError', message: 'bad row 3' });
    expect(details['bad.csv']!.error!.stack).toContain('TypeError: bad row 3');
  });

  it('is not retried when it throws a PartitionError marked not retryable', async () => {
    const { status, details } = await runFiles(['bad.csv'], `throw new PartitionError('hopeless', { retryable: false });`, { maxRetries: 3 }, `import { PartitionError } from 'dpf';`);
    expect(status).toBe(RunStatus.FAILURE);
    expect(details['bad.csv']).toMatchObject({ status: PartitionStatus.FAILED, attempts: 1, error: { name: 'PartitionError', message: 'hopeless', retryable: false } });
  });

  it('waits longer before each retry (exponential backoff, at most 30 s)', () => {
    const delays = (retryBackoffMs: number) => [1, 2, 3, 4, 10].map((retry) => retryDelayMs(resolveExecutionOptions({ retryBackoffMs }), retry));
    expect(delays(200)).toEqual([200, 400, 800, 1600, 30_000]);
    expect(delays(0)).toEqual([0, 0, 0, 0, 0]);
    expect(retryDelayMs(resolveExecutionOptions({}), 1)).toBe(1000);
  });

  it('does not start a retry before its backoff: a run cancelled during it ends with the one attempt', async () => {
    const dir = await tempDir();
    await writeFiles(join(dir, 'input'), { 'bad.csv': 'x\n1\n' });
    const executions = join(dir, 'executions.log');
    const module = await writeModule(dir, `fs.appendFileSync(${JSON.stringify(executions)}, 'ran\\n'); throw new Error('always');`, { prelude: `import fs from 'node:fs';` });
    const run = await new DPF(module, { stage: join(dir, 'stage') }).runFromStage({
      stageLocation: join(dir, 'input'),
      runId: 'backoff',
      filePattern: '*',
      executionOptions: { maxRetries: 1, retryBackoffMs: 30_000 },
    });
    // The failed attempt is recorded, the retry scheduled (PENDING again): cancel then. A retry
    // that did not wait would run meanwhile (the event comes after the journal's write) and fail.
    const retrying = new Promise<void>((resolve) => run.on('partition', (event) => event.status === PartitionStatus.PENDING && resolve()));
    await retrying;
    await run.cancel();
    expect(await run.wait()).toBe(RunStatus.CANCELLED);
    expect((await run.getPartitionDetails())['bad.csv']).toMatchObject({ status: PartitionStatus.CANCELLED, attempts: 1 });
    expect((await readFile(executions, 'utf8')).split('\n').filter((line) => line !== '')).toHaveLength(1);
  });

  it('fails an attempt whose error escapes through a timer, without killing the worker', async () => {
    const { details } = await runFiles(['a.csv'], `await new Promise(() => setTimeout(() => { throw new RangeError('escaped'); }, 10));`, { maxRetries: 0 });
    expect(details['a.csv']).toMatchObject({ status: PartitionStatus.FAILED, error: { name: 'RangeError', message: 'escaped' } });
  });
});

describe('timeoutMs', () => {
  it('aborts an attempt that hangs on a promise and fails it with PartitionTimeoutError, without waiting for the promise', async () => {
    // The hanging function never settles, abort or not: the run ends only if dpf fails the attempt
    // at its timeout rather than waiting for the function.
    const { details } = await runFiles(
      ['hang.csv', 'quick.csv'],
      `if (context.partitionId === 'hang.csv') await new Promise(() => undefined);`,
      { timeoutMs: 1000, maxRetries: 1 },
    );
    expect(details['hang.csv']).toMatchObject({ status: PartitionStatus.FAILED, attempts: 2, error: { name: 'PartitionTimeoutError' } });
    expect(details['quick.csv']!.status).toBe(PartitionStatus.DONE);
  });

  it('terminates a worker that blocks its thread past the limit and fails the partition with PartitionTimeoutError', async () => {
    const { details } = await runFiles(['spin.csv', 'a.csv', 'b.csv'], `if (context.partitionId === 'spin.csv') for (;;) {}`, { timeoutMs: 1000, maxRetries: 0, availableCpus: 1 });
    expect(details['spin.csv']).toMatchObject({ status: PartitionStatus.FAILED, error: { name: 'PartitionTimeoutError' } });
    expect(details['a.csv']!.status).toBe(PartitionStatus.DONE);
    expect(details['b.csv']!.status).toBe(PartitionStatus.DONE);
  });
});

describe('failFast', () => {
  it('stops at the first partition that fails for good: pending ones CANCELLED, running ones aborted', async () => {
    // p00, the largest, runs first; it fails once another partition is running on the other
    // worker. The others wait for their signal only: none can finish unless aborted.
    const ids = Array.from({ length: 12 }, (_, i) => `p${String(i).padStart(2, '0')}.csv`);
    const { status, details } = await runFiles(
      Object.fromEntries(ids.map((id, i) => [id, i === 0 ? 'x\n' + '1\n'.repeat(100) : 'x\n1\n'])),
      (dir) => `
      if (context.partitionId === 'p00.csv') {
        ${until(startedAtLeast(join(dir, 'started'), 1), 'another partition running')}
        throw new Error('first failure');
      }
      ${markStarted(join(dir, 'started'))}
      ${UNTIL_ABORTED}
    `,
      { failFast: true, maxRetries: 0, availableCpus: 2 },
    );
    expect(status).toBe(RunStatus.FAILURE);
    expect(details['p00.csv']).toMatchObject({ status: PartitionStatus.FAILED, error: { message: 'first failure' } });
    const others = ids.slice(1).map((id) => details[id]!);
    expect(others.filter((d) => d.status !== PartitionStatus.CANCELLED).map((d) => d.partitionId)).toEqual([]);
    // Exactly the one that was running was aborted; the rest never started.
    expect(others.filter((d) => d.error?.name === 'PartitionCancelledError')).toHaveLength(1);
  });
});

describe('a worker that dies', () => {
  it("with isolation: 'process', process.exit costs one attempt (INTERNAL_ERROR), not the run", async () => {
    const { status, details } = await runFiles(['exit.csv', 'a.csv', 'b.csv'], `if (context.partitionId === 'exit.csv') { console.log('about to exit'); process.exit(3); }`, {
      isolation: 'process',
      maxRetries: 1,
    });
    expect(status).toBe(RunStatus.PARTIAL_FAILURE);
    expect(details['exit.csv']).toMatchObject({ status: PartitionStatus.INTERNAL_ERROR, attempts: 2, error: { name: 'WorkerCrashError' } });
    expect(details['exit.csv']!.error!.message).toContain('exited with code 3');
    expect(await details['exit.csv']!.logs()).toContain('[stdout] about to exit');
    expect(details['a.csv']!.status).toBe(PartitionStatus.DONE);
    expect(details['b.csv']!.status).toBe(PartitionStatus.DONE);
  });

  it("with isolation: 'process', a segfault costs one attempt", async () => {
    const { details } = await runFiles(['crash.csv', 'a.csv'], `if (context.partitionId === 'crash.csv') process.kill(process.pid, 'SIGSEGV');`, { isolation: 'process', maxRetries: 0 });
    expect(details['crash.csv']).toMatchObject({ status: PartitionStatus.INTERNAL_ERROR, error: { name: 'WorkerCrashError', message: expect.stringContaining('SIGSEGV') } });
    expect(details['a.csv']!.status).toBe(PartitionStatus.DONE);
  });

  it("with isolation: 'process' and memoryLimitMb, running out of memory costs one attempt", async () => {
    const { details } = await runFiles(
      ['hog.csv', 'a.csv'],
      `if (context.partitionId === 'hog.csv') { const keep = []; for (;;) keep.push(new Array(100000).fill(Math.random())); }`,
      { isolation: 'process', memoryLimitMb: 64, maxRetries: 0 },
    );
    expect(details['hog.csv']).toMatchObject({ status: PartitionStatus.INTERNAL_ERROR, error: { name: 'WorkerCrashError', message: expect.stringContaining('out of memory') } });
    expect(details['a.csv']!.status).toBe(PartitionStatus.DONE);
  });

  it('in a worker thread, process.exit ends that worker only; the partition is INTERNAL_ERROR and the run goes on', async () => {
    const { details } = await runFiles(['exit.csv', 'a.csv', 'b.csv'], `if (context.partitionId === 'exit.csv') process.exit(7);`, { maxRetries: 0 });
    expect(details['exit.csv']).toMatchObject({ status: PartitionStatus.INTERNAL_ERROR, error: { message: expect.stringContaining('code 7') } });
    expect(details['a.csv']!.status).toBe(PartitionStatus.DONE);
    expect(details['b.csv']!.status).toBe(PartitionStatus.DONE);
  });

  it.each(['thread', 'process'] as const)('blames exactly the partition that killed its worker, among many quick ones (%s)', async (isolation) => {
    const ids = Array.from({ length: 40 }, (_, i) => `q${String(i).padStart(2, '0')}.csv`);
    const { details } = await runFiles(ids, `if (context.partitionId === 'q17.csv') process.exit(5);`, { maxRetries: 0, isolation, availableCpus: 1 });
    expect(details['q17.csv']).toMatchObject({ status: PartitionStatus.INTERNAL_ERROR, attempts: 1 });
    const others = ids.filter((id) => id !== 'q17.csv').map((id) => details[id]!);
    expect(others.filter((d) => d.status !== PartitionStatus.DONE).map((d) => d.partitionId)).toEqual([]);
  });

  it('in a worker thread with memoryLimitMb, running out of heap costs one attempt', async () => {
    const { details } = await runFiles(
      ['hog.csv', 'a.csv'],
      `if (context.partitionId === 'hog.csv') { const keep = []; for (;;) keep.push(new Array(100000).fill(Math.random())); }`,
      { memoryLimitMb: 64, maxRetries: 0 },
    );
    expect(details['hog.csv']).toMatchObject({ status: PartitionStatus.INTERNAL_ERROR, error: { message: expect.stringContaining('out of memory') } });
    expect(details['a.csv']!.status).toBe(PartitionStatus.DONE);
  });
});
