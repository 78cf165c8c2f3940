import { join } from 'node:path';
import { DPF, DPFRun, type PartitionEvent, PartitionStatus, RunAbandonedError, RunNotFoundError, RunStatus } from 'dpf';
import { describe, expect, it } from 'vitest';
import { exists, runNodeScript, tempDir, waitFor, writeFiles, writeModule } from './helpers.js';
import { markStarted, UNTIL_ABORTED, untilFile } from './support/barriers.js';

/**
 * Partitions of which the first `finish` to start finish at once; every later one marks itself
 * started (in `{dir}/started/`) and waits for its signal, so the run is mid-way until it is
 * stopped, however fast or slow the machine.
 */
const FIRST_FINISH = (finish: number) => (dir: string) => `
  fs.appendFileSync(${JSON.stringify(join(dir, 'order.log'))}, context.partitionId + '\\n');
  if (fs.readFileSync(${JSON.stringify(join(dir, 'order.log'))}, 'utf8').trim().split('\\n').length > ${finish}) {
    ${markStarted(join(dir, 'started'))}
    ${UNTIL_ABORTED}
  }
  await context.uploadToStage({ done: context.partitionId }, 'done.json');
`;

/** Partitions that wait until the file `{dir}/release` exists, then finish. */
const UNTIL_RELEASED = (dir: string) => `
  ${untilFile(join(dir, 'release'))}
  await context.uploadToStage({ done: context.partitionId }, 'done.json');
`;

async function setUp(count: number, body: string | ((dir: string) => string)): Promise<{ dir: string; stage: string; input: string; module: string }> {
  const dir = await tempDir();
  const input = join(dir, 'input');
  await writeFiles(input, Object.fromEntries(Array.from({ length: count }, (_, i) => [`p${String(i).padStart(2, '0')}.csv`, 'x\n1\n'])));
  const module = await writeModule(dir, typeof body === 'string' ? body : body(dir), { prelude: `import fs from 'node:fs';` });
  return { dir, stage: join(dir, 'stage'), input, module };
}

describe('cancel', () => {
  it('stops a run mid-way: finished partitions keep their results, running ones are aborted, pending ones cancelled', async () => {
    const { dir, stage, input, module } = await setUp(8, FIRST_FINISH(2));
    const run = await new DPF(module, { stage }).runFromStage({ stageLocation: input, runId: 'c', filePattern: '*.csv', executionOptions: { availableCpus: 1 } });
    const events: PartitionEvent[] = [];
    run.on('partition', (event) => events.push(event));
    // Two partitions done, the third running (it waits for its signal): cancel now.
    await waitFor(async () => (await exists(join(dir, 'started'))) && (await run.getProgress()).DONE.length === 2, 20_000, 'two partitions done, a third running');
    await run.cancel();
    expect(run.status).toBe(RunStatus.CANCELLED);
    expect(await run.wait()).toBe(RunStatus.CANCELLED);

    const progress = await run.getProgress();
    expect(progress.DONE).toHaveLength(2);
    expect(progress.CANCELLED).toHaveLength(6);
    for (const done of progress.DONE) expect(await done.artifacts.list()).toEqual(['done.json']);
    for (const cancelled of progress.CANCELLED) expect(await cancelled.artifacts.list()).toEqual([]);
    // The running one was aborted through its signal; the pending ones never started.
    expect(progress.CANCELLED.filter((details) => details.error?.name === 'PartitionCancelledError')).toHaveLength(1);
    expect(events.filter((event) => event.status === PartitionStatus.CANCELLED)).toHaveLength(progress.CANCELLED.length);
    expect((await DPFRun.restoreFrom('c', stage)).status).toBe(RunStatus.CANCELLED);
  });

  it('terminates a partition that blocks its thread and cannot see its signal', async () => {
    // Each partition says it started, then blocks its thread for good: cancel() returns only if
    // dpf terminates the threads (a wait for them would never end).
    const { dir, stage, input, module } = await setUp(2, (dir) => `${markStarted(join(dir, 'started'))}\nfor (;;) {}`);
    const run = await new DPF(module, { stage }).runFromStage({ stageLocation: input, runId: 'stubborn', filePattern: '*.csv', executionOptions: { availableCpus: 2 } });
    await waitFor(async () => (await exists(join(dir, 'started/p00.csv'))) && (await exists(join(dir, 'started/p01.csv'))), 20_000, 'both running');
    await run.cancel();
    expect(run.status).toBe(RunStatus.CANCELLED);
    expect(await run.wait()).toBe(RunStatus.CANCELLED);
    expect((await run.getProgress()).CANCELLED).toHaveLength(2);
  });

  it('stops a run executed by another process, from a restored handle', async () => {
    const { stage, input, module } = await setUp(6, FIRST_FINISH(1));
    const driver = runNodeScript(`
      import { DPF } from 'dpf';
      const run = await new DPF(${JSON.stringify(module)}, { stage: ${JSON.stringify(stage)} })
        .runFromStage({ stageLocation: ${JSON.stringify(input)}, runId: 'remote', filePattern: '*.csv', executionOptions: { availableCpus: 1 } });
      console.log('STATUS ' + await run.wait());
    `);
    await waitFor(() => exists(join(stage, 'remote/_dpf/run.json')), 20_000, 'the run to start');
    const restored = await DPFRun.restoreFrom('remote', stage);
    await waitFor(async () => (await restored.getProgress()).DONE.length === 1, 20_000, 'one partition done');
    await restored.cancel();
    expect(restored.status).toBe(RunStatus.CANCELLED);
    const result = await driver.done;
    expect(result.stdout).toContain('STATUS CANCELLED');
    expect(result.code).toBe(0);
    const progress = await (await DPFRun.restoreFrom('remote', stage)).getProgress();
    expect([progress.DONE.length, progress.CANCELLED.length]).toEqual([1, 5]);
  });
});

