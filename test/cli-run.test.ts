import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { DPF, DPFRun, PartitionStatus, RunStatus } from 'dpf';
import { describe, expect, it } from 'vitest';
import { countingModule, executions, inputFiles, release } from './support/counting-run.js';
import { executionCounts, fix, fixableModule } from './support/fixable-run.js';
import { dpfCommand, exists, ROOT, tempDir, waitFor, writeFiles } from './helpers.js';

describe('dpf run and dpf rerun --failed', () => {
  it('stage mode: a failing partition exits 1 naming it; rerun --failed after the fix exits 0, the DONE ones not run again', async () => {
    const dir = await tempDir();
    const input = await inputFiles(dir, 4);
    const stage = join(dir, 'stage');
    const module = await fixableModule(dir, ['p02.csv']);

    const first = dpfCommand('run', module, '--run-id', 'files', '--from', input, '--pattern', '*.csv', '--stage', stage, '--args', '{"k": 1, "tags": ["x"]}', '--max-retries', '0');
    expect(first.status).toBe(1);
    const lines = first.stdout.split('\n');
    expect(lines[0]).toMatch(/^run files: PARTIAL_FAILURE — 4 partition\(s\): 3 DONE, 1 FAILED \(\d+\.\d s\)$/);
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}p02\.csv\s+FAILED\s+1 attempt\(s\)\s+Error: not fixed yet: p02\.csv$/));
    expect(first.stdout).toContain(`dpf rerun files --failed --stage ${stage}`);
    expect(first.stdout).toContain(`dpf logs files p02.csv --stage ${stage}`);
    // The progress bar, on stderr (a line per tenth when it is not a terminal).
    expect(first.stderr).toMatch(/files \[█+\] 4\/4/);

    await fix(dir);
    const rerun = dpfCommand('rerun', 'files', '--failed', '--stage', stage);
    expect(rerun.stderr).toContain('rerunning 1 of the 4 partition(s) of run files; 3 DONE kept');
    expect(rerun.status).toBe(0);
    expect(rerun.stdout).toMatch(/^run files: SUCCESS — 4 partition\(s\): 4 DONE/);

    const run = await DPFRun.restoreFrom('files', stage);
    const details = await run.getPartitionDetails();
    expect(Object.values(details).map((partition) => [partition.partitionId, partition.status, partition.attempts])).toEqual([
      ['p00.csv', PartitionStatus.DONE, 1],
      ['p01.csv', PartitionStatus.DONE, 1],
      ['p02.csv', PartitionStatus.DONE, 2],
      ['p03.csv', PartitionStatus.DONE, 1],
    ]);
    expect(await executionCounts(dir)).toEqual({ 'p00.csv': 1, 'p01.csv': 1, 'p02.csv': 2, 'p03.csv': 1 });
    // --args reached context.args, in the rerun too.
    expect(await details['p02.csv']!.artifacts.get('result.json')).toEqual({ id: 'p02.csv', args: { k: 1, tags: ['x'] }, rows: 1 });
    expect(await details['p00.csv']!.artifacts.get('result.json')).toEqual({ id: 'p00.csv', args: { k: 1, tags: ['x'] }, rows: 1 });

    const again = dpfCommand('rerun', 'files', '--failed', '--stage', stage);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('nothing to rerun: all 4 of its partitions are DONE');
    const withoutFailed = dpfCommand('rerun', 'files', '--stage', stage);
    expect(withoutFailed.status).toBe(1);
    expect(withoutFailed.stderr).toMatch(/rerun needs --failed: it reruns the partitions of run "files" that are not DONE .*dpf rerun files --failed/);
  });

  it('DataFrame mode: runs from SQL, and rerun --failed reruns from the planned input', async () => {
    const dir = await tempDir();
    await writeFiles(dir, { 'sales.csv': 'store,day,amount\na,1,1\na,2,2\nb,1,3\nc,1,4\nc,2,5\nc,3,6\n' });
    const stage = join(dir, 'stage');
    const module = await fixableModule(dir, ['b']);
    const source = `SELECT * FROM '${join(dir, 'sales.csv')}'`;

    const first = dpfCommand('run', module, '--run-id', 'frames', '--partition-by', 'store', '--source', source, '--stage', stage, '--max-retries', '0');
    expect(first.status).toBe(1);
    expect(first.stdout).toMatch(/^run frames: PARTIAL_FAILURE — 3 partition\(s\): 2 DONE, 1 FAILED/);
    expect(first.stdout).toMatch(/\n {2}b\s+FAILED\s+1 attempt\(s\)\s+Error: not fixed yet: b\n/);

    await fix(dir);
    const rerun = dpfCommand('rerun', 'frames', '--failed', '--stage', stage);
    expect(rerun.status).toBe(0);
    const run = await DPFRun.restoreFrom('frames', stage);
    expect(run.status).toBe(RunStatus.SUCCESS);
    const details = await run.getPartitionDetails();
    expect(await details.c!.artifacts.get('result.json')).toEqual({ id: 'c', args: null, rows: 3 });
    expect(await details.b!.artifacts.get('result.json')).toEqual({ id: 'b', args: null, rows: 1 });
    expect(await executionCounts(dir)).toEqual({ a: 1, b: 2, c: 1 });

    // A composite key, every partition DONE: exit 0.
    const composite = dpfCommand('run', module, '--run-id', 'by-store-day', '--partition-by', 'store,day', '--source', source, '--stage', stage);
    expect(composite.status).toBe(0);
    expect(composite.stdout).toMatch(/^run by-store-day: SUCCESS — 6 partition\(s\): 6 DONE/);
    expect(composite.stdout).toContain(`dpf export by-store-day --out DIR --stage ${stage}`);
    expect(Object.keys(await (await DPFRun.restoreFrom('by-store-day', stage)).getPartitionDetails())).toContain('store=c/day=3');
  });

  it('refuses bad options before any work, naming the option', async () => {
    const dir = await tempDir();
    const input = await inputFiles(dir, 2);
    const stage = join(dir, 'stage');
    const module = await fixableModule(dir, []);
    const cases: Array<[string[], RegExp]> = [
      [['--from', input, '--source', 'SELECT 1 AS k', '--partition-by', 'k'], /--from: cannot be given with --source/],
      [[], /--source\/--from: neither is given/],
      [['--partition-by', 'k', '--pattern', '*.csv', '--source', 'SELECT 1 AS k'], /--pattern: chooses files under the folder --from names/],
      [['--from', input, '--args', '{"k": 1'], /--args: takes JSON.*"\{\\"k\\": 1" is not JSON/],
      [['--from', input, '--resume', '--overwrite'], /--overwrite: cannot be given with --resume/],
      [['--source', 'SELECT 1 AS k'], /--partition-by: is needed with --source/],
      [['--partition-by', 'k'], /--source: is needed with --partition-by/],
      [['--from', input, '--max-retries', 'two'], /--max-retries takes a whole number/],
    ];
    for (const [flags, message] of cases) {
      const result = dpfCommand('run', module, '--run-id', 'bad', '--stage', stage, ...flags);
      expect(result.status, flags.join(' ')).toBe(1);
      expect(result.stderr, flags.join(' ')).toMatch(message);
    }
    const missingModule = dpfCommand('run', join(dir, 'nope.mjs'), '--run-id', 'bad', '--from', input, '--stage', stage);
    expect(missingModule.status).toBe(1);
    expect(missingModule.stderr).toContain(`dpf: MODULE: ${join(dir, 'nope.mjs')} is not a file`);
    const badId = dpfCommand('run', module, '--run-id', 'no spaces', '--from', input, '--stage', stage);
    expect(badId.status).toBe(1);
    expect(badId.stderr).toContain('dpf: --run-id: "no spaces" cannot name a run folder');
    const noExport = dpfCommand('run', module, '--run-id', 'bad', '--export', 'train', '--from', input, '--stage', stage);
    expect(noExport.status).toBe(1);
    expect(noExport.stderr).toContain('has no export named "train"');
    // No work: no stage, no run folder, no partition ran.
    expect(await exists(stage)).toBe(false);
    expect(await executions(dir)).toEqual([]);
  });

  it('--resume keeps the DONE partitions, --overwrite replaces the run, neither refuses an existing run', async () => {
    const dir = await tempDir();
    const input = await inputFiles(dir, 3);
    const stage = join(dir, 'stage');
    const module = await fixableModule(dir, ['p01.csv']);
    const run = (...flags: string[]): ReturnType<typeof dpfCommand> => dpfCommand('run', module, '--run-id', 'again', '--from', input, '--pattern', '*.csv', '--stage', stage, '--max-retries', '0', ...flags);
    expect(run().status).toBe(1);

    const refused = run();
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('A run "again" already exists');
    expect(await executionCounts(dir)).toEqual({ 'p00.csv': 1, 'p01.csv': 1, 'p02.csv': 1 });

    await fix(dir);
    const resumed = run('--resume');
    expect(resumed.status).toBe(0);
    expect(await executionCounts(dir)).toEqual({ 'p00.csv': 1, 'p01.csv': 2, 'p02.csv': 1 });

    const overwritten = run('--overwrite');
    expect(overwritten.status).toBe(0);
    expect(await executionCounts(dir)).toEqual({ 'p00.csv': 2, 'p01.csv': 3, 'p02.csv': 2 });
    const details = await (await DPFRun.restoreFrom('again', stage)).getPartitionDetails();
    expect(Object.values(details).map((partition) => partition.attempts)).toEqual([1, 1, 1]);
  });

  it('SIGTERM cancels the run cleanly, keeping what finished, and exits non-zero; rerun --failed then finishes it', async () => {
    const dir = await tempDir();
    const input = await inputFiles(dir, 3);
    const stage = join(dir, 'stage');
    // One partition finishes; the others wait at their barrier until released.
    const module = await countingModule(dir, { hold: 1 });
    const child = spawn(process.execPath, [join(ROOT, 'dist/cli/main.js'), 'run', module, '--run-id', 'stopped', '--from', input, '--pattern', '*.csv', '--stage', stage, '--concurrency', '1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor(async () => (await exists(join(stage, 'stopped/_dpf/run.json'))) && (await DPFRun.restoreFrom('stopped', stage)).statusCounts().get(PartitionStatus.DONE) === 1 && (await executions(dir)).length === 2, 30_000, 'one partition done, the next one running');
      child.kill('SIGTERM');
      expect(await exited).toBe(143);
    } finally {
      child.kill('SIGKILL');
    }
    expect(stderr).toContain('dpf run: SIGTERM: cancelling run "stopped"');
    expect(stdout).toMatch(/^run stopped: CANCELLED — 3 partition\(s\): 1 DONE, 2 CANCELLED/);
    expect(stdout).toContain(`dpf rerun stopped --failed --stage ${stage}`);
    const run = await DPFRun.restoreFrom('stopped', stage);
    expect(run.status).toBe(RunStatus.CANCELLED);
    expect(run.abandoned).toBe(false);
    const done = (await run.getProgress()).DONE.map((details) => details.partitionId);

    await release(dir);
    const rerun = dpfCommand('rerun', 'stopped', '--failed', '--stage', stage);
    expect(rerun.status).toBe(0);
    const after = await (await DPFRun.restoreFrom('stopped', stage)).getPartitionDetails();
    expect(Object.values(after).every((details) => details.status === PartitionStatus.DONE)).toBe(true);
    expect(after[done[0]!]!.attempts).toBe(1);
  });

  it('refuses to rerun a run its driver is executing', async () => {
    const dir = await tempDir();
    const input = await inputFiles(dir, 2);
    const stage = join(dir, 'stage');
    const run = await new DPF(await countingModule(dir, { hold: 0 }), { stage }).runFromStage({ stageLocation: input, runId: 'live', filePattern: '*.csv' });
    const refused = dpfCommand('rerun', 'live', '--failed', '--stage', stage);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/dpf: Run "live" is being executed right now by pid \d+ on .*dpf cancel live/);
    await release(dir);
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
  });
});

