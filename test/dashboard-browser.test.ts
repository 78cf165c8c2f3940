import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DPF, DPFRun, RunStatus } from 'dpf';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunsResponse, RunSummary, Timeline } from '../src/dashboard/api-types.js';
import { type Dashboard, startDashboard } from '../dist/dashboard/server.js';
import { exists, ROOT, runNodeScript, waitFor, writeModule } from './helpers.js';
import { until } from './support/barriers.js';
import { executionCounts, fix, fixableModule } from './support/fixable-run.js';
import { writeFinishedRun } from './support/written-run.js';
import { launchChromium } from './support/chromium.js';

/**
 * The dashboard's page in a real Chromium, over real runs on a temporary stage: a finished run
 * (DONE and FAILED partitions, retries, JSON / Parquet / PNG artifacts, a partition whose id and
 * log are HTML that must stay text), a run of 100,000 partitions to page through, a run whose failed
 * partitions the page reruns once their cause is fixed, and a live run whose partitions wait for
 * the test to release them, one by one, until the page cancels it.
 */

/** A 1×1 PNG. */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');
const XSS_ID = '<img src=x onerror=alert(1)>';
const XSS_LOG = ['<script>window.__pwned=1</script>', '<img src=x onerror="window.__pwned=1">'];
const FINISHED_IDS = ['alpha', 'beta', 'gamma', 'delta', 'flaky', 'broken1', 'broken2', XSS_ID];
const FAILED_IDS = ['broken1', 'broken2'];
const LIVE_IDS = ['live-0', 'live-1', 'live-2', 'live-3'];
/** The paged run: big enough that the page must not hold its rows (the server pages them). */
const PAGED = 100_000;
const PAGED_FAILED = [3, 120, 99_998];
const FIXABLE_IDS = ['f1', 'f2', 'f3', 'f4'];
const FIXABLE_FAILING = ['f2', 'f4'];
const SCREENSHOTS = join(ROOT, 'test-results', 'screenshots');

/** `expect.poll` with a deadline for a loaded machine: what the page shows, once it shows it. */
function eventually<T>(value: () => Promise<T>) {
  return expect.poll(value, { timeout: 30_000 });
}

let dir: string;
let stage: string;
let browser: Browser;
let dashboard: Dashboard;

beforeAll(async () => {
  await mkdir(join(ROOT, 'tmp'), { recursive: true });
  dir = await mkdtemp(join(ROOT, 'tmp', 'dashboard-browser-'));
  stage = join(dir, 'stage');
  const module = await writeModule(
    dir,
    `
    const id = context.partitionId;
    console.log('hello from', id, 'attempt', context.attempt);
    if (id === ${JSON.stringify(XSS_ID)}) { for (const line of ${JSON.stringify(XSS_LOG)}) console.log(line); }
    if (id.startsWith('broken')) throw new RangeError(id + ' cannot be computed');
    if (id === 'flaky' && context.attempt === 1) throw new Error('flaky the first time');
    const rows = (await data.toRecords()).sort((a, b) => a.v - b.v);
    await context.uploadToStage({ id, rows: rows.length }, 'result.json');
    await context.uploadToStage(rows.map((row, i) => ({ id, i, value: row.v })), 'table.parquet');
    await context.uploadToStage(PNG, 'pixel.png');
    await context.uploadToStage('notes on ' + id + ': <b>not bold</b>', 'notes.txt');
    `,
    { prelude: `const PNG = Buffer.from(${JSON.stringify(PNG.toString('base64'))}, 'base64');` },
  );
  const source = FINISHED_IDS.flatMap((k, n) => Array.from({ length: n + 1 }, (_, i) => ({ k, v: i * 10 })));
  const finished = await new DPF(module, { stage }).run({ partitionBy: 'k', source, runId: 'finished', executionOptions: { maxRetries: 1, availableCpus: 2 } });
  expect(await finished.wait()).toBe(RunStatus.PARTIAL_FAILURE);
  await writeFinishedRun(stage, 'paged', PAGED, new Set(PAGED_FAILED));
  await mkdir(join(dir, 'fixable'));
  const fixable = await new DPF(await fixableModule(join(dir, 'fixable'), FIXABLE_FAILING), { stage }).run({ partitionBy: 'k', source: FIXABLE_IDS.map((k) => ({ k })), runId: 'fixable' });
  expect(await fixable.wait()).toBe(RunStatus.PARTIAL_FAILURE);
  browser = await launchChromium();
  dashboard = await startDashboard({ stage, port: 0 });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await dashboard?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Everything a page did that it should not have: errors, CSP refusals, dialogs. */
interface PageWatch {
  page: Page;
  problems: string[];
  dialogs: string[];
}

/** A new page that records its errors and dialogs (every confirm accepted, anything else noted). */
async function openPage(hash: string): Promise<PageWatch> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const watch: PageWatch = { page, problems: [], dialogs: [] };
  page.on('pageerror', (error) => watch.problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' || /Content Security Policy/i.test(message.text())) watch.problems.push(`console: ${message.text()}`);
  });
  page.on('dialog', (dialog) => {
    watch.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    void (dialog.type() === 'confirm' ? dialog.accept() : dialog.dismiss());
  });
  await page.goto(`${dashboard.url.replace(/\/$/, '')}/${hash}`);
  return watch;
}

