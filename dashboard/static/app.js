// Kiln dashboard: wires the filters, the live stream and the panels.
//
// Start-up (and every filter change): GET /events (recent history) and
// GET /metrics in parallel, then GET /stream?since=<seq> so the stream
// replays whatever the history did not include and goes live with no gap;
// the table drops any seq it already shows, so there is no duplicate either.

import * as F from './filters.js';
import { getJSON, HTTPError, readKey, setReadKey } from './api.js';
import { LiveStream } from './stream.js';
import { EventsTable } from './table.js';
import { RateChart } from './chart.js';
import { renderCounts } from './counts.js';
import { AlertsPanel } from './alerts.js';
import { OrdersPanel } from './orders.js';
import { SchemasPanel } from './schemas.js';

const HISTORY_LIMIT = 200;
// With a wildcard pattern GET /events (exact types only) is asked without a
// type filter, and the page filters the larger answer itself.
const HISTORY_WILDCARD_LIMIT = 500;
// The history projection may trail the counters' checkpoint a little: the
// stream resumes at most this far before asOfSeq when the history has less.
const SINCE_MARGIN = 1000;
const FACTS_MS = 100;

const $ = (id) => document.getElementById(id);

const state = {
  filters: F.fromSearch(location.search),
  paused: false,
  asOfSeq: null,
  lagSeq: null, // lastSeq when the latest metrics frame arrived − its asOfSeq
  lastEventAt: 0,
  lastFrameAt: 0,
  disconnect: null, // {reason, at}
  generation: 0,
  factsTimer: 0,
};

const table = new EventsTable({
  tbody: $('events-body'),
  empty: $('events-empty'),
  note: $('events-note'),
  dialog: $('detail'),
  dialogJSON: $('detail-json'),
  dialogTitle: $('detail-title'),
});
const chart = new RateChart($('chart'));
const alerts = new AlertsPanel($('alerts-list'), $('alerts-note'));
const orders = new OrdersPanel({ orders: $('orders-body'), ordersNote: $('orders-note'), chat: $('chat-list'), chatNote: $('chat-note') });
const schemas = new SchemasPanel({
  body: $('schemas-body'), note: $('schemas-note'), list: $('rejections-list'), listNote: $('rejections-note'),
  auth: $('admin-auth'), authKey: $('admin-key'), authNote: $('admin-note'),
});
const stream = new LiveStream({
  onEvent(ev) {
    state.lastEventAt = Date.now();
    chart.count();
    table.add([ev]);
    scheduleFacts();
  },
  onMetrics: applyMetrics,
  onAlert: (a) => alerts.add(a),
  onState: renderState,
  onReset(r) {
    state.disconnect = { reason: `history trimmed: resumed at seq ${r.firstSeq}`, at: Date.now() };
    scheduleFacts();
  },
  onDisconnect(reason) {
    state.disconnect = { reason, at: Date.now() };
    scheduleFacts();
  },
  onFrame() { state.lastFrameAt = Date.now(); },
});

// ---- loading -------------------------------------------------------------

async function load() {
  const gen = ++state.generation;
  stream.stop();
  table.clear();
  state.lagSeq = null;
  const f = state.filters;
  const wildcard = f.types.some(F.isWildcard);
  const q = new URLSearchParams();
  if (!wildcard) for (const t of f.types) q.append('type', t);
  if (f.userId) q.set('userId', f.userId);
  q.set('limit', String(wildcard ? HISTORY_WILDCARD_LIMIT : HISTORY_LIMIT));
  const [events, metrics] = await Promise.allSettled([getJSON('events', q), getJSON('metrics')]);
  if (gen !== state.generation) return; // the filters changed meanwhile
  if ([events, metrics].some((r) => r.status === 'rejected' && r.reason instanceof HTTPError && r.reason.status === 401)) {
    askForKey();
    renderState();
    return;
  }
  let since = null;
  if (metrics.status === 'fulfilled') {
    applyMetrics(metrics.value);
    since = Math.max(0, (Number(metrics.value.asOfSeq) || 0) - SINCE_MARGIN);
  }
  if (events.status === 'fulfilled' && Array.isArray(events.value) && events.value.length) {
    const list = events.value;
    since = Math.max(since ?? 0, ...list.map((e) => Number(e.seq) || 0));
    table.add(list.filter((e) => F.matches(f, e)).slice(0, HISTORY_LIMIT));
  }
  stream.start(F.toParams(f), since);
}

