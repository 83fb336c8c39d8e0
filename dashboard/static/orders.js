// The orders and chat panels. Orders: the current orders from GET /orders
// (the orders read model), then every order.* event of the stream sets its
// order's status; chat: recent chat.message / order.chat events from
// GET /events, then the live ones. Both follow a stream of their own,
// GET /stream?type=order.*&type=chat.*, so the page's filter does not hide
// them. A gateway without GET /orders (404) shows "orders not available".

import { getJSON, HTTPError } from './api.js';
import { LiveStream } from './stream.js';

const CHAT_TYPES = ['chat.message', 'order.chat'];
const MAX_ORDERS = 200;
const MAX_CHAT = 100;
// The orders read model may trail the stream: the stream resumes this far
// before the newest sequence the page knows, and older events are ignored.
const SINCE_MARGIN = 1000;

export class OrdersPanel {
  /** @param {{orders: HTMLElement, ordersNote: HTMLElement, chat: HTMLElement, chatNote: HTMLElement}} el */
  constructor(el) {
    this.el = el;
    this.orders = new Map(); // id → {id, status, amount, currency, customerEmail, createdAt, seq}
    this.chat = []; // oldest first: {id, seq, author, text, orderId, at}
    this.chatIDs = new Set();
    this.generation = 0;
    const none = () => {};
    this.stream = new LiveStream({
      onEvent: (ev) => this.apply(ev),
      onMetrics: none, onAlert: none, onReset: none, onDisconnect: none, onFrame: none,
      onState: (s) => { document.body.dataset.ordersState = s; },
    });
  }

  /** Loads both lists, then follows the stream from where they end. */
  async load() {
    const gen = ++this.generation;
    this.stream.stop();
    const chatQ = new URLSearchParams({ limit: String(MAX_CHAT) });
    for (const t of CHAT_TYPES) chatQ.append('type', t);
    const [orders, chat, metrics] = await Promise.allSettled([getJSON('orders'), getJSON('events', chatQ), getJSON('metrics')]);
    if (gen !== this.generation) return;
    // The newest sequence known: the lists' and the counters' checkpoint.
    let since = metrics.status === 'fulfilled' ? Number(metrics.value.asOfSeq) || 0 : 0;
    if (orders.status === 'fulfilled' && Array.isArray(orders.value)) {
      this.orders = new Map();
      for (const o of orders.value) {
        this.orders.set(o.id, { ...o, seq: Number(o.seq) || 0 });
        since = Math.max(since, Number(o.seq) || 0);
      }
      this.ordersNote = '';
    } else {
      const err = orders.reason;
      this.ordersNote = err instanceof HTTPError && err.status === 404 ? 'orders not available' : `orders unavailable (${err && err.message})`;
    }
    if (chat.status === 'fulfilled' && Array.isArray(chat.value)) {
      for (const ev of [...chat.value].reverse()) this.addChat(ev); // GET /events is newest first
      for (const ev of chat.value) since = Math.max(since, Number(ev.seq) || 0);
    }
    this.render();
    const q = new URLSearchParams([['type', 'order.*'], ['type', 'chat.*'], ['alerts', '0']]);
    // Nothing known (an empty stream, or no answers): start live.
    this.stream.start(q, since > 0 ? Math.max(0, since - SINCE_MARGIN) : null);
  }

  /** One stored event of the panels' stream. */
  apply(ev) {
    const type = String(ev.eventType || '');
    if (CHAT_TYPES.includes(type)) {
      this.addChat(ev);
    } else if (type.startsWith('order.')) {
      const m = ev.metadata || {};
      const seq = Number(ev.seq) || 0;
      if (typeof m.id !== 'string' || !m.id) return;
      const cur = this.orders.get(m.id) || { id: m.id, status: '', amount: 0, seq: 0 };
      if (seq <= cur.seq) return; // the list already has this or a later status
      const next = { ...cur, seq };
      if (typeof m.status === 'string' && m.status) next.status = m.status;
      if (type === 'order.created') {
        for (const k of ['amount', 'currency', 'customerEmail', 'createdAt']) if (m[k] !== undefined) next[k] = m[k];
      }
      this.orders.set(m.id, next);
    } else {
      return;
    }
    this.render();
  }

  addChat(ev) {
    if (!ev || this.chatIDs.has(ev.id)) return;
    const m = ev.metadata || {};
    this.chatIDs.add(ev.id);
    this.chat.push({ id: ev.id, seq: Number(ev.seq) || 0, author: String(m.author || ev.userId || ''), text: String(m.text ?? ''),
      orderId: String(m.orderId || ''), at: String(m.createdAt || m.sentAt || new Date(Number(ev.timestamp) || 0).toISOString()) });
    this.chat.sort((a, b) => a.seq - b.seq);
    while (this.chat.length > MAX_CHAT) this.chatIDs.delete(this.chat.shift().id);
  }

  render() {
    const rows = [...this.orders.values()]
      .sort((a, b) => String(b.createdAt || '').localeCompare(String(a.createdAt || '')) || b.seq - a.seq)
      .slice(0, MAX_ORDERS)
      .map((o) => {
        const tr = document.createElement('tr');
        tr.dataset.id = o.id;
        tr.dataset.status = o.status || '';
        const amount = Number.isFinite(Number(o.amount)) ? Number(o.amount).toFixed(2) + (o.currency ? ' ' + o.currency : '') : '';
        const status = cell('td', '', 'status');
        const chip = document.createElement('span');
        chip.className = 'chip chip-order-' + (o.status || 'unknown');
        chip.textContent = o.status || '?';
        status.append(chip);
        tr.append(cell('th', o.id, 'id'), status, cell('td', amount, 'num'), cell('td', o.customerEmail || '', 'user'));
        tr.firstChild.scope = 'row';
        return tr;
      });
    this.el.orders.replaceChildren(...rows);
    this.el.ordersNote.textContent = this.ordersNote || `${this.orders.size} orders`;
    const items = this.chat.map((c) => {
      const li = document.createElement('li');
      li.dataset.id = c.id;
      const who = cell('strong', c.author, 'author');
      const text = cell('span', c.text, 'text');
      const when = document.createElement('time');
      when.dateTime = c.at;
      when.textContent = shortTime(c.at);
      li.append(who, text);
      if (c.orderId) li.append(cell('small', 'order ' + c.orderId, 'order'));
      li.append(when);
      return li;
    });
    this.el.chat.replaceChildren(...items);
    this.el.chat.scrollTop = this.el.chat.scrollHeight;
    this.el.chatNote.textContent = this.chat.length ? `${this.chat.length} recent` : 'no messages yet';
  }
}

function cell(tag, text, cls) {
  const c = document.createElement(tag);
  c.textContent = text;
  if (cls) c.className = cls;
  return c;
}

function shortTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString();
}
