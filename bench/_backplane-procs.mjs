// The child processes of bench/backplane.mjs: the servers, one process per side (A publishes, B holds the
// subscribers, both on one broker), and the subscribers' client. Each prints a ready line, then obeys one-line
// commands on stdin and answers on stdout.
//
//   BROKER=<url> node bench/_backplane-procs.mjs <kind> <role>
//   PORT=<B's port> N=<subscribers> PROTO=ws|sio ACK_PORT=<A's control port> node bench/_backplane-procs.mjs client
//
// kind: uwserve (the backplane picked by BROKER's scheme), socketio (socket.io + @socket.io/redis-adapter), ws-redis
// (the `ws` library, a node-redis subscriber forwarding to every client). role: pub (A), sub (B), or local (uwserve
// only: publisher and subscribers in one process, no broker). A server prints "ready <port> <control port>".
//
// The publisher runs inside A so that no client stands between the clock and the broker: a window of messages in
// flight (acknowledged by the client over the control port once every subscriber has one), or a fixed rate. Each
// message is `<seq> <monotonic µs> ` padded to SIZE bytes; seq 0 is a probe that the routes are up.
//
// The client: N raw WebSocket connections in one process, every server measured by the same code. PROTO=ws reads
// each frame as the message; PROTO=sio speaks engine.io v4 / socket.io v5 on the WebSocket transport (open "0",
// connect "40", event `42["m","…"]`, ping "2" → pong "3"), no socket.io-client. It prints "open <n>" once every
// connection is up (socket.io: namespace joined) and "probed" once every subscriber has had a probe.
import { createServer } from "node:http";
import net from "node:net";
import { createInterface } from "node:readline";

const [kind, role] = process.argv.slice(2);
const PORT = Number(process.env.PORT ?? 0);
const nowUs = () => Number(process.hrtime.bigint() / 1000n);

/** Runs commands[name](...args) for each stdin line; the process ends with stdin (the runner is gone) or SIGTERM. */
function obey(commands) {
  createInterface({ input: process.stdin }).on("line", (line) => {
    const [name, ...args] = line.trim().split(/\s+/);
    if (commands[name]) commands[name](...args);
    else console.log(`error unknown command ${name}`);
  });
  process.stdin.on("end", () => process.exit(0));
  process.on("SIGTERM", () => process.exit(0));
}

const BROKER = process.env.BROKER ?? "";
const SIZE = Number(process.env.SIZE ?? 64);
// One topic, socket.io room and Redis channel for every kind: the cells run one after the other.
const TOPIC = "bench";

/** Takes a seq, returns the message: seq and send time first, so the client parses them without a copy. */
function message(seq) {
  const head = `${seq} ${nowUs()} `;
  return head.length >= SIZE ? head : head + "x".repeat(SIZE - head.length);
}

// ---------------------------------------------------------------------------------------------
// Servers: the sides, each { port, publish?(text), stats?() }

async function uwserveSide() {
  const { serve, Response } = await import("../dist/index.js");
  const local = role === "local";
  const server = serve({
    port: PORT,
    hostname: "127.0.0.1",
    // What is measured is the backplane as an application gets it: the URL string, default options.
    backplane: local ? undefined : BROKER,
    fetch(req, srv) {
      if (srv.upgrade(req)) return undefined;
      return new Response("upgrade required", { status: 426 });
    },
    websocket: {
      open(ws) {
        ws.subscribe(TOPIC);
      },
      message() {},
    },
  });
  return {
    port: server.port,
    publish: (text) => server.publish(TOPIC, text),
    stats: () => server.backplane?.stats() ?? null,
  };
}

async function redisClients() {
  const { createClient } = await import("redis");
  const pub = createClient({ url: BROKER });
  const sub = pub.duplicate();
  for (const c of [pub, sub]) c.on("error", (e) => console.error(`redis: ${e.message}`));
  await Promise.all([pub.connect(), sub.connect()]);
  return { pub, sub };
}

