// The schemas panel and the rejections list. Per registered event type
// (GET /schemas): its latest version, compatibility and enforcement, when
// an event of it was last stored and how many this minute; and from the
// REJECTIONS stream (GET /rejections/summary over the last hour): refused
// events per minute and the fields that fail most, each with its newest
// example. Below, the newest refused or quarantined events
// (GET /rejections) with their reasons and body.
//
// The rejections routes need an admin key (the bodies may hold personal
// data): on a 401 the panel asks for one and keeps it for this tab only.
// A gateway without the registry (no JetStream: 404) shows "schemas not
// available".

import { adminKey, getJSON, HTTPError, setAdminKey } from './api.js';

const POLL_MS = 10000;
const WINDOW = '1h';
const REJECTIONS_LIMIT = 20;
const INVALID_TYPE = '(no valid type)';

export class SchemasPanel {
  /** @param {{body: HTMLElement, note: HTMLElement, list: HTMLElement, listNote: HTMLElement, auth: HTMLFormElement, authKey: HTMLInputElement, authNote: HTMLElement}} el */
  constructor(el) {
    this.el = el;
    this.timer = 0;
    this.loading = null;
    this.again = false;
    el.auth.addEventListener('submit', (e) => {
      e.preventDefault();
      setAdminKey(el.authKey.value.trim());
      el.authKey.value = '';
      el.auth.hidden = true;
      this.load();
    });
  }

  /** Loads the three reads now and then every POLL_MS. */
  load() {
    clearTimeout(this.timer);
    if (this.loading) {
      this.again = true; // e.g. a key entered meanwhile: load once more after
      return this.loading;
    }
    this.loading = this.fetch().finally(() => {
      this.loading = null;
      if (this.again) {
        this.again = false;
        this.load();
        return;
      }
      this.timer = setTimeout(() => this.load(), POLL_MS);
    });
    return this.loading;
  }

  async fetch() {
    const [types, summary, recent] = await Promise.allSettled([
      getJSON('schemas'),
      getJSON('rejections/summary', new URLSearchParams({ since: WINDOW, top: '3' }), { admin: true }),
      getJSON('rejections', new URLSearchParams({ limit: String(REJECTIONS_LIMIT) }), { admin: true }),
    ]);
    const denied = [summary, recent].find((r) => r.status === 'rejected' && r.reason instanceof HTTPError && (r.reason.status === 401 || r.reason.status === 403));
    this.askForKey(denied && denied.reason);
    const bySummary = new Map();
    if (summary.status === 'fulfilled') {
      for (const t of summary.value.types || []) bySummary.set(t.type, t);
    }
    this.renderTypes(types, bySummary, summary);
    this.renderRejections(recent);
    document.body.dataset.schemasState = types.status === 'fulfilled' ? 'loaded' : 'unavailable';
  }

  /** Shows the admin key form when the rejections were refused. */
  askForKey(err) {
    const { auth, authNote, authKey } = this.el;
    if (!err) {
      auth.hidden = true;
      return;
    }
    if (err.status === 403 && /admin-keys-required$/.test(err.type)) {
      auth.hidden = true;
      this.el.listNote.textContent = 'rejections need an admin key: set KILN_ADMIN_KEYS on the gateway';
      return;
    }
    authNote.textContent = adminKey() ? 'That admin key is not accepted.' : 'Rejected events need an admin key (KILN_ADMIN_KEYS).';
    if (auth.hidden) {
      auth.hidden = false;
      authKey.focus({ preventScroll: true });
    }
  }

  renderTypes(types, bySummary, summary) {
    const { body, note } = this.el;
    if (types.status === 'rejected') {
      const err = types.reason;
      note.textContent = err instanceof HTTPError && err.status === 404 ? 'schemas not available on this gateway' : `schemas unavailable (${err && err.message}); retrying`;
      return;
    }
    const list = Array.isArray(types.value) ? types.value : [];
    const rows = list.map((t) => typeRow(t, bySummary.get(t.type)));
    // Refused types with no schema of their own (unknown types refused,
    // envelope failures) are shown too: they fail as much as the others.
    const known = new Set(list.map((t) => t.type));
    for (const [name, s] of bySummary) {
      if (!known.has(name)) rows.push(typeRow({ type: name }, s));
    }
    body.replaceChildren(...rows);
    const parts = [`${list.length} types`];
    if (summary.status === 'fulfilled') {
      const s = summary.value;
      parts.push(`${s.total} refused in the last ${WINDOW}` + (s.truncated ? ` (newest ${s.scanned} read)` : ''));
    }
    note.textContent = parts.join(' · ');
  }

  renderRejections(recent) {
    const { list, listNote } = this.el;
    if (recent.status === 'rejected') {
      const err = recent.reason;
      if (!(err instanceof HTTPError && (err.status === 401 || err.status === 403))) {
        listNote.textContent = err instanceof HTTPError && err.status === 404 ? 'rejections not available on this gateway' : `rejections unavailable (${err && err.message})`;
      } else if (err.status === 401) {
        listNote.textContent = 'needs an admin key';
      }
      list.replaceChildren();
      return;
    }
    const items = Array.isArray(recent.value) ? recent.value : [];
    listNote.textContent = items.length ? `newest ${items.length}` : 'no refused events';
    list.replaceChildren(...items.map(rejectionItem));
  }
}

