/**
 * The dashboard's JSON API: what the server (dashboard/server.ts) answers and the page
 * (assets/dashboard/) reads. Every string in it is data — the page puts it into the document as
 * text (textContent), never as HTML. No field holds a credential: URLs are shown without their
 * user information (`redis://:secret@host` → `redis://host`).
 *
 * Routes (all GET unless said; `:run` and `:partition` are URL-encoded ids):
 *   /                                        the page (index.html), and /assets/… its files
 *   /api/runs                                RunsResponse
 *   /api/runs/:run                           RunSummary
 *   /api/runs/:run/events                    text/event-stream: `summary` events (RunSummary), pushed
 *                                            within a second of a change while the run is in progress;
 *                                            an `end` event when it ends
 *   /api/runs/:run/partitions?status=DONE,FAILED&q=text&sort=id|status|duration|rows|attempts
 *                            &order=asc|desc&offset=0&limit=100
 *                                            PartitionsPage (the filter, search, sort and page happen on
 *                                            the server: the page never holds 100,000 rows)
 *   /api/runs/:run/timeline                  Timeline
 *   /api/runs/:run/durations                 DurationHistogram
 *   /api/runs/:run/partitions/:partition     PartitionView
 *   /api/runs/:run/partitions/:partition/log text/plain: the log (every attempt; a running attempt's
 *                                            lines so far); `?follow=1` as text/event-stream `log`
 *                                            events (data: JSON string of new text) until it ends
 *   /api/runs/:run/partitions/:partition/artifacts/:name          the artifact's bytes (download:
 *                                            Content-Disposition attachment)
 *   /api/runs/:run/partitions/:partition/artifacts/:name/preview  ArtifactPreview
 *   POST /api/runs/:run/cancel               ActionResponse (the page asks for confirmation first)
 *   POST /api/runs/:run/rerun-failed         ActionResponse
 *   /metrics                                 Prometheus text format
 *
 * Errors: a JSON `{ error: string }` with status 400 (bad request), 401 (token), 403 (origin),
 * 404 (no such run, partition or artifact; a path outside the stage) or 409 (an action the run's
 * state does not allow).
 */
import type { PartitionStatus, RunStatus } from '../status.js';

/** GET /api/runs: every run on the stage, oldest first. */
export interface RunsResponse {
  /** The stage's location (without credentials). */
  stage: string;
  runs: Array<RunSummary | DamagedRun>;
}

/** A folder on the stage that looks like a run and cannot be read. */
export interface DamagedRun {
  runId: string;
  damaged: string;
}

/** A run as its list row and its page's header show it. */
export interface RunSummary {
  runId: string;
  /** 'stage' (files) or 'dataframe' (a table partitioned by columns). */
  mode: 'stage' | 'dataframe';
  status: RunStatus;
  /** The run's layer on top of the function: 'training' / 'inference' (many models), else undefined. */
  layer?: string;
  numPartitions: number;
  /** Partitions by status; every status present, 0 when none. */
  counts: Record<PartitionStatus, number>;
  /** Epoch milliseconds. */
  createdAt: number;
  /** The latest driver's start (a resume), epoch ms. */
  startedAt?: number;
  finishedAt?: number;
  /** finishedAt (or now, while running) − createdAt. */
  durationMs: number;
  /** 'alive': a driver holds the run; 'gone': IN_PROGRESS but its driver is gone (abandoned); 'queued': waiting for a dpf worker to drive it; 'ended'. */
  driver: 'alive' | 'gone' | 'queued' | 'ended';
  /** The driver holding the run, while one does. */
  driverHolder?: { pid: number; host: string; renewedAt: number };
  /** Stage mode: `${filePattern} under ${location}`; DataFrame mode: the source and the partition columns. */
  input: string;
  /** A queue run: its queue, `"name" at redis://host:port` (without the password). */
  queue?: string;
  /** The module and export the run calls (a file: URL), when it ran one. */
  module?: string;
  /** What a reader should know (the run's warnings). */
  warnings: string[];
  /** What the page may offer: cancel (IN_PROGRESS), rerun (has FAILED or INTERNAL_ERROR or CANCELLED partitions, ended). */
  actions: { cancel: boolean; rerunFailed: boolean };
}

/** One row of the partitions table. */
export interface PartitionRow {
  id: string;
  status: PartitionStatus;
  attempts: number;
  durationMs?: number;
  rows?: number;
  /** `Name: first line of the message`, of the last failure. */
  error?: string;
}

/** GET /api/runs/:run/partitions */
export interface PartitionsPage {
  /** Partitions in the run. */
  total: number;
  /** Partitions the filter and search select (the rows are `offset…offset+rows.length` of them). */
  matching: number;
  offset: number;
  rows: PartitionRow[];
}

/**
 * GET /api/runs/:run/timeline: every attempt of every partition, columnar (index k of each array
 * is attempt k); lanes are the workers that ran them. See run/attempt-timeline.ts.
 */
export type { AttemptTimeline as Timeline, AttemptOutcome } from '../run/attempt-timeline.js';

/**
 * GET /api/runs/:run/durations: the finished partitions' durations, in bins from the shortest to
 * the longest — equal ones, or equal on a log scale when the longest is 20 times the shortest or more.
 */
export interface DurationHistogram {
  /** How the bins are spaced (and how the page draws its axis). */
  scale: 'linear' | 'log';
  /** Bin k counts durations in [edges[k], edges[k+1]) ms (the last bin includes its upper edge). */
  edges: number[];
  counts: number[];
  /** The partitions measured, and their median, 95th percentile and longest duration, ms. */
  n: number;
  p50?: number;
  p95?: number;
  max?: number;
}

/** GET /api/runs/:run/partitions/:partition */
export interface PartitionView {
  runId: string;
  id: string;
  status: PartitionStatus;
  attempts: number;
  startedAt?: number;
  finishedAt?: number;
  durationMs?: number;
  rows?: number;
  /** The last failure, with its stack. */
  error?: { name: string; message: string; stack?: string };
  /** DONE partitions: their artifacts (packed ones included), with sizes. */
  artifacts: Array<{ name: string; bytes: number; preview: 'json' | 'table' | 'image' | 'text' | 'none' }>;
}

/** GET …/artifacts/:name/preview */
export type ArtifactPreview =
  /** JSON, pretty-printed (the page shows it as text). */
  | { kind: 'json'; text: string }
  /** Parquet, Arrow IPC or CSV: the first rows as strings; `totalRows` when known. */
  | { kind: 'table'; columns: string[]; rows: string[][]; totalRows?: number }
  /** png, jpeg, gif, webp, svg as an <img> of the download URL (svg in an <img> runs no script). */
  | { kind: 'image'; url: string; mediaType: string }
  /** Other UTF-8 text: its first 64 KiB. */
  | { kind: 'text'; text: string; truncated: boolean }
  | { kind: 'none'; reason: string };

/** POST actions. */
export interface ActionResponse {
  runId: string;
  /** What happened, in a sentence the page shows. */
  message: string;
  status: RunStatus;
}
