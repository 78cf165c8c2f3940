import type { DPFRun } from '../run/dpf-run.js';
import { RERUN_STATUSES } from '../rerun-failed.js';
import { RunStatus, statusCountsRecord } from '../status.js';
import type { RunSummary } from './api-types.js';
import { redact } from './redact.js';

/** What the dashboard shows of a run in its list row and its page's header (as last observed). */
export function runSummary(run: DPFRun, now = Date.now()): RunSummary {
  const counts = statusCountsRecord(run.statusCounts());
  const { createdAt, startedAt, finishedAt } = run.times;
  const ended = run.status !== RunStatus.IN_PROGRESS;
  const driver = ended ? 'ended' : run.abandoned ? 'gone' : run.waitingForDriver ? 'queued' : 'alive';
  const input = run.input;
  const called = run.called;
  const summary: RunSummary = {
    runId: run.runId,
    mode: input.mode,
    status: run.status,
    numPartitions: run.numPartitions,
    counts,
    createdAt: createdAt.getTime(),
    durationMs: Math.max(0, (finishedAt?.getTime() ?? now) - createdAt.getTime()),
    driver,
    input: redact(input.mode === 'stage' ? `${input.filePattern} under ${input.location}` : `${input.source}, partitioned by ${input.partitionBy.join(', ')}`),
    warnings: run.warnings.map(redact),
    actions: {
      cancel: !ended,
      // What rerunFailed accepts: an ended run, or one whose driver is gone, with partitions not DONE.
      rerunFailed: (ended || driver === 'gone') && [...RERUN_STATUSES].some((status) => counts[status] > 0),
    },
  };
  const layer = called?.layer?.module;
  if (layer !== undefined) summary.layer = layer.replace(/^.*\//, '').replace(/-layer$/, '');
  if (startedAt !== undefined) summary.startedAt = startedAt.getTime();
  if (finishedAt !== undefined) summary.finishedAt = finishedAt.getTime();
  const holder = run.driverLease;
  if (driver === 'alive' && holder !== undefined && holder.alive) summary.driverHolder = { pid: holder.pid, host: holder.host, renewedAt: holder.renewedAt };
  if (run.queue !== undefined) summary.queue = redact(`"${run.queue.name}" at ${run.queue.url}`);
  if (called?.url !== undefined) summary.module = redact(called.url);
  return summary;
}
