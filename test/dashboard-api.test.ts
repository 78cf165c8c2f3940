import { mkdir, mkdtemp, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DPF, DPFRun, RunStatus } from 'dpf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArtifactPreview, PartitionsPage, PartitionView, RunsResponse, RunSummary, Timeline } from '../src/dashboard/api-types.js';
// The built server, as the CLI runs it (and as the runs here are made: the same dpf modules, so it sees this process's drivers alive).
import { type Dashboard, startDashboard } from '../dist/dashboard/server.js';
import { DashboardExposedError } from '../dist/errors.js';
import { getJson, openEvents, send } from './support/dashboard-client.js';
import { UNTIL_ABORTED, untilFile } from './support/barriers.js';
import { dpfCommand, listFiles, POSTGRES_URL, postgres, ROOT, runNodeScript, tempDir, waitFor, writeFiles, writeModule } from './helpers.js';
import { executionCounts, fix, fixableModule } from './support/fixable-run.js';
import { writeFinishedRun } from './support/written-run.js';
import { startRedisServer } from './support/redis-server.js';
import { Redis } from 'ioredis';

/** A partition id, and a log line, that would be markup if a page put them in as HTML. */
const XSS = '<img src=x onerror=alert(1)>';
/** A 1×1 PNG. */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=', 'base64');
/** The password of the session database's URL, and of URLs a partition prints and throws. */
const PASSWORD = 'Pw-d4shb0ard-s3cret';
/** What a file next to the stage holds: no answer may ever contain it. */
const SECRET = 'TOP-SECRET-NEXT-TO-THE-STAGE';
const BIG = 100_000;

let dir: string;
let stage: string;
let dashboard: Dashboard;
let base: string;

async function runsOnStage(): Promise<Map<string, RunSummary>> {
  const { runs } = await getJson<RunsResponse>(base, '/api/runs');
  return new Map(runs.filter((run): run is RunSummary => !('damaged' in run)).map((run) => [run.runId, run]));
}

function partitionsPath(runId: string, query: string): string {
  return `/api/runs/${encodeURIComponent(runId)}/partitions?${query}`;
}

function partitionPath(runId: string, partitionId: string, rest = ''): string {
  return `/api/runs/${encodeURIComponent(runId)}/partitions/${encodeURIComponent(partitionId)}${rest}`;
}

beforeAll(async () => {
  await mkdir(join(ROOT, 'tmp'), { recursive: true });
  dir = await mkdtemp(join(ROOT, 'tmp', 'dashboard-'));
  stage = join(dir, 'stage');
  await writeFile(join(dir, 'secret.txt'), SECRET);

  // Stage mode: a partition with every kind of artifact, one that fails, one whose id is markup.
  await writeFiles(join(dir, 'input'), { 'a.csv': 'x\n1\n2\n', 'sub/bad.csv': 'x\n1\n', [`${XSS}.csv`]: 'x\n3\n' });
  const files = await writeModule(
    dir,
    `
    console.log(${JSON.stringify(XSS)});
    await data.toArrow();
    if (context.partitionId === 'sub/bad.csv') throw new Error('bad input');
    if (context.partitionId !== 'a.csv') return;
    await context.uploadToStage({ small: true, id: context.partitionId }, 'small.json');
    await context.uploadToStage([{ n: 1, s: 'one' }, { n: 2, s: 'two' }], 'table.parquet');
    await context.uploadToStage([{ n: 1, s: 'one' }, { n: 2, s: 'two' }, { n: 3, s: 'three' }], 'rows.csv');
    await context.uploadToStage([{ n: 10, s: 'ten' }], 'frame.arrow');
    await context.uploadToStage(Buffer.from(${JSON.stringify(PNG.toString('base64'))}, 'base64'), 'pixel.png');
    await context.uploadToStage('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', 'drawing.svg');
    await context.uploadToStage('<html><script>alert(1)</script></html>', 'page.html');
    await context.uploadToStage('hello\\nworld\\n', 'notes.txt');
    await context.uploadToStage('0123456789abcdef'.repeat(192 * 1024), 'big.txt');
    await context.uploadToStage(Buffer.from([0, 159, 146, 150, 0, 1]), 'blob.bin');
  `,
    { name: 'files.mjs' },
  );
  await (await new DPF(files, { stage }).runFromStage({ stageLocation: join(dir, 'input'), runId: 'files', filePattern: '**/*.csv', executionOptions: { maxRetries: 0 } })).wait();

  // DataFrame mode with retries: k1 and k2 fail once then succeed, k3 fails every attempt.
  const frames = await writeModule(
    dir,
    `
    await data.toArrow();
    if ((context.partitionKey === 'k1' || context.partitionKey === 'k2') && context.attempt === 1) throw new Error('first try fails');
    if (context.partitionKey === 'k3') throw new TypeError('always fails\\nsecond line');
    await context.uploadToStage({ rows: await data.numRows() }, 'count.json');
  `,
    { name: 'frames.mjs' },
  );
  await (
    await new DPF(frames, { stage }).run({ runId: 'frames', partitionBy: 'k', source: "SELECT 'k' || (i % 6) AS k, i AS v FROM range(60) t(i)", executionOptions: { maxRetries: 2, retryBackoffMs: 0 } })
  ).wait();

  // A run with credentials about: a session database URL with a password, and URLs with passwords in its log and error.
  await postgres('SELECT 1');
  const sessionUrl = POSTGRES_URL.replace('postgres://postgres@', `postgres://postgres:${PASSWORD}@`);
  const secretive = await writeModule(
    dir,
    `
    await context.withSession((session) => session.query('SELECT 1'));
    console.log('connecting to postgres://admin:${PASSWORD}@db.internal:5432/prod');
    if (context.partitionKey === 'b') throw new Error('cannot reach redis://:${PASSWORD}@cache.internal:6379');
    await context.uploadToStage({ url: 'redis://:${PASSWORD}@cache.internal:6379' }, 'conf.json');
    await context.uploadToStage('url postgres://u:${PASSWORD}@h/db', 'conf.txt');
  `,
    { name: 'secretive.mjs' },
  );
  expect(sessionUrl).toContain(PASSWORD);
  await (
    await new DPF(secretive, { stage, sessionDatabase: sessionUrl }).run({ runId: 'secretive', partitionBy: 'k', source: "SELECT * FROM (VALUES ('a'), ('b')) t(k)", executionOptions: { maxRetries: 0 } })
  ).wait();

  // A folder that looks like a run and cannot be read.
  await writeFiles(join(stage, 'broken', '_dpf'), { 'run.json': '{ not json' });
  await writeFinishedRun(stage, 'big', BIG, new Set(Array.from({ length: BIG / 7 }, (_, i) => i * 7)));

  dashboard = await startDashboard({ stage, port: 0 });
  base = dashboard.url;
}, 120_000);

