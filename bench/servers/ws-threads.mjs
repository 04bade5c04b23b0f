// Two worker threads in one process, each running uwserve's serve() (dist/) on its own port: thread A takes the
// publisher (/pub), thread B the subscribers (/sub), so every delivery crosses from A to B. BENCH_RELAY says how:
//
//   hub        each thread's serve() joins the native hub (lib/hub.ts): the script gives both workers the
//              `workerData.uwserveWorker` role `uwserve --workers` gives its own (same group, one shared counters
//              SharedArrayBuffer for 2 workers), so server.publish on A reaches B's subscribers
//   port       plain uwserve servers (no role, no hub); A's /pub handler publishes locally as usual, then posts
//              { topic, message } on a MessagePort (one postMessage per publish); B's end calls server.publish
//   broadcast  the same through a BroadcastChannel
//
// Prints "ready <port A> <port B>" once both listen (bench/ws.mjs connects the publisher to A, the subscribers to B).
// The paths and handlers are servers/_ws.mjs's, as for ws-uwserve.mjs.
import { BroadcastChannel, MessageChannel, Worker, isMainThread, parentPort, workerData } from "node:worker_threads";

const RELAYS = ["hub", "port", "broadcast"];

if (isMainThread) {
  const relay = process.env.BENCH_RELAY ?? "hub";
  if (!RELAYS.includes(relay)) throw new Error(`BENCH_RELAY must be one of ${RELAYS.join(", ")}, got ${relay}`);
  const group = `bench-ws-threads:${process.pid}`;
  // Two Int32 per worker (open requests, open WebSockets): lib/workers.ts SLOTS_PER_WORKER.
  const counters = new SharedArrayBuffer(2 * 2 * Int32Array.BYTES_PER_ELEMENT);
  const { port1, port2 } = new MessageChannel();
  const ends = [port1, port2];
  const ports = await Promise.all([0, 1].map((index) => new Promise((resolve, reject) => {
    const port = relay === "port" ? ends[index] : undefined;
    const worker = new Worker(new URL(import.meta.url), {
      workerData: {
        index, relay, group, port,
        ...(relay === "hub" ? { uwserveWorker: { index, port: 0, group, counters } } : {}),
      },
      transferList: port ? [port] : [],
    });
    worker.once("message", (m) => resolve(m.port));
    worker.once("error", reject);
    worker.once("exit", (code) => reject(new Error(`worker ${index} exited (${code}) before listening`)));
  })));
  // The idle scenario's "collect now" signal: these servers don't run it, but it must not kill them.
  process.on("SIGUSR2", () => {});
  console.log(`ready ${ports[0]} ${ports[1]}`);
} else {
  const { serve, Response } = await import("../../dist/index.js");
  const { wsOptions } = await import("./_ws.mjs");
  const { relay, group, port } = workerData;
  const options = wsOptions(Response);
  let server = null;
  if (relay !== "hub") {
    const out = relay === "port" ? port : new BroadcastChannel(group);
    // What arrives from the other thread is published here (the other thread already published it there).
    const take = (m) => server.publish(m.topic, m.message);
    if (relay === "port") port.on("message", take);
    else out.onmessage = (event) => take(event.data);
    const message = options.websocket.message;
    options.websocket.message = (ws, data) => {
      message(ws, data);
      if (ws.data.path === "/pub") out.postMessage({ topic: "t", message: data });
    };
  }
  server = serve({ ...options, port: 0 });
  parentPort.postMessage({ port: server.port });
}
