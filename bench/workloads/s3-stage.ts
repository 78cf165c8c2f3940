import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DPF, RunStatus } from 'dpf';
import { S3Stage } from '../../src/stage/s3-stage.js';
import { type S3Stats, type S3TestServer, startS3Server } from '../../test/support/s3-test-server.js';
import { type BenchOptions, FUNCTIONS, freshDir, median, type Result, seconds, time } from '../harness.js';
import { t1Dataset } from './t1-small-files.js';
import { w1Dataset } from './w1-mean-per-key.js';

/**
 * W1 and T1 with the stage on S3 — an S3-compatible server on this machine (s3rver behind the
 * semantics layer of test/support/s3-server-main.mjs, the tests' server), reached through the AWS
 * SDK — next to the same workload on a local stage, in the same run. Reports the requests the
 * store answered per partition (the budget for tiny partitions: ≤ 0.05 PUT per partition).
 *
 * The server must be up, and the AWS environment pointing at it, before any worker thread starts
 * (a pooled worker keeps the environment it started with): {@link s3Server} is called first.
 */
let server: Promise<S3TestServer> | undefined;

export function s3Server(): Promise<S3TestServer> {
  server ??= startS3Server().then(async (started) => {
    Object.assign(process.env, started.env);
    await started.createBucket('bench');
    return started;
  });
  return server;
}

export async function stopS3Server(): Promise<void> {
  await (await server)?.stop();
}

/** How much of the machine the S3 server itself took while dpf ran (it shares the 2 cores). */
function serverShare(stats: S3Stats, times: readonly number[]): string {
  const wall = times.reduce((sum, value) => sum + value, 0);
  return `the S3 server itself used ${stats.cpuSeconds.toFixed(1)} s of CPU over ${wall.toFixed(1)} s of runs (${((stats.cpuSeconds / wall) * 100).toFixed(0)} % of one core)`;
}

/** Requests per partition, as text, and the PUTs per partition. */
function perPartition(stats: S3Stats, runs: number, partitions: number): { text: string; puts: number } {
  const each = (n: number): number => n / (runs * partitions);
  const puts = each(stats.PUT);
  return {
    text: `${puts.toFixed(3)} PUT, ${each(stats.GET).toFixed(3)} GET, ${each(stats.HEAD).toFixed(3)} HEAD, ${each(stats.LIST).toFixed(4)} LIST per partition`,
    puts,
  };
}

export async function w1s3(options: BenchOptions): Promise<Result> {
  const s3 = await s3Server();
  const rows = options.smoke ? 20_000 : 1_000_000;
  const keys = options.smoke ? 200 : 10_000;
  const file = await w1Dataset(rows, keys);
  const runW1 = (dpf: DPF) => async (run: number) => {
    const handle = await dpf.run({ partitionBy: 'key', source: `SELECT * FROM '${file}'`, runId: `w1-${run + 1}`, onExistingArtifacts: 'overwrite' });
    if ((await handle.wait()) !== RunStatus.SUCCESS) throw new Error('W1 run failed');
    const table = await handle.query('SELECT partition_id, rows, mean FROM results', { results: 'result.json' });
    if (table.numRows !== keys) throw new Error(`W1: ${table.numRows} results, not ${keys}`);
  };
  const local = await time(options.runs, runW1(new DPF(join(FUNCTIONS, 'mean.mjs'), { stage: await freshDir('stage-w1-local') })));
  const onS3 = new DPF(join(FUNCTIONS, 'mean.mjs'), { stage: 's3://bench/w1' });
  await runW1(onS3)(-1);
  await s3.resetStats();
  const remote = await time(options.runs, runW1(onS3), false);
  const stats = await s3.stats();
  const requests = perPartition(stats, options.runs, keys);
  return {
    id: 'W1S3',
    workload: `W1 (${keys.toLocaleString('en')} partitions) with the stage on S3`,
    dpf: median(remote),
    reference: median(local),
    referenceName: 'the same on a local stage',
    figure: `${seconds(median(remote))}; ${requests.text}`,
    target: '≤ 0.05 PUT per partition',
    met: requests.puts <= 0.05,
    notes: [`W1 on S3 ${seconds(median(remote))} vs ${seconds(median(local))} on a local stage: ${requests.text}; ${serverShare(stats, remote)}`],
  };
}

export async function t1s3(options: BenchOptions): Promise<Result> {
  const s3 = await s3Server();
  const files = options.smoke ? 50 : 2_000;
  const folder = await t1Dataset(files);
  // The input on S3 too: uploaded once, before anything is timed.
  const input = new S3Stage({ bucket: 'bench', prefix: `t1-input-${files}` });
  const names = (await readdir(folder)).filter((name) => name.endsWith('.parquet'));
  if ((await input.list('')).length !== names.length) {
    for (let start = 0; start < names.length; start += 32) {
      await Promise.all(names.slice(start, start + 32).map(async (name) => input.put(name, await readFile(join(folder, name)))));
    }
  }
  const runT1 = (dpf: DPF, stageLocation: string) => async (run: number) => {
    const handle = await dpf.runFromStage({ stageLocation, runId: `t1-${run + 1}`, onExistingArtifacts: 'overwrite' });
    if ((await handle.wait()) !== RunStatus.SUCCESS) throw new Error('T1 run failed');
    const table = await handle.query('SELECT partition_id, rows, sum FROM r', { r: 'result.json' });
    if (table.numRows !== files) throw new Error(`T1: ${table.numRows} results, not ${files}`);
  };
  const local = await time(options.runs, runT1(new DPF(join(FUNCTIONS, 'file-sum.mjs'), { stage: await freshDir('stage-t1-local') }), folder));
  const onS3 = new DPF(join(FUNCTIONS, 'file-sum.mjs'), { stage: 's3://bench/t1' });
  const location = `s3://bench/t1-input-${files}/`;
  await runT1(onS3, location)(-1);
  await s3.resetStats();
  const remote = await time(options.runs, runT1(onS3, location), false);
  const stats = await s3.stats();
  const requests = perPartition(stats, options.runs, files);
  return {
    id: 'T1S3',
    workload: `T1 (${files.toLocaleString('en')} Parquet files) with the input and the stage on S3`,
    dpf: median(remote),
    reference: median(local),
    referenceName: 'the same on local files and a local stage',
    figure: `${seconds(median(remote))}; ${requests.text}`,
    target: 'report the requests per partition',
    met: undefined,
    notes: [`T1 on S3 ${seconds(median(remote))} vs ${seconds(median(local))} locally: ${requests.text} (the GETs include each partition's input file); ${serverShare(stats, remote)}`],
  };
}
