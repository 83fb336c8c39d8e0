// The live stream: one EventSource on GET /stream, reopened with
// ?since=<last seq> after every drop, so the page sees each event once and
// misses none. The browser's own retry is not used: it would reconnect with
// the URL the stream was opened with, give up on an HTTP error such as a
// 503 while the gateway starts, and not say how often it happened.

import { streamURL } from './api.js';

const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 5000;

/**
 * @typedef {object} Handlers
 * @property {(ev: object) => void} onEvent  a stored event (envelope + seq + eventType), in seq order, never twice
 * @property {(m: object) => void} onMetrics  the GET /metrics payload
 * @property {(a: object) => void} onAlert  a newly decided alert
 * @property {(s: string) => void} onState  connecting | live | reconnecting | stopped
 * @property {(r: object) => void} onReset  the position was older than the stream's history
 * @property {(reason: string) => void} onDisconnect  why the last connection ended
 * @property {() => void} onFrame  any frame arrived
 */

export class LiveStream {
  /** @param {Handlers} handlers */
  constructor(handlers) {
    this.h = handlers;
    this.es = null;
    this.timer = 0;
    this.params = new URLSearchParams();
    /** The highest seq received, or null before the first event (then the stream starts live). */
    this.lastSeq = null;
    this.attempts = 0;
    this.reconnects = 0;
    this.connectedOnce = false;
    this.duplicates = 0; // frames at or below lastSeq, dropped (should stay 0)
    this.serverReason = '';
    this.state = 'stopped';
  }

  /** (Re)starts the stream for the filter params, resuming after since (null: live only). */
  start(params, since) {
    this.stop();
    this.params = new URLSearchParams(params);
    this.lastSeq = since ?? null;
    this.connectedOnce = false;
    this.attempts = 0;
    this.setState('connecting');
    this.open();
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = 0;
    if (this.es) this.es.close();
    this.es = null;
    this.setState('stopped');
  }

  setState(s) {
    if (this.state === s) return;
    this.state = s;
    this.h.onState(s);
  }

  open() {
    const q = new URLSearchParams(this.params);
    if (this.lastSeq !== null) q.set('since', String(this.lastSeq));
    const es = new EventSource(streamURL(q));
    this.es = es;
    this.serverReason = '';
    const mine = (fn) => (e) => { if (this.es === es) fn(e); };
    es.addEventListener('message', mine((e) => this.message(e)));
    es.addEventListener('metrics', mine((e) => this.named(e, this.h.onMetrics)));
    es.addEventListener('alert', mine((e) => this.named(e, this.h.onAlert)));
    es.addEventListener('reset', mine((e) => this.named(e, this.h.onReset)));
    es.addEventListener('error', mine((e) => this.error(e)));
  }

  message(e) {
    const d = parse(e.data);
    if (!d) return;
    this.h.onFrame();
    if (d.connected === true && d.seq === undefined) {
      this.attempts = 0;
      if (this.connectedOnce) {
        this.reconnects++;
      }
      this.connectedOnce = true;
      this.setState('live');
      return;
    }
    // Event frames carry their seq; a frame without one is a compat frame
    // (the {timestamp,total,recent} snapshot of unfiltered streams), not an
    // event: its lastEventId is the previous event's.
    if (d.seq === undefined) return;
    const seq = Number(d.seq);
    if (!Number.isSafeInteger(seq)) return;
    if (this.lastSeq !== null && seq <= this.lastSeq) {
      this.duplicates++;
      return;
    }
    this.lastSeq = seq;
    this.h.onEvent(d);
  }

  named(e, fn) {
    const d = parse(e.data);
    this.h.onFrame();
    if (d) fn(d);
  }

  error(e) {
    // A server "event: error" frame carries the reason it is ending the
    // stream; the drop itself follows as a plain error event.
    if (typeof e.data === 'string') {
      const d = parse(e.data);
      this.serverReason = (d && d.reason) || e.data;
      return;
    }
    this.es.close();
    this.es = null;
    this.h.onDisconnect(this.serverReason || (this.connectedOnce ? 'connection lost' : 'could not connect'));
    this.setState(this.connectedOnce ? 'reconnecting' : 'connecting');
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempts);
    this.attempts++;
    this.timer = setTimeout(() => { this.timer = 0; this.open(); }, delay * (0.8 + Math.random() * 0.4));
  }
}

function parse(s) {
  try { return JSON.parse(s); } catch { return null; }
}
