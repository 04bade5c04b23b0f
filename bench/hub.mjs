// Cross-thread pub/sub: the native topic hub (lib/websocket/hub.ts over native/hub.cc) against pure-JS relays between
// worker threads (MessagePort per message, MessagePort batched per loop turn, BroadcastChannel per message).
//
//   node bench/hub.mjs [--messages N] [--size B] [--rate R] [--seconds S] [--rounds N]   (after npm run build)
//
// flood:   one publisher thread -> one subscriber thread, as fast as a 32,768-message credit window allows
//          (the subscriber reports progress through a SharedArrayBuffer); deliveries/s at the subscriber.
// latency: the same pair at a moderate rate (R messages/s, published in 1 ms ticks); each payload carries the
//          publisher's process.hrtime (one monotonic clock for all threads); median and p99 publish -> onMessage.
// Each cell runs --rounds times, interleaved, and the median is reported.
import { BroadcastChannel, MessageChannel, Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { setTimeout as sleep } from "node:timers/promises";

const WINDOW = 32_768;
const TRANSPORTS = ["hub", "port", "port-batched", "broadcast"];

// ---------------------------------------------------------------------------------------------
// Worker side: one publisher or one subscriber over one transport.

async function runWorker() {
  const { role, transport, port, group, counter, messages, size, rate, seconds } = workerData;
  const delivered = new Int32Array(counter);
  const hub = transport === "hub" ? await import("../dist/websocket/hub.js") : null;
  const channel = transport === "broadcast" ? new BroadcastChannel(group) : null;

  if (role === "subscriber") {
    let count = 0;
    const latencies = [];
    const measure = workerData.mode === "latency";
    const now = () => Number(process.hrtime.bigint());
    // Takes one payload; counts it and, when measuring latency, reads the stamp in its first 8 bytes.
    const take = (payload) => {
      count++;
      if (measure) latencies.push(now() - new DataView(payload.buffer, payload.byteOffset, 8).getFloat64(0, true));
    };
    let member = null;
    if (hub) {
      // deliver runs in a callback scope: the microtask runs once, after the whole batch.
      let scheduled = false;
      const flush = () => {
        scheduled = false;
        Atomics.store(delivered, 0, count);
      };
      member = hub.joinHub((_topic, payload) => {
        take(payload);
        if (!scheduled) {
          scheduled = true;
          queueMicrotask(flush);
        }
      }, { group });
      member.subscribe("t");
    } else if (channel) {
      channel.onmessage = (e) => {
        take(e.data.payload);
        Atomics.store(delivered, 0, count);
      };
    } else if (transport === "port") {
      port.on("message", (m) => {
        take(m.payload);
        Atomics.store(delivered, 0, count);
      });
    } else {
      port.on("message", (batch) => {
        for (const m of batch) take(m.payload);
        Atomics.store(delivered, 0, count);
      });
    }
    parentPort.postMessage({ ready: true });
    parentPort.on("message", (cmd) => {
      if (cmd === "report") {
        latencies.sort((a, b) => a - b);
        parentPort.postMessage({
          count,
          p50: latencies.length ? latencies[Math.floor(latencies.length * 0.5)] : null,
          p99: latencies.length ? latencies[Math.floor(latencies.length * 0.99)] : null,
          wakeups: member?.stats()?.wakeups,
        });
        member?.leave();
        channel?.close();
        port?.close();
      }
    });
    return;
  }

  // Publisher.
  let member = null;
  if (hub) member = hub.joinHub(() => {}, { group });
  const payload = new Uint8Array(size);
  const stamp = new DataView(payload.buffer);
  let pending = [];
  let flushScheduled = false;
  const flushBatch = () => {
    flushScheduled = false;
    port.postMessage(pending);
    pending = [];
  };
  // Takes nothing; publishes one message (the payload with a fresh stamp) over the transport.
  const publish = () => {
    stamp.setFloat64(0, Number(process.hrtime.bigint()), true);
    switch (transport) {
      case "hub":
        return member.publish("t", payload, true);
      case "broadcast":
        return channel.postMessage({ topic: "t", payload });
      case "port":
        return port.postMessage({ topic: "t", payload });
      default:
        // A careful JS relay: one postMessage per loop turn with everything published in it.
        pending.push({ topic: "t", payload: payload.slice() });
        if (!flushScheduled) {
          flushScheduled = true;
          setImmediate(flushBatch);
        }
    }
  };
  await new Promise((resolve) => parentPort.once("message", resolve));
  const started = process.hrtime.bigint();
  let sent = 0;
  let dropped = 0;
  if (workerData.mode === "flood") {
    while (sent < messages) {
      const room = Math.min(WINDOW - (sent - Atomics.load(delivered, 0)), messages - sent, 1024);
      if (room <= 0) {
        await new Promise((r) => setImmediate(r));
        continue;
      }
      for (let i = 0; i < room; i++) if (publish() === -1) dropped++;
      sent += room;
      // Yield now and then: the batched relay flushes from setImmediate.
      if (transport === "port-batched") await new Promise((r) => setImmediate(r));
    }
  } else {
    // Every millisecond or so, whatever the rate says is due by now.
    const begin = performance.now();
    for (let elapsed = 0; elapsed < seconds * 1000; elapsed = performance.now() - begin) {
      const due = Math.floor((elapsed * rate) / 1000);
      for (; sent < due; sent++) publish();
      await sleep(1);
    }
  }
  parentPort.postMessage({ sent, dropped, publishNs: Number(process.hrtime.bigint() - started) });
}

// ---------------------------------------------------------------------------------------------
// Main side.

function parseArgs(argv) {
  const o = { messages: 500_000, size: 64, rate: 5_000, seconds: 3, rounds: 3, only: TRANSPORTS };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].includes("=") ? argv[i].split(/=(.*)/s) : [argv[i], undefined];
    const value = () => inline ?? argv[++i];
    if (flag === "--messages") o.messages = Number(value());
    else if (flag === "--size") o.size = Math.max(8, Number(value()));
    else if (flag === "--rate") o.rate = Number(value());
    else if (flag === "--seconds") o.seconds = Number(value());
    else if (flag === "--rounds") o.rounds = Number(value());
    else if (flag === "--only") o.only = value().split(",");
    else {
      console.log("Usage: node bench/hub.mjs [--messages N] [--size B] [--rate R] [--seconds S] [--rounds N] [--only hub,port,port-batched,broadcast]");
      process.exit(flag === "--help" ? 0 : 2);
    }
  }
  return o;
}

