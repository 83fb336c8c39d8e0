// Filters: the event-type patterns and user id that drive the live stream,
// kept in the page's URL (?type=a&type=b&userId=u, the same parameters as
// GET /stream) so a view can be shared.

const TOKEN = /^[A-Za-z0-9_-]+$/;
const MAX_PATTERNS = 20;
const MAX_TYPE_LEN = 128;

/** @typedef {{types: string[], userId: string}} Filters */

/** Reads the filters from a query string. */
export function fromSearch(search) {
  const q = new URLSearchParams(search);
  const types = q.getAll('type').flatMap(splitTypes);
  return { types: [...new Set(types)], userId: (q.get('userId') || '').trim() };
}

/** Splits a comma- or space-separated list of patterns. */
export function splitTypes(text) {
  return String(text).split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
}

/** The query parameters of filters, in the order GET /stream reads them. */
export function toParams(f) {
  const q = new URLSearchParams();
  for (const t of f.types) q.append('type', t);
  if (f.userId) q.set('userId', f.userId);
  return q;
}

/** Writes the filters into the page's URL without a navigation. */
export function writeURL(f) {
  const q = toParams(f).toString();
  const url = location.pathname + (q ? '?' + q : '') + location.hash;
  history.replaceState(null, '', url);
}

/**
 * Checks one pattern as the gateway does: dot-separated tokens of letters,
 * digits, '_' or '-', a token may be '*', the last token may be '>'.
 * Returns an error message, or '' when the pattern is valid.
 */
export function checkPattern(p) {
  if (p.length > MAX_TYPE_LEN) return `"${p}" is longer than ${MAX_TYPE_LEN} characters`;
  const tokens = p.split('.');
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t === '*') continue;
    if (t === '>') {
      if (i === tokens.length - 1) continue;
      return `"${p}": '>' may only be the last token`;
    }
    if (!TOKEN.test(t)) return `"${p}" is not an event type pattern (letters, digits, _ or - between dots, or * and >)`;
  }
  return '';
}

/** Every problem with a set of filters, as messages. */
export function problems(f) {
  const out = f.types.map(checkPattern).filter(Boolean);
  if (f.types.length > MAX_PATTERNS) out.push(`at most ${MAX_PATTERNS} type patterns`);
  if (f.userId.length > 256) out.push('user id is longer than 256 characters');
  return out;
}

/** Whether a pattern has a wildcard token. */
export function isWildcard(p) {
  return p.split('.').some((t) => t === '*' || t === '>');
}

/** Pattern matching with NATS semantics ('*' one token, trailing '>' one or more). */
export function matchType(pattern, type) {
  const p = pattern.split('.');
  const t = type.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return t.length > i;
    if (i >= t.length) return false;
    if (p[i] !== '*' && p[i] !== t[i]) return false;
  }
  return p.length === t.length;
}

/** Whether an event passes the filters. */
export function matches(f, ev) {
  if (f.userId && ev.userId !== f.userId) return false;
  return f.types.length === 0 || f.types.some((p) => matchType(p, ev.eventType || ''));
}

/** A short human description of the filters. */
export function describe(f) {
  const parts = [];
  if (f.types.length) parts.push('type ' + f.types.join(', '));
  if (f.userId) parts.push('user ' + f.userId);
  return parts.length ? parts.join(' · ') : 'all events';
}
