// DAG runs, per DAG: a grid of the recent runs' task instances (rows: tasks, columns: runs by
// logical date, cells coloured by state), a Gantt chart of one run's task tries (click a run's
// column to choose it; the latest started run by default) and each task's duration per logical
// date. Above them a form recalculates a chosen window of past days and shows its progress per
// day; the window lives in the URL (#/dags?recalcFrom=...&recalcTo=...), so a reload keeps
// showing it. Reads the Airflow-shaped API of src/scheduler (admin token).
import { api } from '../api.js';
import { COLORS, timeChart } from '../charts.js';
import { badge, DAY_MS, formatDuration, formatTime, h, notice, replace, svgElement } from '../format.js';

/** Runs shown in a grid. */
const RECENT_RUNS = 25;
/** The API's page size for runs. */
const PAGE = 10_000;

const enc = encodeURIComponent;
const runKey = (r) => `${r.dag_run_id}|${r.state}|${r.clear_count}|${r.end_date}|${r.pending_clear}`;
const active = (state) => state === 'queued' || state === 'running';

function shortDate(iso) {
  const t = formatTime(iso);
  return t.endsWith(' 00:00:00') ? t.slice(0, 10) : t.slice(5, 16);
}

/** What one DAG's section keeps between refreshes. */
function dagState(dag) {
  return {
    dag,
    cutoff: undefined, // logical date of the oldest run shown: later refreshes ask from there
    runs: [],
    instances: new Map(), // run id -> { key, tasks }
    tries: [],
    triesFor: undefined,
    selected: undefined, // run id chosen for the Gantt chart
    trend: undefined,
    trendTasks: undefined,
  };
}

async function recentRuns(s) {
  const base = `/v1/dags/${enc(s.dag.dag_id)}/runs?limit=${PAGE}`;
  let runs = [];
  let from = s.cutoff;
  // Oldest first from the API: page forward until the last page, keep the newest.
  for (let pages = 0; pages < 100; pages++) {
    const { dag_runs: page } = await api(from === undefined ? base : `${base}&logical_date_gte=${enc(from)}`);
    runs = [...runs.filter((r) => from === undefined || r.logical_date < from), ...page].slice(-RECENT_RUNS);
    if (page.length < PAGE) break;
    from = page.at(-1).logical_date;
  }
  s.runs = runs;
  s.cutoff = runs[0]?.logical_date;
}

async function taskInstances(s) {
  const keep = new Map();
  await Promise.all(
    s.runs.map(async (r) => {
      const key = runKey(r);
      const known = s.instances.get(r.dag_run_id);
      if (known !== undefined && known.key === key && !active(r.state)) {
        keep.set(r.dag_run_id, known);
        return;
      }
      const { task_instances: tasks } = await api(
        `/v1/dags/${enc(s.dag.dag_id)}/runs/${enc(r.dag_run_id)}/taskInstances`,
      );
      keep.set(r.dag_run_id, { key, tasks });
    }),
  );
  s.instances = keep;
}

async function taskTries(s) {
  const signature = s.runs.map(runKey).join();
  if (s.triesFor === signature && !s.runs.some((r) => active(r.state))) return;
  const { task_tries: tries } = await api(`/v1/dags/${enc(s.dag.dag_id)}/taskTries?limit=100000`);
  s.tries = tries;
  s.triesFor = signature;
}

