import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { DPF, RunStatus } from 'dpf';
import { type RedisTestServer, startRedisServer } from '../../test/support/redis-server.js';
import { type BenchOptions, FUNCTIONS, freshDir, median, ROOT, type Result, seconds, time } from '../harness.js';
import { startDpfWorkers } from './dpf-workers.js';

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

/** What dpf did: every run's seconds to wait()'s answer, and to the journal's end record. */
export interface DpfQueueTimes {
  /** Seconds from calling `run()` to `wait()` answering SUCCESS, per run (after a warm-up). */
  times: number[];
  /** Seconds from calling `run()` to its return: planning, writing the input, adding the drive job. */
  submitTimes: number[];
  /** Seconds from calling `run()` to the end record's time in the journal (what wait() saw, without its polling). */
  endTimes: number[];
}

/**
 * dpf on `url`: `partitions` no-op partitions in DataFrame mode (`SELECT i FROM range(n) t(i)`
 * partitioned by `i`) submitted with `useHeadNode: false` to `workers` `dpf worker` processes of
 * concurrency 1 (started before and kept across the runs, like the raw workers); one of them
 * drives each run. DataFrame mode rather than stage mode: it needs no 100,000 input files, and
 * each partition's input (one row, in the run's planned input on the stage) is read only if the
 * function asks for it — the no-op never does, so a partition costs what the queue and dpf cost.
 */
export async function dpfQueue(url: string, options: { partitions: number; workers: number; runs: number }): Promise<DpfQueueTimes> {
  const name = `q1-dpf-${process.pid}`;
  const stage = await freshDir('stage-q1');
  const workers = await startDpfWorkers(url, name, options.workers, 1);
  const dpf = new DPF(join(FUNCTIONS, 'noop.mjs'), { stage, queue: { url, name } });
  const result: DpfQueueTimes = { times: [], submitTimes: [], endTimes: [] };
  try {
    result.times = await time(options.runs, async (run) => {
      const started = performance.now();
      const startedAt = Date.now();
      const handle = await dpf.run({
        partitionBy: 'i',
        source: `SELECT i FROM range(${options.partitions}) t(i)`,
        runId: `q1-${run + 1}`,
        onExistingArtifacts: 'overwrite',
        executionOptions: { useHeadNode: false },
      });
      const submitted = performance.now();
      if ((await handle.wait({ showProgress: false })) !== RunStatus.SUCCESS) throw new Error('Q1: the dpf run through the queue failed');
      if (handle.numPartitions !== options.partitions) throw new Error(`Q1: the dpf run has ${handle.numPartitions} partitions, not ${options.partitions}`);
      if (run < 0) return;
      result.submitTimes.push((submitted - started) / 1000);
      result.endTimes.push((handle.times.finishedAt!.getTime() - startedAt) / 1000);
    });
  } finally {
    await workers.stop();
  }
  return result;
}

export async function q1(options: BenchOptions): Promise<Result> {
  const redis = await redisServer();
  const partitions = options.smoke ? 2_000 : 100_000;
  const workers = 2;
  const raw = await rawBullmq(redis.url, { jobs: partitions, workers, runs: options.runs });
  const dpf = await dpfQueue(redis.url, { partitions, workers, runs: options.runs });
  const rate = (seconds: number): string => Math.round(partitions / seconds).toLocaleString('en');
  const dpfRate = partitions / median(dpf.times);
  const ratio = dpfRate / raw.jobsPerSecond;
  return {
    id: 'Q1',
    workload: `${partitions.toLocaleString('en')} partitions that do nothing, through the queue, ${workers} worker processes`,
    dpf: median(dpf.times),
    reference: median(raw.times),
    referenceName: `raw BullMQ, ${partitions.toLocaleString('en')} no-op jobs (addBulk), ${workers} worker processes of concurrency 1`,
    figure: `**${ratio.toFixed(2)}× raw BullMQ's rate**: dpf ${rate(median(dpf.times))} partitions/s, raw BullMQ ${Math.round(raw.jobsPerSecond).toLocaleString('en')} jobs/s`,
    target: '≥ 3× raw BullMQ jobs/s',
    met: ratio >= 3,
    notes: [
      `dpf ${seconds(median(dpf.times))} from run() to wait() (median; DataFrame mode, useHeadNode false, ${workers} dpf worker processes of concurrency 1, one of them driving), of which run() — plan, input written, drive job added — took ${seconds(median(dpf.submitTimes))}; to the journal's end record ${seconds(median(dpf.endTimes))} (wait() polls every 250 ms); partitions/s per run: ${dpf.times.map(rate).join(', ')}`,
      `raw BullMQ ${seconds(median(raw.times))} for ${partitions.toLocaleString('en')} jobs (median), of which adding them (addBulk, ${ADD_CHUNK.toLocaleString('en')} a call) took ${seconds(median(raw.addTimes))}; jobs/s per run: ${raw.times.map(rate).join(', ')}`,
    ],
  };
}
