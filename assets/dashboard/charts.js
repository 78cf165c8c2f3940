// The run page's two charts, on uPlot (the global `uPlot`, from /assets/vendor/):
// - the timeline: one lane per worker, one bar per attempt colored by its outcome, drawn on
//   uPlot's canvas in a `draw` hook (uPlot gives the scales, axes, zoom and cursor);
// - the histogram of partition durations, as uPlot bars.
import { fill, formatCount, formatDuration, formatTime, h, statusColor } from './dom.js';

/** Outcomes that ended an attempt with a failure: their bars get a dark mark at the end. */
const FAILED_OUTCOMES = new Set(['FAILED', 'RETRIED', 'TIMEOUT', 'CRASHED', 'INTERNAL_ERROR']);
const OUTCOMES = ['DONE', 'RUNNING', 'RETRIED', 'FAILED', 'TIMEOUT', 'CRASHED', 'INTERNAL_ERROR', 'CANCELLED'];
const LANE_HEIGHT = 22;

/** An axis label for a time since the first attempt: `0`, `+250 ms`, `+1.5 s`, `+2 m 05 s`. */
function formatOffset(ms) {
  return ms <= 0 ? '0' : `+${formatDuration(ms)}`;
}

function chartWidth(container) {
  return Math.max(320, container.clientWidth || 900);
}

