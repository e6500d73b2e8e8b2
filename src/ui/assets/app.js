// The dashboard's shell: a nav bar, hash routes (#/overview, #/explorer, ...), and the refresh
// loop. A page is `{ id, title, refreshMs, mount(root) -> { refresh(), destroy?() } }`; refresh()
// fetches and draws, and what it throws is shown on the page. The next refresh starts after the
// previous one ended, so a slow server is never asked twice at once by one tab.
import { ApiError, askForToken, currentToken, onTokenChange } from './api.js';
import { h, notice, replace } from './format.js';
import { overviewPage } from './pages/overview.js';
import { explorerPage } from './pages/explorer.js';
import { dagsPage } from './pages/dags.js';
import { discrepanciesPage } from './pages/discrepancies.js';
import { deadLettersPage } from './pages/dead-letters.js';
import { alertsPage } from './pages/alerts.js';

const PAGES = [overviewPage, explorerPage, dagsPage, discrepanciesPage, deadLettersPage, alertsPage];

const main = document.getElementById('page');
const nav = document.getElementById('nav');
const lastUpdated = document.getElementById('last-updated');
const autoRefresh = document.getElementById('auto-refresh');
const tokenButton = document.getElementById('token-button');

let current; // { page, instance, timer, generation }
let generation = 0;

function route() {
  const [path, query = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const page = PAGES.find((p) => p.id === path) ?? PAGES[0];
  return { page, params: new URLSearchParams(query) };
}

function drawNav(active) {
  replace(
    nav,
    PAGES.map((p) =>
      h(
        'a',
        {
          href: `#/${p.id}`,
          class: p === active ? 'active' : undefined,
          testid: `nav-${p.id}`,
          'aria-current': p === active ? 'page' : undefined,
        },
        p.title,
      ),
    ),
  );
}

function drawTokenButton() {
  tokenButton.textContent = currentToken() === undefined ? 'token: none' : 'token: set';
}

function describe(e) {
  if (e instanceof ApiError) {
    if (e.status === 0) return e.message;
    return `${e.path.split('?')[0]} answered ${e.status}: ${e.message}`;
  }
  return `The page failed: ${e instanceof Error ? e.message : String(e)}`;
}

async function refresh(mine) {
  if (current?.generation !== mine) return;
  if (current.running) {
    current.again = true; // e.g. a token was entered while a refresh waited for it
    return;
  }
  const { instance, errorBox, page } = current;
  clearTimeout(current.timer);
  current.running = true;
  try {
    await instance.refresh();
    if (current?.generation !== mine) return;
    replace(errorBox);
    main.dataset.loaded = 'true';
    main.dataset.refreshes = String(Number(main.dataset.refreshes ?? '0') + 1);
    lastUpdated.textContent = `updated ${new Date().toISOString().slice(11, 19)} UTC`;
  } catch (e) {
    if (current?.generation !== mine) return;
    replace(errorBox, notice('error', describe(e), 'page-error'));
    lastUpdated.textContent = 'update failed';
  } finally {
    if (current?.generation === mine) current.running = false;
  }
  if (current.again) {
    current.again = false;
    void refresh(mine);
  } else if (autoRefresh.checked) current.timer = setTimeout(() => refresh(mine), page.refreshMs ?? 5000);
}

function show() {
  const { page, params } = route();
  if (current !== undefined) {
    clearTimeout(current.timer);
    current.instance.destroy?.();
  }
  drawNav(page);
  document.title = `${page.title} · reckon`;
  const errorBox = h('div', { class: 'page-errors' });
  const body = h('div', { class: 'page-body' });
  replace(main, h('h1', {}, page.title), errorBox, body);
  main.dataset.page = page.id;
  delete main.dataset.loaded;
  main.dataset.refreshes = '0';
  const mine = ++generation;
  const instance = page.mount(body, { params, refreshNow: () => refresh(mine) });
  current = { page, instance, errorBox, generation: mine, timer: undefined, running: false, again: false };
  void refresh(mine);
}

autoRefresh.addEventListener('change', () => {
  if (current === undefined) return;
  clearTimeout(current.timer);
  if (autoRefresh.checked) void refresh(current.generation);
});
tokenButton.addEventListener('click', () => void askForToken('Enter the read or admin token of this reckon server.'));
onTokenChange(() => {
  drawTokenButton();
  if (current !== undefined) void refresh(current.generation);
});
window.addEventListener('hashchange', show);
drawTokenButton();
show();
