import { join } from 'node:path';
import { DPF, type ExecutionOptions, PartitionStatus } from 'dpf';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { tempDir, writeFiles, writeModule } from './helpers.js';

/**
 * Errors that escape a partition function — a rejected promise nobody awaits, a throw in a timer
 * it left behind — belong to the partition whose function raised them: while its attempt runs they
 * fail that attempt; after it ended they are reported on the driver's stderr naming that
 * partition, and never fail another one.
 */

afterEach(() => {
  vi.restoreAllMocks();
});

async function runFiles(ids: string[], body: string, executionOptions: ExecutionOptions, prelude = '') {
  const dir = await tempDir();
  await writeFiles(join(dir, 'input'), Object.fromEntries(ids.map((id) => [id, 'x\n1\n'])));
  const module = await writeModule(dir, body, { prelude });
  const run = await new DPF(module, { stage: join(dir, 'stage') }).runFromStage({
    stageLocation: join(dir, 'input'),
    runId: 'escaped',
    filePattern: '*',
    executionOptions: { retryBackoffMs: 0, maxRetries: 0, ...executionOptions },
  });
  await run.wait();
  return run.getPartitionDetails();
}

/** What the driver writes to its stderr while `body` runs. */
async function driverStderr<T>(body: () => Promise<T>): Promise<{ result: T; stderr: string }> {
  let stderr = '';
  const write = process.stderr.write.bind(process.stderr);
  vi.spyOn(process.stderr, 'write').mockImplementation(((chunk: string | Uint8Array, ...rest: unknown[]) => {
    stderr += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return (write as (...args: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write);
  const result = await body();
  return { result, stderr };
}

describe.each(['thread', 'process'] as const)('an error escaping a partition function (%s)', (isolation) => {
  it('a promise it rejected and left unawaited fails its attempt, with that error', async () => {
    const details = await runFiles(
      ['dangling.csv', 'ok.csv'],
      `if (context.partitionId === 'dangling.csv') { Promise.reject(new RangeError('left behind by ' + context.partitionId)); }`,
      { isolation, availableCpus: 1 },
    );
    expect(details['dangling.csv']).toMatchObject({ status: PartitionStatus.FAILED, error: { name: 'RangeError', message: 'left behind by dangling.csv' } });
    expect(details['ok.csv']!.status).toBe(PartitionStatus.DONE);
  });

  // The first partition a worker runs leaves work behind that raises once the second has started
  // (a barrier, not a delay): the second must not pay for it, the first is named on stderr.
  it.each([
    ['a rejection', `Promise.reject(new Error('late from ' + context.partitionId)); state.raised.resolve();`],
    ['a throw in a timer', `setTimeout(() => { state.raised.resolve(); throw new Error('late from ' + context.partitionId); });`],
  ])('%s raised after its function returned fails no other partition and is reported against it', async (_, raise) => {
    const { result: details, stderr } = await driverStderr(() =>
      runFiles(
        ['first.csv', 'second.csv'],
        `
        const state = states.get(context.runId + ':' + process.pid) ?? { taken: false, secondStarted: deferred(), raised: deferred() };
        states.set(context.runId + ':' + process.pid, state);
        if (!state.taken) {
          state.taken = true;
          state.secondStarted.promise.then(() => { ${raise} });
          return;
        }
        state.secondStarted.resolve();
        await state.raised.promise;
        // An unhandled rejection is reported once the microtasks have run: let it reach the
        // worker's handlers while this attempt is still running.
        await new Promise((resolve) => setImmediate(resolve));
        `,
        { isolation, availableCpus: 1 },
        `
        const states = new Map();
        function deferred() { let resolve; const promise = new Promise((r) => (resolve = r)); return { promise, resolve }; }
        `,
      ),
    );
    expect(details['first.csv']!.status).toBe(PartitionStatus.DONE);
    expect(details['second.csv']!.status).toBe(PartitionStatus.DONE);
    const report = /partition "([^"]+)" \(run escaped, attempt 1\) raised an error after its attempt had ended[^\n]*\n[^\n]*late from ([^\s]+)/.exec(stderr);
    expect(report, stderr).not.toBeNull();
    // The partition named is the one whose function raised it.
    expect(report![1]).toBe(report![2]);
  });
});
