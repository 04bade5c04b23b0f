// A Hono app using upgradeWebSocket and websocket from hono/bun, served unchanged by serve({ fetch: app.fetch, websocket }).
// Node 20 has no global CloseEvent, so hono/bun's close() throws a ReferenceError inside hono
// (hono reports it to onError when there is one, else it propagates to uwserve's error path).
import { Hono } from "hono";
import { afterAll, describe, expect, it, vi } from "vitest";
import { serve } from "../dist/index.js";
import { fetchFrom, trackServers, waitFor, withTimeout } from "./helpers/server.js";
import { connectWs, deferred } from "./helpers/ws.js";

// "hono/bun"'s index also loads hono's Bun SSG helper, which runs `const { write } = Bun` at
// import time: on Node that import fails with "ReferenceError: Bun is not defined" unless some
// `Bun` global exists. An empty stub is enough (the SSG helper is not used); uwserve sets none.
const hadBun = "Bun" in globalThis;
(globalThis as { Bun?: unknown }).Bun ??= {};
const { upgradeWebSocket, websocket } = await import("hono/bun");
afterAll(() => {
  if (!hadBun) delete (globalThis as { Bun?: unknown }).Bun;
});

const track = trackServers();
const hasCloseEvent = typeof (globalThis as { CloseEvent?: unknown }).CloseEvent === "function";

function honoServer(app: Hono): any {
  return track(serve({ port: 0, hostname: "127.0.0.1", fetch: app.fetch, websocket } as never));
}

describe("hono/bun on uwserve", () => {
  it("open, message (text) and send work; plain routes still answer", async () => {
    const app = new Hono();
    app.get("/", (c) => c.text("http ok"));
    app.get(
      "/ws",
      upgradeWebSocket(() => ({
        onOpen(_evt, ws) {
          ws.send("welcome");
        },
        onMessage(evt, ws) {
          ws.send(`echo:${evt.data}`);
        },
      })),
    );
    const server = honoServer(app);
    const client = await connectWs(server, "/ws");
    try {
      expect(await client.nextText()).toBe("welcome");
      await client.send("hi hono");
      expect(await client.nextText()).toBe("echo:hi hono");
      expect(await (await fetchFrom(server, "/")).text()).toBe("http ok");
    } finally {
      client.terminate();
    }
  });

  it("binary messages reach onMessage as an ArrayBuffer holding exactly the message", async () => {
    const app = new Hono();
    app.get(
      "/ws",
      upgradeWebSocket(() => ({
        onMessage(evt, ws) {
          const d = evt.data;
          ws.send(d instanceof ArrayBuffer ? `ab:${d.byteLength}:${Buffer.from(d).toString("hex")}` : `other:${typeof d}`);
        },
      })),
    );
    const server = honoServer(app);
    const client = await connectWs(server, "/ws");
    try {
      await client.send(Buffer.from([0xde, 0xad, 0xbe, 0xef]), { binary: true });
      expect(await client.nextText()).toBe("ab:4:deadbeef");
    } finally {
      client.terminate();
    }
  });

  it("a plain GET to the WebSocket route falls through to the next handler", async () => {
    const app = new Hono();
    app.get(
      "/ws",
      upgradeWebSocket(() => ({ onMessage() {} })),
      (c) => c.text("use a websocket", 426),
    );
    const server = honoServer(app);
    const res = await fetchFrom(server, "/ws");
    expect(res.status).toBe(426);
    expect(await res.text()).toBe("use a websocket");
  });

  it("the WSContext exposes the url, the client's protocol and the raw ServerWebSocket; ws.close(code, reason) reaches the client", async () => {
    const seen = deferred<any>();
    const app = new Hono();
    app.get(
      "/ws/:room",
      upgradeWebSocket((c) => ({
        onOpen(_evt, ws) {
          seen.resolve({ url: ws.url?.toString(), protocol: ws.protocol, room: c.req.param("room"), remote: (ws.raw as any)?.remoteAddress });
        },
        onMessage(_evt, ws) {
          ws.close(4010, "hono bye");
        },
        onError() {},
      })),
    );
    const server = honoServer(app);
    const client = await connectWs(server, "/ws/blue?x=1", { protocols: ["p1"] });
    try {
      const info = await withTimeout(seen.promise, 5000, "onOpen");
      expect(info.url).toBe(`http://127.0.0.1:${server.port}/ws/blue?x=1`);
      expect(info.room).toBe("blue");
      expect(info.remote).toBe("127.0.0.1");
      await client.send("close please");
      expect(await client.waitClose()).toEqual({ code: 4010, reason: "hono bye" });
    } finally {
      client.terminate();
    }
  });

  it(`close: ${hasCloseEvent ? "onClose gets the code" : "without a global CloseEvent hono's close() fails; with onError hono reports it there"}`, async () => {
    const closed = deferred<unknown>();
    const errored = deferred<unknown>();
    const app = new Hono();
    app.get(
      "/ws",
      upgradeWebSocket(() => ({
        onClose(evt) {
          closed.resolve((evt as CloseEvent).code);
        },
        onError(evt) {
          errored.resolve((evt as any).error);
        },
      })),
    );
    const server = honoServer(app);
    const client = await connectWs(server, "/ws");
    client.close(1000, "done");
    if (hasCloseEvent) {
      expect(await withTimeout(closed.promise, 5000, "onClose")).toBe(1000);
    } else {
      const error = await withTimeout(errored.promise, 5000, "onError");
      expect(error).toBeInstanceOf(ReferenceError);
      expect(String((error as Error).message)).toContain("CloseEvent");
    }
    // Either way the server is fine.
    const again = await connectWs(server, "/ws");
    again.terminate();
    await waitFor(() => server.pendingWebSockets === 0, 5000, "pendingWebSockets 0");
  });

  it("without onError, hono's failing close() is reported by uwserve (console.error) and never crashes", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const app = new Hono();
    app.get(
      "/ws",
      upgradeWebSocket(() => ({
        onMessage(evt, ws) {
          ws.send(String(evt.data));
        },
        onClose() {},
      })),
    );
    const server = honoServer(app);
    const client = await connectWs(server, "/ws");
    client.close(1000);
    await client.waitClose();
    if (!hasCloseEvent) await waitFor(() => logged.mock.calls.length > 0, 5000, "console.error for the close failure");
    const again = await connectWs(server, "/ws");
    try {
      await again.send("alive");
      expect(await again.nextText()).toBe("alive");
    } finally {
      again.terminate();
    }
  });
});