afterAll(async () => {
  await dashboard?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('the dashboard API', () => {
  it('lists the runs with the numbers their DPFRun has', async () => {
    const answer = await send(base, '/api/runs');
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    const body = answer.json as RunsResponse;
    expect(body.stage).toBe(stage);
    const runs = await runsOnStage();
    expect([...runs.keys()].sort()).toEqual(['big', 'files', 'frames', 'secretive']);
    // Oldest first: the written run is dated 2024; the damaged one last.
    expect(body.runs[0]!.runId).toBe('big');
    expect(body.runs).toHaveLength(5);
    expect(body.runs.at(-1)).toEqual({ runId: 'broken', damaged: expect.stringContaining('run.json') });
    for (const [runId, summary] of runs) {
      const run = await DPFRun.restoreFrom(runId, stage);
      const progress = await run.getProgress();
      expect(summary.status).toBe(run.status);
      expect(summary.numPartitions).toBe(run.numPartitions);
      for (const [status, list] of Object.entries(progress)) expect(summary.counts[status as keyof typeof summary.counts]).toBe(list.length);
      expect(summary.driver).toBe('ended');
      expect(await getJson(base, `/api/runs/${runId}`)).toEqual({ ...summary, durationMs: summary.durationMs });
    }
    const files = runs.get('files')!;
    expect(files).toMatchObject({ mode: 'stage', status: RunStatus.PARTIAL_FAILURE, input: `**/*.csv under ${join(dir, 'input')}`, actions: { cancel: false, rerunFailed: true } });
    expect(files.module).toMatch(/^file:.*files\.mjs$/);
    expect(files.finishedAt! - files.createdAt).toBe(files.durationMs);
    expect(runs.get('frames')).toMatchObject({ mode: 'dataframe', input: "SELECT 'k' || (i % 6) AS k, i AS v FROM range(60) t(i), partitioned by k", counts: { DONE: 5, FAILED: 1 } });
  });

  it('filters, searches, sorts and pages the partitions on the server', async () => {
    const all = await getJson<PartitionsPage>(base, partitionsPath('frames', 'sort=id'));
    expect(all).toMatchObject({ total: 6, matching: 6, offset: 0 });
    expect(all.rows.map((row) => row.id)).toEqual(['k0', 'k1', 'k2', 'k3', 'k4', 'k5']);
    const byId = new Map(all.rows.map((row) => [row.id, row]));
    expect(byId.get('k0')).toMatchObject({ status: 'DONE', attempts: 1, rows: 10 });
    expect(byId.get('k1')).toMatchObject({ status: 'DONE', attempts: 2 });
    expect(byId.get('k3')).toMatchObject({ status: 'FAILED', attempts: 3, error: 'TypeError: always fails' });

    const failed = await getJson<PartitionsPage>(base, partitionsPath('frames', 'status=FAILED'));
    expect(failed.matching).toBe(1);
    expect(failed.rows.map((row) => row.id)).toEqual(['k3']);
    const done = await getJson<PartitionsPage>(base, partitionsPath('frames', 'status=done,failed&sort=attempts&order=desc'));
    expect(done.rows.map((row) => [row.id, row.attempts])).toEqual([['k3', 3], ['k1', 2], ['k2', 2], ['k0', 1], ['k4', 1], ['k5', 1]]);
    const byStatus = await getJson<PartitionsPage>(base, partitionsPath('frames', 'sort=status'));
    expect(byStatus.rows.map((row) => row.status)).toEqual(['DONE', 'DONE', 'DONE', 'DONE', 'DONE', 'FAILED']);
    const page = await getJson<PartitionsPage>(base, partitionsPath('frames', 'sort=id&order=desc&offset=2&limit=2'));
    expect(page).toMatchObject({ total: 6, matching: 6, offset: 2 });
    expect(page.rows.map((row) => row.id)).toEqual(['k3', 'k2']);
    const search = await getJson<PartitionsPage>(base, partitionsPath('files', 'q=SUB%2FB'));
    expect(search.rows.map((row) => row.id)).toEqual(['sub/bad.csv']);
    const byRows = await getJson<PartitionsPage>(base, partitionsPath('files', 'sort=rows&order=desc'));
    expect(byRows.rows.map((row) => [row.id, row.rows])).toEqual([['a.csv', 2], [`${XSS}.csv`, 1], ['sub/bad.csv', 1]]);
    const byDuration = await getJson<PartitionsPage>(base, partitionsPath('frames', 'sort=duration'));
    const durations = byDuration.rows.map((row) => row.durationMs!);
    expect(durations).toEqual([...durations].sort((a, b) => a - b));

    for (const bad of ['status=NOPE', 'sort=size', 'order=up', 'limit=1001', 'offset=-1', 'limit=abc']) {
      const answer = await send(base, partitionsPath('frames', bad));
      expect(answer.status, bad).toBe(400);
      expect((answer.json as { error: string }).error).toBeTypeOf('string');
    }
  });

  it('answers a page of a 100,000-partition run, filtered, searched and sorted', async () => {
    const failedIds = Array.from({ length: BIG / 7 }, (_, i) => `k${i * 7}`).sort();
    const failed = await getJson<PartitionsPage>(base, partitionsPath('big', 'status=FAILED&sort=id&order=desc&limit=1000'));
    expect(failed).toMatchObject({ total: BIG, matching: failedIds.length, offset: 0 });
    expect(failed.rows.map((row) => row.id)).toEqual([...failedIds].reverse().slice(0, 1000));
    expect(failed.rows[0]).toEqual({ id: failedIds.at(-1), status: 'FAILED', attempts: 1, durationMs: 1, rows: 1, error: `Error: ${failedIds.at(-1)} failed` });
    const last = await getJson<PartitionsPage>(base, partitionsPath('big', `status=FAILED&sort=id&offset=${failedIds.length - 3}&limit=1000`));
    expect(last.rows.map((row) => row.id)).toEqual(failedIds.slice(-3));
    const search = await getJson<PartitionsPage>(base, partitionsPath('big', 'q=K9999&sort=id'));
    expect(search.matching).toBe(11);
    expect(search.rows.map((row) => row.id)).toEqual(['k9999', 'k99990', 'k99991', 'k99992', 'k99993', 'k99994', 'k99995', 'k99996', 'k99997', 'k99998', 'k99999']);
    const byStatus = await getJson<PartitionsPage>(base, partitionsPath('big', 'sort=status&order=desc&limit=5'));
    expect(byStatus.rows.map((row) => row.status)).toEqual(['FAILED', 'FAILED', 'FAILED', 'FAILED', 'FAILED']);
    const durations = await getJson<{ n: number; counts: number[]; p50: number }>(base, '/api/runs/big/durations');
    expect(durations.n).toBe(BIG);
    expect(durations.counts.reduce((sum, count) => sum + count, 0)).toBe(BIG);
    expect(durations.p50).toBe(1);
    // Its timeline (an attempt per partition) goes gzip-compressed to a client that takes it.
    const timeline = await fetch(new URL('/api/runs/big/timeline', base), { headers: { 'accept-encoding': 'gzip' } });
    expect(timeline.headers.get('content-encoding')).toBe('gzip');
    expect(((await timeline.json()) as Timeline).partition).toHaveLength(BIG);
  });

  it('shows a partition, its log and its artifacts (packed ones included) with previews', async () => {
    const view = await getJson<PartitionView>(base, partitionPath('files', 'a.csv'));
    expect(view).toMatchObject({ runId: 'files', id: 'a.csv', status: 'DONE', attempts: 1, rows: 2 });
    expect(view.durationMs).toBe(view.finishedAt! - view.startedAt!);
    expect(view.artifacts.map((artifact) => [artifact.name, artifact.preview])).toEqual([
      ['big.txt', 'text'],
      ['blob.bin', 'text'],
      ['drawing.svg', 'image'],
      ['frame.arrow', 'table'],
      ['notes.txt', 'text'],
      ['page.html', 'text'],
      ['pixel.png', 'image'],
      ['rows.csv', 'table'],
      ['small.json', 'json'],
      ['table.parquet', 'table'],
    ]);
    // small.json is packed: no file of its own on the stage.
    expect((await listFiles(stage)).filter((file) => file.endsWith('small.json'))).toEqual([]);
    const small = await send(base, partitionPath('files', 'a.csv', '/artifacts/small.json'));
    expect(small.status).toBe(200);
    expect(JSON.parse(small.text)).toEqual({ small: true, id: 'a.csv' });
    expect(small.headers['content-type']).toBe('application/octet-stream');
    expect(small.headers['content-disposition']).toBe(`attachment; filename="small.json"; filename*=UTF-8''small.json`);
    expect(view.artifacts.find((artifact) => artifact.name === 'small.json')!.bytes).toBe(small.body.length);

    const preview = (name: string): Promise<ArtifactPreview> => getJson<ArtifactPreview>(base, partitionPath('files', 'a.csv', `/artifacts/${encodeURIComponent(name)}/preview`));
    expect(await preview('small.json')).toEqual({ kind: 'json', text: JSON.stringify({ small: true, id: 'a.csv' }, null, 2) });
    expect(await preview('table.parquet')).toEqual({ kind: 'table', columns: ['n', 's'], rows: [['1', 'one'], ['2', 'two']], totalRows: 2 });
    expect(await preview('rows.csv')).toEqual({ kind: 'table', columns: ['n', 's'], rows: [['1', 'one'], ['2', 'two'], ['3', 'three']], totalRows: 3 });
    expect(await preview('frame.arrow')).toEqual({ kind: 'table', columns: ['n', 's'], rows: [['10', 'ten']], totalRows: 1 });
    expect(await preview('notes.txt')).toEqual({ kind: 'text', text: 'hello\nworld\n', truncated: false });
    expect(await preview('blob.bin')).toMatchObject({ kind: 'none' });
    // A 3 MiB artifact: downloaded whole (streamed from its file), previewed as its first 64 KiB.
    const big = await send(base, partitionPath('files', 'a.csv', '/artifacts/big.txt'));
    expect(big.body.length).toBe(3 * 1024 * 1024);
    expect(big.headers['content-length']).toBe(String(3 * 1024 * 1024));
    expect(big.text).toBe('0123456789abcdef'.repeat(192 * 1024));
    expect(await preview('big.txt')).toEqual({ kind: 'text', text: '0123456789abcdef'.repeat(4096), truncated: true });
    const png = await preview('pixel.png');
    expect(png).toEqual({ kind: 'image', url: `${partitionPath('files', 'a.csv', '/artifacts/pixel.png')}?inline=1`, mediaType: 'image/png' });
    const image = await send(base, (png as { url: string }).url);
    expect(image.headers['content-type']).toBe('image/png');
    expect(image.body.equals(PNG)).toBe(true);
    // SVG and HTML are never served as a page: downloads, and the SVG inline only with a policy that runs nothing.
    for (const name of ['drawing.svg', 'page.html']) {
      const download = await send(base, partitionPath('files', 'a.csv', `/artifacts/${name}`));
      expect(download.headers['content-type']).toBe('application/octet-stream');
      expect(download.headers['content-disposition']).toMatch(/^attachment;/);
    }
    const svg = await send(base, partitionPath('files', 'a.csv', '/artifacts/drawing.svg?inline=1'));
    expect(svg.headers['content-type']).toBe('image/svg+xml');
    expect(svg.headers['content-security-policy']).toContain('sandbox');
    const html = await send(base, partitionPath('files', 'a.csv', '/artifacts/page.html?inline=1'));
    expect(html.headers['content-type']).toBe('application/octet-stream');

    const log = await send(base, partitionPath('files', 'sub/bad.csv', '/log'));
    expect(log.status).toBe(200);
    expect(log.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(log.text).toMatch(/\[attempt 1\] \[stdout\] <img src=x onerror=alert\(1\)>\n/);
    const bad = await getJson<PartitionView>(base, partitionPath('files', 'sub/bad.csv'));
    expect(bad).toMatchObject({ status: 'FAILED', artifacts: [], error: { name: 'Error', message: 'bad input' } });
    expect(bad.error!.stack).toContain('bad input');
    const retried = await getJson<PartitionView>(base, partitionPath('frames', 'k1'));
    expect(retried).toMatchObject({ status: 'DONE', attempts: 2, artifacts: [{ name: 'count.json', preview: 'json' }] });
    const retriedLog = await send(base, partitionPath('frames', 'k1', '/log'));
    expect(retriedLog.text).toContain('[attempt 1]');
    expect(retriedLog.text).toContain('first try fails');
    // A finished partition's followed log: what it logged, then the end.
    const followed = await openEvents(base, partitionPath('files', 'sub/bad.csv', '/log?follow=1'));
    expect(followed.contentType).toMatch(/^text\/event-stream/);
    await followed.ended;
    expect(followed.received.map((event) => event.event)).toEqual(['log', 'end']);
    expect(JSON.parse(followed.received[0]!.data)).toBe(log.text);
  });

  it('gives every attempt of a run on the timeline, retries included', async () => {
    const timeline = await getJson<Timeline>(base, '/api/runs/frames/timeline');
    expect(timeline.ids.slice().sort()).toEqual(['k0', 'k1', 'k2', 'k3', 'k4', 'k5']);
    const attempts = timeline.partition.map((partition, k) => ({ id: timeline.ids[partition], attempt: timeline.attempt[k], outcome: timeline.outcome[k], lane: timeline.lanes[timeline.lane[k]!] }));
    const of = (id: string): string[] => attempts.filter((attempt) => attempt.id === id).sort((a, b) => a.attempt! - b.attempt!).map((attempt) => `${attempt.attempt} ${attempt.outcome}`);
    expect(attempts).toHaveLength(10);
    expect(of('k0')).toEqual(['1 DONE']);
    expect(of('k1')).toEqual(['1 RETRIED', '2 DONE']);
    expect(of('k3')).toEqual(['1 RETRIED', '2 RETRIED', '3 FAILED']);
    for (const [k, start] of timeline.start.entries()) expect(timeline.end[k]).toBeGreaterThanOrEqual(start);
    expect(attempts.every((attempt) => typeof attempt.lane === 'string')).toBe(true);
  });

  it('gives markup in ids and logs back as plain JSON strings', async () => {
    const id = `${XSS}.csv`;
    const page = await send(base, partitionsPath('files', `q=${encodeURIComponent('onerror')}`));
    expect(page.headers['content-type']).toMatch(/^application\/json/);
    expect((page.json as PartitionsPage).rows.map((row) => row.id)).toEqual([id]);
    expect(page.text).toContain(JSON.stringify(id));
    const view = await send(base, partitionPath('files', id));
    expect(view.status).toBe(200);
    expect(view.headers['content-type']).toMatch(/^application\/json/);
    expect((view.json as PartitionView).id).toBe(id);
    const log = await send(base, partitionPath('files', id, '/log'));
    expect(log.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(log.headers['x-content-type-options']).toBe('nosniff');
    expect(log.text).toContain(XSS);
    const missing = await send(base, partitionPath('files', XSS));
    expect(missing.status).toBe(404);
    expect(missing.headers['content-type']).toMatch(/^application\/json/);
  });

  it('puts its security headers on every answer', async () => {
    for (const path of ['/api/runs', '/api/runs/nope', partitionPath('files', 'a.csv', '/log'), '/metrics', '/assets/vendor/uPlot.iife.min.js', '/no/such/page']) {
      const answer = await send(base, path);
      expect(answer.headers['content-security-policy'], path).toBe(
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'",
      );
      expect(answer.headers['x-content-type-options'], path).toBe('nosniff');
      expect(answer.headers['referrer-policy'], path).toBe('no-referrer');
    }
    const script = await send(base, '/assets/vendor/uPlot.iife.min.js');
    expect(script.status).toBe(200);
    expect(script.headers['content-type']).toMatch(/^text\/javascript/);
    expect(script.text).toContain('uPlot');
    const style = await send(base, '/assets/vendor/uPlot.min.css');
    expect(style.headers['content-type']).toMatch(/^text\/css/);
  });

  it('serves the page\'s files at /assets/ and its index.html at /', async () => {
    const folder = join(ROOT, 'assets', 'dashboard');
    const names = (await listFiles(folder)).filter((name) => /\.(html|js|css)$/.test(name));
    for (const name of names) {
      const answer = await send(base, `/assets/${name}`);
      expect(answer.status, name).toBe(200);
      expect(answer.body.equals(await readFile(join(folder, name))), name).toBe(true);
      expect(answer.headers['content-type'], name).toMatch(name.endsWith('.js') ? /^text\/javascript/ : name.endsWith('.css') ? /^text\/css/ : /^text\/html/);
    }
    const index = await send(base, '/');
    if (names.includes('index.html')) expect(index.body.equals(await readFile(join(folder, 'index.html')))).toBe(true);
    else expect(index.status).toBe(404);
    expect((await send(base, '/assets/no-such-file.js')).status).toBe(404);
  });

  it('never answers with a file outside what the runs list: traversal in every route gives 400 or 404', async () => {
    await writeFile(join(stage, 'stray.txt'), SECRET);
    const escapes = ['..', '%2e%2e', '%2E%2E', '..%2f', '..%2F..%2Fsecret.txt', '%2e%2e%2fsecret.txt', '%252e%252e', '%252e%252e%252fsecret.txt', '....//', '..\\..\\secret.txt', '%2F', '%2Fetc%2Fpasswd', 'stray.txt', '.', '%00'];
    const routes = (x: string): string[] => [
      `/api/runs/${x}`,
      `/api/runs/${x}/partitions`,
      `/api/runs/${x}/timeline`,
      `/api/runs/${x}/durations`,
      `/api/runs/${x}/events`,
      `/api/runs/files/partitions/${x}`,
      `/api/runs/files/partitions/${x}/log`,
      `/api/runs/files/partitions/a.csv/artifacts/${x}`,
      `/api/runs/files/partitions/a.csv/artifacts/${x}/preview`,
      `/api/runs/files/partitions/${x}/artifacts/small.json`,
      `/assets/${x}`,
      `/assets/${x}/${x}/secret.txt`,
      `/assets/vendor/${x}/${x}/package.json`,
      `/${x}/secret.txt`,
      `/api/runs/files/partitions/a.csv/artifacts/${x}${x}${x}secret.txt`,
    ];
    for (const escape of escapes) {
      for (const path of routes(escape)) {
        const answer = await send(base, path);
        expect([400, 404], `${path}: ${answer.status}`).toContain(answer.status);
        expect(answer.text, path).not.toContain(SECRET);
        expect(answer.text, path).not.toContain('root:');
      }
    }
  });

  it('follows no symbolic link the stage holds in place of an artifact, for a download or a preview', async () => {
    const file = join(stage, 'files', 'a.csv', 'big.txt');
    const size = (await stat(file)).size;
    // A file outside the stage of the artifact's size (what the journal records), linked in its place.
    const outside = join(dir, 'outside.txt');
    await writeFile(outside, SECRET.padEnd(size, '.'));
    await rename(file, `${file}.kept`);
    await symlink(outside, file);
    try {
      for (const path of ['/artifacts/big.txt', '/artifacts/big.txt/preview']) {
        const answer = await send(base, partitionPath('files', 'a.csv', path));
        expect(answer.status, path).toBe(500);
        expect(answer.text).not.toContain(SECRET);
        expect((answer.json as { error: string }).error).toMatch(/symbolic link/);
      }
    } finally {
      await rm(file);
      await rename(`${file}.kept`, file);
    }
  });

  it('shows no credential in any answer', async () => {
    const paths = ['/api/runs', '/api/runs/secretive', '/metrics', partitionsPath('secretive', 'sort=id'), '/api/runs/secretive/timeline', '/api/runs/secretive/durations'];
    for (const partition of ['a', 'b']) {
      paths.push(partitionPath('secretive', partition), partitionPath('secretive', partition, '/log'));
      for (const name of ['conf.json', 'conf.txt']) paths.push(partitionPath('secretive', partition, `/artifacts/${name}/preview`));
    }
    const summary = await getJson<RunSummary>(base, '/api/runs/secretive');
    expect(summary.status).toBe(RunStatus.PARTIAL_FAILURE);
    const texts: string[] = [];
    for (const path of paths) {
      const answer = await send(base, path);
      expect(answer.text, path).not.toContain(PASSWORD);
      texts.push(answer.text);
    }
    // What they hid: the log, the error and the artifacts still say where, without the password.
    const all = texts.join('\n');
    expect(all).toContain('postgres://db.internal:5432/prod');
    expect(all).toContain('redis://cache.internal:6379');
    const events = await openEvents(base, '/api/runs/secretive/events');
    await events.ended;
    expect(events.received.map((event) => event.data).join('')).not.toContain(PASSWORD);
  });

  it('answers unknown runs, partitions and artifacts with 404 and a JSON error', async () => {
    for (const path of ['/api/runs/nope', '/api/runs/nope/partitions', partitionPath('files', 'nope'), partitionPath('files', 'a.csv', '/artifacts/nope.json'), partitionPath('files', 'a.csv', '/artifacts/nope.json/preview')]) {
      const answer = await send(base, path);
      expect(answer.status, path).toBe(404);
      expect((answer.json as { error: string }).error, path).toBeTypeOf('string');
    }
  });
});

describe('the dashboard with a live run', () => {
  it('pushes a summary change of a live run over SSE, and its end; follows a running partition\'s log', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    await writeFiles(join(dir, 'input'), { 'a.csv': 'x\n1\n', 'b.csv': 'x\n2\n', 'c.csv': 'x\n3\n' });
    const module = await writeModule(dir, `if (context.partitionId === 'b.csv') { console.log('b is waiting'); ${untilFile(join(dir, 'release'))} console.log('b goes on'); }`);
    const run = await new DPF(module, { stage }).runFromStage({ stageLocation: join(dir, 'input'), runId: 'live', filePattern: '*.csv' });
    const live = await startDashboard({ stage, port: 0 });
    try {
      const events = await openEvents(live.url, '/api/runs/live/events');
      expect(events.contentType).toMatch(/^text\/event-stream/);
      const first = await events.next((event) => event.event === 'summary', 'summary');
      const firstSummary = JSON.parse(first.data) as RunSummary;
      expect(firstSummary).toMatchObject({ runId: 'live', status: 'IN_PROGRESS', driver: 'alive', actions: { cancel: true, rerunFailed: false } });
      // b.csv waits at its barrier: the run stays in progress until the test releases it.
      await events.next((event) => event.event === 'summary' && (JSON.parse(event.data) as RunSummary).counts.RUNNING === 1, 'with b.csv RUNNING');
      const log = await openEvents(live.url, partitionPath('live', 'b.csv', '/log?follow=1'));
      await writeFile(join(dir, 'release'), '');
      await log.ended;
      const followed = log.received.filter((event) => event.event === 'log').map((event) => JSON.parse(event.data) as string).join('');
      expect(followed).toContain('b is waiting');
      expect(followed).toContain('b goes on');
      expect(log.received.at(-1)).toEqual({ event: 'end', data: '"DONE"' });
      const end = await events.next((event) => event.event === 'end', 'end');
      expect(JSON.parse(end.data)).toMatchObject({ status: 'SUCCESS', counts: { DONE: 3 }, driver: 'ended' });
      const changed = events.received.filter((event) => event.event === 'summary').map((event) => JSON.parse(event.data) as RunSummary);
      expect(changed.at(-1)).toMatchObject({ status: 'SUCCESS' });
      await events.ended;
      expect(await run.wait()).toBe(RunStatus.SUCCESS);
    } finally {
      await live.close();
    }
  });

  it('cancels a run on POST, refusing it without the action header or from a foreign origin', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    await writeFiles(join(dir, 'input'), { 'a.csv': 'x\n1\n', 'b.csv': 'x\n2\n' });
    const module = await writeModule(dir, UNTIL_ABORTED);
    const run = await new DPF(module, { stage }).runFromStage({ stageLocation: join(dir, 'input'), runId: 'held', filePattern: '*.csv' });
    const live = await startDashboard({ stage, port: 0 });
    try {
      await waitFor(async () => (await getJson<RunSummary>(live.url, '/api/runs/held')).counts.RUNNING > 0, 30_000, 'a partition running');
      // Two clients of the run's events share one watch, which stops when both have gone.
      const first = await openEvents(live.url, '/api/runs/held/events');
      const second = await openEvents(live.url, '/api/runs/held/events');
      await first.next((event) => event.event === 'summary', 'summary');
      await second.next((event) => event.event === 'summary', 'summary');
      expect(live.watchedRuns).toBe(1);
      first.close();
      second.close();
      await waitFor(() => live.watchedRuns === 0, 30_000, 'the watch stopped');
      const host = new URL(live.url).host;
      const noHeader = await send(live.url, '/api/runs/held/cancel', { method: 'POST' });
      expect(noHeader.status).toBe(403);
      const foreign = await send(live.url, '/api/runs/held/cancel', { method: 'POST', headers: { 'X-DPF-Action': '1', Origin: 'http://evil.example' } });
      expect(foreign.status).toBe(403);
      const lookalike = await send(live.url, '/api/runs/held/cancel', { method: 'POST', headers: { 'X-DPF-Action': '1', Origin: `http://${host}.evil.example` } });
      expect(lookalike.status).toBe(403);
      expect((await getJson<RunSummary>(live.url, '/api/runs/held')).status).toBe('IN_PROGRESS');
      const cancelled = await send(live.url, '/api/runs/held/cancel', { method: 'POST', headers: { 'X-DPF-Action': '1', Origin: `http://${host}` } });
      expect(cancelled.status).toBe(200);
      expect(cancelled.json).toMatchObject({ runId: 'held', status: RunStatus.CANCELLED });
      expect(await run.wait()).toBe(RunStatus.CANCELLED);
      const again = await send(live.url, '/api/runs/held/cancel', { method: 'POST', headers: { 'X-DPF-Action': '1' } });
      expect(again.status).toBe(409);
      expect((await getJson<RunSummary>(live.url, '/api/runs/held')).actions).toEqual({ cancel: false, rerunFailed: true });
    } finally {
      await live.close();
    }
  });
});

describe('the dashboard with a queue run', () => {
  it('shows a run waiting on a password-protected queue as queued, without the password, and cancels it', async () => {
    const redis = await startRedisServer();
    try {
      const admin = new Redis(redis.url);
      await admin.config('SET', 'requirepass', PASSWORD);
      admin.disconnect();
      const queueUrl = `redis://:${PASSWORD}@127.0.0.1:${redis.port}`;
      const dir = await tempDir();
      const stage = join(dir, 'stage');
      await writeFiles(join(dir, 'input'), { 'a.csv': 'x\n1\n' });
      const module = await writeModule(dir, '');
      // No dpf worker takes it: it waits on its queue for one.
      await new DPF(module, { stage, queue: queueUrl }).runFromStage({ stageLocation: join(dir, 'input'), runId: 'queued', filePattern: '*.csv', executionOptions: { useHeadNode: false } });
      const live = await startDashboard({ stage, port: 0 });
      try {
        const summary = await getJson<RunSummary>(live.url, '/api/runs/queued');
        expect(summary).toMatchObject({ status: 'IN_PROGRESS', driver: 'queued', queue: `"dpf" at redis://127.0.0.1:${redis.port}`, actions: { cancel: true } });
        for (const path of ['/api/runs', '/api/runs/queued', '/metrics', partitionsPath('queued', ''), partitionPath('queued', 'a.csv'), '/api/runs/queued/timeline']) {
          expect((await send(live.url, path)).text, path).not.toContain(PASSWORD);
        }
        const cancelled = await send(live.url, '/api/runs/queued/cancel', { method: 'POST', headers: { 'X-DPF-Action': '1' } });
        expect(cancelled.status).toBe(200);
        expect(cancelled.json).toMatchObject({ status: RunStatus.CANCELLED });
        expect(cancelled.text).not.toContain(PASSWORD);
        expect((await DPFRun.restoreFrom('queued', stage)).status).toBe(RunStatus.CANCELLED);
      } finally {
        await live.close();
      }
    } finally {
      await redis.stop();
    }
  });
});

describe('the dashboard\'s rerun action', () => {
  it('reruns an ended run\'s failed partitions on POST, and refuses a run with nothing to rerun', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const module = await fixableModule(dir, ['k1']);
    const run = await new DPF(module, { stage }).run({ runId: 'fixable', partitionBy: 'k', source: "SELECT 'k' || (i % 3) AS k, i AS v FROM range(9) t(i)", executionOptions: { maxRetries: 0 } });
    expect(await run.wait()).toBe(RunStatus.PARTIAL_FAILURE);
    const live = await startDashboard({ stage, port: 0 });
    try {
      expect((await getJson<RunSummary>(live.url, '/api/runs/fixable')).actions).toEqual({ cancel: false, rerunFailed: true });
      expect((await send(live.url, '/api/runs/fixable/rerun-failed', { method: 'POST' })).status).toBe(403);
      await fix(dir);
      const answer = await send(live.url, '/api/runs/fixable/rerun-failed', { method: 'POST', headers: { 'X-DPF-Action': '1' } });
      expect(answer.status).toBe(200);
      expect(answer.json).toMatchObject({ runId: 'fixable', status: RunStatus.IN_PROGRESS });
      expect((answer.json as { message: string }).message).toContain('1 partition(s) again');
      await waitFor(async () => (await getJson<RunSummary>(live.url, '/api/runs/fixable')).status === RunStatus.SUCCESS, 30_000, 'the rerun to succeed');
      expect(await executionCounts(dir)).toEqual({ k0: 1, k1: 2, k2: 1 });
      expect(live.reruns).toEqual([]);
      const nothing = await send(live.url, '/api/runs/fixable/rerun-failed', { method: 'POST', headers: { 'X-DPF-Action': '1' } });
      expect(nothing.status).toBe(409);
      expect((nothing.json as { error: string }).error).toContain('nothing to rerun');
    } finally {
      await live.close();
    }
  });
});

describe('the dashboard with runs that change under it', () => {
  it('shows a run overwritten by a new run of its id as the new run, and a deleted run as gone', async () => {
    const dir = await tempDir();
    const stage = join(dir, 'stage');
    const source = "SELECT 'k' || (i % 2) AS k FROM range(4) t(i)";
    const failing = await writeModule(dir, `throw new Error('no');`, { name: 'failing.mjs' });
    await (await new DPF(failing, { stage }).run({ runId: 'again', partitionBy: 'k', source, executionOptions: { maxRetries: 0 } })).wait();
    const live = await startDashboard({ stage, port: 0 });
    try {
      const before = await getJson<RunSummary>(live.url, '/api/runs/again');
      expect(before.status).toBe(RunStatus.FAILURE);
      const passing = await writeModule(dir, '', { name: 'passing.mjs' });
      expect(await (await new DPF(passing, { stage }).run({ runId: 'again', partitionBy: 'k', source, onExistingArtifacts: 'overwrite' })).wait()).toBe(RunStatus.SUCCESS);
      await waitFor(async () => (await getJson<RunSummary>(live.url, '/api/runs/again')).status === RunStatus.SUCCESS, 30_000, 'the new run shown');
      const after = await getJson<RunSummary>(live.url, '/api/runs/again');
      expect(after.module).toMatch(/passing\.mjs$/);
      await rm(join(stage, 'again'), { recursive: true });
      await waitFor(async () => (await send(live.url, '/api/runs/again')).status === 404, 30_000, 'the deleted run gone');
      expect((await getJson<RunsResponse>(live.url, '/api/runs')).runs).toEqual([]);
    } finally {
      await live.close();
    }
  });
});

describe('dpf dashboard', () => {
  it('serves the stage until SIGINT, on the port it prints', async () => {
    const dir = await tempDir();
    await writeFinishedRun(join(dir, 'stage'), 'written', 5, new Set([2]));
    let printed = '';
    let resolveUrl: (url: string) => void = () => undefined;
    const urlPrinted = new Promise<string>((resolve) => (resolveUrl = resolve));
    const script = `process.argv = [process.argv[0], 'dpf', 'dashboard', '--stage', ${JSON.stringify(join(dir, 'stage'))}, '--port', '0']; await import(${JSON.stringify(join(ROOT, 'dist/cli/main.js'))});`;
    const child = runNodeScript(script, {
      onStdout: (text) => {
        printed += text;
        const url = /^dpf dashboard: (http:\/\/127\.0\.0\.1:\d+\/) \(stage .*\) — Ctrl-C stops it$/m.exec(printed)?.[1];
        if (url !== undefined) resolveUrl(url);
      },
    });
    const url = await urlPrinted;
    const { runs } = await getJson<RunsResponse>(url, '/api/runs');
    expect(runs).toMatchObject([{ runId: 'written', status: 'PARTIAL_FAILURE', counts: { DONE: 4, FAILED: 1 } }]);
    child.kill('SIGINT');
    const exit = await child.done;
    expect(exit.code).toBe(0);
    expect(exit.stderr).toBe('');
  });

  it('refuses to listen on a non-loopback address without a token', () => {
    const refused = dpfCommand('dashboard', '--stage', ROOT, '--host', '0.0.0.0', '--port', '0');
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('--token T (or set DPF_DASHBOARD_TOKEN)');
  });
});

describe('the dashboard\'s access rules', () => {
  it('refuses to listen beyond this machine without a token', async () => {
    await expect(startDashboard({ stage: ROOT, port: 0, host: '0.0.0.0' })).rejects.toThrow(DashboardExposedError);
    await expect(startDashboard({ stage: ROOT, port: 0, host: '192.168.1.10' })).rejects.toThrow(/--token T \(or set DPF_DASHBOARD_TOKEN\)/);
  });

  it('answers only as 127.0.0.1, localhost or [::1] on its port', async () => {
    const port = new URL(base).port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`]) expect((await send(base, '/api/runs', { headers: { Host: host } })).status, host).toBe(200);
    for (const host of ['evil.example', `evil.example:${port}`, `127.0.0.1:${Number(port) + 1}`, `127.0.0.1.evil.example:${port}`]) {
      const answer = await send(base, '/api/runs', { headers: { Host: host } });
      expect(answer.status, host).toBe(403);
      expect(answer.text).not.toContain('"runs"');
    }
  });

  it('with a token, needs it as a bearer token, a ?token= link (which leaves a cookie) or that cookie', async () => {
    const token = 'tok-123/+=';
    const guarded = await startDashboard({ stage, port: 0, token });
    try {
      expect((await send(guarded.url, '/api/runs')).status).toBe(401);
      expect((await send(guarded.url, '/metrics')).status).toBe(401);
      expect((await send(guarded.url, '/api/runs', { headers: { Authorization: 'Bearer wrong' } })).status).toBe(401);
      expect((await send(guarded.url, '/api/runs', { headers: { Authorization: `Bearer ${token}x` } })).status).toBe(401);
      expect((await send(guarded.url, '/api/runs', { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
      expect((await send(guarded.url, `/api/runs?token=wrong`)).status).toBe(401);
      const link = await send(guarded.url, `/api/runs/files?token=${encodeURIComponent(token)}&x=1`);
      expect(link.status).toBe(303);
      expect(link.headers.location).toBe('/api/runs/files?x=1');
      const cookie = String(link.headers['set-cookie']);
      expect(cookie).toMatch(/HttpOnly/);
      expect(cookie).toMatch(/SameSite=Strict/);
      const withCookie = await send(guarded.url, '/api/runs/files?x=1', { headers: { Cookie: cookie.split(';')[0]! } });
      expect(withCookie.status).toBe(200);
      expect((withCookie.json as RunSummary).runId).toBe('files');
      // The cookie is named for the port and holds no token; a cookie with the token itself is no key.
      const port = new URL(guarded.url).port;
      expect(cookie.split(';')[0]).toMatch(new RegExp(`^dpf_dashboard_${port}=`));
      expect(cookie).not.toContain(token);
      expect(cookie).not.toContain(encodeURIComponent(token));
      expect((await send(guarded.url, '/api/runs', { headers: { Cookie: `dpf_dashboard_${port}=wrong` } })).status).toBe(401);
      expect((await send(guarded.url, '/api/runs', { headers: { Cookie: `dpf_dashboard_${port}=${encodeURIComponent(token)}` } })).status).toBe(401);
      // A link whose path starts with // redirects to a path of this server, not to another site.
      const crafted = await send(guarded.url, `//evil.example/x?token=${encodeURIComponent(token)}`);
      expect(crafted.status).toBe(303);
      expect(crafted.headers.location).toBe('/evil.example/x');
    } finally {
      await guarded.close();
    }
  });
});
