// server.upgrade(): from fetch, from routes, after an await, data and headers, refusals, auth, missing websocket option, bad handshakes.
import { describe, expect, it, vi } from "vitest";
import { rawExchange, start, trackServers, fetchFrom, waitFor, withTimeout } from "./helpers/server.js";
import { sleep } from "./helpers/client.js";
import { closeAll, connectWs, deferred, RawWs, refusedUpgrade, serveWs, type WsClient } from "./helpers/ws.js";

const track = trackServers();

/** A raw upgrade request head (one connection, the server may answer anything). */
function upgradeHead(port: number, path: string, extra: Record<string, string | null> = {}): string {
  const headers: Record<string, string | null> = {
    Host: `127.0.0.1:${port}`,
    Upgrade: "websocket",
    Connection: "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
    ...extra,
  };
  let head = `GET ${path} HTTP/1.1\r\n`;
  for (const [name, value] of Object.entries(headers)) if (value !== null) head += `${name}: ${value}\r\n`;
  return head + "\r\n";
}

describe("upgrade from fetch", () => {
  it("returns true, opens the socket, and data becomes ws.data", async () => {
    const results: boolean[] = [];
    const opened = deferred<unknown>();
    const server = track(
      start({
        fetch(req: Request, server: any) {
          const ok = server.upgrade(req, { data: { user: "ada", path: new URL(req.url).pathname } });
          results.push(ok);
          if (ok) return;
          return new Response("no", { status: 400 });
        },
        websocket: {
          open(ws: any) {
            opened.resolve(ws.data);
          },
          message(ws: any, msg: string | Buffer) {
            ws.send(`${ws.data.user}:${msg}`);
          },
        },
      }),
    );
    const client = await connectWs(server, "/chat");
    try {
      expect(await withTimeout(opened.promise, 5000, "open()")).toEqual({ user: "ada", path: "/chat" });
      expect(results).toEqual([true]);
      expect(client.response.statusCode).toBe(101);
      await client.send("hi");
      expect(await client.nextText()).toBe("ada:hi");
    } finally {
      client.terminate();
    }
  });

  it("ws.data is undefined when upgrade() got no data", async () => {
    const seen = deferred<unknown>();
    const server = track(
      start({
        fetch(req: Request, server: any) {
          if (server.upgrade(req)) return;
          return new Response("no", { status: 400 });
        },
        websocket: { open: (ws: any) => seen.resolve(ws.data), message() {} },
      }),
    );
    const client = await connectWs(server, "/");
    try {
      expect(await withTimeout(seen.promise, 5000, "open()")).toBeUndefined();
    } finally {
      client.terminate();
    }
  });

  it("works after an await in fetch (the request body read, a timer)", async () => {
    const server = track(
      start({
        async fetch(req: Request, server: any) {
          await sleep(30);
          await Promise.resolve();
          if (server.upgrade(req, { data: { late: true } })) return;
          return new Response("no", { status: 400 });
        },
        websocket: {
          open(ws: any) {
            ws.send(JSON.stringify(ws.data));
          },
          message() {},
        },
      }),
    );
    const client = await connectWs(server, "/late");
    try {
      expect(JSON.parse(await client.nextText())).toEqual({ late: true });
    } finally {
      client.terminate();
    }
  });

  it("the handler's return value after a successful upgrade is ignored (no HTTP bytes after the 101)", async () => {
    const server = track(
      start({
        fetch(req: Request, server: any) {
          server.upgrade(req);
          // hono/bun returns new Response(null) after upgrading; a body here must not be written either.
          return new Response("this must not be written", { status: 200, headers: { "x-not": "sent" } });
        },
        websocket: {
          open(ws: any) {
            ws.send("first");
          },
          message() {},
        },
      }),
    );
    const raw = await RawWs.open(server.port, "/");
    try {
      await raw.until(() => raw.frames.length >= 1, 5000, "the first frame");
      await sleep(100);
      expect(raw.head).not.toContain("x-not");
      expect(raw.frames[0]).toMatchObject({ fin: true, opcode: 1 });
      expect(raw.frames[0]!.payload.toString()).toBe("first");
      expect(raw.frames.length).toBe(1);
    } finally {
      raw.destroy();
    }
  });

  it("an async fetch that upgrades and returns new Response(null) (hono's way) works", async () => {
    const server = track(
      start({
        async fetch(req: Request, server: any) {
          if (server.upgrade(req)) return new Response(null);
          return new Response("no", { status: 400 });
        },
        websocket: {
          message(ws: any, msg: string) {
            ws.send(msg);
          },
        },
      }),
    );
    const client = await connectWs(server, "/");
    try {
      await client.send("echo");
      expect(await client.nextText()).toBe("echo");
    } finally {
      client.terminate();
    }
  });

  it("pendingWebSockets counts open sockets", async () => {
    const server: any = track(serveWs({ message() {} }));
    expect(server.pendingWebSockets).toBe(0);
    const a = await connectWs(server);
    const b = await connectWs(server);
    try {
      await waitFor(() => server.pendingWebSockets === 2, 5000, "pendingWebSockets 2");
      a.close();
      await a.waitClose();
      await waitFor(() => server.pendingWebSockets === 1, 5000, `pendingWebSockets 1 (is ${server.pendingWebSockets})`);
    } finally {
      closeAll([a, b]);
    }
  });
});