describe('dpf status --json and dpf runs --json', () => {
  it("give the run's numbers, as DPFRun reports them", async () => {
    const dir = await tempDir();
    const input = await inputFiles(dir, 3);
    const stage = join(dir, 'stage');
    const module = await fixableModule(dir, ['p01.csv']);
    const made = await new DPF(module, { stage }).runFromStage({ stageLocation: input, runId: 'numbers', filePattern: '*.csv', executionOptions: { maxRetries: 1, retryBackoffMs: 0 } });
    await made.wait();
    const run = await DPFRun.restoreFrom('numbers', stage);
    const details = await run.getPartitionDetails();

    const status = dpfCommand('status', 'numbers', '--json', '--stage', stage);
    expect(status.status).toBe(0);
    const json = JSON.parse(status.stdout);
    expect(json).toMatchObject({
      runId: 'numbers',
      status: 'PARTIAL_FAILURE',
      abandoned: false,
      waitingForDriver: false,
      driverAlive: false,
      driver: null,
      numPartitions: 3,
      counts: { PENDING: 0, RUNNING: 0, DONE: 2, FAILED: 1, CANCELLED: 0, INTERNAL_ERROR: 0 },
      createdAt: run.times.createdAt.toISOString(),
      finishedAt: run.times.finishedAt!.toISOString(),
      durationMs: run.times.finishedAt!.getTime() - run.times.createdAt.getTime(),
      input: { mode: 'stage', location: input, filePattern: '*.csv' },
      stage,
      queue: null,
      matching: 3,
    });
    expect(json.partitions).toEqual(
      Object.values(details).map((partition) => ({
        id: partition.partitionId,
        status: partition.status,
        attempts: partition.attempts,
        startedAt: partition.startedAt!.toISOString(),
        finishedAt: partition.finishedAt!.toISOString(),
        durationMs: partition.durationMs,
        rows: partition.numRows ?? null,
        error: partition.error === undefined ? null : { name: partition.error.name, message: partition.error.message },
      })),
    );
    expect(json.partitions[1]).toMatchObject({ id: 'p01.csv', status: 'FAILED', attempts: 2, error: { name: 'Error', message: 'not fixed yet: p01.csv' } });
    const failedOnly = JSON.parse(dpfCommand('status', 'numbers', '--json', '--status', 'failed', '--stage', stage).stdout);
    expect(failedOnly.partitions.map((partition: { id: string }) => partition.id)).toEqual(['p01.csv']);
    expect(failedOnly.matching).toBe(1);

    await new DPF(module, { stage }).runFromStage({ stageLocation: input, runId: 'second', filePattern: 'p00.csv' }).then((second) => second.wait());
    const runs = dpfCommand('runs', '--json', '--stage', stage);
    expect(runs.status).toBe(0);
    const listed = JSON.parse(runs.stdout);
    expect(listed.map((entry: { runId: string }) => entry.runId)).toEqual(['numbers', 'second']);
    expect(listed[0]).toEqual({
      runId: 'numbers',
      status: 'PARTIAL_FAILURE',
      abandoned: false,
      waitingForDriver: false,
      numPartitions: 3,
      counts: json.counts,
      createdAt: json.createdAt,
      finishedAt: json.finishedAt,
    });
    expect(listed[1]).toMatchObject({ runId: 'second', status: 'SUCCESS', numPartitions: 1, counts: { DONE: 1 } });
  });
});
