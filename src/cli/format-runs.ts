import type { DPFRun } from '../run/dpf-run.js';
import type { PartitionStatus, RunStatus } from '../status.js';
import { displayId, displayText, formatCount, formatTime } from './display-text.js';
import { countsText } from './format-status.js';
import { textTable } from './text-table.js';

/** A run `dpf runs` found on the stage, as one row says it; or the reason it could not be read. */
export type ListedRun =
  | { runId: string; status: RunStatus; abandoned: boolean; waiting: boolean; partitions: number; counts: string; statusCounts: Map<PartitionStatus, number>; createdAt: Date; finishedAt: Date | undefined }
  | { runId: string; damaged: string };

/** What `dpf runs` shows of a run (so the run itself need not be kept while the others are read). */
export function listedRun(run: DPFRun): ListedRun {
  const { createdAt, finishedAt } = run.times;
  const statusCounts = run.statusCounts();
  return { runId: run.runId, status: run.status, abandoned: run.abandoned, waiting: run.waitingForDriver, partitions: run.numPartitions, counts: countsText(statusCounts), statusCounts, createdAt, finishedAt };
}

/** The table `dpf runs` prints: each run's status, partition counts, and start and end times, oldest first. */
export function formatRuns(runs: readonly ListedRun[], stageLocation: string): string {
  if (runs.length === 0) return `no runs on the stage ${stageLocation}\n`;
  const startOf = (listed: ListedRun): number => ('damaged' in listed ? Infinity : listed.createdAt.getTime());
  const rows = [...runs]
    .sort((a, b) => startOf(a) - startOf(b) || (a.runId < b.runId ? -1 : 1))
    .map((listed) => {
      if ('damaged' in listed) return [displayId(listed.runId), 'DAMAGED', displayText(listed.damaged), '', ''];
      return [
        displayId(listed.runId),
        listed.abandoned ? `${listed.status} (driver gone)` : listed.waiting ? `${listed.status} (queued)` : listed.status,
        `${formatCount(listed.partitions)}${listed.counts ? `: ${listed.counts}` : ''}`,
        formatTime(listed.createdAt),
        listed.finishedAt === undefined ? '' : formatTime(listed.finishedAt),
      ];
    });
  return textTable(['RUN', 'STATUS', 'PARTITIONS', 'STARTED', 'ENDED'], rows).join('\n') + '\n';
}
