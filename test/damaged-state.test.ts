import { readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DPF, DPFRun, RunStatus, SerializationError, StageDamagedError, StageFormatError } from 'dpf';
import { describe, expect, it } from 'vitest';
import { dpfCommand, tempDir, writeFiles, writeModule } from './helpers.js';
import { until } from './support/barriers.js';

/**
 * 60 partitions of 100 rows; each saves its count in r.json (packed) and in big.txt (a file). The
 * second half waits until the journal has a segment after the start's, so the run's journal has at
 * least three segments (start, the first half's, the rest) however fast the machine is.
 */
const SOURCE = "SELECT 'k' || lpad((i % 60)::VARCHAR, 2, '0') AS k, i FROM range(6000) t(i)";
const BODY = `
  if (context.partitionId >= 'k30') {
    const { existsSync, readdirSync } = await import('node:fs');
    const journal = context.runId + '/_dpf/journal';
    ${until("existsSync(STAGE + '/' + journal) && readdirSync(STAGE + '/' + journal).length >= 2", "a second journal segment")}
  }
  const rows = (await data.toArrow()).numRows;
  console.log('read', rows);
  await context.uploadToStage({ rows, attempt: context.attempt }, 'r.json');
  await context.uploadToStage('x'.repeat(70_000), 'big.txt');
`;

async function finishedRun(runId = 'damaged') {
  const dir = await tempDir();
  const stage = join(dir, 'stage');
  const dpf = new DPF(await writeModule(dir, BODY, { prelude: `const STAGE = ${JSON.stringify(stage)};` }), { stage });
  const run = await dpf.run({ partitionBy: 'k', source: SOURCE, runId });
  expect(await run.wait()).toBe(RunStatus.SUCCESS);
  const journal = join(stage, runId, '_dpf/journal');
  const segments = (await readdir(journal)).sort().map((name) => join(journal, name));
  const packs = (await readdir(join(stage, runId, '_dpf/packs'))).map((name) => join(stage, runId, '_dpf/packs', name));
  return { dir, stage, dpf, run, segments, packs };
}

async function total(run: DPFRun): Promise<number> {
  const table = await run.query('SELECT count(*) AS partitions, sum(rows) AS rows FROM r', { r: 'r.json' });
  const [row] = table.toArray().map((record) => record.toJSON() as { partitions: bigint; rows: number });
  expect(Number(row!.partitions)).toBe(60);
  return Number(row!.rows);
}

describe('a torn journal', () => {
  it('is read up to its torn tail, and resume finishes the run correctly', async () => {
    const { stage, dpf, segments } = await finishedRun();
    const last = segments[segments.length - 1]!;
    // What a crash or a full disk mid-write leaves: the last segment cut at 60 %.
    await truncate(last, Math.floor((await stat(last)).size * 0.6));

    const restored = await DPFRun.restoreFrom('damaged', stage);
    expect(restored.status).toBe(RunStatus.IN_PROGRESS); // its end record was in the torn part
    expect((await restored.getProgress()).DONE.length).toBeGreaterThan(0);
    const status = dpfCommand('status', 'damaged', '--stage', stage);
    expect(status.status, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^run damaged: IN_PROGRESS/);

    const resumed = await dpf.run({ partitionBy: 'k', runId: 'damaged', onExistingArtifacts: 'resume' });
    expect(await resumed.wait()).toBe(RunStatus.SUCCESS);
    const after = await DPFRun.restoreFrom('damaged', stage);
    expect(after.status).toBe(RunStatus.SUCCESS);
    expect(after.warnings).toContainEqual(expect.stringMatching(/skipped the journal segment .*\.ndjson: it is cut short/));
    expect(await total(after)).toBe(6000);
    // Later writers never appended onto the torn segment.
    expect((await readFile(last)).length).toBeLessThan((await readFile(segments[0]!)).length * 10);
  });

  it('is an error naming the segment when the damage is not at a tail', async () => {
    const { stage, segments } = await finishedRun();
    expect(segments.length).toBeGreaterThanOrEqual(3);
    const middle = segments[1]!;
    await truncate(middle, Math.floor((await stat(middle)).size * 0.6));
    const restoring = DPFRun.restoreFrom('damaged', stage);
    await expect(restoring).rejects.toBeInstanceOf(StageDamagedError);
    await expect(restoring).rejects.toThrow(new RegExp(`${middle}.*is damaged.*overwrite`));
    const status = dpfCommand('status', 'damaged', '--stage', stage);
    expect(status.status).toBe(1);
    expect(status.stderr).toContain(middle);
  });
});