function typeRow(t, s) {
  const tr = document.createElement('tr');
  tr.dataset.type = t.type;
  tr.dataset.latest = String(t.latest || 0);
  tr.dataset.refused = String(s ? s.refused : 0);
  const name = document.createElement('th');
  name.scope = 'row';
  name.textContent = t.type || INVALID_TYPE;
  const version = cell('version', t.latest ? `v${t.latest}` : 'no schema');
  if (t.latest) version.title = `${t.latest} version${t.latest === 1 ? '' : 's'}`;
  const mode = cell('mode', t.compatibility || '–');
  const enf = cell('enforcement');
  if (t.enforcement) enf.append(chip(t.enforcement, 'enf-' + t.enforcement));
  else enf.textContent = '–';
  const seen = cell('last-seen');
  if (t.lastSeen) {
    const d = new Date(Number(t.lastSeen));
    const time = document.createElement('time');
    time.dateTime = d.toISOString();
    time.textContent = when(d);
    time.title = 'event time of the newest stored event' + (t.lastReceived ? `; received ${new Date(Number(t.lastReceived)).toLocaleString()}` : '');
    seen.append(time);
  } else {
    seen.textContent = t.stored > 0 ? 'before the recent cache' : (t.stored === 0 ? 'never' : '–');
  }
  const stored = cell('num stored', t.lastMinute === undefined ? '–' : String(t.lastMinute));
  stored.title = t.stored === undefined ? '' : `${t.stored} stored in all`;
  const refused = cell('num refused', s ? rate(s.perMinute) : '0');
  if (s) {
    const n = document.createElement('small');
    n.textContent = ` (${s.refused})`;
    refused.append(n);
  }
  if (s) refused.title = `${s.refused} in the window (${s.rejected} rejected, ${s.quarantined} quarantined), ${s.lastMinute} in the last minute`;
  const fields = cell('fields');
  if (s && s.fields.length) {
    const ul = document.createElement('ul');
    for (const f of s.fields) {
      const li = document.createElement('li');
      li.dataset.field = f.field;
      const code = document.createElement('code');
      code.textContent = f.field || '(event)';
      const n = document.createElement('span');
      n.className = 'count';
      n.textContent = ` ×${f.count} `;
      const ex = document.createElement('small');
      ex.className = 'example';
      ex.textContent = f.example.message + (f.example.id ? ` (id ${f.example.id})` : ` (seq ${f.example.seq})`);
      li.append(code, n, ex);
      ul.append(li);
    }
    fields.append(ul);
  }
  if (s && s.refused) tr.classList.add('failing');
  tr.append(name, version, mode, enf, seen, stored, refused, fields);
  return tr;
}

function rejectionItem(r) {
  const li = document.createElement('li');
  li.className = 'rejection outcome-' + r.outcome;
  li.dataset.id = r.id || '';
  li.dataset.seq = String(r.seq);
  const head = document.createElement('div');
  head.className = 'rejection-head';
  const type = document.createElement('strong');
  type.textContent = r.eventType || INVALID_TYPE;
  const t = document.createElement('time');
  const d = new Date(r.time);
  t.dateTime = d.toISOString();
  t.textContent = d.toLocaleTimeString();
  head.append(type, chip(r.outcome, 'enf-' + (r.outcome === 'quarantined' ? 'quarantine' : 'reject')));
  if (r.id) {
    const id = document.createElement('small');
    id.textContent = 'id ' + r.id;
    head.append(id);
  }
  head.append(t);
  const reasons = document.createElement('ul');
  reasons.className = 'reasons';
  for (const e of r.reasons || []) {
    const rli = document.createElement('li');
    const code = document.createElement('code');
    code.textContent = e.field || '(event)';
    rli.append(code, ' ' + e.message);
    reasons.append(rli);
  }
  const body = document.createElement('details');
  const sum = document.createElement('summary');
  sum.textContent = 'body as sent' + (r.keyId ? ` · key ${r.keyId}` : '');
  const pre = document.createElement('pre');
  pre.textContent = typeof r.body === 'string' ? r.body : JSON.stringify(r.body, null, 2);
  body.append(sum, pre);
  li.append(head, reasons, body);
  return li;
}

function cell(cls, text) {
  const td = document.createElement('td');
  td.className = cls;
  if (text !== undefined) td.textContent = text;
  return td;
}

function chip(text, cls) {
  const s = document.createElement('span');
  s.className = 'chip chip-' + cls;
  s.textContent = text;
  return s;
}

function rate(perMinute) {
  const n = Number(perMinute) || 0;
  if (n === 0) return '0';
  return n >= 10 ? n.toFixed(0) : n >= 0.1 ? n.toFixed(1) : '<0.1';
}

function when(d) {
  const s = Math.round((Date.now() - d.getTime()) / 1000);
  if (s < 0) return d.toLocaleString(); // a timestamp in the future: as sent
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return d.toLocaleDateString();
}
