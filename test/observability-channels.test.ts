// node:diagnostics_channel: the request tracing channel and the WebSocket channels, subscribed
// as an APM agent would (no telemetry option needed), on either engine.
import { AsyncLocalStorage } from "node:async_hooks";
import { subscribe, tracingChannel, unsubscribe } from "node:diagnostics_channel";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { CHANNELS, Response, type RequestChannelMessage, type Server } from "../dist/index.js";
import { ENGINE } from "./helpers/core.js";
import { start, trackServers, waitFor, withTimeout } from "./helpers/server.js";
import { connectWs, RawWs, serveWs, deferred } from "./helpers/ws.js";

const track = trackServers();
const requests = tracingChannel<unknown, RequestChannelMessage>(CHANNELS.request);

type Event = { kind: "start" | "end" | "error"; message: RequestChannelMessage; status: number };

/** Subscribes to the request channel for one test; returns what it saw. */
function listen(): Event[] {
  const events: Event[] = [];
  const handlers = {
    start: (m: RequestChannelMessage) => events.push({ kind: "start", message: m, status: m.status }),
    end: (m: RequestChannelMessage) => events.push({ kind: "end", message: m, status: m.status }),
    error: (m: RequestChannelMessage) => events.push({ kind: "error", message: m, status: m.status }),
    asyncStart: () => {},
    asyncEnd: () => {},
  };
  requests.subscribe(handlers);
  cleanups.push(() => requests.unsubscribe(handlers));
  return events;
}
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

function serveApp(): Server {
  return track(
    start({
      routes: {
        "/items/:id": (req: Request & { params: { id: string } }) => new Response(`item ${req.params.id}`),
        "/static": new Response("fixed"),
        "/fail": () => Promise.reject(new RangeError("nope")),
        "/slow": () => new Promise<Response>((r) => setTimeout(() => r(new Response("late")), 1500)),
        "/echo": { POST: async (req: Request) => new Response(await req.text()) },
      },
      fetch: () => new Response("fallback"),
    }),
  );
}

