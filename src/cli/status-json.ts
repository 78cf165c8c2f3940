import type { DPFRun } from '../run/dpf-run.js';
import type { SinglePartitionDetails } from '../run/partition-details.js';
import { type PartitionStatus, RunStatus, statusCountsRecord } from '../status.js';
import type { ListedRun } from './format-runs.js';

/**
 * What `dpf status RUN --json` prints: one JSON object. Its field names are stable (scripts read
 * them); times are ISO 8601 strings, absent values `null`.
 */
export interface RunStatusJson {
  runId: string;
  /** IN_PROGRESS, SUCCESS, PARTIAL_FAILURE, FAILURE or CANCELLED. */
  status: RunStatus;
  /** Unfinished with no driver executing it: its driver was killed or lost the run (resume it, or cancel it). */
  abandoned: boolean;
  /** A queue run waiting for a `dpf worker` to drive it. */
  waitingForDriver: boolean;
  /** Whether a live driver is executing the run now. */
  driverAlive: boolean;
  /** The driver's process, when the run has one: pid, host, and when it last renewed its lease. */
  driver: { pid: number; host: string; lastHeardAt: string } | null;
  numPartitions: number;
  /** Partitions in each status; every status is a key. */
  counts: Record<PartitionStatus, number>;
  createdAt: string;
  /** When its latest driver started it (a resume's start). */
  startedAt: string | null;
  finishedAt: string | null;
  /** From creation to end; null while it runs. */
  durationMs: number | null;
  /** `{ mode: 'stage', location, filePattern }` or `{ mode: 'dataframe', partitionBy, source, rows, columns? }`. */
  input: DPFRun['input'];
  stage: string;
  queue: { url: string; name: string } | null;
  /** The partitions selected (every one unless `--status` or `--limit` says otherwise), in the run's order. */
  partitions: PartitionJson[];
  /** How many partitions match `--status` (all of them without it): more than `partitions` holds when `--limit` cut the list. */
  matching: number;
}

/** One partition in `dpf status --json`. */
export interface PartitionJson {
  id: string;
  status: PartitionStatus;
  attempts: number;
  startedAt: string | null;
  finishedAt: string | null;
  /** Its last attempt's; null while none has ended. */
  durationMs: number | null;
  /** Rows the function read, when it read the partition as a table. */
  rows: number | null;
  /** Its last failure. */
  error: { name: string; message: string } | null;
}

/** One run in `dpf runs --json`: the same fields as `dpf status --json` without `partitions`, or `{ runId, damaged }` for a run that cannot be read. */
export type ListedRunJson =
  | Pick<RunStatusJson, 'runId' | 'status' | 'abandoned' | 'waitingForDriver' | 'numPartitions' | 'counts' | 'createdAt' | 'finishedAt'>
  | { runId: string; damaged: string };

/** `dpf status RUN --json`, written in pieces (a run of a million partitions makes one line per partition). */
export function* statusJson(run: DPFRun, statuses: ReadonlySet<PartitionStatus> | undefined, limit: number): Generator<string> {
  const { createdAt, startedAt, finishedAt } = run.times;
  const holder = run.driverLease;
  const driverAlive = run.status === RunStatus.IN_PROGRESS && !run.abandoned && holder?.alive === true;
  const { details, matching } = run.selectPartitions(statuses, limit);
  const summary: Omit<RunStatusJson, 'partitions'> = {
    runId: run.runId,
    status: run.status,
    abandoned: run.abandoned,
    waitingForDriver: run.waitingForDriver,
    driverAlive,
    driver: holder === undefined || run.status !== RunStatus.IN_PROGRESS ? null : { pid: holder.pid, host: holder.host, lastHeardAt: new Date(holder.renewedAt).toISOString() },
    numPartitions: run.numPartitions,
    counts: statusCountsRecord(run.statusCounts()),
    createdAt: createdAt.toISOString(),
    startedAt: iso(startedAt),
    finishedAt: iso(finishedAt),
    durationMs: finishedAt === undefined ? null : finishedAt.getTime() - createdAt.getTime(),
    input: run.input,
    stage: run.stageLocation,
    queue: run.queue === undefined ? null : { url: run.queue.url, name: run.queue.name },
    matching,
  };
  const head = JSON.stringify(summary, null, 2);
  yield `${head.slice(0, -2)},\n  "partitions": [`;
  for (let i = 0; i < details.length; i++) yield `${i === 0 ? '' : ','}\n    ${JSON.stringify(partitionJson(details[i]!))}`;
  yield `${details.length === 0 ? '' : '\n  '}]\n}\n`;
}

/** `dpf runs --json`: the runs as a JSON array, oldest first. */
export function runsJson(runs: readonly ListedRun[]): string {
  const startOf = (listed: ListedRun): number => ('damaged' in listed ? Infinity : listed.createdAt.getTime());
  const rows = [...runs]
    .sort((a, b) => startOf(a) - startOf(b) || (a.runId < b.runId ? -1 : 1))
    .map((listed): ListedRunJson => {
      if ('damaged' in listed) return { runId: listed.runId, damaged: listed.damaged };
      return {
        runId: listed.runId,
        status: listed.status,
        abandoned: listed.abandoned,
        waitingForDriver: listed.waiting,
        numPartitions: listed.partitions,
        counts: statusCountsRecord(listed.statusCounts),
        createdAt: listed.createdAt.toISOString(),
        finishedAt: iso(listed.finishedAt),
      };
    });
  return `${JSON.stringify(rows, null, 2)}\n`;
}

function partitionJson(details: SinglePartitionDetails): PartitionJson {
  return {
    id: details.partitionId,
    status: details.status,
    attempts: details.attempts,
    startedAt: iso(details.startedAt),
    finishedAt: iso(details.finishedAt),
    durationMs: details.durationMs ?? null,
    rows: details.numRows ?? null,
    error: details.error === undefined ? null : { name: details.error.name, message: details.error.message },
  };
}

function iso(date: Date | undefined): string | null {
  return date === undefined ? null : date.toISOString();
}
