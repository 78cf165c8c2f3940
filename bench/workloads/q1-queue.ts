import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { type RedisTestServer, startRedisServer } from '../../test/support/redis-server.js';
import { type BenchOptions, median, ROOT, type Result, seconds, time } from '../harness.js';

/**
 * Q1: 100,000 partitions that do nothing, through the queue with 2 `dpf worker` processes, next
 * to raw BullMQ in the same run: 100,000 no-op jobs added in bulk and run by 2 worker processes
 * (one BullMQ Worker each, concurrency 1). The target is dpf's partitions per second ≥ 3× raw
 * BullMQ's jobs per second: dpf batches tiny partitions per job, which is the point.
 *
 * Both sides use one Redis, a redis-server of the benchmark's own (the tests' server module),
 * started by {@link redisServer} and stopped by {@link stopRedisServer}.
 */
let server: Promise<RedisTestServer> | undefined;

export function redisServer(): Promise<RedisTestServer> {
  server ??= startRedisServer();
  return server;
}

export async function stopRedisServer(): Promise<void> {
  await (await server)?.stop();
}

/** Jobs per addBulk call: one round trip and one transaction per chunk, as a producer would chunk. */
const ADD_CHUNK = 1_000;

const WORKER = join(ROOT, 'bench', 'workloads', 'bullmq-noop-worker.mjs');

/** A raw BullMQ worker process; resolves once its Worker is connected. */
async function startWorker(url: string, queue: string): Promise<{ child: ChildProcess; processed: Promise<number> }> {
  const child = spawn(process.execPath, [WORKER, url, queue], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  const processed = new Promise<number>((resolve, reject) => {
    child.once('exit', (code, signal) => {
      const match = /PROCESSED (\d+)/.exec(output);
      if (match !== null) resolve(Number(match[1]));
      else reject(new Error(`a BullMQ worker process exited (${signal ?? `code ${code}`}) without saying what it processed`));
    });
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('READY')) resolve();
    });
    processed.catch(reject);
  });
  return { child, processed };
}

/** What raw BullMQ did: every run's seconds, and jobs per second at the median. */
export interface RawBullmqTimes {
  jobs: number;
  workers: number;
  /** Seconds from the first addBulk call to the last job's completion, per run (after a warm-up). */
  times: number[];
  /** Seconds from the first addBulk call to the last one's answer, per run: the producer's share. */
  addTimes: number[];
  /** `jobs` / median of `times`. */
  jobsPerSecond: number;
}

/**
 * Raw BullMQ on `url`: `jobs` no-op jobs added with addBulk in chunks of {@link ADD_CHUNK}, run by
 * `workers` worker processes (started before and kept across the runs, as long-lived workers
 * are), timed from the first add to the last completion. Completed jobs are removed as they
 * complete (`removeOnComplete`), as a production queue would, so runs do not pile up in Redis.
 * The end is seen by polling the queue's counts every few milliseconds (BullMQ's event stream is
 * capped at 10,000 entries, so counting 'completed' events could miss some); the poll's
 * granularity is far below a run's length.
 */
export async function rawBullmq(url: string, options: { jobs: number; workers: number; runs: number }): Promise<RawBullmqTimes> {
  const name = `q1-raw-${process.pid}`;
  const queue = new Queue(name, { connection: { url } });
  const workers = await Promise.all(Array.from({ length: options.workers }, () => startWorker(url, name)));
  let times: number[];
  let processed: number;
  const addTimes: number[] = [];
  try {
    times = await time(options.runs, async (run) => {
      const started = performance.now();
      for (let start = 0; start < options.jobs; start += ADD_CHUNK) {
        const size = Math.min(ADD_CHUNK, options.jobs - start);
        await queue.addBulk(Array.from({ length: size }, () => ({ name: 'noop', data: {}, opts: { removeOnComplete: true } })));
      }
      if (run >= 0) addTimes.push((performance.now() - started) / 1000);
      for (;;) {
        const counts = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'failed');
        if (counts.failed! > 0) throw new Error(`Q1: ${counts.failed} raw BullMQ no-op job(s) failed`);
        if (counts.waiting! + counts.prioritized! + counts.delayed! + counts.active! === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    });
  } finally {
    for (const worker of workers) worker.child.kill('SIGTERM');
    processed = (await Promise.all(workers.map((worker) => worker.processed))).reduce((sum, n) => sum + n, 0);
    await queue.obliterate({ force: true });
    await queue.close();
  }
  // The warm-up run included: every job added ran exactly once.
  const expected = options.jobs * (options.runs + 1);
  if (processed !== expected) throw new Error(`Q1: the raw BullMQ workers ran ${processed} jobs, not ${expected}`);
  return { jobs: options.jobs, workers: options.workers, times, addTimes, jobsPerSecond: options.jobs / median(times) };
}

export async function q1(options: BenchOptions): Promise<Result> {
  const redis = await redisServer();
  const partitions = options.smoke ? 2_000 : 100_000;
  const workers = 2;
  const raw = await rawBullmq(redis.url, { jobs: partitions, workers, runs: options.runs });
  const perRun = raw.times.map((seconds) => Math.round(partitions / seconds).toLocaleString('en')).join(', ');
  return {
    id: 'Q1',
    workload: `${partitions.toLocaleString('en')} partitions that do nothing, through the queue, ${workers} worker processes`,
    // The queue executor and `dpf worker` are not built yet: only the reference is measured.
    dpf: undefined,
    reference: median(raw.times),
    referenceName: `raw BullMQ, ${partitions.toLocaleString('en')} no-op jobs (addBulk), ${workers} worker processes of concurrency 1`,
    figure: `dpf: not built yet; raw BullMQ ${Math.round(raw.jobsPerSecond).toLocaleString('en')} jobs/s`,
    target: '≥ 3× raw BullMQ jobs/s',
    met: undefined,
    notes: [
      `raw BullMQ ${seconds(median(raw.times))} for ${partitions.toLocaleString('en')} jobs (median), of which adding them (addBulk, ${ADD_CHUNK.toLocaleString('en')} a call) took ${seconds(median(raw.addTimes))}; jobs/s per run: ${perRun}`,
    ],
  };
}
