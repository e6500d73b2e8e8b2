// Overview: the pipeline's parts as a flow diagram (boxes coloured by health, arrows with rates)
// from GET /v1/overview, every part's figures, and a live chart of the rates between parts,
// sampled on every refresh since the page was opened.
import { api } from '../api.js';
import { COLORS, timeChart } from '../charts.js';
import { badge, formatDuration, formatNumber, formatTime, h, replace, svgElement } from '../format.js';

const BOX = { w: 196, h: 150 };
const COLUMN = 240;
const ROW = { top: 8, middle: 104, bottom: 200 };
/** Where each known part sits: the data flow of DESIGN.md, left to right. */
const LAYOUT = {
  collector: { x: 8, y: ROW.middle },
  log: { x: 8 + COLUMN, y: ROW.middle },
  speed: { x: 8 + 2 * COLUMN, y: ROW.top },
  archiver: { x: 8 + 2 * COLUMN, y: ROW.bottom },
  lake: { x: 8 + 3 * COLUMN + (BOX.w - 150) / 2, y: ROW.bottom + 25, w: 150, h: 100 },
  scheduler: { x: 8 + 4 * COLUMN, y: ROW.bottom },
  serving: { x: 8 + 4 * COLUMN, y: ROW.top },
};
const VIEW = { w: 8 + 4 * COLUMN + BOX.w + 8, h: ROW.bottom + BOX.h + 8 };
/** Samples of the live chart: 5 minutes at the overview's refresh interval. */
const MAX_SAMPLES = 150;

/** A figure as people read it: times for `...Until`/`...At` epoch ms, durations for `...Seconds`. */
function figure(name, value, compact = false) {
  if (typeof value !== 'number') return String(value);
  if (/(Until|At)$/.test(name) && value > 1e11) {
    const t = formatTime(new Date(value).toISOString());
    return compact ? t.slice(5, 16) : t;
  }
  if (/Seconds$/.test(name)) return formatDuration(value);
  return formatNumber(value);
}

const words = (name) => name.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
const clip = (s, n) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
const rate = (r) => `${formatNumber(r >= 100 ? Math.round(r) : Math.round(r * 10) / 10)}/s`;

function boxOf(id) {
  const at = LAYOUT[id];
  return at === undefined ? undefined : { x: at.x, y: at.y, w: at.w ?? BOX.w, h: at.h ?? BOX.h };
}

/** The anchor points of an arrow from box a to box b (right side to left side, or bottom to top). */
function anchors(a, b) {
  if (Math.abs(a.x - b.x) < 1) {
    const down = a.y < b.y;
    return [
      [a.x + a.w / 2, down ? a.y + a.h : a.y],
      [b.x + b.w / 2, down ? b.y : b.y + b.h],
    ];
  }
  return [
    [a.x + a.w, a.y + a.h / 2],
    [b.x, b.y + b.h / 2],
  ];
}

function arrow(svg, from, to, label, testid) {
  const [[x1, y1], [x2, y2]] = anchors(from, to);
  const g = svgElement('g', { class: 'edge', testid });
  // Horizontal runs with a bend in the middle, so arrows between rows stay readable.
  const mx = (x1 + x2) / 2;
  const d = Math.abs(x1 - x2) < 1 ? `M${x1},${y1} L${x2},${y2}` : `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`;
  g.append(svgElement('path', { d, class: 'edge-line', 'marker-end': 'url(#arrowhead)' }));
  if (label !== undefined) {
    const t = svgElement('text', {
      x: Math.abs(x1 - x2) < 1 ? x1 + 8 : mx,
      y: Math.abs(x1 - x2) < 1 ? (y1 + y2) / 2 + 4 : (y1 + y2) / 2 - 6,
      class: 'edge-label',
      'text-anchor': Math.abs(x1 - x2) < 1 ? 'start' : 'middle',
    });
    t.textContent = label;
    g.append(t);
  }
  svg.append(g);
}

function text(x, y, content, cls, attributes = {}) {
  const t = svgElement('text', { x, y, class: cls, ...attributes });
  t.textContent = content;
  return t;
}

function partBox(part, box) {
  const g = svgElement('g', { class: `part health-${part.health}`, testid: `part-${part.id}` });
  g.dataset.health = part.health;
  const title = svgElement('title');
  title.textContent = `${part.label}: ${part.health}${part.detail ? ` — ${part.detail}` : ''}`;
  g.append(title);
  g.append(svgElement('rect', { x: box.x, y: box.y, width: box.w, height: box.h, rx: 8, class: 'part-box' }));
  g.append(svgElement('rect', { x: box.x, y: box.y, width: box.w, height: 6, rx: 3, class: 'part-band' }));
  // About 7.9 px per character of the label, 6.5 of the health word.
  const room = Math.floor((box.w - 24 - part.health.length * 6.5) / 7.9);
  g.append(text(box.x + 10, box.y + 26, clip(part.label, room), 'part-label'));
  g.append(text(box.x + box.w - 10, box.y + 26, part.health, 'part-health', { 'text-anchor': 'end' }));
  g.append(text(box.x + 10, box.y + 45, clip(part.detail ?? '', 30), 'part-detail'));
  Object.entries(part.figures ?? {})
    .slice(0, 5)
    .forEach(([name, value], i) => {
      const y = box.y + 67 + i * 17;
      g.append(text(box.x + 10, y, clip(words(name), 17), 'part-figure-name'));
      g.append(text(box.x + box.w - 10, y, figure(name, value, true), 'part-figure-value', { 'text-anchor': 'end' }));
    });
  return g;
}