describe("upgrade from routes", () => {
  it("a route handler upgrades with (req, server), params in data", async () => {
    const server = track(
      start({
        routes: {
          "/ws/:room": (req: any, server: any) => {
            if (server.upgrade(req, { data: { room: req.params.room } })) return;
            return new Response("no", { status: 400 });
          },
          "/plain": () => new Response("plain"),
        },
        fetch: () => new Response("fallback", { status: 404 }),
        websocket: {
          open(ws: any) {
            ws.send(`room:${ws.data.room}`);
          },
          message() {},
        },
      }),
    );
    const client = await connectWs(server, "/ws/lobby");
    try {
      expect(await client.nextText()).toBe("room:lobby");
      const res = await fetchFrom(server, "/plain");
      expect(await res.text()).toBe("plain");
    } finally {
      client.terminate();
    }
  });

  it("a method-keyed route (GET) upgrades, after an await", async () => {
    const server = track(
      start({
        routes: {
          "/ws": {
            GET: async (req: Request, server: any) => {
              await sleep(10);
              if (server.upgrade(req, { data: 7 })) return;
              return new Response("no", { status: 400 });
            },
          },
        },
        websocket: {
          open(ws: any) {
            ws.send(String(ws.data));
          },
          message() {},
        },
      }),
    );
    const client = await connectWs(server, "/ws");
    try {
      expect(await client.nextText()).toBe("7");
    } finally {
      client.terminate();
    }
  });
});