function grid(s) {
  const tasks = s.dag.tasks.map((t) => t.task_id);
  if (s.runs.length === 0)
    return notice('empty', `No runs of ${s.dag.dag_id} yet (schedule ${s.dag.schedule_interval}).`, `dag-grid-empty`);
  const cell = (run, taskId) => {
    const ti = s.instances.get(run.dag_run_id)?.tasks.find((t) => t.task_id === taskId);
    const state = ti?.state ?? 'none';
    const title = ti
      ? `${taskId} · ${shortDate(run.logical_date)} · ${state} · try ${ti.try_number}/${ti.max_tries}` +
        (ti.duration !== null ? ` · ${formatDuration(ti.duration)}` : '') +
        (ti.error ? ` · ${ti.error}` : '')
      : `${taskId} · ${shortDate(run.logical_date)} · not scheduled`;
    return h(
      'td',
      {
        class: `cell state-${state}${run.dag_run_id === s.selected ? ' selected' : ''}`,
        testid: 'ti-cell',
        dataset: { state, task: taskId, run: run.dag_run_id },
        title,
      },
      '',
    );
  };
  const table = h(
    'table',
    { class: 'grid', testid: `dag-grid-${s.dag.dag_id}`, dataset: { runs: String(s.runs.length) } },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { class: 'task' }, 'run →'),
        s.runs.map((r) =>
          h(
            'th',
            {
              class: `run state-${r.state}${r.dag_run_id === s.selected ? ' selected' : ''}`,
              testid: 'run-head',
              dataset: { run: r.dag_run_id, state: r.state },
              title: `${r.dag_run_id} · ${r.run_type} · ${r.state}${r.clear_count > 0 ? ` · cleared ${r.clear_count}×` : ''} — click for its Gantt chart`,
            },
            h('button', { type: 'button', class: 'run-button', dataset: { run: r.dag_run_id } }, ''),
          ),
        ),
      ),
    ),
    h(
      'tbody',
      {},
      tasks.map((taskId) =>
        h(
          'tr',
          {},
          h('th', { class: 'task' }, taskId),
          s.runs.map((r) => cell(r, taskId)),
        ),
      ),
    ),
  );
  return h(
    'div',
    {},
    table,
    h(
      'p',
      { class: 'muted small-text' },
      `${s.runs.length} most recent runs by logical date (UTC), ${shortDate(s.runs[0].logical_date)} … ${shortDate(s.runs.at(-1).logical_date)}; click a run's top square for its Gantt chart.`,
    ),
  );
}

function selectedRun(s) {
  let run = s.runs.find((r) => r.dag_run_id === s.selected);
  if (run === undefined) {
    run = [...s.runs].reverse().find((r) => r.start_date !== null) ?? s.runs.at(-1);
    s.selected = run?.dag_run_id;
  }
  return run;
}