let cellSeq = 0;

/** Takes the transport, the mode and the options; runs one publisher/subscriber pair and returns its numbers. */
async function cell(transport, mode, o) {
  const group = `bench-hub-${process.pid}-${cellSeq++}`;
  const counter = new SharedArrayBuffer(4);
  const { port1, port2 } = new MessageChannel();
  const common = { transport, group, counter, mode, messages: o.messages, size: o.size, rate: o.rate, seconds: o.seconds };
  const usePorts = transport === "port" || transport === "port-batched";
  const file = new URL(import.meta.url);
  const subscriber = new Worker(file, {
    workerData: { ...common, role: "subscriber", port: usePorts ? port2 : undefined },
    transferList: usePorts ? [port2] : [],
  });
  await new Promise((resolve) => subscriber.once("message", resolve));
  const publisher = new Worker(file, {
    workerData: { ...common, role: "publisher", port: usePorts ? port1 : undefined },
    transferList: usePorts ? [port1] : [],
  });
  await new Promise((resolve) => publisher.once("online", resolve));
  const started = process.hrtime.bigint();
  publisher.postMessage("go");
  const published = await new Promise((resolve) => publisher.once("message", resolve));
  const expected = published.sent - published.dropped;
  const delivered = new Int32Array(counter);
  while (Atomics.load(delivered, 0) < expected) await sleep(1);
  const elapsedNs = Number(process.hrtime.bigint() - started);
  subscriber.postMessage("report");
  const report = await new Promise((resolve) => subscriber.once("message", resolve));
  if (process.env.HUB_BENCH_DEBUG) {
    console.error(`${transport} ${mode}: publisher ${Math.round(published.sent / (published.publishNs / 1e9))} msg/s, delivered ${Math.round((published.sent - published.dropped) / (elapsedNs / 1e9))} msg/s, ${report.wakeups ?? "-"} wake-ups`);
  }
  await Promise.all([publisher.terminate(), subscriber.terminate()]);
  return { ...published, ...report, elapsedNs };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const flood = Object.fromEntries(o.only.map((t) => [t, []]));
  const latency = Object.fromEntries(o.only.map((t) => [t, []]));
  for (let round = 0; round < o.rounds; round++) {
    for (const t of o.only) {
      const r = await cell(t, "flood", o);
      if (r.count !== r.sent - r.dropped) throw new Error(`${t}: delivered ${r.count} of ${r.sent - r.dropped}`);
      flood[t].push({ rate: r.count / (r.elapsedNs / 1e9), dropped: r.dropped });
    }
    for (const t of o.only) {
      const r = await cell(t, "latency", o);
      latency[t].push({ p50: r.p50 / 1000, p99: r.p99 / 1000, count: r.count });
    }
  }
  console.log(`\nCross-thread pub/sub, 1 publisher thread -> 1 subscriber thread, ${o.size}-byte payloads, Node ${process.version}, ${o.rounds} rounds (medians)\n`);
  console.log(`| transport | flood: deliveries/s (${o.messages.toLocaleString("en")} msgs) | flood: dropped (queue full) | latency p50 µs @ ${o.rate.toLocaleString("en")}/s | latency p99 µs |`);
  console.log("|---|---:|---:|---:|---:|");
  for (const t of o.only) {
    const rate = median(flood[t].map((x) => x.rate));
    const p50 = median(latency[t].map((x) => x.p50));
    const p99 = median(latency[t].map((x) => x.p99));
    const dropped = median(flood[t].map((x) => x.dropped));
    console.log(`| ${t} | ${Math.round(rate).toLocaleString("en")} | ${dropped.toLocaleString("en")} | ${p50.toFixed(1)} | ${p99.toFixed(1)} |`);
  }
}

if (isMainThread) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
} else {
  runWorker();
}