/** The page ran no injected script and logged no error; then it is closed. */
async function expectClean(watch: PageWatch, dialogs: string[] = []): Promise<void> {
  expect(await watch.page.evaluate('window.__pwned')).toBeUndefined();
  expect(watch.problems).toEqual([]);
  expect(watch.dialogs.map((dialog) => dialog.split(':')[0])).toEqual(dialogs);
  await watch.page.close();
}

async function apiJson<T>(path: string): Promise<T> {
  const response = await fetch(new URL(path, dashboard.url));
  expect(response.status, path).toBe(200);
  return (await response.json()) as T;
}

/** The counts a page shows in `selector` (its `.count[data-status]` elements), as status → number. */
async function shownCounts(page: Page, selector: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const element of await page.locator(`${selector} .count`).all()) {
    counts[(await element.getAttribute('data-status'))!] = Number((await element.locator('b').textContent())!.replace(/,/g, ''));
  }
  return counts;
}

function nonZero(counts: Record<string, number> | Map<string, number>): Record<string, number> {
  return Object.fromEntries([...(counts instanceof Map ? counts : Object.entries(counts))].filter(([, count]) => count > 0));
}

/** Waits until the partitions table is sorted by `column` in `order` and its rows for that have arrived. */
async function settled(page: Page, column: string, order: 'ascending' | 'descending'): Promise<void> {
  await page.locator(`#partitions[aria-busy="false"] th[aria-sort="${order}"] button[data-sort="${column}"]`).waitFor({ timeout: 30_000 });
}

async function shownIds(page: Page): Promise<string[]> {
  return page.locator('#partitions tbody tr[data-partition] td.id').allTextContents();
}

/** How many pixels of a canvas under `selector` have the color of `status` (as the style sheet defines it). */
async function pixelsOf(page: Page, selector: string, status: string): Promise<number> {
  return (await colorPixels(page, selector, status)).count;
}

/**
 * The pixels of a canvas under `selector` that have the color of `status`: how many, and where the
 * first one is in the page (CSS pixels).
 */