function gantt(s, run, width) {
  if (run === undefined) return notice('empty', 'No run to show.', `gantt-empty-${s.dag.dag_id}`);
  const bars = s.tries
    .filter((t) => t.logical_date === run.logical_date && t.start_date !== null)
    .map((t) => ({
      label: `${t.task_id} #${t.try_number}`,
      task: t.task_id,
      tryNumber: t.try_number,
      state: t.state,
      start: Date.parse(t.start_date),
      end: Date.parse(t.end_date ?? t.start_date),
      error: t.error,
    }));
  // A try still going (running, or a sensor waiting to poke again) has no row in the history
  // yet: show it from its task instance, up to now.
  for (const ti of s.instances.get(run.dag_run_id)?.tasks ?? []) {
    const going = ti.state === 'running' || ti.state === 'up_for_reschedule';
    const recorded = bars.some((b) => b.task === ti.task_id && b.tryNumber === ti.try_number);
    if (going && !recorded && ti.start_date !== null)
      bars.push({
        label: `${ti.task_id} #${ti.try_number}`,
        task: ti.task_id,
        tryNumber: ti.try_number,
        state: ti.state,
        start: Date.parse(ti.start_date),
        end: Math.max(Date.now(), Date.parse(ti.start_date)),
      });
  }
  bars.sort((a, b) => a.start - b.start || a.label.localeCompare(b.label));
  const caption = h(
    'p',
    { class: 'muted' },
    `Run ${run.dag_run_id} (${run.run_type}, `,
    badge(run.state),
    `) — logical date ${formatTime(run.logical_date)}, started ${formatTime(run.start_date)}, ended ${formatTime(run.end_date)}` +
      (run.clear_count > 0 ? `, cleared ${run.clear_count}×` : ''),
  );
  if (bars.length === 0)
    return h(
      'div',
      {},
      caption,
      notice('empty', 'No task has started in this run yet.', `gantt-empty-${s.dag.dag_id}`),
    );
  const t0 = Math.min(...bars.map((b) => b.start));
  const t1 = Math.max(...bars.map((b) => b.end), t0 + 1);
  const W = Math.max(420, Math.round(width));
  const LABEL = 170;
  const ROW = 22;
  const H = bars.length * ROW + 34;
  const x = (t) => LABEL + ((t - t0) / (t1 - t0)) * (W - LABEL - 10);
  const svg = svgElement('svg', {
    viewBox: `0 0 ${W} ${H}`,
    width: W,
    height: H,
    class: 'gantt',
    testid: `gantt-${s.dag.dag_id}`,
    'data-bars': bars.length,
  });
  bars.forEach((b, i) => {
    const y = i * ROW + 4;
    const label = svgElement('text', { x: 4, y: y + 14, class: 'gantt-label' });
    label.textContent = b.label;
    svg.append(label);
    const rect = svgElement('rect', {
      x: x(b.start),
      y,
      width: Math.max(2, x(b.end) - x(b.start)),
      height: ROW - 6,
      rx: 3,
      class: `gantt-bar state-${b.state}`,
      testid: 'gantt-bar',
      'data-task': b.task,
      'data-try': b.tryNumber,
      'data-state': b.state,
    });
    const title = svgElement('title');
    title.textContent = `${b.label}: ${b.state}, ${formatTime(new Date(b.start).toISOString())} → ${formatTime(new Date(b.end).toISOString())} (${formatDuration((b.end - b.start) / 1000)})${b.error ? ` — ${b.error}` : ''}`;
    rect.append(title);
    svg.append(rect);
  });
  const axisY = bars.length * ROW + 10;
  svg.append(svgElement('line', { x1: LABEL, x2: W - 10, y1: axisY, y2: axisY, class: 'gantt-axis' }));
  for (let i = 0; i <= 4; i++) {
    const t = t0 + ((t1 - t0) * i) / 4;
    const tick = svgElement('text', {
      x: x(t),
      y: axisY + 16,
      class: 'gantt-tick',
      'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle',
    });
    tick.textContent = i === 0 ? new Date(t).toISOString().slice(11, 19) : `+${formatDuration((t - t0) / 1000)}`;
    svg.append(tick);
  }
  return h('div', {}, caption, svg);
}

function trend(s, slot) {
  const tasks = s.dag.tasks.map((t) => t.task_id);
  // The last try of each (task, logical date).
  const last = new Map();
  for (const t of s.tries) {
    const key = `${t.task_id}|${t.logical_date}`;
    const seen = last.get(key);
    if (seen === undefined || seen.try_number <= t.try_number) last.set(key, t);
  }
  const dates = [...new Set([...last.values()].map((t) => t.logical_date))].sort();
  const xs = dates.map((d) => Date.parse(d) / 1000);
  const ys = tasks.map((task) => dates.map((d) => last.get(`${task}|${d}`)?.duration ?? null));
  if (s.trend === undefined || s.trendTasks !== tasks.join()) {
    s.trend?.destroy();
    s.trendTasks = tasks.join();
    s.trend = timeChart({
      testid: `chart-duration-${s.dag.dag_id}`,
      title: 'Task duration per logical date (seconds, last try)',
      height: 200,
      series: tasks.map((task, i) => ({
        label: task,
        stroke: COLORS.palette[i % COLORS.palette.length],
        points: true,
      })),
      emptyText: 'No finished task yet.',
    });
    replace(slot, s.trend.el);
  }
  s.trend.update([xs, ...ys]);
}

/** The DAG whose runs recalculate a past day (one run per UTC day). */
const RECALC_DAG = 'recalculate-daily';
/** How often the progress panel asks while a day of its window is not done. */
const RECALC_POLL_MS = 1000;

