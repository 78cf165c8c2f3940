import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DPF, DPFRun, PartitionStatus, RunStatus } from 'dpf';
import { describe, expect, it } from 'vitest';
import { exists, tempDir, waitFor, writeFiles, writeModule } from './helpers.js';
import { untilFile } from './support/barriers.js';

describe("a running attempt's log", () => {
  it("is in the partition's logs() while the attempt runs, and its live copy is gone once the run ends", async () => {
    const dir = await tempDir();
    await writeFiles(join(dir, 'input'), { 'slow.csv': 'x\n1\n' });
    const next = join(dir, 'next');
    const done = join(dir, 'done');
    const module = await writeModule(dir, `console.log('first <b>line</b>'); ${untilFile(next)} context.log.info('second line'); ${untilFile(done)}`);
    const run = await new DPF(module, { stage: join(dir, 'stage') }).runFromStage({ stageLocation: join(dir, 'input'), runId: 'live', filePattern: '*.csv' });

    const watcher = await DPFRun.restoreFrom('live', join(dir, 'stage'));
    const liveLog = async (): Promise<string> => (await watcher.currentDetails('slow.csv'))!.logs();
    await waitFor(async () => (await liveLog()).includes('first <b>line</b>'), 30_000, 'the first line in the live log');
    expect(await liveLog()).not.toContain('second line');
    expect((await watcher.currentDetails('slow.csv'))!.status).toBe(PartitionStatus.RUNNING);

    await writeFiles(dir, { next: '' });
    await waitFor(async () => (await liveLog()).includes('second line'), 30_000, 'the second line in the live log');
    await writeFiles(dir, { done: '' });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);

    // The stored log, once: not the live copy again.
    const log = await (await watcher.currentDetails('slow.csv'))!.logs();
    expect(log.match(/first <b>line<\/b>/g)).toHaveLength(1);
    expect(log).toMatch(/first <b>line<\/b>[\s\S]*second line/);
    const state = join(dir, 'stage', 'live', '_dpf');
    expect(await exists(join(state, 'journal'))).toBe(true);
    expect(await readdir(state)).not.toContain('live');
  });
});
