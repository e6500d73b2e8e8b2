// Alerts: what the scheduler and the checks raised (SLA misses, failed runs, discrepancies,
// anomalies), newest first, with the state of their delivery to the alert sinks.
import { api } from '../api.js';
import { badge, formatNumber, formatTime, h, notice, replace } from '../format.js';

/** The alerts page. */
export const alertsPage = {
  id: 'alerts',
  title: 'Alerts',
  refreshMs: 5000,
  mount(root, { refreshNow }) {
    const kind = h('select', { testid: 'alerts-kind' }, h('option', { value: '' }, 'every kind'));
    const summary = h('p', { class: 'summary', testid: 'alerts-summary' });
    const table = h('div', {});
    replace(root, h('div', { class: 'controls' }, h('label', {}, 'kind ', kind)), summary, table);
    kind.addEventListener('change', () => void refreshNow());
    return {
      async refresh() {
        const { alerts } = await api('/v1/alerts');
        const kinds = [...new Set(alerts.map((a) => a.kind))].sort();
        const chosen = kind.value;
        replace(
          kind,
          h('option', { value: '' }, 'every kind'),
          kinds.map((k) => h('option', { value: k, selected: k === chosen }, k)),
        );
        const shown = alerts.filter((a) => chosen === '' || a.kind === chosen).reverse();
        const undelivered = alerts.filter((a) => a.state !== 'delivered').length;
        summary.textContent =
          alerts.length === 0
            ? ''
            : `${formatNumber(alerts.length)} alerts, ${formatNumber(undelivered)} not delivered (yet).`;
        replace(
          table,
          shown.length === 0
            ? notice(
                'empty',
                alerts.length === 0 ? 'No alerts: nothing needed attention.' : 'No alert of this kind.',
                'alerts-empty',
              )
            : h(
                'table',
                { class: 'data', testid: 'alerts-table' },
                h(
                  'thead',
                  {},
                  h(
                    'tr',
                    {},
                    [
                      'created (UTC)',
                      'kind',
                      'source',
                      'message',
                      'delivery',
                      'attempts',
                      'delivered at / last error',
                    ].map((t) => h('th', {}, t)),
                  ),
                ),
                h(
                  'tbody',
                  {},
                  shown.map((a) =>
                    h(
                      'tr',
                      { testid: 'alert-row', dataset: { kind: a.kind, state: a.state } },
                      h('td', {}, formatTime(a.created_at)),
                      h('td', {}, a.kind),
                      h('td', { class: 'muted' }, a.source),
                      h('td', {}, a.message),
                      h('td', {}, badge(a.state)),
                      h('td', { class: 'num' }, String(a.attempts)),
                      h(
                        'td',
                        { class: a.last_error ? 'error-text' : 'muted' },
                        a.delivered_at ? formatTime(a.delivered_at) : (a.last_error ?? '—'),
                      ),
                    ),
                  ),
                ),
              ),
        );
      },
    };
  },
};
