// Discrepancies: per batch-recalculated interval and column, the speed layer's total, the exact
// (batch) one, their difference and how far apart relatively, from GET /v1/discrepancies.
import { api } from '../api.js';
import { COLUMNS, latestDataDay } from '../data.js';
import { DAY_MS, formatNumber, formatPercent, formatTime, formatValue, h, notice, replace } from '../format.js';

const dateValue = (ms) => new Date(ms).toISOString().slice(0, 10);
const isZero = (v) => v === 0 || v === '0' || v === null;

function intervalName(from, to) {
  const ms = Date.parse(to) - Date.parse(from);
  return ms === 3_600_000 ? 'hour' : ms === DAY_MS ? 'day' : `${formatNumber(ms / 60_000)} min`;
}

/** The discrepancies page. */
export const discrepanciesPage = {
  id: 'discrepancies',
  title: 'Discrepancies',
  refreshMs: 5000,
  mount(root, { refreshNow }) {
    const from = h('input', { type: 'date', testid: 'discrepancies-from' });
    const to = h('input', { type: 'date', testid: 'discrepancies-to' });
    const onlyDeviating = h('input', { type: 'checkbox', testid: 'discrepancies-only' });
    const summary = h('p', { class: 'summary', testid: 'discrepancies-summary' });
    const table = h('div', {});
    let range;
    const apply = (e) => {
      e?.preventDefault();
      const f = Date.parse(`${from.value}T00:00:00Z`);
      const t = Date.parse(`${to.value}T00:00:00Z`);
      if (!Number.isNaN(f) && !Number.isNaN(t)) range = { from: f, to: t + DAY_MS };
      void refreshNow();
    };
    onlyDeviating.addEventListener('change', apply);
    replace(
      root,
      h(
        'form',
        { class: 'controls', onsubmit: apply },
        h('label', {}, 'from (UTC day) ', from),
        h('label', {}, 'to (inclusive) ', to),
        h('button', { type: 'submit', testid: 'discrepancies-apply' }, 'Show'),
        h('label', { class: 'check' }, onlyDeviating, ' only intervals that deviate'),
      ),
      summary,
      table,
    );
    return {
      async refresh() {
        if (range === undefined) {
          const day = await latestDataDay();
          range = { from: day - 6 * DAY_MS, to: day + DAY_MS };
        }
        if (document.activeElement !== from && document.activeElement !== to) {
          from.value = dateValue(range.from);
          to.value = dateValue(range.to - DAY_MS);
        }
        const answer = await api(
          `/v1/discrepancies?from=${new Date(range.from).toISOString()}&to=${new Date(range.to).toISOString()}`,
        );
        const intervals = [...answer.intervals].sort(
          (a, b) => b.from.localeCompare(a.from) || a.to.localeCompare(b.to),
        );
        const columns = COLUMNS.filter((c) => intervals.some((iv) => iv.columns[c] !== undefined));
        const rows = [];
        let deviating = 0;
        for (const iv of intervals) {
          const deviates = columns.some((c) => iv.columns[c] !== undefined && !isZero(iv.columns[c].absolute));
          if (deviates) deviating++;
          if (onlyDeviating.checked && !deviates) continue;
          rows.push(
            h(
              'tr',
              { testid: 'discrepancy-row', dataset: { deviates: String(deviates), from: iv.from, to: iv.to } },
              h(
                'td',
                { class: 'nowrap' },
                formatTime(iv.from),
                h('div', { class: 'muted small-text' }, intervalName(iv.from, iv.to)),
              ),
              h('td', { class: 'muted small-text run-id' }, iv.runId),
              columns.map((column) => {
                const d = iv.columns[column];
                if (d === undefined) return h('td', { class: 'num muted' }, '–');
                if (isZero(d.absolute))
                  return h('td', { class: 'num', title: `speed and batch: ${d.batch}` }, formatValue(column, d.batch));
                return h(
                  'td',
                  {
                    class: 'num deviates',
                    testid: 'deviating-cell',
                    dataset: { column, speed: String(d.speed), batch: String(d.batch), absolute: String(d.absolute) },
                  },
                  h('div', {}, `speed ${formatValue(column, d.speed)}`),
                  h('div', {}, `batch ${formatValue(column, d.batch)}`),
                  h(
                    'div',
                    { class: 'delta' },
                    `${String(d.absolute).startsWith('-') ? '' : '+'}${formatValue(column, d.absolute)} (${d.relative === null ? 'batch 0' : formatPercent(d.relative)})`,
                  ),
                );
              }),
            ),
          );
        }
        summary.dataset.intervals = String(intervals.length);
        summary.dataset.deviating = String(deviating);
        summary.textContent =
          intervals.length === 0
            ? ''
            : `${formatNumber(intervals.length)} recalculated intervals from ${formatTime(answer.from)} to ${formatTime(answer.to)} UTC; ` +
              `${formatNumber(deviating)} where the speed layer deviated from the exact (batch) value in some column: marked, with speed, batch and speed − batch (relative to batch). Unmarked cells: both agree.`;
        replace(
          table,
          intervals.length === 0
            ? notice(
                'empty',
                'No batch run has recalculated an interval in this range yet, so there is nothing to compare.',
                'discrepancies-empty',
              )
            : rows.length === 0
              ? notice(
                  'empty',
                  'The speed layer matched the exact values everywhere in this range.',
                  'discrepancies-empty',
                )
              : h(
                  'table',
                  { class: 'data', testid: 'discrepancy-table' },
                  h(
                    'thead',
                    {},
                    h(
                      'tr',
                      {},
                      h('th', {}, 'interval (UTC)'),
                      h('th', {}, 'run'),
                      columns.map((c) => h('th', { class: 'num' }, c)),
                    ),
                  ),
                  h('tbody', {}, rows),
                ),
        );
      },
    };
  },
};
