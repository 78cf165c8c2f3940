/**
 * `npm run bench`: dpf's partition throughput, data path, scaling and memory on real workloads,
 * each next to a reference measured in the same run. Prints medians and ratios; BENCHMARKS.md
 * records them.
 *
 *   npm run bench                       every workload, 5 runs each (M1: 3)
 *   npm run bench -- --only W1,O1       some of them
 *   npm run bench -- --only M2          many models: ManyModelTraining and ManyModelInference next to plain dpf.run
 *   npm run bench -- --runs 3           fewer runs
 *   npm run bench -- --smoke            tiny sizes: checks the benchmark works, figures mean nothing
 *   npm run bench -- --only W1S3,T1S3   W1 and T1 with the stage on S3 (a local S3-compatible server)
 *   npm run bench -- --only Q1          through the BullMQ queue, next to raw BullMQ (a redis-server of its own)
 *   npm run bench -- --only W1Q,W2Q     W1 and W2 through the queue (2 dpf worker processes), next to the local executor
 *
 * W1 and W2 also run their peers, pandas and Dask (rows `W1 pandas`, `W1 dask`, ...), where
 * /usr/bin/python3 has them (Debian: apt-get install python3-pandas python3-dask
 * python3-distributed; DPF_BENCH_PYTHON=/path/to/python3 for another interpreter); where it has
 * not, a note says they were skipped. See bench/peers.ts.
 */
import { availableParallelism, cpus } from 'node:os';
import { parseArgs } from 'node:util';
import type { BenchOptions, Result } from './harness.js';
import { seconds } from './harness.js';
import { m1 } from './workloads/m1-memory.js';
import { m2 } from './workloads/m2-many-models.js';
import { o1 } from './workloads/o1-overhead.js';
import { q1, stopRedisServer } from './workloads/q1-queue.js';
import { s1 } from './workloads/s1-scaling.js';
import { s3Server, stopS3Server, t1s3, w1s3 } from './workloads/s3-stage.js';
import { t1 } from './workloads/t1-small-files.js';
import { w1 } from './workloads/w1-mean-per-key.js';
import { w1q, w2q } from './workloads/w1-w2-queue.js';
import { w2, w2c } from './workloads/w2-flights-regression.js';

const WORKLOADS: Record<string, (options: BenchOptions) => Promise<Result>> = { W1: w1, W2: w2, W2C: w2c, O1: o1, S1: s1, M1: m1, M2: m2, T1: t1, W1S3: w1s3, T1S3: t1s3, Q1: q1, W1Q: w1q, W2Q: w2q };

const { values } = parseArgs({
  options: { only: { type: 'string' }, runs: { type: 'string' }, smoke: { type: 'boolean', default: false } },
});
const only = values.only?.split(',').map((id) => id.trim().toUpperCase()) ?? Object.keys(WORKLOADS);
const unknown = only.filter((id) => WORKLOADS[id] === undefined);
if (unknown.length > 0) throw new Error(`unknown workload(s) ${unknown.join(', ')}; the workloads are ${Object.keys(WORKLOADS).join(', ')}`);
const options: BenchOptions = { runs: Number(values.runs ?? (values.smoke ? 1 : 5)), smoke: values.smoke };

console.log(`dpf bench — ${options.smoke ? 'SMOKE sizes, ' : ''}median of ${options.runs} run(s) after a warm-up; ${availableParallelism()} CPUs (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}\n`);
// The S3 server, and the AWS environment that points at it, come before any worker thread starts.
if (only.some((id) => id.endsWith('S3'))) await s3Server();
const results: Result[] = [];
for (const id of only) {
  const started = performance.now();
  const result = await WORKLOADS[id]!(options);
  results.push(result);
  console.log(`${id} done in ${seconds((performance.now() - started) / 1000)}: ${result.figure}`);
}

console.log('\n| id | workload | dpf (median) | reference (median) | ratio | figure | target | met |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const result of results.flatMap((result) => [result, ...(result.peers ?? [])])) {
  const reference = result.reference === undefined ? '—' : `${seconds(result.reference)} (${result.referenceName})`;
  const ratio = result.reference === undefined || result.dpf === undefined ? '—' : `${(result.dpf / result.reference).toFixed(2)}×`;
  const met = result.met === undefined ? '—' : result.met ? 'yes' : 'no';
  console.log(`| ${result.id} | ${result.workload} | ${result.dpf === undefined ? 'not built yet' : seconds(result.dpf)} | ${reference} | ${ratio} | ${result.figure} | ${result.target} | ${met} |`);
}
const notes = results.flatMap((result) => [result, ...(result.peers ?? [])]).flatMap((result) => result.notes.map((note) => `- ${result.id}: ${note}`));
if (notes.length > 0) console.log(`\n${notes.join('\n')}`);
await stopS3Server();
await stopRedisServer();
