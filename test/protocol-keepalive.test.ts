/**
 * Keep-alive: one connection carries many sequential requests — 10,000 of them on a raw
 * socket, thousands through node:http's keep-alive Agent — and every kind of response (HEAD,
 * 204/304, streamed, error, unread upload) leaves the connection usable for the next request.
 */
import http from "node:http";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { Server } from "../dist/index.js";
import { parseResponses, start, withTimeout, type ParsedResponse } from "./helpers/server.js";

let server: Server | null = null;
afterEach(async () => {
  await server?.stop(true);
  server = null;
});

/**
 * One raw keep-alive connection: `send(request, isHead)` writes a request and resolves with its
 * response once it has fully arrived (never pipelined: the next write waits for the answer).
 */
async function openConnection(port: number): Promise<{
  send(request: string, isHead?: boolean): Promise<ParsedResponse>;
  closed(): boolean;
  close(): void;
}> {
  const socket = net.connect(port, "127.0.0.1");
  socket.setNoDelay(true);
  socket.setEncoding("latin1");
  let buffer = "";
  let isClosed = false;
  let waiting: { isHead: boolean; resolve: (r: ParsedResponse) => void; reject: (e: Error) => void } | null = null;
  const check = () => {
    if (waiting === null) return;
    const { responses, rest } = parseResponses(buffer, waiting.isHead ? new Set([0]) : new Set());
    if (responses.length === 0) return;
    buffer = rest;
    const w = waiting;
    waiting = null;
    w.resolve(responses[0]!);
  };
  socket.on("data", (d: string) => {
    buffer += d;
    check();
  });
  socket.on("error", () => {});
  socket.on("close", () => {
    isClosed = true;
    waiting?.reject(new Error(`connection closed; unparsed: ${JSON.stringify(buffer.slice(0, 200))}`));
    waiting = null;
  });
  await withTimeout(new Promise((r) => socket.once("connect", r)), 5000, "the connection");
  return {
    send(request, isHead = false) {
      return new Promise((resolve, reject) => {
        if (isClosed) return reject(new Error("connection already closed"));
        waiting = { isHead, resolve, reject };
        socket.write(request);
      });
    },
    closed: () => isClosed,
    close: () => socket.destroy(),
  };
}

