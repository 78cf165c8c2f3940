/**
 * Q1's reference: one raw BullMQ worker process with a no-op processor.
 *
 *   node bench/workloads/bullmq-noop-worker.mjs <redis url> <queue name>
 *
 * Prints `READY` once its Worker is connected, and `PROCESSED <n>` (jobs it ran) when SIGTERM has
 * let it close, so the benchmark can check that every job ran.
 */
/* global process, console */
import { Worker } from 'bullmq';

const [url, queue] = process.argv.slice(2);
if (!url || !queue) {
  console.error('usage: bullmq-noop-worker.mjs <redis url> <queue name>');
  process.exit(2);
}
let processed = 0;
const worker = new Worker(
  queue,
  async () => {
    processed++;
  },
  { connection: { url }, concurrency: 1 },
);
// Without a listener, a connection error would be thrown as an uncaught 'error' event.
worker.on('error', (error) => console.error(`bullmq-noop-worker: ${error.message}`));
process.once('SIGTERM', () => {
  void worker.close().then(() => {
    console.log(`PROCESSED ${processed}`);
    process.exit(0);
  });
});
await worker.waitUntilReady();
console.log('READY');