function applyMetrics(m) {
  if (!m || typeof m !== 'object') return;
  state.asOfSeq = Number(m.asOfSeq) || 0;
  if (stream.lastSeq !== null) state.lagSeq = Math.max(0, stream.lastSeq - state.asOfSeq);
  renderCounts($('counts-body'), $('counts-total'), m, state.filters);
  chart.setSeries(m.series);
  chart.tick();
  scheduleFacts();
}

// ---- header, health ------------------------------------------------------

function renderState() {
  const conn = stream.state === 'stopped' ? 'connecting' : stream.state;
  const shown = state.paused ? 'paused' : conn;
  const badge = $('state');
  badge.textContent = shown;
  badge.className = 'badge badge-' + shown;
  document.body.dataset.state = shown;
  $('h-state').textContent = conn + (state.paused ? ' (table paused)' : '');
  scheduleFacts();
}

function scheduleFacts() {
  if (!state.factsTimer) state.factsTimer = setTimeout(renderFacts, FACTS_MS);
}

function renderFacts() {
  clearTimeout(state.factsTimer);
  state.factsTimer = 0;
  const seq = stream.lastSeq;
  const lag = state.lagSeq === null ? '–' : `${state.lagSeq} events`;
  $('fact-seq').textContent = $('h-seq').textContent = seq === null ? '–' : String(seq);
  $('fact-lag').textContent = state.lagSeq === null ? '–' : String(state.lagSeq);
  $('h-lag').textContent = state.lagSeq === null ? '–' : `${lag} newer than the counters' checkpoint`;
  $('h-asof').textContent = state.asOfSeq === null ? '–' : String(state.asOfSeq);
  $('fact-reconnects').textContent = $('h-reconnects').textContent = String(stream.reconnects);
  $('h-last-event').textContent = ago(state.lastEventAt);
  $('h-last-frame').textContent = ago(state.lastFrameAt);
  $('h-disconnect').textContent = state.disconnect ? `${state.disconnect.reason}, ${ago(state.disconnect.at)}` : '–';
  document.body.dataset.lastSeq = seq === null ? '' : String(seq);
  document.body.dataset.reconnects = String(stream.reconnects);
  document.body.dataset.duplicates = String(stream.duplicates);
}

function ago(t) {
  if (!t) return '–';
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  if (s < 1) return 'just now';
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  return new Date(t).toLocaleTimeString();
}

// ---- controls ------------------------------------------------------------

function showFilters() {
  $('f-type').value = state.filters.types.join(', ');
  $('f-user').value = state.filters.userId;
}

$('filters').addEventListener('submit', (e) => {
  e.preventDefault();
  const f = { types: [...new Set(F.splitTypes($('f-type').value))], userId: $('f-user').value.trim() };
  const errs = F.problems(f);
  const input = $('f-type');
  $('f-type-error').textContent = errs.join('; ');
  input.setAttribute('aria-invalid', errs.length ? 'true' : 'false');
  if (errs.length) {
    input.focus();
    return;
  }
  state.filters = f;
  F.writeURL(f);
  load();
});

$('f-clear').addEventListener('click', () => {
  $('f-type').value = '';
  $('f-user').value = '';
  $('filters').requestSubmit();
});

$('pause').addEventListener('click', () => {
  state.paused = !state.paused;
  const b = $('pause');
  b.textContent = state.paused ? 'Resume' : 'Pause';
  b.setAttribute('aria-pressed', String(state.paused));
  table.setPaused(state.paused);
  renderState();
});

$('detail-close').addEventListener('click', () => $('detail').close());
$('detail-copy').addEventListener('click', async () => {
  try { await navigator.clipboard.writeText($('detail-json').textContent); } catch { /* needs a secure context */ }
});
$('detail').addEventListener('click', (e) => {
  if (e.target === $('detail')) $('detail').close(); // a click on the backdrop
});

function askForKey() {
  const form = $('auth');
  form.hidden = false;
  $('auth-key').value = readKey();
  $('auth-key').focus();
}

$('auth').addEventListener('submit', (e) => {
  e.preventDefault();
  setReadKey($('auth-key').value.trim());
  $('auth').hidden = true;
  load();
  alerts.load();
  orders.load();
  schemas.load();
});

window.addEventListener('popstate', () => {
  state.filters = F.fromSearch(location.search);
  showFilters();
  load();
});

// ---- start ---------------------------------------------------------------

showFilters();
renderState();
setInterval(() => { chart.tick(); renderFacts(); }, 1000);
load();
alerts.load();
orders.load();
schemas.load();
