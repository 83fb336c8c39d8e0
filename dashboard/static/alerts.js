// The alerts panel: recent alerts from GET /alerts, new ones from the
// stream's "alert" frames, and each channel's delivery status. A gateway
// without GET /alerts (404) shows "alerts not available".
//
// Accepted alert shapes: channels as [{name, status, attempts, lastError,
// sentAt}] or as names with the statuses in deliveries [{channel, status,
// attempts, lastError, sentAt, nextAt}]; seq or eventSeq; createdAt or
// decidedAt (Unix ms).

import { getJSON, HTTPError } from './api.js';

const LIMIT = 50;
const POLL_MS = 15000;
// While a shown alert's deliveries are still pending or retrying, poll
// sooner: delivery status changes are not announced on the stream.
const POLL_UNSETTLED_MS = 3000;
const AFTER_NEW_MS = 2000;
// Worst first: the overall status of an alert is its worst channel's.
const SEVERITY = ['dead', 'failed', 'retrying', 'pending', 'sent'];

export class AlertsPanel {
  constructor(list, note) {
    this.list = list;
    this.note = note;
    this.alerts = new Map(); // id → normalized alert
    this.available = null; // unknown until the first answer
    this.timer = 0;
    this.due = 0;
  }

  /** Loads GET /alerts now and then every POLL_MS while it exists. */
  async load() {
    clearTimeout(this.timer);
    this.timer = 0;
    try {
      const list = await getJSON('alerts', new URLSearchParams({ limit: String(LIMIT) }));
      this.available = true;
      const fresh = new Map();
      for (const a of Array.isArray(list) ? list : []) {
        const n = normalize(a);
        if (n) fresh.set(n.id, n);
      }
      // Alerts announced on the stream but not listed yet stay.
      for (const [id, a] of this.alerts) if (!fresh.has(id) && a.fromStream) fresh.set(id, a);
      this.alerts = fresh;
      this.render();
    } catch (err) {
      if (err instanceof HTTPError && err.status === 404) {
        this.available = false;
        this.render();
        return; // this gateway has no alerts endpoint: stop asking
      }
      this.note.textContent = `alerts unavailable (${err.message}); retrying`;
    }
    const unsettled = [...this.alerts.values()].some((a) => a.status === 'pending' || a.status === 'retrying');
    this.schedule(unsettled ? POLL_UNSETTLED_MS : POLL_MS);
  }

  /** Loads again in ms, unless a load is already due sooner. */
  schedule(ms) {
    const at = Date.now() + ms;
    if (this.timer && this.due <= at) return;
    clearTimeout(this.timer);
    this.due = at;
    this.timer = setTimeout(() => { this.timer = 0; this.load(); }, ms);
  }

  /** Adds (or updates) an alert from an "alert" frame. */
  add(a) {
    const n = normalize(a);
    if (!n) return;
    n.fromStream = true;
    this.alerts.set(n.id, { ...this.alerts.get(n.id), ...n });
    this.render();
    // Fetch its delivery status soon; a burst of alerts costs one load.
    if (this.available) this.schedule(AFTER_NEW_MS);
  }

  render() {
    const items = [...this.alerts.values()].sort((a, b) => b.time - a.time || (b.seq || 0) - (a.seq || 0)).slice(0, LIMIT);
    if (this.available === false && items.length === 0) {
      this.note.textContent = 'alerts not available on this gateway';
      this.list.replaceChildren();
      return;
    }
    const failing = items.filter((a) => a.status === 'dead' || a.status === 'failed').length;
    this.note.textContent = items.length === 0 ? 'no alerts'
      : `${items.length} recent` + (failing ? ` · ${failing} undelivered` : '');
    this.list.replaceChildren(...items.map(item));
  }
}

function normalize(a) {
  if (!a || typeof a !== 'object' || !a.id) return null;
  let channels = [];
  if (Array.isArray(a.deliveries) && a.deliveries.length) {
    channels = a.deliveries.map((d) => ({ ...d, name: d.name || d.channel }));
  } else if (Array.isArray(a.channels)) {
    channels = a.channels.map((c) => (typeof c === 'string' ? { name: c, status: 'pending' } : { ...c, name: c.name || c.channel }));
  }
  const statuses = channels.map((c) => c.status);
  const worst = SEVERITY.find((s) => statuses.includes(s));
  return {
    id: String(a.id),
    rule: a.rule || '',
    // Slack emoji codes at the start (":rotating_light: …") are noise here.
    message: String(a.message || '').replace(/^(:[a-z0-9_+-]+:\s*)+/, ''),
    eventId: a.eventId || '',
    seq: Number(a.seq ?? a.eventSeq) || 0,
    time: Number(a.createdAt ?? a.decidedAt) || 0,
    status: a.status || worst || 'pending',
    channels,
  };
}

function item(a) {
  const li = document.createElement('li');
  li.className = 'alert status-' + a.status;
  li.dataset.id = a.id;
  li.dataset.rule = a.rule;
  const head = document.createElement('div');
  head.className = 'alert-head';
  const rule = document.createElement('strong');
  rule.textContent = a.rule;
  const when = document.createElement('time');
  if (a.time) {
    const d = new Date(a.time);
    when.dateTime = d.toISOString();
    when.textContent = d.toLocaleTimeString();
  }
  const status = chip(a.status, a.status);
  status.title = 'overall delivery status';
  head.append(rule, status, when);
  const msg = document.createElement('p');
  msg.className = 'alert-msg';
  msg.textContent = a.message;
  const meta = document.createElement('p');
  meta.className = 'muted small';
  meta.textContent = [a.seq ? `event seq ${a.seq}` : '', a.eventId ? `id ${a.eventId}` : ''].filter(Boolean).join(' · ');
  const chans = document.createElement('ul');
  chans.className = 'channels';
  chans.setAttribute('aria-label', 'Deliveries');
  for (const c of a.channels) {
    const cli = document.createElement('li');
    const attempts = Number(c.attempts) || 0;
    cli.append(chip(`${c.name}: ${c.status}`, c.status));
    const extra = [];
    if (attempts) extra.push(`${attempts} attempt${attempts === 1 ? '' : 's'}`);
    if (c.sentAt) extra.push('sent ' + new Date(Number(c.sentAt)).toLocaleTimeString());
    if (c.lastError) extra.push(c.lastError);
    if (extra.length) {
      const s = document.createElement('small');
      s.textContent = ' ' + extra.join(' · ');
      cli.append(s);
    }
    chans.append(cli);
  }
  li.append(head, msg, meta, chans);
  return li;
}

function chip(text, status) {
  const s = document.createElement('span');
  s.className = 'chip chip-' + status;
  s.textContent = text;
  return s;
}