const isDay = (s) => typeof s === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(s);
const dayOf = (iso) => String(iso).slice(0, 10);
const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
/** A run is done when it ended and no clear of it is waiting (as the server counts it). */
const runDone = (r) => (r.state === 'success' || r.state === 'failed') && r.pending_clear === null;
/** The state a day's row shows: a cleared run keeps its old state until the scheduler reruns it. */
const dayState = (r) => (r.pending_clear !== null ? 'clearing' : r.state);

/** What one day's run is doing, as lines of text (every text from the server stays text). */
function dayDetail(run) {
  const tasks = run.task_instances ?? [];
  const lines = [];
  for (const t of tasks) {
    const tries = `try ${t.try_number}/${t.max_tries}`;
    if (t.state === 'up_for_reschedule') {
      const since = t.waiting_since === null ? undefined : Date.parse(t.waiting_since);
      lines.push(
        h(
          'div',
          { class: 'recalc-waiting', testid: 'recalc-waiting', dataset: { task: t.task_id } },
          h('span', { class: 'recalc-task' }, t.task_id),
          ' waits for ',
          t.waiting_for ?? 'its next poke',
          since === undefined
            ? null
            : h(
                'span',
                { class: 'muted' },
                ` — since ${formatTime(t.waiting_since)} UTC (${formatDuration(Math.max(0, Date.now() - since) / 1000)} ago)`,
              ),
        ),
      );
    } else if (t.state === 'running')
      lines.push(h('div', {}, h('span', { class: 'recalc-task' }, t.task_id), ` running (${tries})`));
    else if (t.state === 'up_for_retry')
      lines.push(
        h(
          'div',
          { class: 'error-text' },
          h('span', { class: 'recalc-task' }, t.task_id),
          ` failed ${tries}, retrying: `,
          t.error ?? 'no error recorded',
        ),
      );
    else if (t.state === 'failed')
      lines.push(
        h(
          'div',
          { class: 'error-text', testid: 'recalc-failure', dataset: { task: t.task_id } },
          h('span', { class: 'recalc-task' }, t.task_id),
          ` failed (${tries}): `,
          t.error ?? 'no error recorded',
        ),
      );
  }
  if (run.pending_clear !== null)
    lines.unshift(h('div', { class: 'muted' }, 'cleared: reruns once no task of it is running'));
  else if (lines.length === 0 && runDone(run))
    lines.push(
      h(
        'div',
        { class: 'muted' },
        `ended ${formatTime(run.end_date)} UTC` +
          (run.start_date !== null && run.end_date !== null
            ? ` after ${formatDuration((Date.parse(run.end_date) - Date.parse(run.start_date)) / 1000)}`
            : ''),
      ),
    );
  else if (lines.length === 0) lines.push(h('div', { class: 'muted' }, 'queued: waits for a free slot'));
  return lines;
}

