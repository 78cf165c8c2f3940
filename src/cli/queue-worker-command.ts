import { availableParallelism } from 'node:os';
import { checkQueueOption } from '../execute/queue/queue-connection.js';
import { checkQueueReachable } from '../execute/queue/redis-connection.js';
import { QueueWorker } from '../execute/queue/queue-worker.js';
import { projectRootOf } from '../execute/module-identity.js';
import { redactDatabaseUrl } from '../execute/session-url.js';

/** `dpf worker`'s flags, as commander parsed them. */
export interface WorkerFlags {
  queue: string;
  queueName: string;
  concurrency?: number;
  isolation?: 'thread' | 'process';
  project?: string;
  drive: boolean;
  lockMs: number;
  stalledCheckMs: number;
}

/**
 * Runs a queue worker until SIGTERM or SIGINT, then drains it: it takes no more jobs, its running
 * partitions finish, the rest of its batches go back to the queue, and runs it drives are handed
 * to another worker. A second signal leaves at once (the queue finds the jobs stalled).
 */
export async function runQueueWorker(flags: WorkerFlags): Promise<void> {
  const queue = checkQueueOption({ url: flags.queue, name: flags.queueName }, '--queue');
  await checkQueueReachable(queue.url);
  const log = (line: string): void => void process.stderr.write(`dpf worker: ${line}\n`);
  const worker = new QueueWorker({
    url: queue.url,
    name: queue.name,
    concurrency: flags.concurrency ?? availableParallelism(),
    isolation: flags.isolation,
    project: flags.project ?? projectRootOf(process.cwd()),
    drive: flags.drive,
    lockDurationMs: flags.lockMs,
    stalledIntervalMs: flags.stalledCheckMs,
    log,
  });
  await worker.start();
  log(`${worker.id} takes jobs from queue "${queue.name}" at ${redactDatabaseUrl(queue.url)}`);
  // Partition code that listens for signals must not keep the worker: the first signal drains, a second quits.
  await new Promise<void>((resolve) => {
    let signalled = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (signalled) process.exit(130);
      signalled = true;
      log(`${signal}: draining — running partitions finish, the rest go back to the queue (again to quit at once)`);
      void worker.close().then(resolve);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  log('drained; exiting');
  process.exit(0);
}
