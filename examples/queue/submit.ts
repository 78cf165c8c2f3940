import { mkdir, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { DPF, DPFRun } from 'dpf';

// The queue's Redis, and a stage every worker reaches: here a folder (on several machines, a
// mount they all share at the same path), or s3://bucket/prefix.
const queue = process.env.DPF_QUEUE ?? 'redis://127.0.0.1:6379';
const stage = resolve(process.env.DPF_STAGE ?? './stage');

// The input must be reachable by every worker too.
await mkdir('input', { recursive: true });
for (const store of ['berlin', 'lisbon', 'oslo']) {
  const rows = Array.from({ length: 100 }, (_, i) => `${i},${(i * 1.5).toFixed(2)}`);
  await writeFile(`input/${store}.csv`, ['day,amount', ...rows].join('\n'));
}

const dpf = new DPF(new URL('../quickstart/process.ts', import.meta.url), { stage, queue });

// useHeadNode: false — this process only submits: run() returns once the run is on the queue,
// and this process could exit now; `dpf worker`s carry the run to its end.
const run = await dpf.runFromStage({
  stageLocation: resolve('input'),
  filePattern: '*.csv',
  runId: 'store-sales-queue',
  onExistingArtifacts: 'overwrite',
  executionOptions: { useHeadNode: false, maxRetries: 2 },
});
console.log(`submitted ${run.runId}`);

// Any process, on any machine that reaches the stage, follows it to its end.
const followed = await DPFRun.restoreFrom('store-sales-queue', stage);
console.log(await followed.wait());
console.log(await followed.partitionDetails('oslo.csv')!.artifacts.get('summary.json'));
