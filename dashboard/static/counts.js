// Per-type counts from a GET /metrics payload: the last minute (compat
// byType, by event timestamp) and all time (totals), with a bar per type.
// They count every event; types matching the current filter are marked.

import { matchType } from './filters.js';

const MAX_TYPES = 50;

export function renderCounts(tbody, totalEl, m, filters) {
  const lastMinute = new Map((m.byType || []).map((t) => [t._id, Number(t.count) || 0]));
  const totals = m.totals || {};
  const types = new Set([...lastMinute.keys(), ...Object.keys(totals)]);
  const rows = [...types].map((type) => ({ type, minute: lastMinute.get(type) || 0, all: Number(totals[type]) || 0 }));
  rows.sort((a, b) => b.all - a.all || b.minute - a.minute || a.type.localeCompare(b.type));
  const max = rows.reduce((n, r) => Math.max(n, r.all), 0);
  const fmt = new Intl.NumberFormat();
  const out = rows.slice(0, MAX_TYPES).map((r) => {
    const tr = document.createElement('tr');
    tr.dataset.type = r.type;
    if (filters.types.length && filters.types.some((p) => matchType(p, r.type))) tr.className = 'selected';
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = r.type;
    const minute = td(fmt.format(r.minute), 'num minute');
    const all = td(fmt.format(r.all), 'num all');
    const barCell = td('', 'bar-col');
    const bar = document.createElement('span');
    bar.className = 'bar';
    bar.style.width = (max ? (100 * r.all) / max : 0).toFixed(1) + '%';
    barCell.append(bar);
    tr.append(th, minute, all, barCell);
    return tr;
  });
  if (rows.length > MAX_TYPES) {
    const tr = document.createElement('tr');
    const cellMore = td(`+ ${rows.length - MAX_TYPES} more types`, 'muted');
    cellMore.colSpan = 4;
    tr.append(cellMore);
    out.push(tr);
  }
  tbody.replaceChildren(...out);
  totalEl.textContent = `${fmt.format(Number(m.totalEventsLastMinute) || 0)} last minute · ${fmt.format(Number(m.total) || 0)} all time`;
}

function td(text, cls) {
  const c = document.createElement('td');
  c.textContent = text;
  c.className = cls;
  return c;
}
