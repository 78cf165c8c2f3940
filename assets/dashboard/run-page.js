// `#/runs/ID`: a run's header and actions, its partitions, its timeline and the histogram of its
// durations. While the run is in progress the server pushes `summary` events; the header follows
// each one, the table and charts at most every few seconds.
import { histogramChart, timelineChart } from './charts.js';
import { action, api, apiPath, badge, countsList, facts, fill, formatCount, formatDuration, formatTime, h, notice, statusBar, throttle } from './dom.js';
import { partitionsTable } from './partitions-table.js';

/** While the run goes on, the table is read again at most every 2 s, the charts every 5 s. */
const TABLE_MS = 2000;
const CHARTS_MS = 5000;

export function showRun(main, runId) {
  const header = h('section', { className: 'run-header', id: 'run-header' });
  const actions = h('div', { className: 'actions' });
  const cancel = h('button', { type: 'button', id: 'action-cancel', disabled: true, onclick: () => void act('cancel') }, 'Cancel run');
  const rerun = h('button', { type: 'button', id: 'action-rerun-failed', disabled: true, onclick: () => void act('rerun-failed') }, 'Rerun failed');
  const actionMessage = h('div', { id: 'action-message' });
  actions.append(cancel, rerun, actionMessage);
  const errors = h('div');
  const tableSection = h('section');
  const timelineSection = h('section');
  const histogramSection = h('section');
  fill(
    main,
    h('nav', { className: 'crumbs' }, h('a', { href: '#/' }, 'Runs'), ' › ', runId),
    errors,
    header,
    actions,
    h('h2', {}, 'Timeline'),
    timelineSection,
    h('h2', {}, 'Durations'),
    histogramSection,
    h('h2', {}, 'Partitions'),
    tableSection,
  );

  let stopped = false;
  let events;
  let summary;
  const table = partitionsTable(tableSection, runId);
  const timeline = timelineChart(timelineSection);
  const histogram = histogramChart(histogramSection);

  async function loadCharts() {
    try {
      const [lines, durations] = await Promise.all([api(apiPath('runs', runId, 'timeline')), api(apiPath('runs', runId, 'durations'))]);
      if (stopped) return;
      timeline.update(lines);
      histogram.update(durations);
    } catch (error) {
      if (!stopped) fill(errors, notice(`Could not load the charts: ${error.message}`, 'error'));
    }
  }
  // The table is one page of rows; the charts read every attempt, so they follow more slowly.
  const refreshTable = throttle(() => void (stopped || table.refresh()), TABLE_MS);
  const refreshCharts = throttle(() => void (stopped || loadCharts()), CHARTS_MS);
  const redraw = () => {
    refreshTable();
    refreshCharts();
  };

  function showSummary(next) {
    summary = next;
    const elapsed = next.finishedAt === undefined ? `${formatDuration(next.durationMs)} so far` : formatDuration(next.durationMs);
    fill(
      header,
      h('h1', {}, next.runId, ' ', h('span', { id: 'run-status' }, badge(next.status))),
      statusBar(next.counts, next.numPartitions),
      h('p', { className: 'run-counts', id: 'run-counts' }, h('span', { className: 'total', dataset: { total: String(next.numPartitions) } }, `${formatCount(next.numPartitions)} partitions`), ' ', countsList(next.counts)),
      facts([
        ['Mode', next.layer ? `${next.mode} · ${next.layer}` : next.mode],
        ['Input', next.input],
        ['Queue', next.queue],
        ['Function', next.module],
        ['Created', formatTime(next.createdAt)],
        ['Started', formatTime(next.startedAt)],
        ['Finished', formatTime(next.finishedAt)],
        ['Duration', elapsed],
        ['Driver', h('span', { id: 'run-driver', dataset: { driver: next.driver } }, next.driverHolder ? `${next.driver} (pid ${next.driverHolder.pid} on ${next.driverHolder.host})` : next.driver)],
      ]),
      next.warnings.length > 0 ? h('ul', { className: 'warnings' }, next.warnings.map((warning) => h('li', {}, warning))) : null,
    );
    cancel.disabled = !next.actions.cancel;
    rerun.disabled = !next.actions.rerunFailed;
    document.title = `${next.runId} · ${next.status} · dpf`;
  }

  function follow() {
    if (stopped || events || summary?.status !== 'IN_PROGRESS') return;
    events = new EventSource(apiPath('runs', runId, 'events'));
    events.addEventListener('summary', (event) => {
      showSummary(JSON.parse(event.data));
      redraw();
    });
    events.addEventListener('end', () => {
      unfollow();
      void loadSummary().then(redraw);
    });
    // The stream broke (the server went away): stop, rather than let EventSource retry for ever,
    // and read where the run stands.
    events.addEventListener('error', () => {
      if (events?.readyState !== EventSource.CLOSED) return;
      unfollow();
      void loadSummary();
    });
  }

  function unfollow() {
    events?.close();
    events = undefined;
  }

  async function loadSummary() {
    try {
      const next = await api(apiPath('runs', runId));
      if (stopped) return;
      fill(errors);
      showSummary(next);
      follow();
    } catch (error) {
      if (!stopped) fill(errors, notice(error.status === 404 ? `No run ${runId} on this stage.` : `Could not load the run: ${error.message}`, 'error'));
    }
  }

  async function act(name) {
    if (name === 'cancel' && !window.confirm(`Cancel the run ${runId}? Running partitions are stopped, pending ones never start.`)) return;
    cancel.disabled = rerun.disabled = true;
    fill(actionMessage, notice(name === 'cancel' ? 'Cancelling…' : 'Starting the failed partitions again…'));
    try {
      const response = await action(apiPath('runs', runId, name));
      fill(actionMessage, notice(response.message, 'ok'));
    } catch (error) {
      fill(actionMessage, notice(error.message, 'error'));
    }
    await loadSummary();
    redraw();
  }

  void loadSummary();
  void loadCharts();
  return () => {
    stopped = true;
    unfollow();
    refreshTable.cancel();
    refreshCharts.cancel();
    table.destroy();
    timeline.destroy();
    histogram.destroy();
  };
}