function progressPanel(answer, polling) {
  const { total, done, failed } = answer;
  const runs = [...answer.runs].sort((a, b) => a.logical_date.localeCompare(b.logical_date));
  const share = (n) => `${total === 0 ? 0 : (100 * n) / total}%`;
  const last = dayOf(new Date(Date.parse(answer.to) - DAY_MS).toISOString());
  return h(
    'div',
    {
      class: 'recalc-progress',
      testid: 'recalc-progress',
      dataset: { done: String(done), total: String(total), failed: String(failed), from: dayOf(answer.from), to: last },
    },
    h('h3', {}, `${dayOf(answer.from)} … ${last}`, h('span', { class: 'muted' }, ` (${answer.dag_id})`)),
    total === 0
      ? notice('empty', `No ${answer.dag_id} run in this window: submit the form to recalculate it.`, 'recalc-empty')
      : [
          h(
            'div',
            {
              class: 'recalc-bar',
              role: 'progressbar',
              'aria-valuemin': '0',
              'aria-valuemax': String(total),
              'aria-valuenow': String(done),
            },
            h('div', { class: 'recalc-bar-done', style: { width: share(done - failed) } }),
            h('div', { class: 'recalc-bar-failed', style: { width: share(failed) } }),
          ),
          h(
            'p',
            { class: 'summary', testid: 'recalc-summary' },
            `${done} of ${plural(total, 'day')} done` +
              (failed > 0 ? `, ${failed} failed` : '') +
              (done < total ? (polling ? ' — updated every second' : '') : '.'),
          ),
          h(
            'table',
            { class: 'data', testid: 'recalc-days' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ['day (UTC)', 'state', 'tasks done', 'what it is doing'].map((t) => h('th', {}, t)),
              ),
            ),
            h(
              'tbody',
              {},
              runs.map((r) => {
                const tasks = r.task_instances ?? [];
                const state = dayState(r);
                return h(
                  'tr',
                  { testid: 'recalc-day', dataset: { day: dayOf(r.logical_date), state, run: r.dag_run_id } },
                  h('td', { class: 'nowrap' }, dayOf(r.logical_date)),
                  h(
                    'td',
                    { class: 'nowrap' },
                    badge(state, 'recalc-state'),
                    r.clear_count > 0 ? h('span', { class: 'muted' }, ` rerun ${r.clear_count}×`) : null,
                  ),
                  h(
                    'td',
                    { class: 'num' },
                    tasks.length === 0 ? '–' : `${tasks.filter((t) => t.state === 'success').length}/${tasks.length}`,
                  ),
                  h('td', { class: 'recalc-detail' }, dayDetail(r)),
                );
              }),
            ),
          ),
        ],
  );
}

/**
 * The "Recalculate past days" section: a form that POSTs a window of UTC days to
 * `/v1/dags/recalculate-daily/recalculations`, and a panel of that window's progress (GET on the
 * same path), asked every second while a day is not done and on every refresh of the page.
 */