describe("10,000 sequential requests on one connection", () => {
  it("raw socket: every response right, in order, no error", async () => {
    let calls = 0;
    server = start({
      fetch(req: Request) {
        calls++;
        return new Response(`n=${new URL(req.url).searchParams.get("n")}`);
      },
    });
    const conn = await openConnection(server.port);
    const started = Date.now();
    try {
      for (let i = 0; i < 10_000; i++) {
        const res = await conn.send(`GET /seq?n=${i} HTTP/1.1\r\nHost: x\r\n\r\n`);
        if (res.status !== 200 || res.body !== `n=${i}`) {
          throw new Error(`request ${i} got ${res.status} ${JSON.stringify(res.body)}`);
        }
      }
    } finally {
      conn.close();
    }
    expect(calls).toBe(10_000);
    // Generous: ~1 s on a laptop; anything near the test timeout means something stalls.
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(server.pendingRequests).toBe(0);
  }, 30_000);

  it("node:http Agent (keepAlive, maxSockets 1): 10,000 requests reuse one socket", async () => {
    server = start({
      async fetch(req: Request) {
        return new Response(`n=${new URL(req.url).searchParams.get("n")}`);
      },
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    const started = Date.now();
    try {
      for (let i = 0; i < 10_000; i++) {
        const body = await new Promise<string>((resolve, reject) => {
          const req = http.get({ host: "127.0.0.1", port: server!.port, path: `/agent?n=${i}`, agent }, (res) => {
            let data = "";
            res.setEncoding("utf8");
            res.on("data", (c: string) => (data += c));
            res.on("end", () => resolve(data));
            res.on("error", reject);
          });
          req.on("socket", (s) => sockets.add(s));
          req.on("error", reject);
        });
        if (body !== `n=${i}`) throw new Error(`request ${i} got ${JSON.stringify(body)}`);
      }
    } finally {
      agent.destroy();
    }
    expect(sockets.size).toBe(1);
    expect(Date.now() - started).toBeLessThan(25_000);
  }, 30_000);
});

describe("every kind of response leaves the connection usable", () => {
  it("HEAD, 204, 304, streamed, Blob, error, POST and unread uploads, then a GET each time", async () => {
    server = start({
      async fetch(req: Request) {
        const path = new URL(req.url).pathname;
        switch (path) {
          case "/head":
            return new Response("a body HEAD must not send");
          case "/204":
            return new Response(null, { status: 204 });
          case "/304":
            return new Response(null, { status: 304 });
          case "/stream":
            return new Response(
              new ReadableStream({
                start(c) {
                  c.enqueue(new TextEncoder().encode("streamed "));
                  c.enqueue(new TextEncoder().encode("body"));
                  c.close();
                },
              }),
            );
          case "/stream-length":
            return new Response(
              new ReadableStream({
                start(c) {
                  c.enqueue(new TextEncoder().encode("12345"));
                  c.close();
                },
              }),
              { headers: { "content-length": "5" } },
            );
          case "/blob":
            return new Response(new Blob(["blob body"]));
          case "/throw":
            throw new Error("handler failure (expected in this test)");
          case "/echo":
            return new Response(`echo ${await req.text()}`);
          case "/unread":
            return new Response("did not read it");
          default:
            return new Response(`plain ${path}`);
        }
      },
      error() {
        return new Response("handled error", { status: 500 });
      },
    });
    const conn = await openConnection(server.port);
    const big = "u".repeat(300 * 1024);
    const steps: Array<[string, boolean, number, string | null]> = [
      ["HEAD /head HTTP/1.1\r\nHost: x\r\n\r\n", true, 200, null],
      ["GET /204 HTTP/1.1\r\nHost: x\r\n\r\n", false, 204, ""],
      ["GET /304 HTTP/1.1\r\nHost: x\r\n\r\n", false, 304, ""],
      ["GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", false, 200, "streamed body"],
      ["HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n", true, 200, null],
      ["GET /stream-length HTTP/1.1\r\nHost: x\r\n\r\n", false, 200, "12345"],
      ["HEAD /stream-length HTTP/1.1\r\nHost: x\r\n\r\n", true, 200, null],
      ["GET /blob HTTP/1.1\r\nHost: x\r\n\r\n", false, 200, "blob body"],
      ["GET /throw HTTP/1.1\r\nHost: x\r\n\r\n", false, 500, "handled error"],
      ["POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", false, 200, "echo hello"],
      ["POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", false, 200, "echo abc"],
      [`POST /unread HTTP/1.1\r\nHost: x\r\nContent-Length: ${big.length}\r\n\r\n${big}`, false, 200, "did not read it"],
      ["HEAD /head HTTP/1.1\r\nHost: x\r\n\r\n", true, 200, null],
    ];
    try {
      for (const [request, isHead, status, body] of steps) {
        const what = request.slice(0, request.indexOf(" HTTP/1.1"));
        const res = await withTimeout(conn.send(request, isHead), 5000, what);
        expect(res.status, what).toBe(status);
        if (body !== null) expect(res.body, what).toBe(body);
        const next = await withTimeout(conn.send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n"), 5000, `the GET after ${what}`);
        expect(next.body, `the GET after ${what}`).toBe("plain /next");
      }
    } finally {
      conn.close();
    }
  });

  it("HEAD of a string body reports its length and the connection goes on", async () => {
    server = start({ fetch: () => new Response("twelve bytes") });
    const conn = await openConnection(server.port);
    try {
      for (let i = 0; i < 3; i++) {
        const head = await conn.send("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", true);
        expect(head.header("content-length")).toBe("12");
        expect((await conn.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")).body).toBe("twelve bytes");
      }
    } finally {
      conn.close();
    }
  });

  it("the client's Connection: close is honoured after the response", async () => {
    server = start({ fetch: () => new Response("bye") });
    const conn = await openConnection(server.port);
    const res = await conn.send("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect(res.body).toBe("bye");
    await withTimeout(
      new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          if (conn.closed()) {
            clearInterval(poll);
            resolve();
          }
        }, 10);
      }),
      5000,
      "the server to close the connection",
    );
    conn.close();
  });

  it("a streamed Connection: close response keeps valid chunked framing and announces the close", async () => {
    server = start({
      fetch: () =>
        new Response(
          new ReadableStream({
            async pull(c) {
              await new Promise((r) => setTimeout(r, 5));
              c.enqueue(new TextEncoder().encode("streamed"));
              c.close();
            },
          }),
          { headers: { connection: "close" } },
        ),
    });
    const conn = await openConnection(server.port);
    try {
      const res = await withTimeout(conn.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 5000, "the streamed response");
      // This uWS build can't close after a chunked body (end(…, true) would corrupt it), so the
      // header tells the client to close; parseResponses() fails on any corrupt chunk framing.
      expect(res.body).toBe("streamed");
      expect(res.header("connection")).toBe("close");
      expect(res.header("transfer-encoding")).toBe("chunked");
    } finally {
      conn.close();
    }
  });

  it("a handler's Connection: close response ends the connection", async () => {
    server = start({ fetch: () => new Response("closing", { headers: { connection: "close" } }) });
    const conn = await openConnection(server.port);
    const res = await conn.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(res.body).toBe("closing");
    expect(res.header("connection")).toBe("close");
    await withTimeout(
      new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          if (conn.closed()) {
            clearInterval(poll);
            resolve();
          }
        }, 10);
      }),
      5000,
      "the server to close the connection",
    );
    conn.close();
  });
});