describe('restore', () => {
  it('follows a run from a second process while it is going, and waits for it to end', async () => {
    // The partitions wait until the watcher, having looked and subscribed, releases them.
    const { dir, stage, input, module } = await setUp(6, UNTIL_RELEASED);
    const run = await new DPF(module, { stage }).runFromStage({ stageLocation: input, runId: 'watched', filePattern: '*.csv', executionOptions: { availableCpus: 1 } });
    const watcher = runNodeScript(`
      import { writeFileSync } from 'node:fs';
      import { DPFRun } from 'dpf';
      const run = await DPFRun.restoreFrom('watched', ${JSON.stringify(stage)});
      const before = await run.getProgress();
      console.log('BEFORE ' + run.status + ' ' + (before.PENDING.length + before.RUNNING.length));
      const seen = [];
      run.on('partition', (event) => seen.push(event.status));
      writeFileSync(${JSON.stringify(join(dir, 'release'))}, '');
      const status = await run.wait();
      const after = await run.getProgress();
      console.log('AFTER ' + status + ' ' + after.DONE.length + ' ' + seen.filter((s) => s === 'DONE').length);
    `);
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const { stdout, code, stderr } = await watcher.done;
    expect(code, stderr).toBe(0);
    const before = /BEFORE (\S+) (\d+)/.exec(stdout)!;
    expect(before.slice(1)).toEqual(['IN_PROGRESS', '6']);
    // Every partition finished after the watcher subscribed: it saw all six DONE.
    expect(/AFTER (\S+) (\d+) (\d+)/.exec(stdout)!.slice(1)).toEqual(['SUCCESS', '6', '6']);
  });

  it('gives details, logs and artifacts of a finished run to any later process', async () => {
    const { stage, input, module } = await setUp(3, `console.log('hello from', context.partitionId); await context.uploadToStage({ id: context.partitionId }, 'r.json');`);
    const run = await new DPF(module, { stage }).runFromStage({ stageLocation: input, runId: 'later', filePattern: '*.csv' });
    await run.wait();
    const reader = runNodeScript(`
      import { DPFRun } from 'dpf';
      const run = await DPFRun.restoreFrom('later', ${JSON.stringify(stage)});
      const details = (await run.getPartitionDetails())['p01.csv'];
      console.log(JSON.stringify({ status: run.status, partition: details.status, artifact: await details.artifacts.get('r.json'), log: await details.logs() }));
    `);
    const { stdout, code, stderr } = await reader.done;
    expect(code, stderr).toBe(0);
    const seen = JSON.parse(stdout) as { status: string; partition: string; artifact: unknown; log: string };
    expect(seen).toMatchObject({ status: 'SUCCESS', partition: 'DONE', artifact: { id: 'p01.csv' } });
    expect(seen.log).toContain('[stdout] hello from p01.csv');
  });

  it('streams transitions as an async iterable that ends with the run', async () => {
    const { stage, input, module } = await setUp(3, `await context.uploadToStage({ done: context.partitionId }, 'done.json');`);
    const run = await new DPF(module, { stage }).runFromStage({ stageLocation: input, runId: 'events', filePattern: '*.csv' });
    const statuses: string[] = [];
    for await (const event of run.events()) statuses.push(`${event.partitionId}:${event.status}`);
    expect(statuses.filter((s) => s.endsWith(':DONE')).sort()).toEqual(['p00.csv:DONE', 'p01.csv:DONE', 'p02.csv:DONE']);
    expect(statuses.filter((s) => s.endsWith(':RUNNING'))).toHaveLength(3);
  });

  it('refuses a run that is not on the stage', async () => {
    const dir = await tempDir();
    await expect(DPFRun.restoreFrom('missing', dir)).rejects.toBeInstanceOf(RunNotFoundError);
    await expect(DPFRun.restoreFrom('missing', join(dir, 'no-such-stage'))).rejects.toThrow(/No run "missing"/);
  });

  it('tells a waiter when the driver of a run died, instead of waiting forever', async () => {
    // The partitions never finish: the run cannot end before its driver is killed.
    const { stage, input, module } = await setUp(4, UNTIL_ABORTED);
    const driver = runNodeScript(`
      import { DPF } from 'dpf';
      const run = await new DPF(${JSON.stringify(module)}, { stage: ${JSON.stringify(stage)} })
        .runFromStage({ stageLocation: ${JSON.stringify(input)}, runId: 'orphan', filePattern: '*.csv' });
      await run.wait();
    `);
    await waitFor(() => exists(join(stage, 'orphan/_dpf/run.json')), 20_000, 'the run to start');
    driver.kill('SIGKILL');
    await driver.done;
    const restored = await DPFRun.restoreFrom('orphan', stage);
    await expect(restored.wait()).rejects.toBeInstanceOf(RunAbandonedError);
    expect(restored.status).toBe(RunStatus.IN_PROGRESS);
  });
});
