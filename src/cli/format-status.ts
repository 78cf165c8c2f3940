import type { DPFRun } from '../run/dpf-run.js';
import type { SinglePartitionDetails } from '../run/partition-details.js';
import { PARTITION_STATUSES } from '../status.js';

/** The text `dpf status` prints: a summary of the run, then one row per partition. */
export function formatStatus(run: DPFRun, details: Record<string, SinglePartitionDetails>, onlyStatus?: string): string {
  const all = Object.values(details);
  const counts = PARTITION_STATUSES.map((status) => [status, all.filter((d) => d.status === status).length] as const)
    .filter(([, count]) => count > 0)
    .map(([status, count]) => `${count} ${status}`)
    .join(', ');
  const input = run.input;
  const what = input.mode === 'stage' ? `files ${input.filePattern} under ${input.location}` : `${input.source}, partitioned by ${input.partitionBy.join(', ')}`;
  const lines = [`run ${run.runId}: ${run.status} — ${all.length} partition(s)${counts ? `: ${counts}` : ''}`, `input ${what}`, `stage ${run.stageLocation}`, ''];
  const rows = all
    .filter((d) => onlyStatus === undefined || d.status === onlyStatus)
    .map((d) => [
      d.partitionId,
      d.status,
      String(d.attempts),
      d.durationMs === undefined ? '' : `${d.durationMs} ms`,
      d.numRows === undefined ? '' : String(d.numRows),
      d.error === undefined ? '' : `${d.error.name}: ${d.error.message.split('\n')[0]}`,
    ]);
  lines.push(...table(['PARTITION', 'STATUS', 'ATTEMPTS', 'DURATION', 'ROWS', 'ERROR'], rows));
  return lines.join('\n') + '\n';
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const format = (row: string[]): string => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd();
  return [format(header), ...rows.map(format)];
}
