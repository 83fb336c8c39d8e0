// The gateway's read API, relative to the page so the dashboard also works
// behind a reverse proxy that mounts Kiln under a path.

const KEY_STORAGE = 'kiln.readKey';
// The admin key (KILN_ADMIN_KEYS) reads the rejected events' bodies: it is
// kept for this tab only (sessionStorage), never in localStorage.
const ADMIN_STORAGE = 'kiln.adminKey';

/** An HTTP answer other than 2xx; type is the problem document's. */
export class HTTPError extends Error {
  constructor(status, detail, type = '') {
    super(detail ? `${status}: ${detail}` : `HTTP ${status}`);
    this.status = status;
    this.type = type;
  }
}

/** The read key the user entered, if any (KILN_READ_KEYS). */
export function readKey() {
  try { return localStorage.getItem(KEY_STORAGE) || ''; } catch { return ''; }
}

export function setReadKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch { /* storage disabled: the key lasts for this page only */ }
  sessionKey = key;
}

let sessionKey = readKey();

/** The admin key entered in this tab, if any. */
export function adminKey() {
  try { return sessionStorage.getItem(ADMIN_STORAGE) || ''; } catch { return adminSessionKey; }
}

export function setAdminKey(key) {
  try {
    if (key) sessionStorage.setItem(ADMIN_STORAGE, key);
    else sessionStorage.removeItem(ADMIN_STORAGE);
  } catch { /* storage disabled: the key lasts for this page only */ }
  adminSessionKey = key;
}

let adminSessionKey = adminKey();

/** GETs path (with query params) and decodes the JSON answer; admin sends the admin key (else the read key). */
export async function getJSON(path, params, { signal, admin = false } = {}) {
  const q = params ? params.toString() : '';
  const headers = { Accept: 'application/json' };
  const key = admin ? adminSessionKey || sessionKey : sessionKey;
  if (key) headers.Authorization = 'Bearer ' + key;
  const res = await fetch(path + (q ? '?' + q : ''), { headers, signal, cache: 'no-store' });
  if (!res.ok) {
    let detail = '', type = '';
    try { ({ detail = '', type = '' } = await res.json()); } catch { /* not a problem document */ }
    throw new HTTPError(res.status, detail, type);
  }
  return res.json();
}

/** The URL of the live stream for params; EventSource cannot send headers, so the key goes in the query. */
export function streamURL(params) {
  const q = new URLSearchParams(params);
  if (sessionKey) q.set('access_token', sessionKey);
  const s = q.toString();
  return 'stream' + (s ? '?' + s : '');
}