async function socketioSide() {
  const { Server } = await import("socket.io");
  const { createAdapter } = await import("@socket.io/redis-adapter");
  const { pub, sub } = await redisClients();
  // WebSocket only, no per-message deflate: the same wire as the other servers (the client speaks engine.io v4).
  const settings = { adapter: createAdapter(pub, sub), transports: ["websocket"], perMessageDeflate: false, serveClient: false };
  if (role === "pub") {
    // A has no sockets: the adapter still sends every room broadcast to Redis.
    const io = new Server(settings);
    return { port: 0, publish: (text) => io.to(TOPIC).emit("m", text) };
  }
  const http = createServer();
  const io = new Server(http, settings);
  io.on("connection", (socket) => socket.join(TOPIC));
  await new Promise((resolve) => http.listen(PORT, "127.0.0.1", resolve));
  return { port: http.address().port };
}

async function wsRedisSide() {
  const { pub, sub } = await redisClients();
  if (role === "pub") {
    // node-redis pipelines the PUBLISHes of one turn into one write.
    return { port: 0, publish: (text) => void pub.publish(TOPIC, text).catch(() => {}) };
  }
  const { WebSocketServer } = await import("ws");
  const http = createServer((req, res) => res.writeHead(426).end());
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
  // Buffers from Redis, sent as text frames: no decode and re-encode of the string per message.
  await sub.subscribe(TOPIC, (data) => {
    for (const ws of wss.clients) ws.send(data, { binary: false });
  }, true);
  await new Promise((resolve) => http.listen(PORT, "127.0.0.1", resolve));
  return { port: http.address().port };
}

// ---------------------------------------------------------------------------------------------
// The publisher (roles pub and local)

let side = null;
let published = 0; // the last seq sent, also the count
let acked = 0; // the highest seq every subscriber has (from the client)
let mode = "idle";
let windowSize = 0;
let rateTimer = null;
let probeTimer = null;
let maxLagUs = 0;

function pump() {
  if (mode !== "window") return;
  while (published - acked < windowSize) side.publish(message(++published));
}

/** Publishes `rate` messages/s: each tick sends what is due, so a late timer sends a burst rather than fewer. */
function startRate(rate) {
  const t0 = nowUs();
  rateTimer = setInterval(() => {
    const now = nowUs();
    const due = Math.floor(((now - t0) * rate) / 1e6);
    if (due - published > 1) maxLagUs = Math.max(maxLagUs, now - t0 - (published * 1e6) / rate);
    while (published < due) side.publish(message(++published));
  }, 1);
}

function stopPublishing() {
  mode = "idle";
  clearInterval(rateTimer);
  rateTimer = null;
}

// The client writes "<seq>\n" each time the seq every subscriber has moves on.
const control = net.createServer((socket) => {
  socket.setNoDelay(true);
  let pending = "";
  socket.on("data", (chunk) => {
    pending += chunk;
    const end = pending.lastIndexOf("\n");
    if (end < 0) return;
    const seq = Number(pending.slice(pending.lastIndexOf("\n", end - 1) + 1, end));
    pending = pending.slice(end + 1);
    if (seq > acked) acked = seq;
    pump();
  });
  socket.on("error", () => {});
});

const serverCommands = {
  // Probes (seq 0) every 20 ms until "quiet": the runner starts once every subscriber has had one.
  probe() {
    probeTimer ??= setInterval(() => side.publish(message(0)), 20);
  },
  quiet() {
    clearInterval(probeTimer);
    probeTimer = null;
  },
  window(w) {
    stopPublishing();
    published = acked = 0;
    windowSize = Number(w);
    mode = "window";
    pump();
  },
  rate(r) {
    stopPublishing();
    published = acked = 0;
    maxLagUs = 0;
    mode = "rate";
    startRate(Number(r));
  },
  stop: stopPublishing,
  snap() {
    console.log(`snap ${JSON.stringify({ published, acked, maxLagUs, backplane: side.stats?.() ?? null, rssKiB: process.memoryUsage().rss >> 10 })}`);
  },
};