/** The timeline of a run's attempts, in `container`; `update(timeline)` redraws it with new data. */
export function timelineChart(container) {
  const caption = h('p', { className: 'caption', id: 'timeline-caption' });
  const legend = h('p', { className: 'legend' });
  const holder = h('div', { className: 'chart', id: 'timeline-chart' });
  fill(container, caption, holder, legend);
  let plot;
  let timeline;
  let byLane = [];
  let lanesDrawn = -1;
  const tooltip = h('div', { className: 'tooltip', id: 'timeline-tooltip', hidden: true });

  function endOf(k) {
    return timeline.end[k] ?? Date.now();
  }

  function drawBars(u) {
    const { ctx, bbox } = u;
    const laneHeight = Math.abs(u.valToPos(1, 'y', true) - u.valToPos(0, 'y', true));
    const barHeight = Math.max(2, laneHeight * 0.7);
    const minWidth = 2 * Math.max(1, devicePixelRatio);
    ctx.save();
    ctx.beginPath();
    ctx.rect(bbox.left, bbox.top, bbox.width, bbox.height);
    ctx.clip();
    // One pass per outcome: one fillStyle change each, however many attempts.
    for (const outcome of OUTCOMES) {
      ctx.fillStyle = statusColor(outcome);
      for (let k = 0; k < timeline.outcome.length; k++) {
        if (timeline.outcome[k] !== outcome) continue;
        const x0 = u.valToPos(timeline.start[k], 'x', true);
        const x1 = u.valToPos(endOf(k), 'x', true);
        const y = u.valToPos(timeline.lane[k], 'y', true) - barHeight / 2;
        ctx.fillRect(x0, y, Math.max(minWidth, x1 - x0), barHeight);
      }
    }
    // A failed attempt's end: a dark tick above and below its bar (not over it, so a short bar keeps its color).
    ctx.fillStyle = '#212529';
    const tick = Math.max(1, (laneHeight * 0.9 - barHeight) / 2);
    for (let k = 0; k < timeline.outcome.length; k++) {
      if (!FAILED_OUTCOMES.has(timeline.outcome[k]) || timeline.end[k] === null) continue;
      const x0 = u.valToPos(timeline.start[k], 'x', true);
      const x1 = Math.max(x0 + minWidth, u.valToPos(endOf(k), 'x', true));
      const y = u.valToPos(timeline.lane[k], 'y', true);
      ctx.fillRect(x1 - minWidth / 2, y - barHeight / 2 - tick, minWidth / 2, tick);
      ctx.fillRect(x1 - minWidth / 2, y + barHeight / 2, minWidth / 2, tick);
    }
    ctx.restore();
  }

  /**
   * The attempt under the cursor, if any: in the lane the cursor is on, the bar drawn at its x as
   * drawBars draws it (at least its minimum width; where bars overlap, the one drawn last, which
   * is the one seen), else one within a few pixels.
   */
  function attemptAt(u, left, top) {
    const lane = Math.round(u.posToVal(top, 'y'));
    const attempts = byLane[lane];
    if (!attempts) return undefined;
    const minWidth = (2 * Math.max(1, devicePixelRatio)) / devicePixelRatio;
    const drawnLast = (a, b) => (a === undefined || OUTCOMES.indexOf(timeline.outcome[b]) * timeline.outcome.length + b > OUTCOMES.indexOf(timeline.outcome[a]) * timeline.outcome.length + a ? b : a);
    let hit;
    let near;
    for (const k of attempts) {
      const x0 = u.valToPos(timeline.start[k], 'x');
      const x1 = Math.max(x0 + minWidth, u.valToPos(endOf(k), 'x'));
      if (x0 <= left && left <= x1) hit = drawnLast(hit, k);
      else if (near === undefined && x0 - 3 <= left && left <= x1 + 3) near = k;
    }
    return hit ?? near;
  }

  function hover(u) {
    const { left, top } = u.cursor;
    const k = left === undefined || left < 0 ? undefined : attemptAt(u, left, top);
    if (k === undefined) {
      tooltip.hidden = true;
      return;
    }
    const ended = timeline.end[k];
    fill(
      tooltip,
      h('b', {}, timeline.ids[timeline.partition[k]]),
      h('br'),
      `attempt ${timeline.attempt[k]} · ${timeline.outcome[k]} · ${formatDuration(endOf(k) - timeline.start[k])}${ended === null ? ' so far' : ''}`,
      h('br'),
      timeline.lanes[timeline.lane[k]] ?? '',
    );
    tooltip.hidden = false;
    tooltip.style.left = `${Math.min(left + 12, u.over.clientWidth - 220)}px`;
    tooltip.style.top = `${top + 12}px`;
  }

  function create(width) {
    const lanes = timeline.lanes.length;
    plot?.destroy();
    plot = new uPlot(
      {
        width,
        height: Math.max(140, lanes * LANE_HEIGHT + 60),
        ms: 1,
        legend: { show: false },
        cursor: { y: false, points: { show: false }, drag: { x: true, y: false } },
        scales: {
          // Time since the first attempt started (the caption says when that was).
          x: { time: false },
          // Lane 0 on top.
          y: { auto: false, dir: -1, range: () => [-0.5, timeline.lanes.length - 0.5] },
        },
        axes: [
          {
            space: 70,
            // Ticks at round offsets from the first start, not at round clock times.
            splits: (u, _axis, min, max, increment) => {
              const origin = u.data[0][0];
              const ticks = [];
              for (let at = origin + Math.ceil((min - origin) / increment) * increment; at <= max; at += increment) ticks.push(at);
              return ticks;
            },
            values: (u, splits) => splits.map((at) => formatOffset(at - u.data[0][0])),
          },
          {
            splits: () => timeline.lanes.map((_, lane) => lane),
            values: (_, splits) => splits.map((lane) => timeline.lanes[lane] ?? ''),
            size: 150,
            grid: { show: false },
            ticks: { show: false },
          },
        ],
        series: [{}, { label: 'attempts', points: { show: false }, paths: () => null }],
        hooks: { draw: [drawBars], setCursor: [hover] },
      },
      span(),
      holder,
    );
    plot.over.append(tooltip);
    lanesDrawn = lanes;
  }

  /** x from the first start to the last end (now, for running attempts), as uPlot's aligned data. */
  function span() {
    let first = Infinity;
    let last = -Infinity;
    for (let k = 0; k < timeline.start.length; k++) {
      first = Math.min(first, timeline.start[k]);
      last = Math.max(last, endOf(k));
    }
    if (last <= first) last = first + 1000;
    return [
      [first, last],
      [null, null],
    ];
  }

  function update(next) {
    timeline = next;
    byLane = timeline.lanes.map(() => []);
    for (let k = 0; k < timeline.lane.length; k++) byLane[timeline.lane[k]]?.push(k);
    caption.dataset.lanes = String(timeline.lanes.length);
    caption.dataset.attempts = String(timeline.start.length);
    const first = timeline.start.length === 0 ? undefined : span()[0][0];
    caption.textContent = `${formatCount(timeline.start.length)} attempts on ${formatCount(timeline.lanes.length)} worker lanes${first === undefined ? '' : `, from ${formatTime(first)}`} · drag to zoom, double-click to reset`;
    const present = OUTCOMES.filter((outcome) => timeline.outcome.includes(outcome));
    fill(legend, present.map((outcome) => h('span', { className: `key k-${outcome}` }, outcome)));
    if (timeline.start.length === 0) {
      plot?.destroy();
      plot = undefined;
      lanesDrawn = -1;
      fill(holder, h('p', { className: 'muted' }, 'No attempt has started yet.'));
      return;
    }
    if (!plot || lanesDrawn !== timeline.lanes.length) {
      fill(holder);
      create(chartWidth(container));
    } else plot.setData(span());
  }

  return resizing(container, update, () => plot);
}

