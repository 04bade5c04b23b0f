// WebSockets on the node engine: what only it does (the shared ws-*.test.ts files run on both
// engines). Its handshakes arrive as node:http `upgrade` events; HTTP/2 streams can't upgrade;
// a publish is framed once for all its subscribers.
import net from "node:net";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:http2";
import WebSocket from "ws";
import { describe, expect, it } from "vitest";
import { serve, upgradeWebSocket } from "../dist/index.js";
import { FRAMES_SHARED, NodeTopicTree, type Frame, type TopicSubscriber } from "../dist/engines/node/ws-topics.js";
import { ON_NODE_ENGINE } from "./helpers/core.js";
import { sleep } from "./helpers/client.js";
import { rawRequest, trackServers, withTimeout } from "./helpers/server.js";
import { clientFrame, connectWs, deferred, OP, RawWs } from "./helpers/ws.js";

const track = trackServers();

const HANDSHAKE = (port: number, extra = ""): string =>
  `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;

describe.runIf(ON_NODE_ENGINE)("WebSockets on the node engine", () => {
  it("an HTTP/2 request can't upgrade (upgrade() is false, Deno's upgradeWebSocket throws); HTTP/1.1 on the same port can", async () => {
    const seen: string[] = [];
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        http2: true,
        fetch(req, srv) {
          if (new URL(req.url).pathname === "/deno") {
            try {
              upgradeWebSocket(req);
            } catch (e) {
              return new Response(`deno: ${(e as Error).name}`, { status: 400 });
            }
          }
          if (srv.upgrade(req)) return undefined;
          return new Response("not upgraded", { status: 400 });
        },
        websocket: { message(ws, msg) { seen.push(String(msg)); ws.send(`echo ${msg}`); } },
      }),
    );
    const session = connect(`http://127.0.0.1:${server.port}`);
    try {
      for (const [path, body] of [["/ws", "not upgraded"], ["/deno", "deno: TypeError"]] as const) {
        const stream = session.request({ ":path": path, "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version": "13" });
        let text = "";
        stream.setEncoding("utf8").on("data", (d: string) => (text += d));
        const status = await new Promise<number>((resolve) => stream.on("response", (h) => resolve(Number(h[":status"]))));
        await new Promise((resolve) => stream.on("end", resolve));
        expect([path, status, text]).toEqual([path, 400, body]);
      }
    } finally {
      session.close();
    }
    const client = await connectWs(server, "/ws");
    try {
      client.ws.send("over h1");
      expect(await client.nextText()).toBe("echo over h1");
      expect(seen).toEqual(["over h1"]);
    } finally {
      client.terminate();
    }
  });

  it.runIf(spawnSync("openssl", ["version"]).status === 0)("http2 over TLS: a client without h2 falls back to HTTP/1.1 by ALPN and upgrades there (wss)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "uwserve-h2ws-"));
    try {
      execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost", "-keyout", "key.pem", "-out", "cert.pem", "-days", "1"], { cwd: dir, stdio: "ignore" });
      const server = track(
        serve({
          port: 0,
          hostname: "127.0.0.1",
          http2: true,
          tls: { cert: readFileSync(join(dir, "cert.pem"), "utf8"), key: readFileSync(join(dir, "key.pem"), "utf8") },
          fetch: (req, srv) => (srv.upgrade(req) ? undefined : new Response("no", { status: 400 })),
          websocket: { message: (ws, msg) => void ws.send(`tls ${msg}`) },
        }),
      );
      const client = new WebSocket(`wss://127.0.0.1:${server.port}/`, { rejectUnauthorized: false });
      const reply = new Promise<string>((resolve, reject) => {
        client.once("message", (data) => resolve(String(data)));
        client.once("error", reject);
      });
      client.once("open", () => client.send("hi"));
      try {
        expect(await withTimeout(reply, 3000, "the echo over wss")).toBe("tls hi");
      } finally {
        client.terminate();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a request with another Upgrade (h2c, say) is answered as a plain request, and its connection closes", async () => {
    const server = track(serve({ port: 0, hostname: "127.0.0.1", fetch: (req, srv) => new Response(`upgraded=${srv.upgrade(req)}`), websocket: { message() {} } }));
    const reply = await rawRequest(server.port, `GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n`);
    expect(reply).toMatch(/^HTTP\/1\.1 200 /);
    expect(reply).toMatch(/connection: close/i);
    expect(reply.endsWith("upgraded=false")).toBe(true);
  });

  it("frames the client sends right behind its handshake reach the socket, also when the upgrade comes after an await", async () => {
    const received = deferred<string>();
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        async fetch(req, srv) {
          await sleep(30);
          return srv.upgrade(req) ? undefined : new Response("no", { status: 400 });
        },
        websocket: { message: (_ws, msg) => received.resolve(String(msg)) },
      }),
    );
    const socket = net.connect(server.port, "127.0.0.1");
    try {
      await new Promise((resolve) => socket.once("connect", resolve));
      // One write: the head and a text frame node:http reads past it.
      socket.write(Buffer.concat([Buffer.from(HANDSHAKE(server.port), "latin1"), clientFrame(OP.text, "early")]));
      expect(await withTimeout(received.promise, 3000, "the early message")).toBe("early");
    } finally {
      socket.destroy();
    }
  });

  it("a client gone before an awaited upgrade: upgrade() is false, open never runs, nothing is left open", async () => {
    const upgraded = deferred<boolean>();
    let opened = 0;
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        async fetch(req, srv) {
          await sleep(100);
          upgraded.resolve(srv.upgrade(req));
          return new Response("late");
        },
        websocket: { open: () => void opened++, message() {} },
      }),
    );
    const socket = net.connect(server.port, "127.0.0.1");
    await new Promise((resolve) => socket.once("connect", resolve));
    socket.write(HANDSHAKE(server.port));
    await sleep(20);
    socket.destroy();
    expect(await withTimeout(upgraded.promise, 3000, "the handler")).toBe(false);
    await sleep(50);
    expect(opened).toBe(0);
    expect(server.pendingWebSockets).toBe(0);
    expect(server.pendingRequests).toBe(0);
  });

  it("closeIdleConnections() closes idle keep-alive connections, never an open WebSocket", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        fetch: (req, srv) => (srv.upgrade(req) ? undefined : new Response("plain")),
        websocket: { message: (ws, msg) => void ws.send(`still ${msg}`) },
      }),
    );
    const client = await connectWs(server);
    try {
      const idle = net.connect(server.port, "127.0.0.1");
      const closed = new Promise((resolve) => idle.once("close", resolve));
      idle.on("data", () => {});
      idle.write(`GET / HTTP/1.1\r\nHost: x\r\n\r\n`);
      await sleep(100);
      expect(server.closeIdleConnections()).toBe(1);
      await withTimeout(closed, 2000, "the idle connection closing");
      client.ws.send("open");
      expect(await client.nextText()).toBe("still open");
      expect(server.pendingWebSockets).toBe(1);
    } finally {
      client.terminate();
    }
  });

  it("a publish is framed once: every subscriber writes the same frame object", () => {
    expect(FRAMES_SHARED).toBe(process.env.UWSERVE_WS_FRAMING !== "ws");
    const tree = new NodeTopicTree<TopicSubscriber>();
    const frames: Frame[] = [];
    const subscriber = (): TopicSubscriber => ({ deliver: (frame) => void frames.push(frame()), uncorkTurn() {} });
    const [a, b, c] = [subscriber(), subscriber(), subscriber()];
    for (const s of [a, b, c]) tree.add("t", s);
    expect(tree.publish("t", "hello", false, false, b)).toBe(true);
    expect(frames.length).toBe(2);
    expect(frames[0]).toBe(frames[1]);
    expect([...frames[0]!.head]).toEqual([0x81, 5, ...Buffer.from("hello")]);
    expect(tree.numSubscribers("t")).toBe(3);
    expect(tree.remove("t", a) && tree.remove("t", b) && tree.remove("t", c)).toBe(true);
    expect(tree.numSubscribers("t")).toBe(0);
    expect(tree.publish("t", "nobody")).toBe(false);
  });

  it("2,000 publishes from one message handler (corked per tick, deferred past 32) reach every subscriber whole and in order", async () => {
    const count = 2000;
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        fetch: (req, srv) => (srv.upgrade(req, { data: new URL(req.url).pathname }) ? undefined : new Response("no", { status: 400 })),
        websocket: {
          open(ws) {
            if (ws.data === "/sub") ws.subscribe("flood");
          },
          message(_ws, msg) {
            for (let i = 0; i < count; i++) server.publish("flood", `${msg}-${i}`);
          },
        },
      }),
    );
    const subs = await Promise.all([connectWs(server, "/sub"), connectWs(server, "/sub")]);
    const pub = await RawWs.open(server.port, "/pub");
    try {
      pub.socket.write(clientFrame(OP.text, "m"));
      for (const sub of subs) {
        await sub.waitMessages(count);
        expect(sub.messages.map((m) => m.data)).toEqual(Array.from({ length: count }, (_, i) => `m-${i}`));
      }
    } finally {
      pub.destroy();
      for (const sub of subs) sub.terminate();
    }
  });
});