function colorPixels(page: Page, selector: string, status: string): Promise<{ count: number; x: number; y: number }> {
  return page.evaluate(`(() => {
    const canvas = document.querySelector(${JSON.stringify(`${selector} canvas`)});
    if (!canvas || canvas.width === 0) return { count: 0, x: 0, y: 0 };
    const probe = document.createElement('canvas').getContext('2d');
    probe.fillStyle = getComputedStyle(document.documentElement).getPropertyValue('--s-${status}').trim();
    probe.fillRect(0, 0, 1, 1);
    const [r, g, b] = probe.getImageData(0, 0, 1, 1).data;
    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    const matches = (p) => Math.abs(pixels[p * 4] - r) + Math.abs(pixels[p * 4 + 1] - g) + Math.abs(pixels[p * 4 + 2] - b) < 12;
    let count = 0;
    let first = -1;
    for (let p = 0; p < pixels.length / 4; p++) {
      if (!matches(p)) continue;
      count++;
      if (first < 0) first = p;
    }
    // The middle of the first patch of the color: its run along the first row, then down that column.
    const row = Math.floor(first / canvas.width);
    let width = 0;
    while ((first % canvas.width) + width < canvas.width && matches(first + width)) width++;
    const column = (first % canvas.width) + Math.floor((width - 1) / 2);
    let height = 0;
    while (row + height < canvas.height && matches((row + height) * canvas.width + column)) height++;
    const box = canvas.getBoundingClientRect();
    const scale = canvas.width / box.width;
    return { count, x: box.left + (column + 0.5) / scale, y: box.top + (row + Math.floor(height / 2) + 0.5) / scale };
  })()`);
}

