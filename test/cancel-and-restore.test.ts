import { join } from 'node:path';
import { DPF, DPFRun, type PartitionEvent, PartitionStatus, RunAbandonedError, RunNotFoundError, RunStatus } from 'dpf';
import { describe, expect, it } from 'vitest';
import { exists, runNodeScript, tempDir, waitFor, writeFiles, writeModule } from './helpers.js';

/** Partitions that take `ms` each and stop early when their signal fires. */
const SLOW = (ms: number) => `
  await new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ${ms});
    context.signal.addEventListener('abort', () => { clearTimeout(timer); reject(context.signal.reason); });
  });
  await context.uploadToStage({ done: context.partitionId }, 'done.json');
`;

async function setUp(count: number, body: string): Promise<{ dir: string; stage: string; input: string; module: string }> {
  const dir = await tempDir();
  const input = join(dir, 'input');
  await writeFiles(input, Object.fromEntries(Array.from({ length: count }, (_, i) => [`p${String(i).padStart(2, '0')}.csv`, 'x\n1\n'])));
  return { dir, stage: join(dir, 'stage'), input, module: await writeModule(dir, body) };
}

describe('cancel', () => {
  it('stops a run mid-way: finished partitions keep their results, running ones are aborted, pending ones cancelled', async () => {
    const { stage, input, module } = await setUp(8, SLOW(250));
    const run = await new DPF(module, { stage }).runFromStage({ stageLocation: input, runId: 'c', filePattern: '*.csv', executionOptions: { availableCpus: 1 } });
    const events: PartitionEvent[] = [];
    run.on('partition', (event) => events.push(event));
    await waitFor(async () => (await run.getProgress()).DONE.length >= 2, 20_000, 'two partitions done');
    await run.cancel();
    expect(run.status).toBe(RunStatus.CANCELLED);
    expect(await run.wait()).toBe(RunStatus.CANCELLED);

    const progress = await run.getProgress();
    expect(progress.DONE.length).toBeGreaterThanOrEqual(2);
    expect(progress.DONE.length + progress.CANCELLED.length).toBe(8);
    for (const done of progress.DONE) expect(await done.artifacts.list()).toEqual(['done.json']);
    for (const cancelled of progress.CANCELLED) expect(await cancelled.artifacts.list()).toEqual([]);
    expect(progress.CANCELLED.some((details) => details.error?.name === 'PartitionCancelledError')).toBe(true);
    expect(events.filter((event) => event.status === PartitionStatus.CANCELLED)).toHaveLength(progress.CANCELLED.length);
    expect((await DPFRun.restoreFrom('c', stage)).status).toBe(RunStatus.CANCELLED);
  });

  it('terminates a partition that blocks its thread and cannot see its signal', async () => {
    const { stage, input, module } = await setUp(2, `for (;;) {}`);
    const run = await new DPF(module, { stage }).runFromStage({ stageLocation: input, runId: 'stubborn', filePattern: '*.csv' });
    await waitFor(async () => (await run.getProgress()).RUNNING.length === 2, 20_000, 'both running');
    const started = Date.now();
    await run.cancel();
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(run.status).toBe(RunStatus.CANCELLED);
    expect((await run.getProgress()).CANCELLED).toHaveLength(2);
  });

  it('stops a run executed by another process, from a restored handle', async () => {
    const { stage, input, module } = await setUp(6, SLOW(400));
    const driver = runNodeScript(`
      import { DPF } from 'dpf';
      const run = await new DPF(${JSON.stringify(module)}, { stage: ${JSON.stringify(stage)} })
        .runFromStage({ stageLocation: ${JSON.stringify(input)}, runId: 'remote', filePattern: '*.csv', executionOptions: { availableCpus: 1 } });
      console.log('STATUS ' + await run.wait());
    `);
    await waitFor(() => exists(join(stage, 'remote/_dpf/run.json')), 20_000, 'the run to start');
    const restored = await DPFRun.restoreFrom('remote', stage);
    await waitFor(async () => (await restored.getProgress()).DONE.length >= 1, 20_000, 'one partition done');
    await restored.cancel();
    expect(restored.status).toBe(RunStatus.CANCELLED);
    const result = await driver.done;
    expect(result.stdout).toContain('STATUS CANCELLED');
    expect(result.code).toBe(0);
  });
});

describe('restore', () => {
  it('follows a run from a second process while it is going, and waits for it to end', async () => {
    const { stage, input, module } = await setUp(6, SLOW(300));
    const run = await new DPF(module, { stage }).runFromStage({ stageLocation: input, runId: 'watched', filePattern: '*.csv', executionOptions: { availableCpus: 1 } });
    const watcher = runNodeScript(`
      import { DPFRun } from 'dpf';
      const run = await DPFRun.restoreFrom('watched', ${JSON.stringify(stage)});
      const before = await run.getProgress();
      console.log('BEFORE ' + run.status + ' ' + (before.PENDING.length + before.RUNNING.length));
      const seen = [];
      run.on('partition', (event) => seen.push(event.status));
      const status = await run.wait();
      const after = await run.getProgress();
      console.log('AFTER ' + status + ' ' + after.DONE.length + ' ' + seen.filter((s) => s === 'DONE').length);
    `);
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const { stdout, code, stderr } = await watcher.done;
    expect(code, stderr).toBe(0);
    const before = /BEFORE (\S+) (\d+)/.exec(stdout)!;
    expect(before[1]).toBe('IN_PROGRESS');
    expect(Number(before[2])).toBeGreaterThan(0);
    const after = /AFTER (\S+) (\d+) (\d+)/.exec(stdout)!;
    expect(after.slice(1)).toEqual(['SUCCESS', '6', expect.any(String)]);
    expect(Number(after[3])).toBeGreaterThan(0);
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
    const { stage, input, module } = await setUp(3, SLOW(50));
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
    const { stage, input, module } = await setUp(4, SLOW(5000));
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
