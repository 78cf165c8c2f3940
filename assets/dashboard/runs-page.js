// `#/`: every run on the stage, refreshed every few seconds and whenever the tab comes back.
import { api, badge, countsList, fill, formatCount, formatDuration, formatTime, h, notice, runHash, statusBar } from './dom.js';

const REFRESH_MS = 3000;

export function showRuns(main) {
  const status = h('p', { className: 'muted', id: 'runs-updated' });
  const table = h('table', { className: 'runs', id: 'runs' });
  const body = h('tbody');
  table.append(
    h('thead', {}, h('tr', {}, ['Run', 'Mode', 'Status', 'Partitions', 'Started', 'Ended', 'Duration', 'Driver'].map((label) => h('th', {}, label)))),
    body,
  );
  const errors = h('div');
  fill(main, h('h1', {}, 'Runs'), errors, table, status);

  let stopped = false;
  async function refresh() {
    try {
      const response = await api('/api/runs');
      if (stopped) return;
      fill(errors);
      document.getElementById('stage').textContent = response.stage;
      fill(body, response.runs.length === 0 ? h('tr', {}, h('td', { colSpan: 8, className: 'muted' }, 'No runs on this stage yet.')) : response.runs.map(runRow));
      status.textContent = `${response.runs.length} runs · updated ${formatTime(Date.now())}`;
    } catch (error) {
      if (!stopped) fill(errors, notice(`Could not load the runs: ${error.message}`, 'error'));
    }
  }

  void refresh();
  const timer = setInterval(() => {
    if (document.visibilityState === 'visible') void refresh();
  }, REFRESH_MS);
  const onFocus = () => void refresh();
  window.addEventListener('focus', onFocus);
  return () => {
    stopped = true;
    clearInterval(timer);
    window.removeEventListener('focus', onFocus);
  };
}

function runRow(run) {
  const link = h('a', { href: runHash(run.runId) }, run.runId);
  if ('damaged' in run) {
    return h('tr', { className: 'damaged', dataset: { run: run.runId } }, h('td', {}, link), h('td', { colSpan: 7 }, h('span', { className: 'badge s-FAILED' }, 'DAMAGED'), ' ', run.damaged));
  }
  return h(
    'tr',
    { dataset: { run: run.runId } },
    h('td', {}, link),
    h('td', {}, run.layer ? `${run.mode} · ${run.layer}` : run.mode),
    h('td', { className: 'status' }, badge(run.status)),
    h('td', { className: 'partitions' }, statusBar(run.counts, run.numPartitions), h('span', { className: 'total' }, formatCount(run.numPartitions)), countsList(run.counts)),
    h('td', {}, formatTime(run.startedAt ?? run.createdAt)),
    h('td', {}, formatTime(run.finishedAt)),
    h('td', { className: 'num' }, formatDuration(run.durationMs)),
    h('td', {}, h('span', { className: `driver d-${run.driver}`, title: holderText(run.driverHolder) }, run.driver)),
  );
}

function holderText(holder) {
  return holder ? `pid ${holder.pid} on ${holder.host}, renewed ${formatTime(holder.renewedAt)}` : '';
}