function recalculationSection(params, refreshNow) {
  const yesterday = new Date(Date.now() - DAY_MS).toISOString().slice(0, 10);
  let shownWindow; // { from, to } as UTC days, once chosen (from the URL or the form)
  if (isDay(params.get('recalcFrom')) && isDay(params.get('recalcTo')))
    shownWindow = { from: params.get('recalcFrom'), to: params.get('recalcTo') };
  const from = h('input', {
    type: 'date',
    required: true,
    max: yesterday,
    value: shownWindow?.from ?? yesterday,
    testid: 'recalc-from',
  });
  const to = h('input', {
    type: 'date',
    required: true,
    max: yesterday,
    value: shownWindow?.to ?? yesterday,
    testid: 'recalc-to',
  });
  const submit = h('button', { type: 'submit', testid: 'recalc-submit' }, 'Recalculate');
  const message = h('div', { class: 'recalc-message', 'aria-live': 'polite' });
  const panel = h('div', {});
  const el = h(
    'section',
    { class: 'card recalc', testid: 'recalc' },
    h('h2', {}, 'Recalculate past days'),
    h(
      'p',
      { class: 'muted small-text' },
      `Reruns ${RECALC_DAG} for every UTC day of the window (both days included; the last must have ended): ` +
        'a day without a run gets one, an ended run is cleared and reruns whole, a run in progress is left to finish. Safe to repeat.',
    ),
    h(
      'form',
      { class: 'recalc-form', testid: 'recalc-form', onsubmit: post },
      h('label', {}, 'from ', from),
      h('label', {}, 'to ', to),
      submit,
      message,
    ),
    panel,
  );

  const key = (w) => (w === undefined ? '' : `${w.from}|${w.to}`);
  let progress; // { key, answer } of the last GET
  let pollError; // { key, text } of the last failed GET
  let inflight; // the GET under way: callers share it
  let posts = 0; // POSTs that succeeded: a GET asked before the last one is stale
  let timer;
  let destroyed = false;

  const autoRefresh = () => document.getElementById('auto-refresh')?.checked !== false;
  const unfinished = () =>
    pollError === undefined &&
    progress !== undefined &&
    progress.key === key(shownWindow) &&
    progress.answer.total > 0 &&
    progress.answer.done < progress.answer.total;

  function draw() {
    if (shownWindow === undefined) {
      replace(panel);
      return;
    }
    if (pollError?.key === key(shownWindow)) {
      replace(
        panel,
        notice(
          'error',
          `The progress of ${shownWindow.from} … ${shownWindow.to}: ${pollError.text}`,
          'recalc-progress-error',
        ),
      );
      return;
    }
    if (progress?.key !== key(shownWindow)) {
      replace(
        panel,
        notice('empty', `Asking for the progress of ${shownWindow.from} … ${shownWindow.to}…`, 'recalc-loading'),
      );
      return;
    }
    replace(panel, progressPanel(progress.answer, autoRefresh()));
  }

  function schedule() {
    clearTimeout(timer);
    // Every second while some day is not done; else the page's own refresh asks again.
    if (!destroyed && autoRefresh() && unfinished()) timer = setTimeout(() => void poll(), RECALC_POLL_MS);
  }

  function poll() {
    if (shownWindow === undefined || destroyed) return Promise.resolve();
    inflight ??= (async () => {
      const asked = shownWindow;
      const after = posts;
      let answer;
      try {
        const q = new URLSearchParams({ from: asked.from, to: asked.to });
        answer = await api(`/v1/dags/${enc(RECALC_DAG)}/recalculations?${q}`);
      } catch (e) {
        if (after === posts) pollError = { key: key(asked), text: e.message };
      } finally {
        inflight = undefined;
      }
      if (destroyed) return;
      // The window changed or was posted again meanwhile: this answer is stale, ask again.
      if (key(asked) !== key(shownWindow) || after !== posts) return poll();
      if (answer !== undefined) {
        const before = progress?.key === key(asked) ? progress.answer.done : undefined;
        progress = { key: key(asked), answer };
        pollError = undefined;
        // A day just ended: the grids below show it at once rather than at the next refresh.
        if (before !== undefined && answer.done !== before) void refreshNow();
      }
      draw();
      schedule();
    })();
    return inflight;
  }

  async function post(event) {
    event.preventDefault();
    const chosen = { from: from.value, to: to.value };
    submit.disabled = true;
    replace(message, h('span', { class: 'muted' }, 'asking the scheduler…'));
    try {
      const answer = await api(`/v1/dags/${enc(RECALC_DAG)}/recalculations`, { method: 'POST', body: chosen });
      const count = (action) => answer.runs.filter((r) => r.action === action).length;
      replace(
        message,
        h(
          'span',
          { class: 'outcome ok', testid: 'recalc-outcome' },
          `${plural(answer.runs.length, 'day')}: ${count('created')} new, ${count('cleared')} cleared to rerun, ${count('in progress')} already in progress.`,
        ),
      );
    } catch (e) {
      replace(message, notice('error', `Not started: ${e.message}`, 'recalc-error'));
      return;
    } finally {
      submit.disabled = false;
    }
    if (destroyed) return;
    posts++;
    shownWindow = chosen;
    progress = undefined; // from before the POST
    pollError = undefined;
    const q = new URLSearchParams(location.hash.split('?')[1] ?? '');
    q.set('recalcFrom', chosen.from);
    q.set('recalcTo', chosen.to);
    // replaceState fires no hashchange: the page stays mounted.
    history.replaceState(null, '', `#/dags?${q}`);
    draw();
    await poll();
  }

  draw();
  return {
    el,
    /** Asks for the window's progress (never throws: a failure shows in the panel). */
    refresh: poll,
    destroy() {
      destroyed = true;
      clearTimeout(timer);
    },
  };
}

