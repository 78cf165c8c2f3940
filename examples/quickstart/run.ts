import { mkdir, writeFile } from 'node:fs/promises';
import { DPF, DPFRun, RunStatus } from 'dpf';

// Some input: one CSV file per store.
await mkdir('input', { recursive: true });
for (const store of ['berlin', 'lisbon', 'oslo']) {
  const rows = Array.from({ length: 100 }, (_, i) => `${i},${(i * 1.5).toFixed(2)}`);
  await writeFile(`input/${store}.csv`, ['day,amount', ...rows].join('\n'));
}

// Define the DPF: the module exporting the function, and the stage that keeps the results.
const dpf = new DPF(new URL('./process.ts', import.meta.url), { stage: './stage' });

// Stage mode: every file matching the pattern is one partition.
const run = await dpf.runFromStage({
  stageLocation: './input',
  runId: 'store-sales',
  filePattern: '*.csv',
  onExistingArtifacts: 'overwrite', // 'error' (the default) refuses an existing runId; 'resume' keeps what is DONE
  executionOptions: { maxRetries: 1, timeoutMs: 60_000 },
});

// Wait, with a progress bar.
const status = await run.wait({ showProgress: true });
console.log(status); // SUCCESS | PARTIAL_FAILURE | FAILURE | CANCELLED

// Check progress: partition details grouped by status.
const progress = await run.getProgress();
console.log(`${progress.DONE.length} done, ${progress.FAILED.length} failed`);

// One partition's details, log and artifacts.
const berlin = (await run.getPartitionDetails())['berlin.csv']!;
console.log(berlin.status, berlin.attempts, `${berlin.durationMs} ms`, await berlin.artifacts.list());
console.log(await berlin.artifacts.get('summary.json'));
console.log(await berlin.logs());

// Restore the run later, from any process.
const restored = await DPFRun.restoreFrom('store-sales', './stage');
console.log(restored.status);

// Rerun the partitions that failed, keeping the DONE ones.
if (restored.status !== RunStatus.SUCCESS) {
  const failed = [...progress.FAILED, ...progress.INTERNAL_ERROR].map((details) => details.partitionId);
  const rerun = await dpf.runFromStage({ stageLocation: './input', runId: 'store-sales', partitionIds: failed, onExistingArtifacts: 'resume' });
  console.log(await rerun.wait());
}