describe("the request tracing channel", () => {
  it("start before the handler and end after the response, one message object with the route, status, sizes and duration", async () => {
    const events = listen();
    const server = serveApp();
    expect(await (await fetch(`http://127.0.0.1:${server.port}/echo`, { method: "POST", body: "hello!" })).text()).toBe("hello!");
    await waitFor(() => events.length === 2, 2000, "start and end");
    expect(events.map((e) => e.kind)).toEqual(["start", "end"]);
    const [startEvent, endEvent] = events;
    expect(startEvent!.message).toBe(endEvent!.message);
    expect(startEvent!.status).toBe(0);
    const m = endEvent!.message;
    expect(m.request.method).toBe("POST");
    expect(new URL(m.request.url).pathname).toBe("/echo");
    expect(m.route).toBe("/echo");
    expect(m.engine).toBe(ENGINE);
    expect(m.server).toBe(server);
    expect([m.status, m.requestBodySize, m.responseBodySize, m.aborted]).toEqual([200, 6, 6, false]);
    expect(m.duration).toBeGreaterThan(0);
    expect(m.duration).toBeLessThan(2000);
  });

  it("a store bound to start is the handler's context, also after await", async () => {
    const store = new AsyncLocalStorage<string>();
    requests.start.bindStore(store, (m) => `${m.request.method} ${m.route}`);
    cleanups.push(() => requests.start.unbindStore(store));
    listen();
    const server = track(
      start({
        routes: {
          "/ctx/:x": async () => {
            const before = store.getStore();
            await new Promise((r) => setTimeout(r, 5));
            return new Response(`${before} | ${store.getStore()}`);
          },
        },
      }),
    );
    expect(await (await fetch(`http://127.0.0.1:${server.port}/ctx/1`)).text()).toBe("GET /ctx/:x | GET /ctx/:x");
  });

  it("a handler that rejects: error with the reason, then end with the 500", async () => {
    const events = listen();
    const server = serveApp();
    const silence = console.error;
    console.error = () => {};
    try {
      expect((await fetch(`http://127.0.0.1:${server.port}/fail`)).status).toBe(500);
      await waitFor(() => events.length === 3, 2000, "start, error, end");
    } finally {
      console.error = silence;
    }
    expect(events.map((e) => e.kind)).toEqual(["start", "error", "end"]);
    expect((events[1]!.message.error as Error).message).toBe("nope");
    expect(events[2]!.status).toBe(500);
  });

  it("static routes and the fallback are published too; a client that leaves ends with aborted", async () => {
    const events = listen();
    const server = serveApp();
    expect(await (await fetch(`http://127.0.0.1:${server.port}/static`)).text()).toBe("fixed");
    expect(await (await fetch(`http://127.0.0.1:${server.port}/nowhere`)).text()).toBe("fallback");
    const socket = net.connect(server.port, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    socket.write("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    await waitFor(() => server.pendingRequests === 1, 2000, "the slow request");
    socket.destroy();
    await waitFor(() => events.filter((e) => e.kind === "end").length === 3, 2000, "three ends");
    const ends = events.filter((e) => e.kind === "end").map((e) => [e.message.route, e.status, e.message.aborted]);
    expect(ends).toEqual([
      ["/static", 200, false],
      [null, 200, false],
      ["/slow", 0, true],
    ]);
  });

  it("nothing is published without a subscriber", async () => {
    const server = serveApp();
    let seen = 0;
    const count = () => seen++;
    expect(await (await fetch(`http://127.0.0.1:${server.port}/items/1`)).text()).toBe("item 1");
    requests.end.subscribe(count);
    try {
      expect(await (await fetch(`http://127.0.0.1:${server.port}/items/2`)).text()).toBe("item 2");
      await waitFor(() => seen === 1, 2000, "one end");
    } finally {
      requests.end.unsubscribe(count);
    }
    expect(await (await fetch(`http://127.0.0.1:${server.port}/items/3`)).text()).toBe("item 3");
    expect(seen).toBe(1);
  });
});

describe("the WebSocket channels", () => {
  function record(name: string): unknown[] {
    const seen: unknown[] = [];
    const fn = (m: unknown) => seen.push(m);
    subscribe(name, fn);
    cleanups.push(() => unsubscribe(name, fn));
    return seen;
  }

  it("open, publish (with its recipients) and close (with the code)", async () => {
    const opens = record(CHANNELS.webSocketOpen) as Array<{ socket: unknown; server: unknown }>;
    const closes = record(CHANNELS.webSocketClose) as Array<{ socket: unknown; code: number; reason: string }>;
    const publishes = record(CHANNELS.webSocketPublish) as Array<{ topic: string; size: number; recipients: number; remote: boolean }>;
    const server = serveWs({
      open: (ws: { subscribe(t: string): void }) => ws.subscribe("news"),
      message: (ws: { publish(t: string, d: string): number }, msg: string) => ws.publish("news", msg),
    });
    track(server);
    const a = await connectWs(server);
    const b = await connectWs(server);
    const c = await connectWs(server);
    await waitFor(() => opens.length === 3, 2000, "three opens");
    expect(opens.every((o) => o.server === server)).toBe(true);
    a.ws.send("hello");
    await b.until(() => b.messages.length === 1, 2000, "the publish");
    await c.until(() => c.messages.length === 1, 2000, "the publish");
    expect(publishes).toEqual([{ server, topic: "news", size: 5, recipients: 2, remote: false }]);
    a.ws.close(4001, "bye");
    await waitFor(() => closes.length === 1, 2000, "the close");
    expect([closes[0]!.code, closes[0]!.reason, closes[0]!.socket === opens[0]!.socket]).toEqual([4001, "bye", true]);
    b.ws.close();
    c.ws.close();
  });

  it("drop: a send over backpressureLimit to a client that doesn't read", async () => {
    const drops = record(CHANNELS.webSocketDrop) as Array<{ socket: unknown; topic: string | null }>;
    const opened = deferred<any>();
    const server = track(serveWs({ backpressureLimit: 64 * 1024, message() {}, open: (ws: unknown) => opened.resolve(ws) }));
    const raw = await RawWs.open(server.port, "/");
    const ws = await withTimeout(opened.promise, 5000, "open()");
    raw.pause();
    try {
      const chunk = Buffer.alloc(16 * 1024);
      let result = 1;
      for (let i = 0; i < 5000 && result !== 0; i++) {
        result = ws.send(chunk);
        if (i % 8 === 7) await new Promise((r) => setImmediate(r));
      }
      expect(result).toBe(0);
      expect(drops.length).toBe(1);
      expect([drops[0]!.socket === ws, drops[0]!.topic]).toEqual([true, null]);
    } finally {
      raw.destroy();
    }
  });
});