function lakeBox(box) {
  const g = svgElement('g', { class: 'part passive', testid: 'part-lake' });
  g.append(svgElement('rect', { x: box.x, y: box.y, width: box.w, height: box.h, rx: 18, class: 'part-box' }));
  g.append(text(box.x + box.w / 2, box.y + box.h / 2 - 4, 'lake', 'part-label', { 'text-anchor': 'middle' }));
  g.append(
    text(box.x + box.w / 2, box.y + box.h / 2 + 16, 'Parquet, date=/hour=', 'part-detail', {
      'text-anchor': 'middle',
    }),
  );
  return g;
}

function diagram(overview) {
  const svg = svgElement('svg', {
    viewBox: `0 0 ${VIEW.w} ${VIEW.h}`,
    class: 'flow',
    testid: 'flow-diagram',
    role: 'img',
    'aria-label': 'pipeline flow',
  });
  const defs = svgElement('defs');
  const marker = svgElement('marker', {
    id: 'arrowhead',
    viewBox: '0 0 10 10',
    refX: 9,
    refY: 5,
    markerWidth: 7,
    markerHeight: 7,
    orient: 'auto-start-reverse',
  });
  marker.append(svgElement('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' }));
  defs.append(marker);
  svg.append(defs);
  const lake = boxOf('lake');
  for (const e of overview.edges ?? []) {
    const a = boxOf(e.from);
    const b = boxOf(e.to);
    if (a === undefined || b === undefined) continue;
    const label = rate(e.ratePerSecond ?? 0);
    const testid = `edge-${e.from}-${e.to}`;
    // The archiver feeds the batch layer through the lake.
    if (e.from === 'archiver' && e.to === 'scheduler') {
      arrow(svg, a, lake, label, testid);
      arrow(svg, lake, b, undefined, `${testid}-lake`);
    } else arrow(svg, a, b, label, testid);
  }
  svg.append(lakeBox(lake));
  for (const part of overview.parts ?? []) {
    const box = boxOf(part.id);
    if (box !== undefined) svg.append(partBox(part, box));
  }
  return svg;
}

function partCard(part) {
  const figures = Object.entries(part.figures ?? {});
  return h(
    'section',
    { class: `card part-card health-${part.health}`, testid: `part-card-${part.id}`, dataset: { health: part.health } },
    h('header', {}, h('strong', {}, part.label), ' ', badge(part.health)),
    h('p', { class: 'detail' }, part.detail || '—'),
    figures.length === 0
      ? h('p', { class: 'muted' }, 'no figures')
      : h(
          'dl',
          { class: 'figures' },
          figures.map(([name, value]) => [h('dt', {}, words(name)), h('dd', {}, figure(name, value))]),
        ),
  );
}

/** The overview page. */
export const overviewPage = {
  id: 'overview',
  title: 'Overview',
  refreshMs: 2000,
  mount(root) {
    const flow = h('div', { class: 'flow-wrap' });
    const cards = h('div', { class: 'cards' });
    const stamp = h('p', { class: 'muted', testid: 'overview-now' });
    let chart;
    let edgeKeys;
    const samples = [];
    const chartSlot = h('div', {});
    replace(root, stamp, flow, h('h2', {}, 'Rates'), chartSlot, h('h2', {}, 'Parts'), cards);
    return {
      async refresh() {
        const overview = await api('/v1/overview');
        stamp.textContent = `as of ${formatTime(overview.now)} UTC · green ok, amber lagging, red down, grey idle`;
        replace(flow, diagram(overview));
        replace(cards, (overview.parts ?? []).map(partCard));
        const edges = overview.edges ?? [];
        const keys = edges.map((e) => `${e.from}->${e.to}`);
        if (edgeKeys === undefined || keys.join() !== edgeKeys.join()) {
          // New series: start the chart over.
          chart?.destroy();
          samples.length = 0;
          edgeKeys = keys;
          chart = timeChart({
            testid: 'chart-rates',
            title: 'Events per second between parts (live, since this page was opened)',
            height: 200,
            series: edges.map((e, i) => ({
              label: `${e.from} → ${e.to}`,
              stroke: COLORS.palette[i % COLORS.palette.length],
              points: true,
            })),
            emptyText: 'Collecting samples…',
          });
          replace(chartSlot, chart.el);
        }
        const t = Date.parse(overview.now);
        samples.push([Number.isNaN(t) ? Date.now() / 1000 : t / 1000, ...edges.map((e) => e.ratePerSecond ?? 0)]);
        if (samples.length > MAX_SAMPLES) samples.shift();
        chart.update([samples.map((s) => s[0]), ...edgeKeys.map((_k, i) => samples.map((s) => s[i + 1]))]);
      },
      destroy() {
        chart?.destroy();
      },
    };
  },
};
