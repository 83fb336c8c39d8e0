// socketio_fanout load, one process per role (kiln-rtbench runs them):
//   node socketio-bench.js recv <url> <token> <clients> <seconds>
//     connects <clients> /chat clients, prints {"connected":n,...}, times
//     every bench message (its sent time is in the text) for <seconds>
//     after the first one, then prints {"delivered":n,"hist":{ms:count}}
//   node socketio-bench.js send <url> <token> <rate> <seconds>
//     one more client emits <rate> messages/s; prints {"sent":n}
'use strict';
const { io } = require('socket.io-client');

const [role, url, token, a, b] = process.argv.slice(2);
const opts = { transports: ['websocket'], auth: token ? { token } : {}, reconnection: false, forceNew: true };
const say = (o) => console.log(JSON.stringify(o));

function connectOne(onMessage) {
  return new Promise((resolve) => {
    const s = io(url + '/chat', opts);
    if (onMessage) s.on('message', onMessage);
    s.on('connect', () => resolve(s));
    s.on('connect_error', () => resolve(null));
  });
}

async function recv(n, seconds) {
  const hist = new Map();
  let delivered = 0;
  let first = 0;
  const onMessage = (m) => {
    if (typeof m.text !== 'string' || !m.text.startsWith('b:')) return;
    const ms = Math.max(0, Date.now() - Number(m.text.slice(2)));
    hist.set(ms, (hist.get(ms) || 0) + 1);
    delivered++;
    if (!first) {
      first = Date.now();
      setTimeout(finish, seconds * 1000 + 5000); // the sending time plus a drain
    }
  };
  const clients = [];
  for (let i = 0; i < n; i += 100) {
    const batch = await Promise.all(Array.from({ length: Math.min(100, n - i) }, () => connectOne(onMessage)));
    clients.push(...batch.filter(Boolean));
  }
  say({ connected: clients.length, connectErrors: n - clients.length });
  function finish() {
    say({ delivered, seconds: (Date.now() - first) / 1000, hist: Object.fromEntries(hist) });
    clients.forEach((c) => c.close());
    process.exit(0);
  }
}

async function send(rate, seconds) {
  const s = await connectOne(null);
  if (!s) process.exit(1);
  let sent = 0;
  const start = Date.now();
  const tick = setInterval(() => {
    const due = Math.floor(((Date.now() - start) / 1000) * rate);
    while (sent < due) {
      s.emit('message', { author: 'bench', text: 'b:' + Date.now() });
      sent++;
    }
    if (Date.now() - start >= seconds * 1000) {
      clearInterval(tick);
      say({ sent, seconds: (Date.now() - start) / 1000 });
      setTimeout(() => process.exit(0), 500);
    }
  }, 5);
}

if (role === 'recv') recv(Number(a), Number(b));
else if (role === 'send') send(Number(a), Number(b));
else { console.error('role must be recv or send'); process.exit(2); }