const sides = { uwserve: uwserveSide, socketio: socketioSide, "ws-redis": wsRedisSide };

async function serverMain() {
  if (!sides[kind] || !["pub", "sub", "local"].includes(role) || (role === "local" && kind !== "uwserve")) {
    console.error(`usage: _backplane-procs.mjs <${Object.keys(sides).join("|")}> <pub|sub|local>, or client`);
    process.exit(2);
  }
  if (role !== "local" && !BROKER) {
    console.error("BROKER=<url> is required");
    process.exit(2);
  }
  side = await sides[kind]();
  await new Promise((resolve) => control.listen(0, "127.0.0.1", resolve));
  // B (role sub) has no publisher: it only answers snap.
  obey(side.publish ? serverCommands : { snap: serverCommands.snap });
  console.log(`ready ${side.port || control.address().port} ${control.address().port}`);
}

// ---------------------------------------------------------------------------------------------
// The client

const N = Number(process.env.N ?? 1);
const SIO = process.env.PROTO === "sio";
const ACK_PORT = Number(process.env.ACK_PORT ?? 0);
const PATH = SIO ? "/socket.io/?EIO=4&transport=websocket" : "/";
// The payload's offset in a frame: socket.io wraps it as 42["m","<payload>"].
const SKIP = SIO ? 8 : 0;
// Counts per seq for the window: larger than any window the runner allows.
const RING = 1 << 14;

let opened = 0;
let probed = 0;
let armed = false;
let deliveries = 0;
let gaps = 0;
let dups = 0;
let closed = 0;
let bad = 0;
// The window: every subscriber has every seq ≤ done; counts[seq % RING] of them have seq.
const counts = new Uint16Array(RING);
let done = 0;
let ackQueued = false;
let delays = null;

const conns = [];
let ack = null;

/** Sends one masked frame (key 0: the payload goes as is) of a short payload. */
function sendFrame(conn, opcode, payload) {
  const body = Buffer.from(payload);
  if (body.length > 125) throw new Error("control payload too long");
  conn.socket.write(Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | body.length, 0, 0, 0, 0]), body]));
}

/** Reads a decimal number at buf[i…] up to a space; returns [value, index after the space] or null. */
function number(buf, i, end) {
  let n = 0;
  for (; i < end; i++) {
    const c = buf[i];
    if (c === 0x20) return [n, i + 1];
    if (c < 0x30 || c > 0x39) return null;
    n = n * 10 + (c - 0x30);
  }
  return null;
}

function onMessage(conn, buf, start, end) {
  if (SIO) {
    const type = buf[start];
    // "2": engine.io ping; "0{…}": engine.io open, answered by the socket.io connect "40"; "40{…}": connected.
    if (type === 0x32 && end - start === 1) return sendFrame(conn, 1, "3");
    if (type === 0x30) return sendFrame(conn, 1, "40");
    if (type === 0x34 && buf[start + 1] === 0x30) return ready(conn);
    if (type !== 0x34 || buf[start + 1] !== 0x32) return void bad++;
  }
  const seq = number(buf, start + SKIP, end);
  if (seq === null) return void bad++;
  if (seq[0] === 0) {
    if (!conn.probed) {
      conn.probed = true;
      if (++probed === N) console.log("probed");
    }
    return;
  }
  if (!armed) return;
  delivered(conn, seq[0], buf, seq[1], end);
}

function delivered(conn, seq, buf, at, end) {
  if (seq !== conn.last + 1) {
    if (seq <= conn.last) return void dups++;
    gaps += seq - conn.last - 1;
  }
  conn.last = seq;
  deliveries++;
  const slot = seq & (RING - 1);
  if (++counts[slot] === N) {
    // Every subscriber receives in order, so the window's front moves over each seq they all have.
    while (counts[(done + 1) & (RING - 1)] === N) counts[++done & (RING - 1)] = 0;
    if (ack && !ackQueued) {
      ackQueued = true;
      // Once per turn of the loop, after every socket that had data was read.
      setImmediate(() => {
        ackQueued = false;
        ack.write(`${done}\n`);
      });
    }
  }
  if (delays !== null && conn.index === 0) {
    const sent = number(buf, at, end);
    if (sent) delays.push(nowUs() - sent[0]);
  }
}

