import { join } from 'node:path';
import { DPF } from 'dpf';
import { describe, expect, it } from 'vitest';
import { dpfCommand, tempDir, writeFiles, writeModule } from './helpers.js';

describe('the dpf command', () => {
  it('shows a run and a table of its partitions, and a partition log', async () => {
    const dir = await tempDir();
    await writeFiles(join(dir, 'input'), { 'ok.csv': 'x\n1\n2\n', 'sub/bad.csv': 'x\n1\n' });
    const module = await writeModule(
      dir,
      `await data.toArrow(); console.log('processing', context.partitionId); if (context.partitionId.startsWith('sub/')) throw new Error('bad input'); await context.uploadToStage({ id: context.partitionId }, 'seen.json');`,
    );
    const stage = join(dir, 'stage');
    await (await new DPF(module, { stage }).runFromStage({ stageLocation: join(dir, 'input'), runId: 'cli-run', filePattern: '**/*.csv', executionOptions: { maxRetries: 0 } })).wait();

    const status = dpfCommand('status', 'cli-run', '--stage', stage);
    expect(status.status).toBe(0);
    const lines = status.stdout.split('\n');
    expect(lines[0]).toBe('run cli-run: PARTIAL_FAILURE — 2 partition(s): 1 DONE, 1 FAILED');
    expect(lines[1]).toBe(`input files **/*.csv under ${join(dir, 'input')}`);
    expect(lines).toContainEqual(expect.stringMatching(/^PARTITION\s+STATUS\s+ATTEMPTS\s+DURATION\s+ROWS\s+ERROR$/));
    expect(lines).toContainEqual(expect.stringMatching(/^ok\.csv\s+DONE\s+1\s+\d+ ms\s+2$/));
    expect(lines).toContainEqual(expect.stringMatching(/^sub\/bad\.csv\s+FAILED\s+1\s+\d+ ms\s+1\s+Error: bad input$/));

    const failedOnly = dpfCommand('status', 'cli-run', '--stage', stage, '--status', 'failed');
    expect(failedOnly.stdout).not.toContain('ok.csv');

    const artifacts = dpfCommand('artifacts', 'cli-run', 'ok.csv', '--stage', stage);
    expect(artifacts.stdout).toBe('seen.json\n');
    const artifact = dpfCommand('artifacts', 'cli-run', 'ok.csv', 'seen.json', '--stage', stage);
    expect(JSON.parse(artifact.stdout)).toEqual({ id: 'ok.csv' });
    const copied = dpfCommand('artifacts', 'cli-run', 'ok.csv', 'seen.json', '--stage', stage, '--out', join(dir, 'out'));
    expect(copied.stdout.trim()).toBe(join(dir, 'out', 'seen.json'));

    const logs = dpfCommand('logs', 'cli-run', 'sub/bad.csv', '--stage', stage);
    expect(logs.status).toBe(0);
    expect(logs.stdout).toMatch(/\[attempt 1\] \[stdout\] processing sub\/bad\.csv\n.*failed: Error: bad input/);
  });

  it('says clearly what is wrong, with a non-zero exit', async () => {
    const dir = await tempDir();
    const missing = dpfCommand('status', 'nope', '--stage', dir);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('dpf: No run "nope"');
    const noStage = dpfCommand('status', 'nope');
    expect(noStage.status).not.toBe(0);
    expect(noStage.stderr).toContain("required option '--stage <dir>'");
  });
});
