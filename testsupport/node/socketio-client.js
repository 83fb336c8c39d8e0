// socket.io-client 4.x as the order system's React app uses it
// (transports: ['websocket']). Prints one JSON line per happening.
//   node socketio-client.js refused <url> <namespace> <token>
//   node socketio-client.js notify <url> <token>       -- prints order:update events
//   node socketio-client.js chat <url> <token> <n>     -- n clients; one sends, all must receive
//   node socketio-client.js session <url> <namespace> <token> [<event> <json>]
//        -- prints {ready} (then emits <event> <json> once, if given) and every
//           message, order:update and error it receives; {connectError, reason} if refused
'use strict';
const { io } = require('socket.io-client');

const [mode, url, ...rest] = process.argv.slice(2);
const say = (o) => console.log(JSON.stringify(o));
const connect = (nsp, token, opts = {}) =>
  io(url + nsp, { transports: ['websocket'], auth: token ? { token } : {}, reconnection: false, forceNew: true, ...opts });

if (mode === 'refused') {
  const [nsp, token] = rest;
  const s = connect(nsp, token);
  s.on('connect', () => { say({ connected: true }); process.exit(1); });
  s.on('connect_error', (err) => { say({ connectError: err.message }); process.exit(0); });
} else if (mode === 'notify') {
  const [token] = rest;
  const s = connect('/notifications', '', { query: { token } }); // the query form of the token
  s.on('connect', () => say({ ready: true }));
  s.on('connect_error', (err) => { say({ connectError: err.message }); process.exit(1); });
  s.on('order:update', (u) => say({ update: u }));
} else if (mode === 'chat') {
  const [token, n] = [rest[0], Number(rest[1])];
  const clients = [];
  let connected = 0;
  const received = new Array(n).fill(0);
  const text = 'hello ' + Date.now();
  for (let i = 0; i < n; i++) {
    const s = connect('/chat', token);
    clients.push(s);
    s.on('connect_error', (err) => { say({ connectError: err.message }); process.exit(1); });
    s.on('message', (m) => {
      if (m.text !== text) return;
      received[i]++;
      if (received.every((r) => r > 0)) {
        say({ all: n, message: m, duplicates: received.filter((r) => r > 1).length });
        clients.forEach((c) => c.close());
        process.exit(0);
      }
    });
    s.on('connect', () => {
      if (++connected === n) {
        say({ ready: n });
        clients[0].emit('message', { author: 'node', text });
      }
    });
  }
} else if (mode === 'session') {
  const [nsp, token, event, json] = rest;
  const s = connect(nsp, token);
  s.on('connect', () => {
    say({ ready: true });
    if (event) s.emit(event, JSON.parse(json));
  });
  s.on('connect_error', (err) => { say({ connectError: err.message, reason: err.data && err.data.reason }); process.exit(0); });
  s.on('message', (m) => say({ message: m }));
  s.on('order:update', (u) => say({ update: u }));
  s.on('error', (e) => say({ error: e }));
} else {
  console.error('unknown mode ' + mode);
  process.exit(2);
}