describe("headers on the 101", () => {
  it("a plain object's headers (Set-Cookie, a custom one) appear on the 101", async () => {
    const server = track(
      start({
        fetch(req: Request, server: any) {
          if (server.upgrade(req, { headers: { "Set-Cookie": "session=abc; Path=/", "X-Extra": "yes" } })) return;
          return new Response("no", { status: 400 });
        },
        websocket: { message() {} },
      }),
    );
    const client = await connectWs(server, "/");
    try {
      expect(client.response.statusCode).toBe(101);
      expect(client.response.headers["set-cookie"]).toEqual(["session=abc; Path=/"]);
      expect(client.response.headers["x-extra"]).toBe("yes");
      expect(client.response.headers["upgrade"]?.toLowerCase()).toBe("websocket");
      expect(client.response.headers["sec-websocket-accept"]).toBeTruthy();
    } finally {
      client.terminate();
    }
  });

  it("a Headers object with two Set-Cookie values sends both", async () => {
    const server = track(
      start({
        fetch(req: Request, server: any) {
          const headers = new Headers();
          headers.append("Set-Cookie", "a=1");
          headers.append("Set-Cookie", "b=2");
          if (server.upgrade(req, { headers })) return;
          return new Response("no", { status: 400 });
        },
        websocket: { message() {} },
      }),
    );
    const client = await connectWs(server, "/");
    try {
      expect(client.response.headers["set-cookie"]).toEqual(["a=1", "b=2"]);
    } finally {
      client.terminate();
    }
  });

  it("Sec-WebSocket-Protocol given in headers selects the client's subprotocol", async () => {
    const server = track(
      start({
        fetch(req: Request, server: any) {
          const offered = req.headers.get("sec-websocket-protocol") ?? "";
          const pick = offered.split(",").map((s) => s.trim()).find((p) => p === "chat");
          if (server.upgrade(req, { headers: pick ? { "Sec-WebSocket-Protocol": pick } : {} })) return;
          return new Response("no", { status: 400 });
        },
        websocket: { message() {} },
      }),
    );
    const client = await connectWs(server, "/", { protocols: ["superchat", "chat"] });
    try {
      expect(client.protocol).toBe("chat");
    } finally {
      client.terminate();
    }
  });
});

