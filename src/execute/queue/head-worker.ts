import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';
import { localWorkerCount, type ResolvedExecutionOptions } from '../../execution-options.js';
import type { ModuleReference } from '../../model/run-spec.js';
import type { DPFRun } from '../../run/dpf-run.js';
import { projectRootOf } from '../module-identity.js';
import { QueueWorker } from './queue-worker.js';

/** This process's queue worker per queue, and how many of the runs it submitted are unfinished. */
const heads = new Map<string, { worker: Promise<QueueWorker>; runs: number }>();

/**
 * `useHeadNode: true` on a queue run: the submitting machine works too — a queue worker in this
 * process (as `dpf worker` would run it, with the run's CPU count) takes the queue's jobs until
 * the runs this process submitted have ended, then drains and stops. The process stays alive
 * while it works; with `useHeadNode: false` nothing runs here, and the submitting process may
 * exit as soon as `run()` resolves.
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
      drive: true,
      lockDurationMs: 30_000,
      stalledIntervalMs: 30_000,
      log: (line) => void process.stderr.write(`dpf (head worker): ${line}\n`),
    });
    head = { worker: worker.start().then(() => worker), runs: 0 };
    heads.set(key, head);
  }
  head.runs++;
  const entry = head;
  await entry.worker;
  void run
    .wait({ showProgress: false })
    .catch(() => undefined)
    .then(async () => {
      if (--entry.runs > 0) return;
      heads.delete(key);
      await (await entry.worker).close();
    });
}
