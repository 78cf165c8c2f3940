// `#/runs/ID/partitions/PID`: one partition — its status and times, its last error, its log
// (followed live while it runs) and its artifacts, each downloadable and previewed.
import { api, apiPath, badge, facts, fill, formatBytes, formatCount, formatDuration, formatTime, h, notice, runHash } from './dom.js';

const ACTIVE = new Set(['PENDING', 'RUNNING']);

export function showPartition(main, runId, partitionId) {
  const path = (...rest) => apiPath('runs', runId, 'partitions', partitionId, ...rest);
  const header = h('section', { id: 'partition-header' });
  const errorSection = h('section', { id: 'partition-error' });
  const log = h('pre', { className: 'log', id: 'partition-log' });
  const logNote = h('p', { className: 'muted', id: 'log-note' });
  const artifacts = h('section', { id: 'artifacts' });
  const errors = h('div');
  fill(
    main,
    h('nav', { className: 'crumbs' }, h('a', { href: '#/' }, 'Runs'), ' › ', h('a', { href: runHash(runId) }, runId), ' › ', partitionId),
    errors,
    header,
    errorSection,
    h('h2', {}, 'Log'),
    logNote,
    log,
    h('h2', {}, 'Artifacts'),
    artifacts,
  );

  let stopped = false;
  let following;
  let retry;

  async function load() {
    let view;
    try {
      view = await api(path());
    } catch (error) {
      if (!stopped) fill(errors, notice(error.status === 404 ? `No partition ${partitionId} in the run ${runId}.` : `Could not load the partition: ${error.message}`, 'error'));
      return;
    }
    if (stopped) return;
    fill(errors);
    showView(view);
    if (ACTIVE.has(view.status)) followLog();
    else {
      stopFollowing();
      await loadLog();
    }
  }

  function showView(view) {
    fill(
      header,
      h('h1', {}, h('span', { className: 'id' }, view.id), ' ', h('span', { id: 'partition-status' }, badge(view.status))),
      facts([
        ['Attempts', formatCount(view.attempts)],
        ['Started', formatTime(view.startedAt)],
        ['Finished', formatTime(view.finishedAt)],
        ['Duration', formatDuration(view.durationMs)],
        ['Rows', formatCount(view.rows)],
      ]),
    );
    fill(
      errorSection,
      view.error
        ? [h('h2', {}, 'Error'), h('p', { className: 'error-line' }, h('b', {}, view.error.name), ': ', view.error.message), view.error.stack ? h('pre', { className: 'stack' }, view.error.stack) : null]
        : null,
    );
    showArtifacts(view);
  }

  async function loadLog() {
    try {
      const response = await fetch(path('log'));
      const text = await response.text();
      if (stopped) return;
      if (!response.ok) throw new Error(text);
      log.textContent = text;
      logNote.textContent = text === '' ? 'The partition logged nothing.' : '';
    } catch (error) {
      if (!stopped) logNote.textContent = `Could not load the log: ${error.message}`;
    }
  }

  /** Appends the log as it is written, until the partition's attempt ends; then shows the result. */
  function followLog() {
    if (following) return;
    log.textContent = '';
    logNote.textContent = 'Following the log while the partition runs…';
    following = new EventSource(`${path('log')}?follow=1`);
    following.addEventListener('log', (event) => {
      log.append(document.createTextNode(JSON.parse(event.data)));
      log.scrollTop = log.scrollHeight;
    });
    following.addEventListener('end', () => {
      stopFollowing();
      void load();
    });
    // The stream broke without its `end` (the server went away, or restarts): EventSource would
    // reconnect and replay the whole log into the page, so stop it, and look again in a moment.
    following.addEventListener('error', () => {
      stopFollowing();
      retry = setTimeout(() => void load(), 2000);
    });
  }

  function stopFollowing() {
    following?.close();
    following = undefined;
  }

  function showArtifacts(view) {
    if (view.artifacts.length === 0) {
      fill(artifacts, h('p', { className: 'muted' }, view.status === 'DONE' ? 'The partition saved no artifact.' : 'Only DONE partitions keep artifacts.'));
      return;
    }
    fill(
      artifacts,
      view.artifacts.map((artifact) => {
        const preview = h('div', { className: 'preview' });
        const url = path('artifacts', artifact.name);
        const item = h(
          'article',
          { className: 'artifact', dataset: { artifact: artifact.name } },
          h('h3', {}, h('a', { href: url, download: artifact.name }, artifact.name), ' ', h('span', { className: 'muted' }, formatBytes(artifact.bytes))),
          preview,
        );
        if (artifact.preview === 'none') fill(preview, h('p', { className: 'muted' }, 'No preview for this kind of file.'));
        else void loadPreview(artifact.name, preview);
        return item;
      }),
    );
  }

  async function loadPreview(name, into) {
    try {
      const preview = await api(path('artifacts', name, 'preview'));
      if (!stopped) fill(into, previewOf(preview));
    } catch (error) {
      if (!stopped) fill(into, notice(`No preview: ${error.message}`, 'error'));
    }
  }

  void load();
  return () => {
    stopped = true;
    clearTimeout(retry);
    stopFollowing();
  };
}

function previewOf(preview) {
  switch (preview.kind) {
    case 'json':
      return h('pre', { className: 'json' }, preview.text);
    case 'text':
      return [h('pre', {}, preview.text), preview.truncated ? h('p', { className: 'muted' }, 'The first 64 KiB.') : null];
    case 'image':
      return h('img', { src: preview.url, alt: preview.mediaType });
    case 'table':
      return [
        h(
          'table',
          { className: 'preview-table' },
          h('thead', {}, h('tr', {}, preview.columns.map((column) => h('th', {}, column)))),
          h('tbody', {}, preview.rows.map((row) => h('tr', {}, row.map((cell) => h('td', {}, cell))))),
        ),
        h('p', { className: 'muted' }, preview.totalRows === undefined ? `The first ${preview.rows.length} rows.` : `${formatCount(preview.rows.length)} of ${formatCount(preview.totalRows)} rows.`),
      ];
    default:
      return h('p', { className: 'muted' }, preview.reason ?? 'No preview.');
  }
}
