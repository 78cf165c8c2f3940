import type { DPFRun } from '../run/dpf-run.js';
import type { SinglePartitionDetails } from '../run/partition-details.js';
import { PARTITION_STATUSES, type PartitionStatus, RunStatus } from '../status.js';
import { displayId, displayText, formatCount, formatTime } from './display-text.js';
import { textTable } from './text-table.js';

/** Which partitions `dpf status` lists. */
export interface StatusSelection {
  /** Only these statuses; all when undefined. */
  statuses: ReadonlySet<PartitionStatus> | undefined;
  /** At most this many rows (Infinity: all). */
  limit: number;
}

/**
 * The text `dpf status` prints: a summary of the run (its status and counts, whether its driver
 * is gone and how to resume, its input, stage and times), then a table of its partitions — the
 * first `limit` of those selected, and a line saying how many more there are and how to see them.
 * `abandonment` is what became of the driver of an abandoned run.
 */
export function formatStatus(run: DPFRun, selection: StatusSelection, abandonment: string | undefined): string {
  const counts = run.statusCounts();
  const summary = countsText(counts);
  const state = abandonment !== undefined ? `${run.status}, its driver is gone` : run.waitingForDriver ? `${run.status}, waiting for a dpf worker to drive it` : run.status;
  const lines = [`run ${run.runId}: ${state} — ${formatCount(run.numPartitions)} partition(s)${summary ? `: ${summary}` : ''}`];
  if (abandonment !== undefined) lines.push(abandonment);
  const input = run.input;
  lines.push(input.mode === 'stage' ? `input files ${input.filePattern} under ${input.location}` : `input ${input.source}, partitioned by ${input.partitionBy.join(', ')}`);
  lines.push(`stage ${run.stageLocation}`);
  if (run.queue !== undefined) lines.push(`queue "${run.queue.name}" at ${run.queue.url}`);
  lines.push(timesText(run));
  const holder = run.driverLease;
  if (run.status === RunStatus.IN_PROGRESS && abandonment === undefined && holder !== undefined) {
    lines.push(`driver pid ${holder.pid} on ${holder.host}, last heard ${formatTime(new Date(holder.renewedAt))}`);
  }

  const { details, matching } = run.selectPartitions(selection.statuses, selection.limit);
  // Not pushed with a spread: --all may make a million lines.
  const table = textTable(['PARTITION', 'STATUS', 'ATTEMPTS', 'DURATION', 'ROWS', 'ERROR'], details.map(row));
  const more = matching > details.length ? [moreText(matching - details.length, selection, counts)] : [];
  return `${lines.join('\n')}\n\n${table.join('\n')}\n${more.map((line) => `${line}\n`).join('')}`;
}

/** `4 PENDING, 2 DONE`: the statuses that have partitions, in the order statuses are listed. */
export function countsText(counts: ReadonlyMap<PartitionStatus, number>): string {
  return PARTITION_STATUSES.filter((status) => counts.get(status)! > 0)
    .map((status) => `${formatCount(counts.get(status)!)} ${status}`)
    .join(', ');
}

function row(details: SinglePartitionDetails): string[] {
  return [
    displayId(details.partitionId),
    details.status,
    String(details.attempts),
    details.durationMs === undefined ? '' : `${details.durationMs} ms`,
    details.numRows === undefined ? '' : String(details.numRows),
    details.error === undefined ? '' : displayText(`${details.error.name}: ${details.error.message.split('\n')[0]}`),
  ];
}

function timesText(run: DPFRun): string {
  const { createdAt, startedAt, finishedAt } = run.times;
  const parts = [`started ${formatTime(createdAt)}`];
  // A later driver's start (a resume) a second or more after the run was made.
  if (startedAt !== undefined && startedAt.getTime() - createdAt.getTime() >= 1000) parts.push(`resumed ${formatTime(startedAt)}`);
  if (finishedAt !== undefined) parts.push(`ended ${formatTime(finishedAt)} (${((finishedAt.getTime() - createdAt.getTime()) / 1000).toFixed(1)} s)`);
  return parts.join(', ');
}

/** The line under a table that does not show every selected partition. */
function moreText(more: number, selection: StatusSelection, counts: ReadonlyMap<PartitionStatus, number>): string {
  const hints = ['--limit N shows N', '--all every one'];
  // The partitions a person looks for first, unless the table shows only those already.
  const failed = PARTITION_STATUSES.filter((status) => (status === 'FAILED' || status === 'INTERNAL_ERROR') && counts.get(status)! > 0);
  if (selection.statuses === undefined && failed.length > 0) {
    const how = failed.map((status) => `${formatCount(counts.get(status)!)} ${status}`).join(' and ');
    hints.push(`--status ${failed.join(',')} the ${how}`);
  }
  return `… and ${formatCount(more)} more: ${hints.join(', ')}`;
}
