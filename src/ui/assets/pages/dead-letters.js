// Dead letters: per consumer group, the records that failed permanently (error, attempts, when,
// a preview of the value) with a Replay button each (admin token), and the collector's rejected
// lines with their reasons.
import { api } from '../api.js';
import { badge, formatNumber, formatTime, h, notice, replace } from '../format.js';

/** Dead letters listed per group, newest first. */
const SHOWN = 200;
const enc = encodeURIComponent;
const clip = (s, n) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** The dead letters page. */
export const deadLettersPage = {
  id: 'dead-letters',
  title: 'Dead letters',
  refreshMs: 5000,
  mount(root, { refreshNow }) {
    const groupsEl = h('div', {});
    const lettersEl = h('div', {});
    const rejectedEl = h('div', {});
    replace(
      root,
      h('h2', {}, 'Consumer groups'),
      groupsEl,
      lettersEl,
      h('h2', {}, 'Rejected input (collector)'),
      rejectedEl,
    );
    const outcomes = new Map(); // `${group}/${id}` -> { ok, text }: kept across refreshes
    const busy = new Set();

    async function replay(group, id) {
      const key = `${group}/${id}`;
      busy.add(key);
      outcomes.set(key, { ok: true, text: 'replaying…' });
      void refreshNow();
      try {
        const { replayed } = await api(`/v1/dead-letters/${enc(group)}/replay`, {
          method: 'POST',
          body: { ids: [id] },
        });
        outcomes.set(
          key,
          replayed > 0
            ? { ok: true, text: `replayed: back on its topic, ${group} processes it again` }
            : { ok: false, text: 'nothing replayed: it was replayed already' },
        );
      } catch (e) {
        outcomes.set(key, { ok: false, text: `replay failed: ${e.message}` });
      } finally {
        busy.delete(key);
        void refreshNow();
      }
    }

    function letterRow(group, l) {
      const key = `${group}/${l.id}`;
      const outcome = outcomes.get(key);
      return h(
        'tr',
        { testid: 'dlq-row', dataset: { group, id: String(l.id), replayed: String(l.replayed) } },
        h('td', { class: 'num' }, String(l.id)),
        h('td', {}, `${l.topic}/${l.partition}@${l.offset}`),
        h('td', { class: 'error-text' }, l.error),
        h('td', { class: 'num' }, String(l.attempts)),
        h('td', {}, formatTime(l.failedAt)),
        h('td', {}, h('code', { class: 'preview', title: l.value }, clip(l.value ?? '', 120))),
        h(
          'td',
          {},
          l.replayed ? badge('replayed', 'dlq-state') : badge('dead', 'dlq-state'),
          ' ',
          h(
            'button',
            {
              type: 'button',
              class: 'small',
              testid: `replay-${group}-${l.id}`,
              disabled: l.replayed || busy.has(key),
              onclick: () => replay(group, l.id),
            },
            'Replay',
          ),
          outcome
            ? h('div', { class: outcome.ok ? 'outcome ok' : 'outcome bad', testid: 'replay-outcome' }, outcome.text)
            : null,
        ),
      );
    }

    async function drawGroup(group) {
      const { deadLetters } = await api(`/v1/dead-letters?group=${enc(group.group)}`);
      const newest = [...deadLetters].reverse().slice(0, SHOWN);
      return h(
        'section',
        { class: 'card', testid: `dlq-group-${group.group}` },
        h(
          'h3',
          {},
          `${group.group}: ${formatNumber(group.count)} dead letters, ${formatNumber(group.replayed)} replayed`,
        ),
        deadLetters.length > SHOWN ? h('p', { class: 'muted' }, `The newest ${SHOWN} are listed.`) : null,
        newest.length === 0
          ? notice('empty', 'None.')
          : h(
              'table',
              { class: 'data', testid: `dlq-table-${group.group}` },
              h(
                'thead',
                {},
                h(
                  'tr',
                  {},
                  ['id', 'origin', 'error', 'attempts', 'failed at (UTC)', 'value', ''].map((t) => h('th', {}, t)),
                ),
              ),
              h(
                'tbody',
                {},
                newest.map((l) => letterRow(group.group, l)),
              ),
            ),
      );
    }

    return {
      async refresh() {
        const [{ groups }, rejected] = await Promise.all([
          api('/v1/dead-letters'),
          api('/v1/rejected?limit=100').catch((e) => e),
        ]);
        replace(
          groupsEl,
          groups.length === 0
            ? notice('empty', 'No consumer group has dead letters.', 'dlq-empty')
            : h(
                'table',
                { class: 'data narrow', testid: 'dlq-groups' },
                h(
                  'thead',
                  {},
                  h(
                    'tr',
                    {},
                    ['group', 'dead letters', 'replayed'].map((t) => h('th', {}, t)),
                  ),
                ),
                h(
                  'tbody',
                  {},
                  groups.map((g) =>
                    h(
                      'tr',
                      { testid: 'dlq-group-row', dataset: { group: g.group } },
                      h('td', {}, g.group),
                      h('td', { class: 'num' }, formatNumber(g.count)),
                      h('td', { class: 'num' }, formatNumber(g.replayed)),
                    ),
                  ),
                ),
              ),
        );
        const withLetters = groups.filter((g) => g.count > 0);
        replace(
          lettersEl,
          withLetters.length === 0 && groups.length > 0
            ? notice('empty', 'Every record was processed: nothing failed permanently.', 'dlq-empty')
            : await Promise.all(withLetters.map(drawGroup)),
        );
        if (rejected instanceof Error) {
          replace(rejectedEl, notice('error', `Rejected lines could not be read: ${rejected.message}`));
          return;
        }
        const lines = rejected.rejected ?? [];
        replace(
          rejectedEl,
          lines.length === 0
            ? notice('empty', 'No input was rejected.', 'rejected-empty')
            : h(
                'table',
                { class: 'data', testid: 'rejected-table' },
                h(
                  'thead',
                  {},
                  h(
                    'tr',
                    {},
                    ['at (UTC)', 'request', 'line', 'reason', 'raw'].map((t) => h('th', {}, t)),
                  ),
                ),
                h(
                  'tbody',
                  {},
                  lines.map((r) =>
                    h(
                      'tr',
                      { testid: 'rejected-row' },
                      h('td', {}, formatTime(r.at)),
                      h('td', { class: 'muted small-text' }, r.requestId),
                      h('td', { class: 'num' }, String(r.line)),
                      h('td', { class: 'error-text' }, r.reason),
                      h('td', {}, h('code', { class: 'preview', title: r.raw }, clip(r.raw ?? '', 120))),
                    ),
                  ),
                ),
              ),
        );
      },
    };
  },
};
