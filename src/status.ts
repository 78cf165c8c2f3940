/**
 * The state of a run as a whole.
 *
 * `IN_PROGRESS` while partitions remain; then `SUCCESS` (every partition DONE, a run with no
 * partition too), `PARTIAL_FAILURE` (some DONE, some not), `FAILURE` (none DONE) or `CANCELLED`
 * (after `cancel()`).
 */
export const RunStatus = {
  IN_PROGRESS: 'IN_PROGRESS',
  SUCCESS: 'SUCCESS',
  PARTIAL_FAILURE: 'PARTIAL_FAILURE',
  FAILURE: 'FAILURE',
  CANCELLED: 'CANCELLED',
} as const;
export type RunStatus = (typeof RunStatus)[keyof typeof RunStatus];

/**
 * The state of one partition.
 *
 * `FAILED` means the function threw (or timed out); `INTERNAL_ERROR` means the worker running it
 * died (crash, `process.exit`, out of memory, killed).
 */
export const PartitionStatus = {
  PENDING: 'PENDING',
  RUNNING: 'RUNNING',
  DONE: 'DONE',
  FAILED: 'FAILED',
  CANCELLED: 'CANCELLED',
  INTERNAL_ERROR: 'INTERNAL_ERROR',
} as const;
export type PartitionStatus = (typeof PartitionStatus)[keyof typeof PartitionStatus];

/** Every partition status, in the order progress reports list them. */
export const PARTITION_STATUSES: readonly PartitionStatus[] = Object.values(PartitionStatus);

/** Whether a partition in this status will not change again in the current run. */
export function isFinalPartitionStatus(status: PartitionStatus): boolean {
  return status !== PartitionStatus.PENDING && status !== PartitionStatus.RUNNING;
}

/**
 * The status a finished run ends with, from how many of its partitions are DONE. A run cancelled
 * after every partition was already DONE still succeeded.
 */
export function finishedRunStatus(done: number, total: number, cancelled: boolean): RunStatus {
  if (done === total) return RunStatus.SUCCESS;
  if (cancelled) return RunStatus.CANCELLED;
  return done === 0 ? RunStatus.FAILURE : RunStatus.PARTIAL_FAILURE;
}

/** Partition counts by status as a plain object with every status a key (0 when none): what JSON answers hold. */
export function statusCountsRecord(counts: ReadonlyMap<PartitionStatus, number>): Record<PartitionStatus, number> {
  return Object.fromEntries(PARTITION_STATUSES.map((status) => [status, counts.get(status) ?? 0])) as Record<PartitionStatus, number>;
}
