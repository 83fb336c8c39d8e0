// socketio_fanout load: node socketio-bench.js <url> <token> <clients> <rate> <seconds>
// Connects <clients> /chat clients, then one more emits <rate> messages/s
// for <seconds>; every client times each message (sent time in the text).
// Prints {"connected":n} once all are connected, then one result line.
'use strict';
const { io } = require('socket.io-client');

const [url, token, nClients, rate, seconds] = process.argv.slice(2);
const n = Number(nClients);
const opts = { transports: ['websocket'], auth: token ? { token } : {}, reconnection: false, forceNew: true };
const hist = new Uint32Array(60001); // 1 ms buckets up to 60 s
let delivered = 0;
let connectErrors = 0;
const clients = [];

function onMessage(m) {
  if (typeof m.text !== 'string' || !m.text.startsWith('b:')) return;
  const ms = Math.max(0, Date.now() - Number(m.text.slice(2)));
  hist[Math.min(ms, 60000)]++;
  delivered++;
}

function percentile(p) {
  const want = Math.ceil(delivered * p);
  let seen = 0;
  for (let i = 0; i < hist.length; i++) {
    seen += hist[i];
    if (seen >= want && want > 0) return i;
  }
  return null;
}

function connectOne() {
  return new Promise((resolve) => {
    const s = io(url + '/chat', opts);
    s.on('message', onMessage);
    s.on('connect', () => resolve(s));
    s.on('connect_error', () => { connectErrors++; resolve(null); });
  });
}

(async () => {
  for (let i = 0; i < n; i += 100) {
    const batch = await Promise.all(Array.from({ length: Math.min(100, n - i) }, connectOne));
    clients.push(...batch.filter(Boolean));
  }
  console.log(JSON.stringify({ connected: clients.length, connectErrors }));
  const sender = await connectOne();
  const perTick = Number(rate) / 100;
  let sent = 0;
  let owed = 0;
  const start = Date.now();
  const tick = setInterval(() => {
    owed += perTick;
    while (owed >= 1) {
      sender.emit('message', { author: 'bench', text: 'b:' + Date.now() });
      sent++;
      owed--;
    }
    if (Date.now() - start >= Number(seconds) * 1000) clearInterval(tick);
  }, 10);
  await new Promise((r) => setTimeout(r, Number(seconds) * 1000 + 5000)); // drain
  const elapsed = (Date.now() - start) / 1000;
  const expected = sent * (clients.length + 1);
  console.log(JSON.stringify({
    clients: clients.length, sent, sentPerS: sent / Number(seconds), delivered, expected,
    deliveredPerS: delivered / elapsed, p50Ms: percentile(0.5), p99Ms: percentile(0.99), maxMs: percentile(1),
  }));
  clients.forEach((c) => c.close());
  sender.close();
  process.exit(0);
})();