describe('the dashboard in a browser', () => {
  it('lists every run with the counts the API gives', async () => {
    const watch = await openPage('#/');
    const { page } = watch;
    await page.locator('#runs tbody tr[data-run="finished"]').waitFor();
    const api = await apiJson<RunsResponse>('/api/runs');
    expect(api.runs.map((run) => run.runId)).toContain('finished');
    for (const run of api.runs as RunSummary[]) {
      const row = `#runs tbody tr[data-run="${run.runId}"]`;
      expect(await page.locator(`${row} .badge`).textContent()).toBe(run.status);
      expect(await shownCounts(page, row)).toEqual(nonZero(run.counts));
      expect(await page.locator(`${row} .total`).textContent()).toBe(run.numPartitions.toLocaleString('en-US'));
      expect(await page.locator(`${row} .driver`).textContent()).toBe(run.driver);
    }
    expect(await page.locator('#stage').textContent()).toBe(api.stage);
    await page.screenshot({ path: join(SCREENSHOTS, 'runs.png'), fullPage: true });
    await expectClean(watch);
  });

  it("shows a run's counts, and filters, searches and sorts its partitions on the server", async () => {
    const run = await DPFRun.restoreFrom('finished', stage);
    const watch = await openPage('#/runs/finished');
    const { page } = watch;
    await eventually(() => shownIds(page)).toHaveLength(FINISHED_IDS.length);
    expect(await page.locator('#run-status').textContent()).toBe(RunStatus.PARTIAL_FAILURE);
    expect(await shownCounts(page, '#run-counts')).toEqual(nonZero(run.statusCounts()));
    expect((await shownIds(page)).sort()).toEqual([...FINISHED_IDS].sort());
    expect(await page.locator('#partitions-showing').textContent()).toBe(`showing 1–${FINISHED_IDS.length} of ${FINISHED_IDS.length}`);
    // The injected id is a link whose text is the id.
    expect(await page.locator('#partitions td.id a').getByText(XSS_ID, { exact: true }).count()).toBe(1);
    await page.screenshot({ path: join(SCREENSHOTS, 'run.png'), fullPage: true });

    // FAILED only: exactly the failed partitions, with their errors.
    await page.locator('#status-filter input[value="FAILED"]').check();
    const failed = (await run.getProgress()).FAILED.map((details) => details.partitionId).sort();
    expect(failed).toEqual(FAILED_IDS);
    await eventually(async () => (await shownIds(page)).sort()).toEqual(failed);
    expect(await page.locator('#partitions td.error').allTextContents()).toEqual(failed.map((id) => `RangeError: ${id} cannot be computed`));
    expect(await page.locator('#partitions-showing').textContent()).toBe(`showing 1–2 of 2 (${FINISHED_IDS.length} in the run)`);
    await page.locator('#status-filter input[value="FAILED"]').uncheck();
    await eventually(() => shownIds(page)).toHaveLength(FINISHED_IDS.length);

    // Search.
    await page.locator('#partition-search').fill('gam');
    await eventually(() => shownIds(page)).toEqual(['gamma']);
    await page.locator('#partition-search').fill('onerror');
    await eventually(() => shownIds(page)).toEqual([XSS_ID]);
    await page.locator('#partition-search').fill('');
    await eventually(() => shownIds(page)).toHaveLength(FINISHED_IDS.length);

    // Sorting by duration, both ways: the rows come in the order of their durations.
    const durations = async () => (await page.locator('#partitions tbody td[data-ms]').evaluateAll((cells) => cells.map((cell) => (cell as { dataset: { ms: string } }).dataset.ms))).map(Number);
    await page.locator('button[data-sort="duration"]').click();
    await settled(page, 'duration', 'ascending');
    expect(isSorted(await durations())).toBe(true);
    await page.locator('button[data-sort="duration"]').click();
    await settled(page, 'duration', 'descending');
    expect(isSorted((await durations()).reverse())).toBe(true);
    await expectClean(watch);
  });

  it('pages through a run of 100,000 partitions as the server pages them: filter, search and sort included', async () => {
    const watch = await openPage('#/runs/paged');
    const { page } = watch;
    const showing = page.locator('#partitions-showing');
    await eventually(() => showing.textContent()).toBe('showing 1–100 of 100,000');
    const first = await apiJson<{ rows: Array<{ id: string }> }>('/api/runs/paged/partitions?sort=id&order=asc&offset=0&limit=100');
    expect(await shownIds(page)).toEqual(first.rows.map((row) => row.id));
    expect(await page.locator('#page-previous').isDisabled()).toBe(true);
    await page.locator('#page-next').click();
    await eventually(() => showing.textContent()).toBe('showing 101–200 of 100,000');
    expect(await shownIds(page)).toHaveLength(100);
    await page.locator('#page-previous').click();
    await eventually(() => showing.textContent()).toBe('showing 1–100 of 100,000');
    // Sorted by id, descending: the page shows the server's first page, in its order.
    await page.locator('button[data-sort="id"]').click();
    await settled(page, 'id', 'descending');
    expect(await showing.textContent()).toBe('showing 1–100 of 100,000');
    const api = await apiJson<{ rows: Array<{ id: string }> }>('/api/runs/paged/partitions?sort=id&order=desc&offset=0&limit=100');
    expect(await shownIds(page)).toEqual(api.rows.map((row) => row.id));
    // A search narrows the 100,000 to the ids holding it; the last page of a result is short.
    await page.locator('#partition-search').fill('k9999');
    await eventually(async () => (await shownIds(page)).sort()).toEqual(['k9999', ...Array.from({ length: 10 }, (_, i) => `k9999${i}`)].sort());
    expect(await showing.textContent()).toBe('showing 1–11 of 11 (100,000 in the run)');
    expect(await page.locator('#page-next').isDisabled()).toBe(true);
    await page.locator('#partition-search').fill('');
    await page.locator('#status-filter input[value="FAILED"]').check();
    await eventually(async () => (await shownIds(page)).sort()).toEqual(PAGED_FAILED.map((i) => `k${i}`).sort());
    expect(await showing.textContent()).toBe('showing 1–3 of 3 (100,000 in the run)');
    await expectClean(watch);
  });

  it("reruns a run's failed partitions from the page once their cause is fixed", async () => {
    const watch = await openPage('#/runs/fixable');
    const { page } = watch;
    await eventually(() => page.locator('#run-status').textContent()).toBe(RunStatus.PARTIAL_FAILURE);
    expect(await page.locator('#action-cancel').isEnabled()).toBe(false);
    expect(await page.locator('#action-rerun-failed').isEnabled()).toBe(true);
    const before = await executionCounts(join(dir, 'fixable'));
    await fix(join(dir, 'fixable'));
    await page.locator('#action-rerun-failed').click();
    // The server's answer, shown as a success.
    await eventually(() => page.locator('#action-message .notice.ok').textContent()).toContain('fixable');
    await eventually(() => page.locator('#run-status').textContent()).toBe(RunStatus.SUCCESS);
    await eventually(async () => shownCounts(page, '#run-counts')).toEqual({ DONE: FIXABLE_IDS.length });
    expect((await DPFRun.restoreFrom('fixable', stage)).status).toBe(RunStatus.SUCCESS);
    // The DONE partitions were kept; only the failed ones ran again.
    expect(await executionCounts(join(dir, 'fixable'))).toEqual({ ...before, f2: before.f2! + 1, f4: before.f4! + 1 });
    expect(await page.locator('#action-rerun-failed').isEnabled()).toBe(false);
    await expectClean(watch);
  });

  it("works behind a token: the link with ?token= leaves the cookie the page's requests carry", async () => {
    const guarded = await startDashboard({ stage, port: 0, token: 'page-token' });
    try {
      expect((await fetch(new URL('/api/runs', guarded.url))).status).toBe(401);
      const page = await browser.newPage();
      const problems: string[] = [];
      page.on('pageerror', (error) => problems.push(error.message));
      page.on('console', (message) => void (message.type() === 'error' && problems.push(message.text())));
      await page.goto(`${guarded.url}?token=page-token#/runs/finished`);
      await eventually(() => page.locator('#run-status').textContent()).toBe(RunStatus.PARTIAL_FAILURE);
      await eventually(() => shownIds(page)).toHaveLength(FINISHED_IDS.length);
      expect(page.url()).not.toContain('page-token');
      await page.goto(`${guarded.url}#/runs/finished/partitions/gamma`);
      await eventually(() => page.locator('#partition-log').textContent()).toContain('hello from gamma');
      expect(problems).toEqual([]);
      await page.close();
    } finally {
      await guarded.close();
    }
  });

  it('draws the timeline, one lane per worker, and the histogram of durations', async () => {
    const timeline = await apiJson<Timeline>('/api/runs/finished/timeline');
    const watch = await openPage('#/runs/finished');
    const { page } = watch;
    await page.locator('#timeline-caption[data-lanes]').waitFor();
    expect(Number(await page.locator('#timeline-caption').getAttribute('data-lanes'))).toBe(timeline.lanes.length);
    expect(Number(await page.locator('#timeline-caption').getAttribute('data-attempts'))).toBe(timeline.start.length);
    // Every partition's attempts: 8 partitions, flaky and the two broken ones twice.
    expect(timeline.start.length).toBe(FINISHED_IDS.length + 3);
    await eventually(() => pixelsOf(page, '#timeline-chart', 'DONE')).toBeGreaterThan(0);
    expect(await pixelsOf(page, '#timeline-chart', 'FAILED')).toBeGreaterThan(0);
    expect(await pixelsOf(page, '#timeline-chart', 'RETRIED')).toBeGreaterThan(0);
    // Hovering a bar names its partition and attempt.
    const bar = await colorPixels(page, '#timeline-chart', 'FAILED');
    await page.mouse.move(bar.x, bar.y);
    await eventually(() => page.locator('#timeline-tooltip').isVisible()).toBe(true);
    expect(await page.locator('#timeline-tooltip').textContent()).toMatch(/^broken[12]attempt 2 · FAILED · /);
    expect(await page.locator('.legend .key').allTextContents()).toEqual(expect.arrayContaining(['DONE', 'FAILED', 'RETRIED']));
    await eventually(() => pixelsOf(page, '#histogram-chart', 'DONE')).toBeGreaterThan(0);
    // Only DONE and FAILED partitions are measured: all of them, here.
    expect(await page.locator('#histogram-stats [data-stat="n"] b').textContent()).toBe(String(FINISHED_IDS.length));
    await expectClean(watch);
  });

  it("shows a partition's log and previews its artifacts", async () => {
    const watch = await openPage('#/runs/finished/partitions/gamma');
    const { page } = watch;
    await eventually(() => page.locator('#partition-log').textContent()).toContain('hello from gamma attempt 1');
    expect(await page.locator('#partition-status').textContent()).toBe('DONE');
    expect(await page.locator('#artifacts .artifact').evaluateAll((items) => items.map((item) => (item as { dataset: { artifact: string } }).dataset.artifact).sort())).toEqual([
      'notes.txt',
      'pixel.png',
      'result.json',
      'table.parquet',
    ]);
    await eventually(() => page.locator('[data-artifact="notes.txt"] pre').textContent()).toBe('notes on gamma: <b>not bold</b>');
    expect(await page.locator('[data-artifact="notes.txt"] b').count()).toBe(0);
    const json = page.locator('[data-artifact="result.json"] pre.json');
    await eventually(() => json.textContent()).toContain('"id": "gamma"');
    expect(JSON.parse((await json.textContent())!)).toEqual({ id: 'gamma', rows: 3 });
    const table = page.locator('[data-artifact="table.parquet"] table');
    await table.waitFor();
    expect(await table.locator('th').allTextContents()).toEqual(['id', 'i', 'value']);
    expect(await table.locator('tbody tr').count()).toBe(3);
    expect(await table.locator('tbody tr').nth(2).locator('td').allTextContents()).toEqual(['gamma', '2', '20']);
    const image = page.locator('[data-artifact="pixel.png"] img');
    await eventually(() => image.evaluate((img) => (img as { complete: boolean; naturalWidth: number }).naturalWidth)).toBeGreaterThan(0);
    const download = await fetch(new URL(`/api/runs/finished/partitions/gamma/artifacts/pixel.png`, dashboard.url));
    expect(Buffer.from(await download.arrayBuffer())).toEqual(PNG);
    await page.screenshot({ path: join(SCREENSHOTS, 'partition.png'), fullPage: true });
    await expectClean(watch);

    const failed = await openPage('#/runs/finished/partitions/broken1');
    await eventually(() => failed.page.locator('#partition-error .error-line').textContent()).toBe('RangeError: broken1 cannot be computed');
    expect(await failed.page.locator('#partition-error pre.stack').textContent()).toContain('broken1 cannot be computed');
    expect(await failed.page.locator('#partition-status').textContent()).toBe('FAILED');
    expect(await failed.page.locator('#partition-log').textContent()).toContain('hello from broken1 attempt 2');
    await expectClean(failed);
  });

  it('shows ids and logs that are HTML as text, and runs none of it', async () => {
    const watch = await openPage(`#/runs/finished/partitions/${encodeURIComponent(XSS_ID)}`);
    const { page } = watch;
    const log = page.locator('#partition-log');
    await eventually(() => log.textContent()).toContain(XSS_LOG[1]);
    expect(await log.textContent()).toContain(XSS_LOG[0]);
    expect(await page.locator('#partition-header .id').textContent()).toBe(XSS_ID);
    expect(await page.locator('.crumbs').textContent()).toContain(XSS_ID);
    // Nothing of it became elements: the page has no <img> but the artifact preview's, no <script> but its own.
    await page.locator('[data-artifact="pixel.png"] img').waitFor();
    expect(await page.locator('main img').count()).toBe(1);
    expect(await page.locator('main script').count()).toBe(0);
    await expectClean(watch);
  });

  it('follows a live run as its partitions finish, and cancels it', async () => {
    const release = join(dir, 'release');
    await mkdir(release, { recursive: true });
    // Each partition waits until the test releases it (or the run is cancelled).
    const module = await writeModule(
      dir,
      `
      console.log('waiting', context.partitionId);
      ${until(`fs.existsSync(${JSON.stringify(release)} + '/' + context.partitionId) || context.signal.aborted`, 'the test releases the partition')}
      if (context.signal.aborted) throw context.signal.reason;
      console.log('released', context.partitionId);
      `,
      { name: 'live.mjs', prelude: `import fs from 'node:fs';` },
    );
    // Its driver is another process, as a run a dashboard watches usually is.
    const driver = runNodeScript(`
      import { DPF } from 'dpf';
      const run = await new DPF(${JSON.stringify(module)}, { stage: ${JSON.stringify(stage)} })
        .run({ partitionBy: 'k', source: ${JSON.stringify(LIVE_IDS.map((k) => ({ k })))}, runId: 'live', executionOptions: { availableCpus: 1 } });
      console.log('STATUS ' + await run.wait());
    `);
    await waitFor(() => exists(join(stage, 'live/_dpf/run.json')), 30_000, 'the live run to start');
    const live = await DPFRun.restoreFrom('live', stage);
    const list = await openPage('#/');
    const watch = await openPage('#/runs/live');
    const { page } = watch;
    const done = async () => (await shownCounts(page, '#run-counts')).DONE ?? 0;
    await eventually(() => page.locator('#run-status').textContent()).toBe(RunStatus.IN_PROGRESS);
    await eventually(async () => (await shownCounts(page, '#run-counts')).RUNNING).toBe(1);
    expect(await page.locator('#action-cancel').isEnabled()).toBe(true);
    expect(await page.locator('#action-rerun-failed').isEnabled()).toBe(false);

    // The page moves on as each partition is released (the event stream pushes the summary).
    const released = new Set<string>();
    /** The partition running now, once it is one not released yet. */
    const nextRunning = async (): Promise<string> => {
      let running: string | undefined;
      await waitFor(async () => {
        running = (await live.getProgress()).RUNNING.find((details) => !released.has(details.partitionId))?.partitionId;
        return running !== undefined;
      }, 30_000, 'the next partition running');
      released.add(running!);
      return running!;
    };
    while (released.size < 2) {
      await writeFile(join(release, await nextRunning()), '');
      await eventually(done).toBe(released.size);
      await eventually(async () => (await page.locator('#partitions tbody tr[data-partition] .badge').allTextContents()).filter((status) => status === 'DONE').length).toBe(released.size);
    }
    await page.screenshot({ path: join(SCREENSHOTS, 'live-run.png'), fullPage: true });
    // The runs list, open all along, caught up on its own.
    await eventually(() => shownCounts(list.page, '#runs tr[data-run="live"]')).toEqual({ PENDING: 1, RUNNING: 1, DONE: 2 });
    await expectClean(list);

    // A running partition's page follows its log as it is written, and shows the partition DONE once it is.
    const running = await nextRunning();
    // Two DONE, the third waiting at its barrier: the page counts what the stage says.
    const counts = nonZero((await DPFRun.restoreFrom('live', stage)).statusCounts());
    expect(counts).toEqual({ PENDING: 1, RUNNING: 1, DONE: 2 });
    await eventually(() => shownCounts(page, '#run-counts')).toEqual(counts);
    expect(await page.locator('#run-driver').getAttribute('data-driver')).toBe('alive');
    const partitionPage = await openPage(`#/runs/live/partitions/${encodeURIComponent(running)}`);
    await eventually(() => partitionPage.page.locator('#partition-status').textContent()).toBe('RUNNING');
    expect(await partitionPage.page.locator('#log-note').textContent()).toMatch(/^Following/);
    await eventually(() => partitionPage.page.locator('#partition-log').textContent()).toContain(`waiting ${running}`);
    expect(await partitionPage.page.locator('#partition-log').textContent()).not.toContain(`released ${running}`);
    await writeFile(join(release, running), '');
    await eventually(() => partitionPage.page.locator('#partition-status').textContent()).toBe('DONE');
    await eventually(() => partitionPage.page.locator('#partition-log').textContent()).toContain(`released ${running}`);
    expect((await partitionPage.page.locator('#partition-log').textContent())!.split(`waiting ${running}`)).toHaveLength(2);
    await expectClean(partitionPage);
    await eventually(done).toBe(3);

    // Cancel: the page asks first, then the run ends CANCELLED, on the page and on the stage.
    await page.locator('#action-cancel').click();
    await eventually(() => page.locator('#run-status').textContent()).toBe(RunStatus.CANCELLED);
    expect(await page.locator('#action-message .notice.ok').textContent()).toMatch(/cancel/i);
    const ended = await driver.done;
    expect(ended.stdout, ended.stderr).toContain('STATUS CANCELLED');
    expect((await DPFRun.restoreFrom('live', stage)).status).toBe(RunStatus.CANCELLED);
    expect(await page.locator('#action-cancel').isEnabled()).toBe(false);
    expect(await shownCounts(page, '#run-counts')).toEqual({ DONE: 3, CANCELLED: 1 });
    await expectClean(watch, ['confirm']);
  });
});

function isSorted(values: number[]): boolean {
  return values.every((value, i) => i === 0 || values[i - 1]! <= value);
}
