import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DPF } from 'dpf';
import { describe, expect, it } from 'vitest';
import { dpfCommand, dpfCommandWith, ROOT, tempDir, writeFiles, writeModule } from './helpers.js';
import { writeFinishedRun } from './support/written-run.js';

/** Runs the `dpf` command with its stdout on a terminal (a pseudo-terminal, through util-linux `script`); its output, with `\r\n` as `\n`. */
function dpfOnTerminal(...args: string[]): { status: number | null; output: string } {
  const quote = (arg: string): string => `'${arg.replaceAll("'", `'\\''`)}'`;
  const command = [process.execPath, join(ROOT, 'dist/cli/main.js'), ...args].map(quote).join(' ');
  const result = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { status: result.status, output: result.stdout.replaceAll('\r\n', '\n') };
}

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
    expect(lines).toContainEqual(expect.stringMatching(/^started \d{4}-\d\d-\d\d \d\d:\d\d:\d\d, ended \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(\d+\.\d s\)$/));
    expect(lines).toContainEqual(expect.stringMatching(/^PARTITION\s+STATUS\s+ATTEMPTS\s+DURATION\s+ROWS\s+ERROR$/));
    expect(lines).toContainEqual(expect.stringMatching(/^ok\.csv\s+DONE\s+1\s+\d+ ms\s+2$/));
    expect(lines).toContainEqual(expect.stringMatching(/^sub\/bad\.csv\s+FAILED\s+1\s+\d+ ms\s+1\s+Error: bad input$/));

    const failedOnly = dpfCommand('status', 'cli-run', '--stage', stage, '--status', 'failed');
    expect(failedOnly.stdout).not.toContain('ok.csv');
    expect(failedOnly.stdout).toContain('sub/bad.csv');

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
    const noStage = dpfCommandWith({ cwd: dir, env: { DPF_STAGE: undefined } }, 'status', 'nope');
    expect(noStage.status).toBe(1);
    expect(noStage.stderr).toContain(`No run "nope" on the stage ./stage`);
    expect(noStage.stderr).toContain('--stage or DPF_STAGE');
  });

  it('shows a run of a million partitions: the summary, the first rows, and how to see the rest', async () => {
    const stage = join(await tempDir(), 'stage');
    await writeFinishedRun(stage, 'million', 1_000_000, new Set([10, 500_000, 999_999]));
    const status = dpfCommand('status', 'million', '--stage', stage);
    expect(status.stderr).toBe('');
    expect(status.status).toBe(0);
    const lines = status.stdout.split('\n');
    expect(lines[0]).toBe('run million: PARTIAL_FAILURE — 1,000,000 partition(s): 999,997 DONE, 3 FAILED');
    const header = lines.findIndex((line) => line.startsWith('PARTITION'));
    const rows = lines.slice(header + 1, header + 51);
    expect(rows.map((row) => row.split(/\s+/)[0])).toEqual(Array.from({ length: 50 }, (_, i) => `k${i}`));
    expect(rows[10]).toMatch(/^k10\s+FAILED\s+1\s+1 ms\s+1\s+Error: k10 failed$/);
    expect(lines[header + 51]).toBe('… and 999,950 more: --limit N shows N, --all every one, --status FAILED the 3 FAILED');
    expect(lines.length).toBeLessThan(header + 55);
  });

  it('limits the table to --limit rows, or shows them --all', async () => {
    const stage = join(await tempDir(), 'stage');
    await writeFinishedRun(stage, 'some', 60, new Set());
    const limited = dpfCommand('status', 'some', '--stage', stage, '--limit', '5');
    expect(limited.stdout.split('\n').filter((line) => /^k\d+\s/.test(line))).toHaveLength(5);
    expect(limited.stdout).toContain('… and 55 more: --limit N shows N, --all every one\n');
    const all = dpfCommand('status', 'some', '--stage', stage, '--all');
    expect(all.stdout.split('\n').filter((line) => /^k\d+\s/.test(line))).toHaveLength(60);
    expect(all.stdout).not.toContain('more');
    const badLimit = dpfCommand('status', 'some', '--stage', stage, '--limit', 'ten');
    expect(badLimit.status).toBe(1);
    expect(badLimit.stderr).toContain('--limit takes a whole number of rows, such as 100; not "ten"');
  });

  it('refuses a --status that is not a partition status, naming the valid ones', async () => {
    const stage = join(await tempDir(), 'stage');
    await writeFinishedRun(stage, 'some', 3, new Set([1]));
    const bogus = dpfCommand('status', 'some', '--stage', stage, '--status', 'bogus');
    expect(bogus.status).toBe(1);
    expect(bogus.stderr).toContain('"bogus" is not a partition status; the statuses are PENDING, RUNNING, DONE, FAILED, CANCELLED, INTERNAL_ERROR');
    const several = dpfCommand('status', 'some', '--stage', stage, '--status', 'failed,Done');
    expect(several.status).toBe(0);
    expect(several.stdout.split('\n').filter((line) => /^k\d+\s/.test(line))).toHaveLength(3);
  });

  it('escapes ids with newlines, tabs and other control characters in the table, and takes them back as shown', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const module = await writeModule(dir, `console.log('saw', JSON.stringify(context.partitionId)); throw new Error('line one\\n\\tline two');`);
    const ids = ['two\nlines', 'a\ttab', 'red \u001b[31mtext', 'plain'];
    await (await new DPF(module, { stage }).run({ partitionBy: 'k', source: ids.map((k) => ({ k })), runId: 'odd', executionOptions: { maxRetries: 0 } })).wait();
    const status = dpfCommand('status', 'odd', '--stage', stage);
    expect(status.status).toBe(0);
    // Nothing the table prints moves the cursor or colours the terminal.
    expect([...status.stdout].filter((char) => char !== '\n' && (char < ' ' || char === '\u007f'))).toEqual([]);
    const rows = status.stdout.split('\n').filter((line) => line.includes('FAILED') && !line.startsWith('run '));
    expect(rows.map((row) => row.split('  ')[0]!.trim()).sort()).toEqual(['"a\\ttab"', '"red \\u001b[31mtext"', '"two\\nlines"', 'plain']);
    for (const row of rows) expect(row).toMatch(/Error: line one$/);

    for (const [shown, id] of [['"two\\nlines"', 'two\nlines'], ['two\nlines', 'two\nlines'], ['"a\\ttab"', 'a\ttab']] as const) {
      const logs = dpfCommand('logs', 'odd', shown, '--stage', stage);
      expect(logs.stderr).toBe('');
      expect(logs.stdout).toContain(`saw ${JSON.stringify(id)}`);
    }
  });

  it('does not print a binary artifact to a terminal, and ends printed JSON with a newline', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const bytes = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0x01, 0xff, 0xfe]);
    const module = await writeModule(
      dir,
      `await context.uploadToStage(Buffer.from(${JSON.stringify([...bytes])}), 'image.png');
       await context.uploadToStage({ a: 1 }, 'compact.json', { writeFunction: (value, path) => fs.writeFileSync(path, JSON.stringify(value)) });
       await context.uploadToStage('no final newline', 'note.txt', { writeFunction: (value, path) => fs.writeFileSync(path, value) });`,
      { prelude: `import fs from 'node:fs';` },
    );
    await (await new DPF(module, { stage }).run({ partitionBy: 'k', source: [{ k: 'p' }], runId: 'files' })).wait();

    const onTerminal = dpfOnTerminal('artifacts', 'files', 'p', 'image.png', '--stage', stage);
    expect(onTerminal.status).toBe(1);
    expect(onTerminal.output).toContain('dpf: artifact "image.png" of partition "p" is binary (8 bytes), so it is not printed on a terminal; copy it to a folder with --out DIR, or redirect it to a file');
    expect(onTerminal.output).not.toContain('PNG');
    const piped = spawnSync(process.execPath, [join(ROOT, 'dist/cli/main.js'), 'artifacts', 'files', 'p', 'image.png', '--stage', stage]);
    expect(piped.status).toBe(0);
    expect(Buffer.compare(piped.stdout, bytes)).toBe(0);
    const copied = dpfCommand('artifacts', 'files', 'p', 'image.png', '--stage', stage, '--out', join(dir, 'out'));
    expect(Buffer.compare(await readFile(copied.stdout.trim()), bytes)).toBe(0);

    expect(dpfCommand('artifacts', 'files', 'p', 'compact.json', '--stage', stage).stdout).toBe('{"a":1}\n');
    expect(dpfOnTerminal('artifacts', 'files', 'p', 'compact.json', '--stage', stage).output).toBe('{"a":1}\n');
    expect(dpfOnTerminal('artifacts', 'files', 'p', 'note.txt', '--stage', stage).output).toBe('no final newline\n');
    expect(dpfCommand('artifacts', 'files', 'p', 'note.txt', '--stage', stage).stdout).toBe('no final newline');
  });

  it('reads ./stage unless --stage or DPF_STAGE names another', async () => {
    const dir = await tempDir();
    await writeFinishedRun(join(dir, 'stage'), 'here', 2, new Set());
    await writeFinishedRun(join(dir, 'elsewhere'), 'there', 2, new Set());
    const inFolder = dpfCommandWith({ cwd: dir, env: { DPF_STAGE: undefined } }, 'status', 'here');
    expect(inFolder.status).toBe(0);
    expect(inFolder.stdout).toContain(`stage ${join(dir, 'stage')}`);
    const fromEnvironment = dpfCommandWith({ env: { DPF_STAGE: join(dir, 'elsewhere') } }, 'status', 'there');
    expect(fromEnvironment.status).toBe(0);
    const given = dpfCommandWith({ env: { DPF_STAGE: join(dir, 'elsewhere') } }, 'status', 'here', '--stage', join(dir, 'stage'));
    expect(given.status).toBe(0);
    expect(dpfCommand('status', '--help').stdout).toMatch(/--stage <dir>\s+the stage holding the run: a folder or s3:\/\/bucket\/prefix\s+\(default: "\.\/stage", env: DPF_STAGE\)/);
  });

  it('lists the runs on a stage with their status, partition counts and times', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    expect(dpfCommand('runs', '--stage', stage).stdout).toBe(`no runs on the stage ${stage}\n`);
    await writeFinishedRun(stage, 'first', 3, new Set([0]));
    await writeFinishedRun(stage, 'second', 4, new Set());
    await writeFiles(stage, { 'not-a-run/file.txt': 'x' });
    const runs = dpfCommand('runs', '--stage', stage);
    expect(runs.status).toBe(0);
    const lines = runs.stdout.split('\n');
    expect(lines[0]).toMatch(/^RUN\s+STATUS\s+PARTITIONS\s+STARTED\s+ENDED$/);
    expect(lines[1]).toMatch(/^first\s+PARTIAL_FAILURE\s+3: 2 DONE, 1 FAILED\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    expect(lines[2]).toMatch(/^second\s+SUCCESS\s+4: 4 DONE\s+\d{4}-/);
    expect(lines.slice(3)).toEqual(['']);
  });

  it('has help that names every command', () => {
    const help = dpfCommand('--help');
    for (const command of ['status', 'runs', 'logs', 'artifacts', 'cancel']) expect(help.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
  });
});
