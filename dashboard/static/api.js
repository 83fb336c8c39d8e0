// The gateway's read API, relative to the page so the dashboard also works
// behind a reverse proxy that mounts Kiln under a path.

const KEY_STORAGE = 'kiln.readKey';

/** An HTTP answer other than 2xx. */
export class HTTPError extends Error {
  constructor(status, detail) {
    super(detail ? `${status}: ${detail}` : `HTTP ${status}`);
    this.status = status;
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

/** GETs path (with query params) and decodes the JSON answer. */
export async function getJSON(path, params, { signal } = {}) {
  const q = params ? params.toString() : '';
  const headers = { Accept: 'application/json' };
  if (sessionKey) headers.Authorization = 'Bearer ' + sessionKey;
  const res = await fetch(path + (q ? '?' + q : ''), { headers, signal, cache: 'no-store' });
  if (!res.ok) {
    let detail = '';
    try { detail = (await res.json()).detail || ''; } catch { /* not a problem document */ }
    throw new HTTPError(res.status, detail);
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