describe('a missing or cut-short pack', () => {
  it('is an error naming the pack in every reader, never fewer rows; resume runs the partitions it held again', async () => {
    const { stage, dpf, packs } = await finishedRun();
    for (const pack of packs) await rm(pack);
    const restored = await DPFRun.restoreFrom('damaged', stage);
    const query = restored.query('SELECT count(*) AS n FROM r', { r: 'r.json' });
    await expect(query).rejects.toBeInstanceOf(StageDamagedError);
    await expect(query).rejects.toThrow(new RegExp(`(${packs.join('|')}) does not exist`));
    const details = (await restored.getPartitionDetails())['k07']!;
    expect(await details.artifacts.list()).toEqual(['big.txt', 'r.json']);
    await expect(details.artifacts.get('r.json')).rejects.toThrow(/the artifact "r\.json" of partition "k07" of run "damaged" is missing: .* does not exist; resume the run/);
    await expect(details.logs()).rejects.toBeInstanceOf(StageDamagedError);
    const cli = dpfCommand('artifacts', 'damaged', 'k07', 'r.json', '--stage', stage);
    expect(cli.status).toBe(1);
    expect(cli.stderr).toMatch(new RegExp(`(${packs.join('|')}) does not exist`));

    const resumed = await dpf.run({ partitionBy: 'k', runId: 'damaged', onExistingArtifacts: 'resume' });
    expect(await resumed.wait()).toBe(RunStatus.SUCCESS);
    expect(resumed.warnings).toContainEqual(expect.stringMatching(/partition "k\d\d" was DONE but its artifact .* is gone: it runs again/));
    const repaired = await DPFRun.restoreFrom('damaged', stage);
    expect(await total(repaired)).toBe(6000);
    expect(await (await repaired.getPartitionDetails())['k07']!.artifacts.get('r.json')).toEqual({ rows: 100, attempt: 2 });
  });

  it('cut short, is found by its length', async () => {
    const { stage, packs } = await finishedRun();
    await truncate(packs[0]!, 10);
    const restored = await DPFRun.restoreFrom('damaged', stage);
    await expect(restored.query('SELECT count(*) FROM r', { r: 'r.json' })).rejects.toThrow(/is damaged: .* is cut short or was replaced/);
  });

  it('altered, is found by its checksum', async () => {
    const { stage, packs } = await finishedRun();
    const bytes = await readFile(packs[0]!);
    await writeFile(packs[0]!, Buffer.from(bytes.toString('latin1').replace(/"rows":100/, '"rows":999'), 'latin1'));
    const restored = await DPFRun.restoreFrom('damaged', stage);
    await expect(restored.query('SELECT sum(rows) FROM r', { r: 'r.json' })).rejects.toThrow(/do not match their checksum/);
  });
});

describe('a missing artifact file', () => {
  it('is an error naming it, and resume runs its partition again', async () => {
    const { stage, dpf } = await finishedRun();
    await rm(join(stage, 'damaged/k11/big.txt'));
    const restored = await DPFRun.restoreFrom('damaged', stage);
    await expect((await restored.getPartitionDetails())['k11']!.artifacts.get('big.txt')).rejects.toThrow(`${join(stage, 'damaged/k11/big.txt')} does not exist`);
    const resumed = await dpf.run({ partitionBy: 'k', runId: 'damaged', onExistingArtifacts: 'resume' });
    expect(await resumed.wait()).toBe(RunStatus.SUCCESS);
    const details = (await resumed.getPartitionDetails())['k11']!;
    expect(details.attempts).toBe(2);
    expect(await details.artifacts.get('big.txt')).toHaveLength(70_000);
    expect((await resumed.getPartitionDetails())['k12']!.attempts).toBe(1);
  });
});