function ready(conn) {
  if (conn.open) return;
  conn.open = true;
  if (++opened === N) console.log(`open ${opened}`);
}

/** Reads every whole frame in conn's bytes; a partial one waits for the next chunk. */
function onData(conn, chunk) {
  const buf = conn.rest === null ? chunk : Buffer.concat([conn.rest, chunk]);
  let i = 0;
  if (!conn.upgraded) {
    const head = buf.indexOf("\r\n\r\n");
    if (head < 0) return void (conn.rest = buf);
    if (!buf.toString("latin1", 0, 12).endsWith("101")) {
      console.error(`upgrade refused: ${buf.toString("latin1", 0, head).split("\r\n")[0]}`);
      process.exit(1);
    }
    conn.upgraded = true;
    if (!SIO) ready(conn);
    i = head + 4;
  }
  while (buf.length - i >= 2) {
    const b0 = buf[i];
    let len = buf[i + 1] & 0x7f;
    let header = 2;
    if (len === 126) {
      if (buf.length - i < 4) break;
      len = buf.readUInt16BE(i + 2);
      header = 4;
    } else if (len === 127) {
      if (buf.length - i < 10) break;
      len = Number(buf.readBigUInt64BE(i + 2));
      header = 10;
    }
    if (buf.length - i < header + len) break;
    const start = i + header;
    const opcode = b0 & 0x0f;
    if ((b0 & 0x80) === 0) bad++; // a fragment: no server here splits a 64-byte message
    else if (opcode === 1 || opcode === 2) onMessage(conn, buf, start, start + len);
    else if (opcode === 9) sendFrame(conn, 10, buf.subarray(start, start + len));
    else if (opcode === 8) conn.socket.end();
    i = start + len;
  }
  conn.rest = i < buf.length ? Buffer.from(buf.subarray(i)) : null;
}

function connect(index) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port: PORT, host: "127.0.0.1" });
    const conn = { index, socket, rest: null, upgraded: false, open: false, probed: false, last: 0 };
    conns.push(conn);
    socket.setNoDelay(true);
    socket.once("connect", () => {
      socket.write(`GET ${PATH} HTTP/1.1\r\nHost: 127.0.0.1:${PORT}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
      resolve();
    });
    socket.once("error", reject);
    socket.on("data", (chunk) => onData(conn, chunk));
    socket.on("close", () => closed++);
  });
}

function percentile(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : null;
}

const clientCommands = {
  arm() {
    for (const c of conns) c.last = 0;
    counts.fill(0);
    done = deliveries = gaps = dups = 0;
    armed = true;
    console.log("armed");
  },
  snap() {
    console.log(`snap ${JSON.stringify({ deliveries, done, gaps, dups, closed, bad, opened })}`);
  },
  "lat-start"() {
    delays = [];
    console.log("lat-started");
  },
  "lat-stop"() {
    const d = Float64Array.from(delays ?? []).sort();
    delays = null;
    console.log(`lat ${JSON.stringify({ count: d.length, p50Us: percentile(d, 50), p99Us: percentile(d, 99), maxUs: d.length ? d[d.length - 1] : null })}`);
  },
};

async function clientMain() {
  obey(clientCommands);
  if (ACK_PORT) {
    ack = net.connect({ port: ACK_PORT, host: "127.0.0.1" });
    ack.setNoDelay(true);
    ack.on("error", (e) => console.error(`control connection: ${e.message}`));
  }
  // 50 handshakes at a time: a burst of 500 SYNs can overflow a small accept backlog.
  for (let i = 0; i < N; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, N - i) }, (_, k) => connect(i + k)));
  }
}

if (kind === "client") await clientMain();
else await serverMain();
