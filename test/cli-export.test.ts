import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DPF, DPFRun, RunStatus } from 'dpf';
import { describe, expect, it } from 'vitest';
import { dpfCommand, duckdb, exists, listFiles, tempDir, writeFiles, writeModule } from './helpers.js';

/**
 * A function that uploads small artifacts (kept in packs), one too big for a pack, a table in
 * three formats and bytes that are not a table; the partition `b` fails.
 */
async function artifactsModule(dir: string): Promise<string> {
  return writeModule(
    dir,
    `
    if (context.partitionId === 'b') throw new Error('b fails');
    const table = await data.toArrow();
    await context.uploadToStage({ id: context.partitionId, n: table.numRows }, 'summary.json');
    await context.uploadToStage(table, 'rows.csv');
    await context.uploadToStage(table, 'rows.arrow');
    await context.uploadToStage(table, 'amounts.parquet');
    await context.uploadToStage(new Uint8Array([0, 1, 2, 255]), 'note.bin');
    await context.uploadToStage(new Uint8Array(200 * 1024).fill(7), 'big.bin');
    if (context.args?.broken) await context.uploadToStage('', 'broken.json', { writeFunction: (_, path) => fs.writeFileSync(path, '{"not": json') });
  `,
    { prelude: "import fs from 'node:fs';" },
  );
}

const SOURCE = "SELECT * FROM (VALUES ('a', 1, 1.5), ('a', 2, 2.5), ('b', 3, 3.5), ('c', 4, 4.5)) t(k, day, amount)";

async function artifactsRun(): Promise<{ dir: string; stage: string; run: DPFRun }> {
  const dir = await tempDir();
  const stage = join(dir, 'stage');
  const made = await new DPF(await artifactsModule(dir), { stage }).run({ partitionBy: 'k', source: SOURCE, runId: 'results', executionOptions: { maxRetries: 0 } });
  expect(await made.wait()).toBe(RunStatus.PARTIAL_FAILURE);
  return { dir, stage, run: await DPFRun.restoreFrom('results', stage) };
}