describe('damaged or unknown state files', () => {
  it('name the file and what to do', async () => {
    const { stage } = await finishedRun();
    const spec = join(stage, 'damaged/_dpf/run.json');
    const original = await readFile(spec, 'utf8');
    await writeFile(spec, original.slice(0, 200));
    await expect(DPFRun.restoreFrom('damaged', stage)).rejects.toThrow(new RegExp(`${spec} is not valid JSON .*: the file is damaged; restore the file from a backup, or run the run again with onExistingArtifacts: 'overwrite'`));
    await expect(DPFRun.restoreFrom('damaged', stage)).rejects.toBeInstanceOf(StageDamagedError);

    await writeFile(spec, JSON.stringify({ ...JSON.parse(original), format: 99 }));
    await expect(DPFRun.restoreFrom('damaged', stage)).rejects.toBeInstanceOf(StageFormatError);
    await expect(DPFRun.restoreFrom('damaged', stage)).rejects.toThrow(/is in format 99 of dpf's run files, and this dpf reads format \d+: it was written by a newer dpf; upgrade dpf/);

    await writeFile(spec, original);
    const list = join(stage, 'damaged/_dpf/partitions/000001.json');
    await writeFile(list, '{"dpf":"partitions","format":2,"ids":["a"]}');
    await expect(DPFRun.restoreFrom('damaged', stage)).rejects.toThrow(`${list} does not hold a whole partition list`);
  });

  it("can still be overwritten", async () => {
    const { dir, stage } = await finishedRun();
    await writeFile(join(stage, 'damaged/_dpf/run.json'), '{');
    await writeFiles(dir, {});
    const run = await new DPF(await writeModule(dir, BODY, { name: 'again.mjs', prelude: `const STAGE = ${JSON.stringify(stage)};` }), { stage }).run({ partitionBy: 'k', source: SOURCE, runId: 'damaged', onExistingArtifacts: 'overwrite' });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    expect(await total(run)).toBe(6000);
  });
});

describe('an artifact file altered in place (same length, so no reader can tell by its size)', () => {
  it('is an error naming the artifact, its partition and its file, in every reader — never a bare SyntaxError', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const body = `
      await context.uploadToStage({ rows: (await data.toArrow()).numRows }, 'r.json');
      await context.uploadToStage([{ n: 1 }, { n: 2 }], 'r.ndjson');
    `;
    const run = await new DPF(await writeModule(dir, body), { stage }).run({
      partitionBy: 'k', source: "SELECT 'k' || (i % 3) AS k FROM range(9) t(i)", runId: 'altered', executionOptions: { packSmallArtifacts: false },
    });
    expect(await run.wait()).toBe(RunStatus.SUCCESS);
    const json = join(stage, 'altered/k1/r.json');
    await writeFile(json, (await readFile(json, 'utf8')).replace('{', '['));
    const lines = join(stage, 'altered/k2/r.ndjson');
    await writeFile(lines, (await readFile(lines, 'utf8')).replace('{"n":2}', '{"n":2]'));

    const restored = await DPFRun.restoreFrom('altered', stage);
    const details = await restored.getPartitionDetails();
    const named = (artifact: string, partition: string, path: string, line = '') =>
      `the artifact "${artifact}" of partition "${partition}" of run "altered" (${path}) is not valid JSON${line}: `;
    for (const read of [details['k1']!.artifacts.get('r.json'), restored.query('SELECT * FROM r', { r: 'r.json' })]) {
      await expect(read).rejects.toBeInstanceOf(SerializationError);
      await expect(read).rejects.toThrow(named('r.json', 'k1', json));
    }
    await expect(details['k2']!.artifacts.get('r.ndjson')).rejects.toThrow(named('r.ndjson', 'k2', lines, ' (line 2)'));
    await expect(restored.query('SELECT * FROM l', { l: 'r.ndjson' })).rejects.toThrow(named('r.ndjson', 'k2', lines, ' (line 2)'));
  });
});
