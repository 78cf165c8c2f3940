import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { type Context, Hono } from 'hono';
import { compress } from 'hono/compress';
import { streamSSE } from 'hono/streaming';
import { ArtifactNameError, ArtifactNotFoundError, NothingToRerunError, RunInProgressError } from '../errors.js';
import { rerunFailed } from '../rerun-failed.js';
import type { DPFRun } from '../run/dpf-run.js';
import type { SinglePartitionDetails } from '../run/partition-details.js';
import { isFinalPartitionStatus, PARTITION_STATUSES, PartitionStatus, RunStatus } from '../status.js';
import type { ActionResponse, PartitionView, RunsResponse, RunSummary } from './api-types.js';
import { artifactPreview, previewKind } from './artifact-preview.js';
import { artifactStream } from './artifact-stream.js';
import { durationHistogram } from './durations.js';
import { dashboardMetrics } from './metrics.js';
import { MAX_PAGE_ROWS, queryPartitions, SORT_KEYS, type SortKey } from './partitions-query.js';
import { redact } from './redact.js';
import { RunCache } from './run-cache.js';
import { RunEvents } from './run-events.js';
import { runSummary } from './run-summary.js';
import { checkExposure, errorResponse, guard, isLoopbackHost } from './security.js';
import { readStaticFile, staticFiles } from './static-assets.js';
import { runTimeline } from './timeline.js';
import { downloadHeaders } from './download-headers.js';

/** Options of {@link startDashboard}. */
export interface DashboardOptions {
  /** The stage whose runs it shows: a folder or `s3://bucket/prefix`. */
  stage: string;
  /**
   * The port to listen on; 0 takes any free one.
   * @defaultValue 8610
   */
  port?: number;
  /**
   * The address to listen on. Anything but a loopback address needs a `token`.
   * @defaultValue '127.0.0.1'
   */
  host?: string;
  /** When given, every request must carry it (`Authorization: Bearer T`, or `?token=T` once, which leaves a cookie). */
  token?: string;
}

/** A dashboard that listens. */
export interface Dashboard {
  /** Where it answers, such as `http://127.0.0.1:8610/`. */
  url: string;
  port: number;
  /** The reruns the rerun-failed action started in this process that have not ended (they end with it). */
  readonly reruns: DPFRun[];
  /** How many runs' event streams are watched now: one timer per run, whatever the number of its clients, stopped with the last. */
  readonly watchedRuns: number;
  /** Stops listening and every timer (the reruns it started go on). */
  close(): Promise<void>;
}

export const DEFAULT_DASHBOARD_PORT = 8610;

/** How often a followed log is read again. */
const LOG_FOLLOW_MS = 500;
/** A comment on every event stream this often, so proxies keep it open. */
const HEARTBEAT_MS = 15_000;

