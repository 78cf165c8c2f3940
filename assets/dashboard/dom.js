// Small helpers the pages share: building elements (data always goes in as text, never as HTML),
// talking to the JSON API, and formatting numbers, times and durations.

/**
 * Creates an element. `props` sets properties (className, href, title, …; `dataset` and
 * `style` objects are merged into theirs); children are nodes or strings, and a string always
 * becomes a text node.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === 'dataset' || key === 'style') Object.assign(el[key], value);
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el[key] = value;
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** The partition statuses, in the order the server lists them. */
export const PARTITION_STATUSES = ['PENDING', 'RUNNING', 'DONE', 'FAILED', 'CANCELLED', 'INTERNAL_ERROR'];

/** A status as a colored badge. */
export function badge(status) {
  return h('span', { className: `badge s-${status}` }, status);
}

/** The counts by status as a thin stacked bar (each status its color, its width its share). */
export function statusBar(counts, total) {
  const bar = h('div', { className: 'status-bar', title: countsText(counts) });
  // Finished partitions from the left, what is still to do on the right.
  for (const status of ['DONE', 'FAILED', 'INTERNAL_ERROR', 'CANCELLED', 'RUNNING', 'PENDING']) {
    const count = counts[status] ?? 0;
    if (count === 0) continue;
    bar.append(h('span', { className: `s-${status}`, style: { flexGrow: String(count) } }));
  }
  if (total === 0) bar.classList.add('empty');
  return bar;
}

/** `DONE 12 · FAILED 3`: the statuses that have partitions. */
export function countsText(counts) {
  return PARTITION_STATUSES.filter((status) => (counts[status] ?? 0) > 0)
    .map((status) => `${status} ${formatCount(counts[status])}`)
    .join(' · ');
}

/** The counts by status as text, each `STATUS n` its own element (`data-status`), zero counts left out. */
export function countsList(counts) {
  return h(
    'span',
    { className: 'counts' },
    PARTITION_STATUSES.filter((status) => (counts[status] ?? 0) > 0).map((status) =>
      h('span', { className: `count t-${status}`, dataset: { status } }, `${status} `, h('b', {}, formatCount(counts[status]))),
    ),
  );
}

/** An error the API answered with (`{ error }`), or a failed request. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** `/api/runs/${run}/…` with every id URL-encoded. */
export function apiPath(...segments) {
  return `/api/${segments.map((segment) => encodeURIComponent(segment)).join('/')}`;
}

/** GETs (or POSTs, with `init`) a JSON route; throws an ApiError with the server's message. */
export async function api(path, init = {}) {
  const response = await fetch(path, { ...init, headers: { Accept: 'application/json', ...init.headers } });
  const body = await response.json().catch(() => undefined);
  if (!response.ok) throw new ApiError(response.status, body?.error ?? `${response.status} ${response.statusText}`);
  return body;
}

/** POSTs an action (cancel, rerun-failed); the header tells the server a page asked on purpose. */
export function action(path) {
  return api(path, { method: 'POST', headers: { 'X-DPF-Action': '1' } });
}

/** The page's hash for a run, or one of its partitions. */
export function runHash(runId) {
  return `#/runs/${encodeURIComponent(runId)}`;
}

export function partitionHash(runId, partitionId) {
  return `${runHash(runId)}/partitions/${encodeURIComponent(partitionId)}`;
}

const counts = new Intl.NumberFormat('en-US');

export function formatCount(value) {
  return value === undefined || value === null ? '' : counts.format(value);
}

/** `2024-01-31 12:34:56` in the browser's time zone. */
export function formatTime(epochMs) {
  if (epochMs === undefined || epochMs === null) return '';
  const date = new Date(epochMs);
  const pad = (value) => String(value).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** `850 ms`, `12.3 s`, `4 m 05 s`, `2 h 03 m`. */
export function formatDuration(ms) {
  if (ms === undefined || ms === null || !Number.isFinite(ms)) return '';
  if (ms < 10) return `${Number(ms.toFixed(1))} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(ms < 10_000 ? 2 : 1))} s`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 3600) return `${Math.floor(seconds / 60)} m ${String(seconds % 60).padStart(2, '0')} s`;
  return `${Math.floor(seconds / 3600)} h ${String(Math.floor(seconds / 60) % 60).padStart(2, '0')} m`;
}

/** `1.2 MB` */
export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** Runs `fn` at most once per `ms`: a burst of calls becomes one now and one at the end. */
export function throttle(fn, ms) {
  let last = 0;
  let timer;
  const throttled = () => {
    const wait = last + ms - Date.now();
    if (wait <= 0) {
      last = Date.now();
      fn();
    } else if (timer === undefined) {
      timer = setTimeout(() => {
        timer = undefined;
        last = Date.now();
        fn();
      }, wait);
    }
  };
  throttled.cancel = () => clearTimeout(timer);
  return throttled;
}

/** A status color, as the style sheet defines it (`--s-DONE`), for drawing on canvases. */
export function statusColor(status) {
  return getComputedStyle(document.documentElement).getPropertyValue(`--s-${status}`).trim() || '#888';
}

/** A `<dl>` of label → value pairs; empty values are left out. */
export function facts(pairs) {
  const list = h('dl', { className: 'facts' });
  for (const [label, value] of pairs) {
    if (value === undefined || value === null || value === '') continue;
    list.append(h('dt', {}, label), h('dd', {}, value));
  }
  return list;
}

/** A message line for errors and action results. */
export function notice(text, kind = 'info') {
  return h('p', { className: `notice ${kind}` }, text);
}
