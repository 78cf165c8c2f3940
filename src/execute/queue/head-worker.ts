import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';
import { localWorkerCount, type ResolvedExecutionOptions } from '../../execution-options.js';
import type { ModuleReference } from '../../model/run-spec.js';
import type { DPFRun } from '../../run/dpf-run.js';
import { projectRootOf } from '../module-identity.js';
import { RunInProgressError } from '../../errors.js';
import { driveQueuedRun } from '../../run/queue-drive.js';
import { DEFAULT_LOCK_MS, DEFAULT_STALLED_CHECK_MS } from './queue-defaults.js';
import { QueueWorker } from './queue-worker.js';

/** This process's queue worker per queue, and how many of the runs it submitted are unfinished. */
const heads = new Map<string, { worker: Promise<QueueWorker>; runs: number }>();

/**
 * `useHeadNode: true` on a queue run: the submitting machine works too. It drives its own run
 * here (unless a `dpf worker` took the run's drive job first: then it only follows), and a queue
 * worker in this process (as `dpf worker` would run it, with the run's CPU count) takes the
 * queue's batches until the runs this process submitted have ended, then drains and stops. It
 * drives no other run: leaving, it would hand them over, and their in-flight partitions would
 * run again. The drive job stays on the queue: should this process die, a `dpf worker` takes the
 * run over. The process stays alive while it works; with `useHeadNode: false` nothing runs here,
 * and the submitting process may exit as soon as `run()` resolves.
 */
export async function joinHeadWorker(queue: { url: string; name: string }, run: DPFRun, options: ResolvedExecutionOptions, module: ModuleReference): Promise<void> {
  const key = `${queue.name} ${queue.url}`;
  let head = heads.get(key);
  if (head === undefined) {
    const worker = new QueueWorker({
      url: queue.url,
      name: queue.name,
      concurrency: localWorkerCount(options),
      isolation: undefined,
      project: projectRootOf(dirname(fileURLToPath(module.url))),
      drive: false,
      lockDurationMs: DEFAULT_LOCK_MS,
      stalledIntervalMs: DEFAULT_STALLED_CHECK_MS,
      log: (line) => void process.stderr.write(`dpf (head worker): ${line}\n`),
    });
    head = { worker: worker.start().then(() => worker), runs: 0 };
    heads.set(key, head);
  }
  head.runs++;
  const entry = head;
  await entry.worker;
  const data = { stage: run.stageLocation, runId: run.runId, uid: run.uid };
  const leaving = new AbortController();
  // Another driver holds the run (a worker took its drive job first): this process only follows it.
  const driving = driveQueuedRun(data, queue, leaving.signal).catch((error: unknown) => {
    if (!(error instanceof RunInProgressError)) process.stderr.write(`dpf (head worker): driving run "${run.runId}" failed: ${(error as Error).message}; a dpf worker takes it over\n`);
  });
  void Promise.all([driving, run.wait({ showProgress: false }).catch(() => undefined)])
    .then(async () => {
      if (--entry.runs > 0) return;
      heads.delete(key);
      await (await entry.worker).close();
    });
}
