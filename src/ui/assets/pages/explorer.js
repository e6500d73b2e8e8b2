// Statistics explorer: speed and batch values over time from GET /v1/stats/series, one chart per
// chosen column, buckets where they differ shaded, and a table of those buckets. The choices live
// in the URL (#/explorer?from=...), so a view can be reloaded and shared.
import { api } from '../api.js';
import { COLORS, timeChart } from '../charts.js';
import { COLUMNS, latestDataWindow } from '../data.js';
import {
  exact,
  formatMicros,
  formatNumber,
  formatPercent,
  formatTime,
  formatValue,
  fromInputValue,
  h,
  MONEY_COLUMNS,
  notice,
  plotValue,
  replace,
  toInputValue,
} from '../format.js';

const STEP_SECONDS = { minute: 60, hour: 3600, day: 86400 };
const DEFAULT_COLUMNS = ['clicks', 'emissions', 'clickCost'];

function difference(column, speed, batch) {
  const d = exact(column, speed) - exact(column, batch);
  const b = exact(column, batch);
  return {
    absolute: d,
    relative: b === 0n ? (d === 0n ? 0 : null) : Number(d) / Number(b),
    shown: `${d > 0n ? '+' : ''}${MONEY_COLUMNS.has(column) ? formatMicros(d) : formatNumber(Number(d))}`,
  };
}

