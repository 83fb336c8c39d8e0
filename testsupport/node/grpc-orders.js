// The order system's Node gRPC client: node grpc-orders.js <host:port> [key]
// Creates an order with the old .proto, lists orders until it appears,
// checks a bad order is INVALID_ARGUMENT, chats once; prints one JSON line.
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

const [addr, key] = process.argv.slice(2);
const def = loader.loadSync(path.join(__dirname, 'old-orders.proto'), { keepCase: false, longs: String, defaults: true });
const { OrderService } = grpc.loadPackageDefinition(def).orders;
const client = new OrderService(addr, grpc.credentials.createInsecure());
const md = new grpc.Metadata();
if (key) md.set('authorization', 'Bearer ' + key);

const createOrder = (order) => new Promise((resolve, reject) =>
  client.createOrder({ order }, md, { deadline: Date.now() + 30000 }, (err, res) => (err ? reject(err) : resolve(res))));

const getOrders = (status) => new Promise((resolve, reject) => {
  const out = [];
  const call = client.getOrders({ status }, md, { deadline: Date.now() + 30000 });
  call.on('data', (o) => out.push(o));
  call.on('error', reject);
  call.on('end', () => resolve(out));
});

const chat = (text) => new Promise((resolve, reject) => {
  const call = client.chatOrders(md);
  call.on('data', (m) => {
    if (m.author === 'server') {
      resolve(m);
      call.end();
    }
  });
  call.on('error', (err) => (err.code === grpc.status.CANCELLED ? null : reject(err)));
  call.write({ author: 'node', text, orderId: 'o-node' });
});

(async () => {
  const created = (await createOrder({ customerEmail: 'node@example.com', amount: 19.99, notes: 'from node' })).order;
  let bad = null;
  try {
    await createOrder({ customerEmail: '', amount: 0 });
  } catch (err) {
    bad = { code: err.code, details: err.details };
  }
  let listed = null;
  for (let i = 0; i < 600 && !listed; i++) {
    listed = (await getOrders('')).find((o) => o.id === created.id) || null;
    if (!listed) await new Promise((r) => setTimeout(r, 100));
  }
  const ack = await chat('hello from node');
  console.log(JSON.stringify({ created, listed, bad, invalidArgument: grpc.status.INVALID_ARGUMENT, ack }));
  client.close();
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