describe("refusals", () => {
  it("upgrade() on a plain GET returns false and the handler's Response is sent", async () => {
    const results: boolean[] = [];
    const server = track(
      start({
        fetch(req: Request, server: any) {
          const ok = server.upgrade(req);
          results.push(ok);
          if (ok) return;
          return new Response("plain answer", { status: 418, headers: { "x-why": "not-ws" } });
        },
        websocket: { message() {} },
      }),
    );
    const res = await fetchFrom(server, "/");
    expect(res.status).toBe(418);
    expect(res.headers.get("x-why")).toBe("not-ws");
    expect(await res.text()).toBe("plain answer");
    expect(results).toEqual([false]);
  });

  it("an auth check answers 403 without upgrading (header or ?token=)", async () => {
    let opens = 0;
    const server: any = track(
      start({
        fetch(req: Request, server: any) {
          const url = new URL(req.url);
          const ok = req.headers.get("x-ws-auth-key") === "s3cret" || url.searchParams.get("token") === "s3cret";
          if (!ok) return new Response("forbidden", { status: 403 });
          if (server.upgrade(req, { data: { via: url.searchParams.has("token") ? "token" : "header" } })) return;
          return new Response("no", { status: 400 });
        },
        websocket: {
          open(ws: any) {
            opens++;
            ws.send(ws.data.via);
          },
          message() {},
        },
      }),
    );
    const refused = await refusedUpgrade(server, "/ws");
    expect(refused.status).toBe(403);
    expect(refused.body).toBe("forbidden");
    const wrong = await refusedUpgrade(server, "/ws?token=nope", { headers: { "x-ws-auth-key": "nope" } });
    expect(wrong.status).toBe(403);
    expect(opens).toBe(0);
    expect(server.pendingWebSockets).toBe(0);

    const byHeader = await connectWs(server, "/ws", { headers: { "x-ws-auth-key": "s3cret" } });
    const byToken = await connectWs(server, "/ws?token=s3cret");
    try {
      expect(await byHeader.nextText()).toBe("header");
      expect(await byToken.nextText()).toBe("token");
      expect(opens).toBe(2);
    } finally {
      closeAll([byHeader, byToken]);
    }
  });

  it("upgrade() without a websocket option throws a TypeError naming the problem (500 to the client)", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const caught: unknown[] = [];
    const server = track(
      start({
        fetch(req: Request, server: any) {
          if (new URL(req.url).pathname === "/plain") return new Response("still fine");
          try {
            server.upgrade(req);
          } catch (e) {
            caught.push(e);
            throw e;
          }
          return new Response("upgrade() did not throw", { status: 200 });
        },
      }),
    );
    const refused = await refusedUpgrade(server, "/");
    expect(refused.status).toBe(500);
    expect(caught.length).toBe(1);
    expect(caught[0]).toBeInstanceOf(TypeError);
    expect(String((caught[0] as Error).message)).toMatch(/websocket/i);
    // The server keeps serving.
    expect(await (await fetchFrom(server, "/plain")).text()).toBe("still fine");
  });

  it("without a websocket option, upgrade() on a plain GET returns false or throws a TypeError, and the server keeps serving", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const outcomes: string[] = [];
    const server = track(
      start({
        fetch(req: Request, server: any) {
          try {
            outcomes.push(String(server.upgrade(req)));
          } catch (e) {
            outcomes.push((e as Error).name);
          }
          return new Response("ok");
        },
      }),
    );
    const res = await fetchFrom(server, "/");
    expect(res.status).toBe(200);
    // Either answer is defensible for a request that isn't an upgrade; it must be one of them.
    expect(["false", "TypeError"]).toContain(outcomes[0]);
  });

  for (const [name, extra] of [
    ["a wrong Sec-WebSocket-Version", { "Sec-WebSocket-Version": "8" }],
    ["no Sec-WebSocket-Key", { "Sec-WebSocket-Key": null }],
    ["no Sec-WebSocket-Version", { "Sec-WebSocket-Version": null }],
    ["Upgrade: h2c instead of websocket", { Upgrade: "h2c" }],
    ["a key that is not base64", { "Sec-WebSocket-Key": "not a base64 key at all!" }],
    ["a key of 15 bytes", { "Sec-WebSocket-Key": Buffer.alloc(15, 7).toString("base64") + "AAAA" }],
    ["a key of 17 bytes", { "Sec-WebSocket-Key": Buffer.alloc(17, 7).toString("base64") }],
    ["a 24-character key that is not 16 bytes' base64", { "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=A" }],
  ] as Array<[string, Record<string, string | null>]>) {
    it(`an invalid handshake (${name}) over raw TCP gets no 101 and the server keeps serving`, async () => {
      vi.spyOn(console, "error").mockImplementation(() => {});
      const outcomes: string[] = [];
      let opened = 0;
      const server = track(
        start({
          fetch(req: Request, server: any) {
            try {
              const ok = server.upgrade(req);
              outcomes.push(String(ok));
              if (ok) return;
            } catch (e) {
              outcomes.push(`threw ${(e as Error).name}: ${(e as Error).message}`);
            }
            return new Response("refused", { status: 400 });
          },
          websocket: {
            open() {
              opened++;
            },
            message() {},
          },
        }),
      );
      const exchange = await rawExchange(server.port, upgradeHead(server.port, "/", extra), { idleMs: 300, deadlineMs: 5000 });
      expect(exchange.data.slice(0, 12)).not.toBe("HTTP/1.1 101");
      expect(opened).toBe(0);
      // The handler, when reached, sees upgrade() return false (a client error, not a server error).
      for (const outcome of outcomes) expect(outcome).toBe("false");
      // Still serving: plain HTTP and a good upgrade.
      expect((await fetchFrom(server, "/")).status).toBe(400);
      const good = await connectWs(server, "/");
      good.terminate();
    });
  }

  for (const [name, extra, status] of [
    ["a wrong Sec-WebSocket-Version", { "Sec-WebSocket-Version": "8" }, 426],
    ["a 24-character key that is not 16 bytes' base64", { "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=A" }, 400],
  ] as Array<[string, Record<string, string>, number]>) {
    it(`a handler that answers nothing after a refused upgrade (${name}): ${status}${status === 426 ? " with Sec-WebSocket-Version: 13" : ""}`, async () => {
      const server = track(
        start({
          fetch(req: Request, server: any) {
            if (server.upgrade(req)) return;
            // Nothing returned: uwserve answers the refused handshake itself.
          },
          websocket: { message() {} },
        }),
      );
      const exchange = await rawExchange(server.port, upgradeHead(server.port, "/", extra), { idleMs: 300, deadlineMs: 5000 });
      expect(exchange.data).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
      if (status === 426) expect(exchange.data.toLowerCase()).toContain("sec-websocket-version: 13\r\n");
    });
  }

  it("a handler's own answer to a refused upgrade is sent as it is", async () => {
    const server = track(
      start({
        fetch(req: Request, server: any) {
          if (server.upgrade(req)) return;
          return new Response("custom refusal", { status: 403 });
        },
        websocket: { message() {} },
      }),
    );
    const exchange = await rawExchange(server.port, upgradeHead(server.port, "/", { "Sec-WebSocket-Version": "8" }), { idleMs: 300, deadlineMs: 5000 });
    expect(exchange.data).toMatch(/^HTTP\/1\.1 403 /);
    expect(exchange.data).toContain("custom refusal");
  });

  it("a request that is not GET (POST with upgrade headers) does not upgrade", async () => {
    const outcomes: boolean[] = [];
    const server = track(
      start({
        fetch(req: Request, server: any) {
          const ok = server.upgrade(req);
          outcomes.push(ok);
          if (ok) return;
          return new Response("refused", { status: 400 });
        },
        websocket: { message() {} },
      }),
    );
    const head = upgradeHead(server.port, "/").replace(/^GET/, "POST").replace("\r\n\r\n", "\r\nContent-Length: 0\r\n\r\n");
    const exchange = await rawExchange(server.port, head, { idleMs: 300, deadlineMs: 5000 });
    expect(exchange.data.slice(0, 12)).toBe("HTTP/1.1 400");
    expect(outcomes).toEqual([false]);
  });

  it("a client that leaves while fetch awaits: the late upgrade() does not throw or crash, and nothing stays open", async () => {
    const outcomes: string[] = [];
    let opens = 0;
    let closes = 0;
    const reached = deferred<void>();
    const settled = deferred<void>();
    const server: any = track(
      start({
        async fetch(req: Request, server: any) {
          reached.resolve();
          await sleep(150);
          try {
            outcomes.push(String(server.upgrade(req)));
          } catch (e) {
            outcomes.push(`threw ${(e as Error).message}`);
          }
          settled.resolve();
          return new Response("gone", { status: 400 });
        },
        websocket: {
          open() {
            opens++;
          },
          close() {
            closes++;
          },
          message() {},
        },
      }),
    );
    const socket = (await import("node:net")).connect(server.port, "127.0.0.1");
    socket.on("error", () => {});
    socket.write(upgradeHead(server.port, "/"));
    await withTimeout(reached.promise, 5000, "fetch to run");
    socket.destroy();
    await withTimeout(settled.promise, 5000, "the late upgrade()");
    await sleep(50);
    expect(outcomes.length).toBe(1);
    expect(outcomes[0]).not.toMatch(/^threw/);
    expect(opens - closes).toBe(0);
    expect(server.pendingWebSockets).toBe(0);
    const good = await connectWs(server, "/");
    good.terminate();
  });

  it("many upgrades at once all open, each with its own data", async () => {
    const server = track(
      serveWs(
        {
          open(ws: any) {
            ws.send(`id:${ws.data.id}`);
          },
          message() {},
        },
        { data: (req: Request) => ({ id: new URL(req.url).searchParams.get("id") }) },
      ),
    );
    const clients: WsClient[] = await Promise.all(Array.from({ length: 40 }, (_, i) => connectWs(server, `/?id=${i}`)));
    try {
      const got = await Promise.all(clients.map((c) => c.nextText()));
      expect(got).toEqual(Array.from({ length: 40 }, (_, i) => `id:${i}`));
    } finally {
      closeAll(clients);
    }
  });
});
