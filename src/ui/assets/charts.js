// Time-series charts on uPlot (loaded as the global `uPlot` by index.html). A chart is created
// once and fed new data on every refresh (setData), so that auto-refresh neither flickers nor
// resets the legend. Each chart's element carries data-points: how many x values have a value
// in some series, which the tests and a reader of the DOM can rely on.
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
  let observer;

  const options = (width) => ({
    width,
    height,
    tzDate: utc,
    scales: { x: { time: true } },
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
      { stroke: '#444', grid: { stroke: '#eee' } },
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
    /** Draws `[xs, ...ys]` (x in epoch seconds). */
    update(data, { highlight = [] } = {}) {
      ranges = highlight;
      const xs = data[0];
      let points = 0;
      for (let i = 0; i < xs.length; i++) if (data.slice(1).some((ys) => ys[i] !== null && ys[i] !== undefined)) points++;
      el.dataset.points = String(points);
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