/** The histogram of finished partitions' durations, with n, p50, p95 and max. */
export function histogramChart(container) {
  const stats = h('p', { className: 'caption', id: 'histogram-stats' });
  const holder = h('div', { className: 'chart', id: 'histogram-chart' });
  fill(container, stats, holder);
  let plot;

  function update(histogram) {
    const stat = (label, value) => h('span', { className: 'stat', dataset: { stat: label } }, `${label} `, h('b', {}, value));
    fill(
      stats,
      stat('n', formatCount(histogram.n)),
      stat('p50', formatDuration(histogram.p50)),
      stat('p95', formatDuration(histogram.p95)),
      stat('max', formatDuration(histogram.max)),
    );
    plot?.destroy();
    plot = undefined;
    if (histogram.n === 0 || histogram.counts.length === 0) {
      fill(holder, h('p', { className: 'muted' }, 'No partition has finished yet.'));
      return;
    }
    fill(holder);
    const { edges, counts } = histogram;
    const log = histogram.scale === 'log';
    // A log-spaced bin's middle is its edges' geometric mean: the bars are equally wide on the log axis.
    const centers = counts.map((_, k) => (log ? Math.sqrt(edges[k] * edges[k + 1]) : (edges[k] + edges[k + 1]) / 2));
    let low = edges[0];
    let high = edges[edges.length - 1];
    if (high <= low) [low, high] = [low - 1, high + 1];
    const color = statusColor('DONE');
    plot = new uPlot(
      {
        width: chartWidth(container),
        height: 200,
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        scales: { x: log ? { time: false, distr: 3, log: 10, range: () => [low, high] } : { time: false, range: () => [low, high] }, y: { range: () => [0, Math.max(...counts) * 1.1] } },
        axes: [{ values: (_, splits) => splits.map(formatDuration) }, { label: 'partitions', size: 64 }],
        series: [{}, { label: 'partitions', fill: color, stroke: color, paths: uPlot.paths.bars({ size: [0.92, Infinity] }), points: { show: false } }],
      },
      [centers, counts],
      holder,
    );
  }

  return resizing(container, update, () => plot);
}

/** A chart's handle: `update`, and `destroy`; its plot (`current()`) follows the window's width meanwhile. */
function resizing(container, update, current) {
  const onResize = () => current()?.setSize({ width: chartWidth(container), height: current().height });
  window.addEventListener('resize', onResize);
  return {
    update,
    destroy() {
      window.removeEventListener('resize', onResize);
      current()?.destroy();
    },
  };
}