/** Starts the dashboard's HTTP server on a stage; resolves once it listens. */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const host = options.host ?? '127.0.0.1';
  const token = options.token === '' ? undefined : options.token;
  checkExposure(host, token);
  let port = options.port ?? DEFAULT_DASHBOARD_PORT;
  const cache = new RunCache(options.stage);
  const events = new RunEvents(cache);
  const streams = new Set<() => void>();
  const reruns = new Set<DPFRun>();
  const app = dashboardApp({ cache, events, streams, reruns, loopback: isLoopbackHost(host), port: () => port, token, stage: options.stage });
  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const listening = serve({ fetch: app.fetch, port, hostname: host }, (info: AddressInfo) => {
      port = info.port;
      resolve(listening);
    });
    listening.once('error', reject);
  });
  const shown = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}/`,
    port,
    get watchedRuns() {
      return events.watching;
    },
    get reruns() {
      return [...reruns].filter((run) => run.status === RunStatus.IN_PROGRESS);
    },
    close: async () => {
      events.close();
      for (const stop of streams) stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
    },
  };
}

interface AppContext {
  cache: RunCache;
  events: RunEvents;
  /** What ends each open event stream (the server closes). */
  streams: Set<() => void>;
  loopback: boolean;
  port: () => number;
  token: string | undefined;
  stage: string;
  /** The runs the rerun-failed action started. */
  reruns: Set<DPFRun>;
}

/** The dashboard's routes (see api-types.ts). */
function dashboardApp(context: AppContext): Hono {
  const { cache, events } = context;
  const files = staticFiles();
  const app = new Hono();
  app.use('*', guard({ loopback: context.loopback, port: context.port, token: context.token }));
  // JSON and text gzip-compressed when the client takes it (a 100,000-attempt timeline: 5 MB → a few hundred KB); event streams never.
  app.use('*', compress());

  app.notFound((c) => errorResponse(c, 404, 'no such page'));
  app.onError((error, c) => {
    if (error instanceof ArtifactNotFoundError || error instanceof ArtifactNameError) return errorResponse(c, 404, redact(error.message));
    return errorResponse(c, 500, redact(error instanceof Error ? error.message : String(error)));
  });

  const run = async (c: Context): Promise<DPFRun | Response> => (await cache.get(c.req.param('run')!)) ?? errorResponse(c, 404, 'no such run on the stage');
  const partition = async (c: Context): Promise<{ run: DPFRun; details: SinglePartitionDetails } | Response> => {
    const found = await run(c);
    if (found instanceof Response) return found;
    const details = found.partitionDetails(c.req.param('partition')!);
    return details === undefined ? errorResponse(c, 404, `run "${found.runId}" has no such partition`) : { run: found, details };
  };

  /** A partition's artifact by the name in the path: only a name the partition's record lists (nothing is looked up on disk by it). */
  const artifact = async (c: Context): Promise<{ run: DPFRun; details: SinglePartitionDetails; name: string } | Response> => {
    const found = await partition(c);
    if (found instanceof Response) return found;
    const name = c.req.param('name')!;
    return (await found.details.artifacts.list()).includes(name) ? { ...found, name } : errorResponse(c, 404, 'the partition has no such artifact');
  };

  app.get('/api/runs', async (c) => {
    const listed = await cache.list();
    const runs: RunsResponse['runs'] = listed.map((found) => ('run' in found ? runSummary(found.run) : { runId: found.runId, damaged: redact(found.damaged) }));
    const createdAt = (entry: RunsResponse['runs'][number]): number => ('damaged' in entry ? Infinity : entry.createdAt);
    runs.sort((a, b) => createdAt(a) - createdAt(b) || (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0));
    return c.json({ stage: redact(cache.location), runs } satisfies RunsResponse);
  });

  app.get('/api/runs/:run', async (c) => {
    const found = await run(c);
    return found instanceof Response ? found : c.json(runSummary(found));
  });

  app.get('/api/runs/:run/events', async (c) => {
    const found = await run(c);
    if (found instanceof Response) return found;
    return streamSSE(c, async (stream) => {
      let stop: (() => void) | undefined;
      let writes = Promise.resolve();
      const ended = new Promise<void>((resolve) => {
        const finish = (): void => {
          stop?.();
          context.streams.delete(finish);
          resolve();
        };
        context.streams.add(finish);
        stream.onAbort(finish);
        // One write after another, and all of them before the stream closes.
        const send = (event: string, summary: RunSummary): void => {
          writes = writes.then(() => stream.writeSSE({ event, data: JSON.stringify(summary) })).catch(finish);
        };
        void events
          .listen(found.runId, {
            summary: (summary) => send('summary', summary),
            end: (summary) => {
              send('end', summary);
              finish();
            },
          })
          .then((unlisten) => {
            stop = unlisten;
            if (!context.streams.has(finish)) unlisten();
          }, finish);
      });
      const heartbeat = setInterval(() => void stream.write(': heartbeat\n\n').catch(() => undefined), HEARTBEAT_MS);
      try {
        await ended;
        await writes;
      } finally {
        clearInterval(heartbeat);
      }
    });
  });

  app.get('/api/runs/:run/partitions', async (c) => {
    const found = await run(c);
    if (found instanceof Response) return found;
    const query = partitionsQuery(c);
    if (typeof query === 'string') return errorResponse(c, 400, query);
    return c.json(queryPartitions(found, query));
  });

  app.get('/api/runs/:run/timeline', async (c) => {
    const found = await run(c);
    return found instanceof Response ? found : c.json(await runTimeline(found));
  });

  app.get('/api/runs/:run/durations', async (c) => {
    const found = await run(c);
    return found instanceof Response ? found : c.json(durationHistogram(found));
  });

  app.get('/api/runs/:run/partitions/:partition', async (c) => {
    const found = await partition(c);
    if (found instanceof Response) return found;
    const { details } = found;
    const view: PartitionView = {
      runId: found.run.runId,
      id: details.partitionId,
      status: details.status,
      attempts: details.attempts,
      artifacts: (details.artifacts.sizes()).map(({ name, bytes }) => ({ name, bytes, preview: previewKind(name) })),
    };
    if (details.startedAt !== undefined) view.startedAt = details.startedAt.getTime();
    if (details.finishedAt !== undefined) view.finishedAt = details.finishedAt.getTime();
    if (details.durationMs !== undefined) view.durationMs = details.durationMs;
    if (details.numRows !== undefined) view.rows = details.numRows;
    if (details.error !== undefined) {
      view.error = { name: details.error.name, message: redact(details.error.message) };
      if (details.error.stack !== undefined) view.error.stack = redact(details.error.stack);
    }
    return c.json(view);
  });

  app.get('/api/runs/:run/partitions/:partition/log', async (c) => {
    const found = await partition(c);
    if (found instanceof Response) return found;
    if (c.req.query('follow') !== '1') {
      return c.body(redact(await found.details.logs()), 200, { 'Content-Type': 'text/plain; charset=utf-8' });
    }
    const { runId } = found.run;
    const partitionId = found.details.partitionId;
    return streamSSE(c, async (stream) => {
      let closed = false;
      const finish = (): void => {
        closed = true;
      };
      context.streams.add(finish);
      stream.onAbort(finish);
      let sent = '';
      try {
        for (;;) {
          const current = (await cache.get(runId))?.partitionDetails(partitionId);
          if (current === undefined || closed) break;
          const text = await current.logs();
          // New text after what was sent. A running attempt's lines are its live tail until the
          // attempt's own log replaces them: what differs is sent from where it differs.
          const from = text.startsWith(sent) ? sent.length : commonPrefixLength(text, sent);
          if (text.length > from) {
            await stream.writeSSE({ event: 'log', data: JSON.stringify(redact(text.slice(from))) });
            sent = text;
          }
          if (isFinalPartitionStatus(current.status)) {
            await stream.writeSSE({ event: 'end', data: JSON.stringify(current.status) });
            break;
          }
          await stream.sleep(LOG_FOLLOW_MS);
        }
      } finally {
        context.streams.delete(finish);
      }
    });
  });

  app.get('/api/runs/:run/partitions/:partition/artifacts/:name', async (c) => {
    const found = await artifact(c);
    if (found instanceof Response) return found;
    const { name } = found;
    const { body, bytes } = await artifactStream(found.details, name);
    return c.body(body, 200, { ...downloadHeaders(name, c.req.query('inline') === '1'), 'Content-Length': String(bytes) });
  });

  app.get('/api/runs/:run/partitions/:partition/artifacts/:name/preview', async (c) => {
    const found = await artifact(c);
    if (found instanceof Response) return found;
    const { name } = found;
    return c.json(await artifactPreview(found.details, name, new URL(c.req.url).pathname.replace(/\/preview$/, '')));
  });

  app.post('/api/runs/:run/cancel', async (c) => {
    const found = await run(c);
    if (found instanceof Response) return found;
    if (found.status !== RunStatus.IN_PROGRESS) return errorResponse(c, 409, `run "${found.runId}" has ended (${found.status}): nothing to cancel`);
    await found.cancel();
    const after = (await cache.reread(found.runId)) ?? found;
    return c.json({ runId: found.runId, message: `run "${found.runId}" was cancelled: ${after.status}`, status: after.status } satisfies ActionResponse);
  });

  app.post('/api/runs/:run/rerun-failed', async (c) => {
    const found = await run(c);
    if (found instanceof Response) return found;
    let rerun: DPFRun;
    try {
      rerun = await rerunFailed(found.runId, context.stage);
    } catch (error) {
      if (error instanceof RunInProgressError || error instanceof NothingToRerunError) return errorResponse(c, 409, redact(error.message));
      throw error;
    }
    context.reruns.add(rerun);
    rerun.once('end', () => context.reruns.delete(rerun));
    const counts = rerun.statusCounts();
    const again = counts.get(PartitionStatus.PENDING)! + counts.get(PartitionStatus.RUNNING)!;
    await cache.reread(found.runId);
    return c.json({ runId: found.runId, message: `run "${found.runId}" runs ${again} partition(s) again; its ${counts.get(PartitionStatus.DONE)!} DONE ones are kept`, status: rerun.status } satisfies ActionResponse);
  });

  app.get('/metrics', async (c) => c.body(dashboardMetrics(await cache.list()), 200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }));

  // The page's files by their URL path, looked up in the list made at start (never joined into a file path).
  const serveFile = async (c: Context): Promise<Response> => {
    let path: string;
    try {
      path = decodeURIComponent(c.req.path);
    } catch {
      return errorResponse(c, 400, 'a malformed path');
    }
    const file = files.get(path);
    if (file === undefined) return errorResponse(c, 404, path === '/' ? "the dashboard's page is not installed (assets/dashboard/index.html); the API answers under /api/" : 'no such file');
    return c.body(new Uint8Array(await readStaticFile(file)), 200, { 'Content-Type': file.mediaType });
  };
  app.get('/', serveFile);
  app.get('/assets/*', serveFile);
  return app;
}

function commonPrefixLength(a: string, b: string): number {
  let k = 0;
  while (k < a.length && k < b.length && a.charCodeAt(k) === b.charCodeAt(k)) k++;
  return k;
}

/** The partitions table's query from a request's parameters, or what is wrong with them. */
function partitionsQuery(c: Context): Parameters<typeof queryPartitions>[1] | string {
  const status = c.req.query('status');
  let statuses: Set<PartitionStatus> | undefined;
  if (status !== undefined && status !== '') {
    statuses = new Set();
    for (const part of status.split(',')) {
      const value = part.trim().toUpperCase() as PartitionStatus;
      if (!PARTITION_STATUSES.includes(value)) return `"${part}" is not a partition status; the statuses are ${PARTITION_STATUSES.join(', ')}`;
      statuses.add(value);
    }
  }
  const sort = c.req.query('sort') ?? 'id';
  if (!(SORT_KEYS as readonly string[]).includes(sort)) return `sort takes ${SORT_KEYS.join(', ')}; not "${sort}"`;
  const order = c.req.query('order') ?? 'asc';
  if (order !== 'asc' && order !== 'desc') return `order takes asc or desc; not "${order}"`;
  const whole = (name: string, fallback: number, max: number): number | string => {
    const value = c.req.query(name);
    if (value === undefined || value === '') return fallback;
    if (!/^\d+$/.test(value) || Number(value) > max) return `${name} takes a whole number up to ${max}; not "${value}"`;
    return Number(value);
  };
  const offset = whole('offset', 0, Number.MAX_SAFE_INTEGER);
  const limit = whole('limit', 100, MAX_PAGE_ROWS);
  if (typeof offset === 'string') return offset;
  if (typeof limit === 'string') return limit;
  return { statuses, search: c.req.query('q') ?? '', sort: sort as SortKey, descending: order === 'desc', offset, limit };
}
