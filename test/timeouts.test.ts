// Idle timeouts with slow clients: what the core cuts (incomplete heads, after its fixed 10 s),
// what it no longer cuts (an upload that keeps sending), and idleTimeout applied to uploads.
import net from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { serve, type Server } from "../dist/index.js";
import { ON_NODE_ENGINE } from "./helpers/core.js";

// The tests run concurrently (they wait on real clocks), so each stops its own server rather than
// sharing an afterEach that would stop the others' too.
const servers = new Set<Server>();
afterAll(async () => {
  await Promise.all([...servers].map((server) => server.stop(true)));
});
function track(server: Server): Server {
  servers.add(server);
  return server;
}

interface SlowResult {
  seconds: number;
  sent: number;
  response: string;
}

/** Sends `chunks` one every `everyMs`; resolves when the server closes the connection. */
function slowClient(port: number, chunks: string[], everyMs: number, deadlineMs = 40_000): Promise<SlowResult> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect(port, "127.0.0.1");
    let sent = 0;
    let response = "";
    const timer = setInterval(() => {
      if (sent < chunks.length) socket.write(chunks[sent++]!);
    }, everyMs);
    const deadline = setTimeout(() => socket.destroy(), deadlineMs);
    socket.on("data", (data) => {
      response += data.toString("latin1");
      // A complete answer to an upload: no need to wait for the keep-alive close.
      if (/\r\n\r\ngot \d+$/.test(response)) socket.end();
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      clearInterval(timer);
      clearTimeout(deadline);
      resolve({ seconds: (Date.now() - started) / 1000, sent, response });
    });
  });
}

function uploadServer(options: Record<string, unknown> = {}): Server {
  return track(
    serve({
      port: 0,
      hostname: "127.0.0.1",
      ...options,
      async fetch(req: Request) {
        const body = await req.text();
        return new Response(`got ${body.length}`);
      },
    }),
  );
}

const upload = (bytes: number) => [`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${bytes}\r\n\r\n`, ..."x".repeat(bytes)];

describe("slow clients", { timeout: 45_000 }, () => {
  it.concurrent("a slowloris client (request line, then one header byte a second) is cut by the core after about 10 s", async () => {
    const server = uploadServer();
    const head = "Host: x\r\nX-Slow: " + "a".repeat(30) + "\r\n\r\n";
    const result = await slowClient(server.port, ["GET / HTTP/1.1\r\n", ...head], 1000);
    // The core just closes; node:http answers 408 first.
    if (ON_NODE_ENGINE) expect(result.response).toMatch(/^HTTP\/1\.1 408 /);
    else expect(result.response).toBe("");
    expect(result.sent).toBeLessThan(head.length);
    expect(result.seconds).toBeGreaterThan(8);
    expect(result.seconds).toBeLessThan(16);
  });

  it.concurrent("an upload that keeps sending (one byte a second for 15 s) is not cut", async () => {
    const server = uploadServer();
    const result = await slowClient(server.port, upload(15), 1000);
    expect(result.response).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*got 15$/);
    expect(result.seconds).toBeGreaterThan(14);
  });

  it.concurrent("idleTimeout: 2 cuts an upload that stalls for longer than 2 s", async () => {
    const server = uploadServer({ idleTimeout: 2 });
    const started = Date.now();
    const socket = net.connect(server.port, "127.0.0.1");
    socket.on("error", () => {});
    socket.write(upload(10).slice(0, 3).join(""));
    await new Promise((resolve) => socket.on("close", resolve));
    const seconds = (Date.now() - started) / 1000;
    expect(seconds).toBeGreaterThan(1.9);
    expect(seconds).toBeLessThan(5);
  });

  it.concurrent("idleTimeout: 2 does not cut an upload that sends every 0.5 s", async () => {
    const server = uploadServer({ idleTimeout: 2 });
    const result = await slowClient(server.port, upload(10), 500);
    expect(result.response).toMatch(/got 10$/);
  });

  it.concurrent("idleTimeout: 30 lets an upload stall for 14 s, past the core's own 10 s", async () => {
    const server = uploadServer({ idleTimeout: 30 });
    const chunks = upload(2);
    const socket = net.connect(server.port, "127.0.0.1");
    let response = "";
    socket.on("data", (data) => (response += data.toString("latin1")));
    socket.on("error", () => {});
    socket.write(chunks[0]! + chunks[1]!);
    await new Promise((resolve) => setTimeout(resolve, 14_000));
    expect(socket.destroyed).toBe(false);
    socket.write(chunks[2]!);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(response).toMatch(/got 2$/);
    socket.destroy();
  });

  it.concurrent("an upload paused because its handler isn't reading yet is not cut while the handler works (15 s)", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        async fetch(req: Request) {
          await new Promise((resolve) => setTimeout(resolve, 15_000));
          const body = await req.arrayBuffer();
          return new Response(`got ${body.byteLength}`);
        },
      }),
    );
    const size = 8 * 1024 * 1024;
    const socket = net.connect(server.port, "127.0.0.1");
    let response = "";
    socket.on("data", (data) => (response += data.toString("latin1")));
    socket.on("error", () => {});
    socket.write(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
    socket.write(Buffer.alloc(size, 120));
    const closed = new Promise((resolve) => socket.on("close", resolve));
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 17_000))]);
    expect(response).toMatch(new RegExp(`got ${size}$`));
    socket.destroy();
  });

  it.concurrent("without idleTimeout, a stalled upload is cut by the core after about 10 s", async () => {
    const server = uploadServer();
    const started = Date.now();
    const socket = net.connect(server.port, "127.0.0.1");
    socket.on("error", () => {});
    socket.write(upload(10).slice(0, 3).join(""));
    await new Promise((resolve) => socket.on("close", resolve));
    const seconds = (Date.now() - started) / 1000;
    expect(seconds).toBeGreaterThan(8);
    expect(seconds).toBeLessThan(16);
  });
});
