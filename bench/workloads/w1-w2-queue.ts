import { join } from 'node:path';
import { DPF } from 'dpf';
import { type BenchOptions, FUNCTIONS, freshDir, largestRelativeDifference, median, phaseNote, type Result, seconds } from '../harness.js';
import { startDpfWorkers } from './dpf-workers.js';
import { redisServer } from './q1-queue.js';
import { timeW1, w1Dataset } from './w1-mean-per-key.js';
import { timeW2, W2_ANSWER, w2Source } from './w2-flights-regression.js';

/**
 * W1Q and W2Q: W1 and W2 through the queue — a redis-server of the benchmark's own (Q1's), 2
 * `dpf worker` processes of concurrency 1 started before the runs and kept across them, runs
 * submitted with `useHeadNode: false` (one worker drives each run, both run its partitions) —
 * next to the same workload on the local executor (2 worker threads) in the same run. Timed as
 * W1 and W2 are: from `run()` to the queried results. The target: within 2× of local.
 */
const WORKERS = 2;

/** Both sides of one workload: the local executor's runs, then the queue's, each on a fresh stage. */
async function localAndQueue<T extends { times: number[] }>(id: string, module: string, side: (dpf: DPF, queued: boolean) => Promise<T>): Promise<{ local: T; queue: T }> {
  const redis = await redisServer();
  const local = await side(new DPF(join(FUNCTIONS, module), { stage: await freshDir(`stage-${id}-local`) }), false);
  const name = `${id}-${process.pid}`;
  const workers = await startDpfWorkers(redis.url, name, WORKERS, 1);
  try {
    const queue = await side(new DPF(join(FUNCTIONS, module), { stage: await freshDir(`stage-${id}`), queue: { url: redis.url, name } }), true);
    return { local, queue };
  } finally {
    await workers.stop();
  }
}

function queueResult(id: string, workload: string, local: number, queue: number, notes: string[]): Result {
  const ratio = queue / local;
  return {
    id,
    workload,
    dpf: queue,
    reference: local,
    referenceName: `the same on the local executor (${WORKERS} worker threads)`,
    figure: `${seconds(queue)}, **${ratio.toFixed(2)}× local**`,
    target: '≤ 2× local',
    met: ratio <= 2,
    notes,
  };
}

export async function w1q(options: BenchOptions): Promise<Result> {
  const rows = options.smoke ? 20_000 : 1_000_000;
  const keys = options.smoke ? 200 : 10_000;
  const file = await w1Dataset(rows, keys);
  const { local, queue } = await localAndQueue('w1q', 'mean.mjs', (dpf, queued) => timeW1(dpf, file, keys, options.runs, queued ? { useHeadNode: false } : {}));
  return queueResult('W1Q', `W1 (${keys.toLocaleString('en')} partitions) through the queue, ${WORKERS} dpf worker processes`, median(local.times), median(queue.times), [
    `through the queue ${phaseNote(queue.phases)}; local ${phaseNote(local.phases)}`,
  ]);
}

export async function w2q(options: BenchOptions): Promise<Result> {
  const source = w2Source(options.smoke);
  const { local, queue } = await localAndQueue('w2q', 'delay-regression.mjs', (dpf, queued) => timeW2(dpf, source, options.runs, queued ? { useHeadNode: false } : {}));
  // The same function on the same rows: the queue's answers equal the local executor's.
  const worst = largestRelativeDifference(queue.results, local.results, W2_ANSWER);
  if (!(worst <= 1e-12)) throw new Error(`W2Q: the queue's answers differ from the local executor's (max rel. diff ${worst})`);
  return queueResult('W2Q', `W2 (${local.results.length} skewed partitions) through the queue, ${WORKERS} dpf worker processes`, median(local.times), median(queue.times), [
    `through the queue ${phaseNote(queue.phases)}; local ${phaseNote(local.phases)}`,
  ]);
}