describe('dpf export', () => {
  it('--format files: every artifact of every DONE partition, packed ones included, byte for byte', async () => {
    const { dir, stage, run } = await artifactsRun();
    const out = join(dir, 'out');
    const result = dpfCommand('export', 'results', '--out', out, '--stage', stage);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain(`wrote 12 file(s) (`);
    expect(result.stdout).toContain(`of 2 partition(s) of run results to ${out}`);
    expect(result.stdout).toContain('1 partition(s) not DONE have no artifacts');

    const names = ['amounts.parquet', 'big.bin', 'note.bin', 'rows.arrow', 'rows.csv', 'summary.json'];
    expect(await listFiles(out)).toEqual([...names.map((name) => `a/${name}`), ...names.map((name) => `c/${name}`)]);
    const details = await run.getPartitionDetails();
    let packed = 0;
    for (const id of ['a', 'c']) {
      for (const name of names) {
        const expected = await details[id]!.artifacts.get(name, (path) => readFile(path));
        expect(await readFile(join(out, id, name)), `${id}/${name}`).toEqual(expected);
        if (!(await exists(join(stage, details[id]!.stagePath, name)))) packed++;
      }
    }
    // The small artifacts were packed on the stage (not files of their own), and exported all the same.
    expect(packed).toBeGreaterThan(0);
    expect(await exists(join(stage, details.a!.stagePath, 'big.bin'))).toBe(true);
  });

  it('--format parquet: a table per artifact name with partition_id first, read back by DuckDB', async () => {
    const { dir, stage } = await artifactsRun();
    const out = join(dir, 'tables');
    const result = dpfCommand('export', 'results', '--out', out, '--format', 'parquet', '--stage', stage);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('wrote summary.parquet: 2 row(s) from the summary.json of 2 partition(s)');
    expect(result.stdout).toContain('wrote rows.csv.parquet: 3 row(s)');
    expect(result.stdout).toContain('wrote rows.arrow.parquet: 3 row(s)');
    expect(result.stdout).toContain('wrote amounts.parquet: 3 row(s)');
    expect(result.stdout).toMatch(/skipped big\.bin: not a table artifact .*--format files exports it/);
    expect(result.stdout).toMatch(/skipped note\.bin: not a table artifact/);
    expect((await readdir(out)).sort()).toEqual(['amounts.parquet', 'rows.arrow.parquet', 'rows.csv.parquet', 'summary.parquet']);

    const read = (file: string): Promise<Record<string, unknown>[]> => duckdb(`SELECT * FROM read_parquet('${join(out, file)}') ORDER BY ALL`);
    const columns = async (file: string): Promise<string[]> =>
      (await duckdb<{ column_name: string }>(`DESCRIBE SELECT * FROM read_parquet('${join(out, file)}')`)).map((column) => column.column_name);
    expect(await columns('summary.parquet')).toEqual(['partition_id', 'id', 'n']);
    expect(await read('summary.parquet')).toEqual([
      { partition_id: 'a', id: 'a', n: 2 },
      { partition_id: 'c', id: 'c', n: 1 },
    ]);
    const rows = [
      { partition_id: 'a', k: 'a', day: 1, amount: 1.5 },
      { partition_id: 'a', k: 'a', day: 2, amount: 2.5 },
      { partition_id: 'c', k: 'c', day: 4, amount: 4.5 },
    ];
    for (const file of ['amounts.parquet', 'rows.arrow.parquet', 'rows.csv.parquet']) {
      expect(await columns(file), file).toEqual(['partition_id', 'k', 'day', 'amount']);
      expect((await read(file)).map((row) => ({ ...row, day: Number(row.day) })), file).toEqual(rows);
    }
  });

  it('keeps every file inside DIR, whatever the partition ids', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const module = await writeModule(dir, `await context.uploadToStage({ id: context.partitionId }, 'id.json');`);
    const ids = ['..', '.', '../escape', '/abs', 'a/../../b', '_dpf', 'ok'];
    const source = `SELECT * FROM (VALUES ${ids.map((id) => `('${id}')`).join(', ')}) t(k)`;
    expect(await (await new DPF(module, { stage }).run({ partitionBy: 'k', source, runId: 'odd' })).wait()).toBe(RunStatus.SUCCESS);
    const out = join(dir, 'exports', 'out');

    const files = dpfCommand('export', 'odd', '--out', out, '--stage', stage);
    expect(files.status).toBe(0);
    const written = await listFiles(out);
    expect(written).toHaveLength(ids.length);
    for (const file of written) expect(file.split('/').some((segment) => segment === '..' || segment === '.' || segment === ''), file).toBe(false);
    // Each file is its partition's, and nothing was written beside DIR.
    const details = await (await DPFRun.restoreFrom('odd', stage)).getPartitionDetails();
    for (const id of ids) {
      const folder = details[id]!.stagePath.slice('odd/'.length);
      expect(JSON.parse(await readFile(join(out, folder, 'id.json'), 'utf8'))).toEqual({ id });
    }
    expect(await readdir(join(dir, 'exports'))).toEqual(['out']);
    expect((await readdir(dir)).sort()).toEqual(['exports', 'fn.mjs', 'stage']);

    const tables = dpfCommand('export', 'odd', '--out', join(dir, 'exports', 'tables'), '--format', 'parquet', '--stage', stage);
    expect(tables.status).toBe(0);
    const rows = await duckdb<{ partition_id: string; id: string }>(`SELECT partition_id, id FROM read_parquet('${join(dir, 'exports', 'tables', 'id.parquet')}') ORDER BY partition_id`);
    expect(rows).toEqual([...ids].sort().map((id) => ({ partition_id: id, id })));
  });

  it('refuses a folder that is not empty unless --force, and never deletes what is there', async () => {
    const { dir, stage } = await artifactsRun();
    const out = join(dir, 'mine');
    await writeFiles(out, { 'notes.txt': 'my notes', 'a/keep.txt': 'keep me' });
    const refused = dpfCommand('export', 'results', '--out', out, '--stage', stage);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain(`dpf: --out ${out} is not empty (2 entries); give an empty or new folder, or --force to write into it`);
    expect(await listFiles(out)).toEqual(['a/keep.txt', 'notes.txt']);

    const forced = dpfCommand('export', 'results', '--out', out, '--force', '--stage', stage);
    expect(forced.status).toBe(0);
    expect(await readFile(join(out, 'notes.txt'), 'utf8')).toBe('my notes');
    expect(await readFile(join(out, 'a/keep.txt'), 'utf8')).toBe('keep me');
    expect(await listFiles(out)).toContain('a/summary.json');

    // A link in the folder to elsewhere: nothing is written through it.
    const elsewhere = join(dir, 'elsewhere');
    await mkdir(elsewhere);
    const linking = join(dir, 'linking');
    await mkdir(linking);
    await symlink(elsewhere, join(linking, 'c'));
    const linked = dpfCommand('export', 'results', '--out', linking, '--force', '--stage', stage);
    expect(linked.status).toBe(1);
    expect(linked.stderr).toContain(`leads outside ${linking}`);
    expect(await readdir(elsewhere)).toEqual([]);

    const file = join(dir, 'a-file');
    await writeFile(file, '');
    const notFolder = dpfCommand('export', 'results', '--out', file, '--stage', stage);
    expect(notFolder.status).toBe(1);
    expect(notFolder.stderr).toContain(`--out ${file} is a file, not a folder`);
  });

  it('--format parquet: an artifact that cannot be read as a table is named, the others are written, and it exits 1', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const made = await new DPF(await artifactsModule(dir), { stage }).run({ partitionBy: 'k', source: SOURCE, runId: 'broken', args: { broken: true }, executionOptions: { maxRetries: 0 } });
    await made.wait();
    const out = join(dir, 'tables');
    const result = dpfCommand('export', 'broken', '--out', out, '--format', 'parquet', '--stage', stage);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^dpf export: broken\.json not written: .*broken\.json.* is not valid JSON/m);
    expect((await readdir(out)).sort()).toEqual(['amounts.parquet', 'rows.arrow.parquet', 'rows.csv.parquet', 'summary.parquet']);
  });
});