/** The explorer page. */
export const explorerPage = {
  id: 'explorer',
  title: 'Statistics explorer',
  refreshMs: 5000,
  mount(root, { params, refreshNow }) {
    const from = h('input', { type: 'datetime-local', testid: 'explorer-from', step: 60 });
    const to = h('input', { type: 'datetime-local', testid: 'explorer-to', step: 60 });
    const granularity = h(
      'select',
      { testid: 'explorer-granularity' },
      ['minute', 'hour', 'day'].map((g) => h('option', { value: g }, g)),
    );
    const offers = h('datalist', { id: 'offer-ids' });
    const placements = h('datalist', { id: 'placements' });
    const offerId = h('input', {
      type: 'search',
      list: 'offer-ids',
      placeholder: 'any offer',
      testid: 'explorer-offer',
    });
    const placement = h('input', {
      type: 'search',
      list: 'placements',
      placeholder: 'any placement',
      testid: 'explorer-placement',
    });
    const chosen = new Set(
      (params.get('columns') ?? DEFAULT_COLUMNS.join(',')).split(',').filter((c) => COLUMNS.includes(c)),
    );
    const boxes = COLUMNS.map((c) =>
      h(
        'label',
        { class: 'check' },
        h('input', { type: 'checkbox', value: c, checked: chosen.has(c), testid: `explorer-column-${c}` }),
        ` ${c}`,
      ),
    );
    const summary = h('p', { class: 'summary', testid: 'explorer-summary' });
    const chartsEl = h('div', { class: 'charts' });
    const tableEl = h('div', {});
    granularity.value = ['minute', 'hour', 'day'].includes(params.get('granularity'))
      ? params.get('granularity')
      : 'hour';
    offerId.value = params.get('offerId') ?? '';
    placement.value = params.get('placement') ?? '';
    let range; // { from, to } in epoch ms, once known
    if (params.get('from') && params.get('to')) {
      const f = Date.parse(params.get('from'));
      const t = Date.parse(params.get('to'));
      if (!Number.isNaN(f) && !Number.isNaN(t)) range = { from: f, to: t };
    }
    const form = h(
      'form',
      { class: 'controls', testid: 'explorer-controls', onsubmit: apply },
      h('label', {}, 'from (UTC) ', from),
      h('label', {}, 'to (UTC) ', to),
      h('label', {}, 'granularity ', granularity),
      h('label', {}, 'offer ', offerId),
      h('label', {}, 'placement ', placement),
      h('button', { type: 'submit', testid: 'explorer-apply' }, 'Show'),
      h('div', { class: 'columns' }, 'columns: ', boxes),
      offers,
      placements,
    );
    replace(root, form, summary, chartsEl, h('h2', {}, 'Buckets where speed and batch differ'), tableEl);

    let charts = new Map(); // column -> chart
    let filtersFor; // the range the datalists were filled for

    function apply(event) {
      event?.preventDefault();
      const f = fromInputValue(from.value);
      const t = fromInputValue(to.value);
      if (!Number.isNaN(f) && !Number.isNaN(t) && t > f) range = { from: f, to: t };
      chosen.clear();
      for (const b of boxes) {
        const input = b.querySelector('input');
        if (input.checked) chosen.add(input.value);
      }
      if (range === undefined) return; // the first refresh has not found the default range yet
      const q = new URLSearchParams({
        from: new Date(range.from).toISOString(),
        to: new Date(range.to).toISOString(),
        granularity: granularity.value,
        columns: [...chosen].join(','),
      });
      if (offerId.value.trim() !== '') q.set('offerId', offerId.value.trim());
      if (placement.value.trim() !== '') q.set('placement', placement.value.trim());
      history.replaceState(null, '', `#/explorer?${q}`);
      void refreshNow();
    }
    for (const b of boxes) b.querySelector('input').addEventListener('change', apply);
    granularity.addEventListener('change', apply);

    async function fillFilters() {
      const key = `${range.from}-${range.to}`;
      if (filtersFor === key) return;
      filtersFor = key;
      try {
        const q = `from=${new Date(range.from).toISOString()}&to=${new Date(range.to).toISOString()}&granularity=day&limit=10000`;
        const { rows } = await api(`/v1/stats?${q}`);
        const distinct = (k) => [...new Set(rows.map((r) => r[k]))].sort();
        replace(
          offers,
          distinct('offerId').map((v) => h('option', { value: v })),
        );
        replace(
          placements,
          distinct('placement').map((v) => h('option', { value: v })),
        );
      } catch {
        // Suggestions only: the filters work without them.
      }
    }

    function drawCharts(buckets) {
      const wanted = COLUMNS.filter((c) => chosen.has(c));
      if ([...charts.keys()].join() !== wanted.join()) {
        for (const c of charts.values()) c.destroy();
        charts = new Map(
          wanted.map((column) => [
            column,
            timeChart({
              testid: `chart-${column}`,
              title: `${column}${MONEY_COLUMNS.has(column) ? ' (money)' : ''}: speed vs batch`,
              series: [
                // Speed wider, under batch: where they agree a blue rim shows around the orange line.
                { label: 'speed', stroke: COLORS.speed, width: 4 },
                { label: 'batch', stroke: COLORS.batch, width: 2 },
              ],
            }),
          ]),
        );
        replace(
          chartsEl,
          wanted.length === 0
            ? notice('empty', 'Choose at least one column to chart.')
            : [...charts.values()].map((c) => c.el),
        );
      }
      const step = STEP_SECONDS[granularity.value];
      const xs = buckets.map((b) => Date.parse(b.bucket) / 1000);
      for (const [column, chart] of charts) {
        const highlight = [];
        buckets.forEach((b, i) => {
          if (b.batch !== null && exact(column, b.speed[column]) !== exact(column, b.batch[column]))
            highlight.push([xs[i] - step / 2, xs[i] + step / 2]);
        });
        chart.update(
          [
            xs,
            buckets.map((b) => plotValue(column, b.speed?.[column])),
            buckets.map((b) => (b.batch === null ? null : plotValue(column, b.batch[column]))),
          ],
          { highlight, range: [range.from / 1000, range.to / 1000] },
        );
      }
    }

    function drawTable(buckets) {
      const rows = [];
      for (const b of buckets) {
        if (b.batch === null) continue;
        for (const column of COLUMNS.filter((c) => chosen.has(c))) {
          const d = difference(column, b.speed[column], b.batch[column]);
          if (d.absolute === 0n) continue;
          rows.push(
            h(
              'tr',
              { testid: 'diff-row', dataset: { bucket: b.bucket, column } },
              h('td', { class: 'nowrap' }, formatTime(b.bucket)),
              h('td', {}, column),
              h('td', { class: 'num' }, formatValue(column, b.speed[column])),
              h('td', { class: 'num' }, formatValue(column, b.batch[column])),
              h('td', { class: 'num deviates' }, d.shown),
              h('td', { class: 'num' }, formatPercent(d.relative)),
              h('td', {}, b.final ? 'final' : 'not final'),
            ),
          );
        }
      }
      const covered = buckets.filter((b) => b.batch !== null).length;
      replace(
        tableEl,
        rows.length > 0
          ? h(
              'table',
              { class: 'data', testid: 'diff-table' },
              h(
                'thead',
                {},
                h(
                  'tr',
                  {},
                  ['bucket (UTC)', 'column', 'speed', 'batch', 'speed − batch', 'relative', 'state'].map((t) =>
                    h('th', {}, t),
                  ),
                ),
              ),
              h('tbody', {}, rows),
            )
          : notice(
              'empty',
              covered === 0
                ? 'No batch run covers this range yet: there is nothing to compare the speed layer with.'
                : `Speed and batch agree on the chosen columns in all ${formatNumber(covered)} buckets a batch run covers.`,
              'diff-empty',
            ),
      );
    }

    return {
      async refresh() {
        range ??= await latestDataWindow();
        if (document.activeElement !== from && document.activeElement !== to) {
          from.value = toInputValue(range.from);
          to.value = toInputValue(range.to);
        }
        void fillFilters();
        const q = new URLSearchParams({
          from: new Date(range.from).toISOString(),
          to: new Date(range.to).toISOString(),
          granularity: granularity.value,
        });
        if (offerId.value.trim() !== '') q.set('offerId', offerId.value.trim());
        if (placement.value.trim() !== '') q.set('placement', placement.value.trim());
        const { buckets } = await api(`/v1/stats/series?${q}`);
        const covered = buckets.filter((b) => b.batch !== null);
        const differing = covered.filter((b) => COLUMNS.some((c) => exact(c, b.speed[c]) !== exact(c, b.batch[c])));
        summary.dataset.buckets = String(buckets.length);
        summary.dataset.differing = String(differing.length);
        summary.textContent =
          buckets.length === 0
            ? 'No statistics in this range.'
            : `${formatNumber(buckets.length)} buckets from ${formatTime(buckets[0].bucket)} to ${formatTime(buckets.at(-1).bucket)} UTC; ` +
              `${formatNumber(covered.length)} covered by a batch run (${formatNumber(buckets.filter((b) => b.final).length)} final); ` +
              `${formatNumber(differing.length)} differ in some column. Shaded: buckets where the column differs.`;
        drawCharts(buckets);
        drawTable(buckets);
      },
      destroy() {
        for (const c of charts.values()) c.destroy();
      },
    };
  },
};
