// Time-series charts on uPlot (loaded as the global `uPlot` by index.html). A chart is created
// once and fed new data on every refresh (setData), so that auto-refresh neither flickers nor
// resets the legend. Each chart's element carries data-points: how many x values have a value
// in some series, and data-max the largest value drawn: the tests and a reader of the DOM can
// rely on them.
import { formatNumber, formatTime, h, notice } from './format.js';

const uPlot = globalThis.uPlot;

/** Series colours: distinct, and readable on white. */
export const COLORS = {
  speed: '#1f6fd1',
  batch: '#e8710a',
  highlight: 'rgba(220, 38, 38, 0.16)',
  palette: ['#1f6fd1', '#e8710a', '#2e9e44', '#9334e6', '#d01884', '#12a4af', '#795548', '#5f6368'],
};

const utc = (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC');

/** Tick spacings of a time axis, in seconds: whole seconds and up, as people count time. */
const TIME_INCREMENTS = [
  1,
  2,
  5,
  10,
  15,
  30,
  60,
  120,
  300,
  600,
  900,
  1800,
  3600,
  7200,
  10800,
  21600,
  43200,
  86400,
  2 * 86400,
  7 * 86400,
  14 * 86400,
  30 * 86400,
  91 * 86400,
  365 * 86400,
];

/** Tick labels of a time axis in UTC, 24-hour, as precise as the tick spacing needs. */
function timeTicks(_u, splits, _axis, _space, increment) {
  return splits.map((s, i) => {
    const iso = new Date(s * 1000).toISOString();
    if (increment >= 28 * 86400) return iso.slice(0, 7);
    if (increment >= 86400) return iso.slice(0, 10);
    const hm = iso.slice(11, increment >= 60 ? 16 : 19);
    // The date under the first tick and under each midnight.
    return i === 0 || iso.slice(11, 19) === '00:00:00' ? `${hm}\n${iso.slice(0, 10)}` : hm;
  });
}

/**
 * A time chart. `series`: `[{ label, stroke, points? }]`; `update(xsSeconds, ...ys, { highlight })`
 * with `highlight` a list of [fromSeconds, toSeconds] ranges shaded behind the lines.
 */
export function timeChart({ testid, title, series, height = 220, yLabel, emptyText = 'No data in this range.' }) {
  const plotEl = h('div', { class: 'chart-plot' });
  const empty = notice('empty', emptyText, `${testid}-empty`);
  const el = h(
    'figure',
    { class: 'chart', testid, dataset: { points: '0' } },
    h('figcaption', { class: 'chart-title' }, title),
    plotEl,
    empty,
  );
  let plot;
  let ranges = [];
  let xRange; // [from, to] in seconds when the caller fixes the x axis
  let observer;

  const options = (width) => ({
    width,
    height,
    tzDate: utc,
    scales: {
      x: {
        time: true,
        // The chosen range, not the data's: a gap at either end is a gap in the data.
        range: (_u, min, max) => xRange ?? [min, max],
      },
    },
    cursor: { drag: { x: true, y: false } },
    series: [
      { label: 'UTC', value: (_u, v) => (v === null || v === undefined ? '–' : formatTime(v * 1000)) },
      ...series.map((s) => ({
        label: s.label,
        stroke: s.stroke,
        width: s.width ?? 2,
        spanGaps: false,
        points: { show: s.points ?? 'auto', size: 5, fill: s.stroke },
        value: (_u, v) => (v === null || v === undefined ? '–' : formatNumber(v)),
      })),
    ],
    axes: [
      { stroke: '#444', grid: { stroke: '#eee' }, values: timeTicks, incrs: TIME_INCREMENTS, space: 70 },
      {
        stroke: '#444',
        grid: { stroke: '#eee' },
        size: 64,
        label: yLabel,
        values: (_u, vals) => vals.map((v) => formatNumber(v)),
      },
    ],
    hooks: {
      drawClear: [
        (u) => {
          if (ranges.length === 0) return;
          const ctx = u.ctx;
          ctx.save();
          ctx.fillStyle = COLORS.highlight;
          const min = 2 * (globalThis.devicePixelRatio || 1);
          for (const [a, b] of ranges) {
            const left = u.valToPos(a, 'x', true);
            const right = u.valToPos(b, 'x', true);
            ctx.fillRect(left, u.bbox.top, Math.max(right - left, min), u.bbox.height);
          }
          ctx.restore();
        },
      ],
    },
  });

  const widthOf = () => Math.max(320, plotEl.clientWidth || el.clientWidth || 640);

  return {
    el,
    /** Draws `[xs, ...ys]` (x in epoch seconds); `range`: the x axis' [from, to] in seconds. */
    update(data, { highlight = [], range } = {}) {
      ranges = highlight;
      const xs = data[0];
      // Without a range from the caller: one point gets a day around it, none the last day.
      const now = Date.now() / 1000;
      xRange =
        range ??
        (xs.length === 0 ? [now - 86400, now] : xs[0] === xs.at(-1) ? [xs[0] - 43200, xs[0] + 43200] : undefined);
      let points = 0;
      let max = null;
      for (let i = 0; i < xs.length; i++) {
        let any = false;
        for (const ys of data.slice(1)) {
          const v = ys[i];
          if (v === null || v === undefined) continue;
          any = true;
          if (max === null || v > max) max = v;
        }
        if (any) points++;
      }
      el.dataset.points = String(points);
      el.dataset.max = max === null ? '' : String(max);
      el.dataset.highlighted = String(highlight.length);
      empty.hidden = points > 0;
      if (plot === undefined) {
        plot = new uPlot(options(widthOf()), data, plotEl);
        observer = new ResizeObserver(() => {
          const width = widthOf();
          if (plot !== undefined && Math.abs(width - plot.width) > 4) plot.setSize({ width, height });
        });
        observer.observe(plotEl);
      } else {
        plot.setData(data);
      }
    },
    destroy() {
      observer?.disconnect();
      plot?.destroy();
      plot = undefined;
    },
  };
}