/** The DAG runs page. */
export const dagsPage = {
  id: 'dags',
  title: 'DAG runs',
  refreshMs: 5000,
  mount(root, { params, refreshNow }) {
    const summary = h('div', {});
    const sections = h('div', {});
    const recalc = recalculationSection(params, refreshNow);
    replace(root, summary, recalc.el, sections);
    const states = new Map(); // dag id -> state
    const slots = new Map(); // dag id -> { grid, gantt, trend }

    root.addEventListener('click', (e) => {
      const button = e.target.closest?.('button.run-button, th.run');
      const section = e.target.closest?.('section[data-dag]');
      if (!button || !section) return;
      const s = states.get(section.dataset.dag);
      const run = button.dataset.run ?? button.querySelector('button')?.dataset.run;
      if (s === undefined || run === undefined) return;
      s.selected = run;
      draw(s);
    });

    function draw(s) {
      const slot = slots.get(s.dag.dag_id);
      const run = selectedRun(s);
      replace(slot.grid, grid(s));
      replace(slot.gantt, gantt(s, run, slot.gantt.clientWidth || 600));
      trend(s, slot.trend);
    }

    async function refreshDags() {
      const { dags } = await api('/v1/dags');
      if (dags.length === 0) {
        replace(summary, notice('empty', 'This scheduler has no DAGs.'));
        return;
      }
      for (const dag of dags) {
        const known = states.get(dag.dag_id);
        if (known === undefined) states.set(dag.dag_id, dagState(dag));
        else known.dag = dag;
      }
      for (const s of states.values()) await recentRuns(s);
      await Promise.all([...states.values()].map((s) => Promise.all([taskInstances(s), taskTries(s)])));
      replace(
        summary,
        h(
          'table',
          { class: 'data', testid: 'dags-table' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['DAG', 'schedule', 'tasks', 'latest run', 'state'].map((t) => h('th', {}, t)),
            ),
          ),
          h(
            'tbody',
            {},
            dags.map((d) => {
              const latest = states.get(d.dag_id).runs.at(-1);
              return h(
                'tr',
                { testid: 'dag-row', dataset: { dag: d.dag_id } },
                h('td', {}, h('a', { href: `#/dags`, 'data-jump': d.dag_id }, d.dag_id)),
                h('td', {}, d.schedule_interval),
                h('td', {}, d.tasks.map((t) => t.task_id).join(' → ')),
                h('td', {}, latest ? formatTime(latest.logical_date) : '—'),
                h('td', {}, latest ? badge(latest.state) : 'no runs'),
              );
            }),
          ),
        ),
      );
      for (const a of summary.querySelectorAll('a[data-jump]'))
        a.addEventListener('click', (e) => {
          e.preventDefault();
          document.getElementById(`dag-${a.dataset.jump}`)?.scrollIntoView({ behavior: 'smooth' });
        });
      for (const dag of dags) {
        if (!slots.has(dag.dag_id)) {
          const slot = { grid: h('div', { class: 'grid-wrap' }), gantt: h('div', {}), trend: h('div', {}) };
          slots.set(dag.dag_id, slot);
          sections.append(
            h(
              'section',
              {
                class: 'card dag',
                id: `dag-${dag.dag_id}`,
                testid: `dag-${dag.dag_id}`,
                dataset: { dag: dag.dag_id },
              },
              h('h2', {}, dag.dag_id, ' ', h('span', { class: 'muted' }, dag.schedule_interval)),
              slot.grid,
              h(
                'div',
                { class: 'two' },
                h('div', {}, h('h3', {}, 'Gantt chart of the chosen run'), slot.gantt),
                h('div', {}, h('h3', {}, 'Duration trend'), slot.trend),
              ),
            ),
          );
        }
        draw(states.get(dag.dag_id));
      }
    }

    return {
      async refresh() {
        // The recalculation's panel shows its own failures; the page's come from the DAGs.
        await Promise.all([recalc.refresh(), refreshDags()]);
      },
      destroy() {
        recalc.destroy();
        for (const s of states.values()) s.trend?.destroy();
      },
    };
  },
};
