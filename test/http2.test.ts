// HTTP/2 on the node engine: h2 by ALPN beside HTTP/1.1 over TLS, h2c with prior knowledge
// beside HTTP/1.1 without TLS (as Deno.serve does), the same handlers, bodies and errors; and
// what the uws engine says when asked for it.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { get as httpsGet } from "node:https";
import { connect, type ClientHttp2Session } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { serve, Response as UwsResponse, type Server } from "../dist/index.js";
import { coreUnavailable } from "../dist/engines/uws/uws.js";
import { thrown, trackServers } from "./helpers/server.js";

const track = trackServers();

/** A self-signed certificate for localhost, made with the openssl CLI in a temp dir. */
const dir = mkdtempSync(join(tmpdir(), "uwserve-h2-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
  "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
  "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")], { stdio: "ignore" });
const key = readFileSync(join(dir, "key.pem"), "utf8");
const cert = readFileSync(join(dir, "cert.pem"), "utf8");

function app(extra: Record<string, unknown> = {}): Server {
  return track(
    serve({
      port: 0,
      hostname: "127.0.0.1",
      engine: "node",
      http2: true,
      ...extra,
      async fetch(req: Request) {
        const url = new URL(req.url);
        if (url.pathname === "/echo") return new UwsResponse(await req.text(), { headers: { "x-method": req.method } });
        if (url.pathname === "/stream") {
          return new Response(new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("a")); c.enqueue(new TextEncoder().encode("b")); c.close(); } }));
        }
        if (url.pathname === "/close") return new UwsResponse("bye", { headers: { connection: "close" } });
        if (url.pathname === "/boom") throw new Error("boom");
        return Response.json({ path: url.pathname, host: req.headers.get("host"), authority: url.host, latin1: "\u00e1" }, { headers: { "x-name": "\u00e1" } });
      },
    }),
  );
}

/** One request over an HTTP/2 session; resolves status, headers and body text. */
function h2Request(session: ClientHttp2Session, path: string, method = "GET", body?: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":path": path, ":method": method });
    let headers: Record<string, unknown> = {};
    stream.on("response", (h) => (headers = h as Record<string, unknown>));
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => resolve({ status: Number(headers[":status"]), headers, body: Buffer.concat(chunks).toString("utf8") }));
    stream.on("error", reject);
    stream.end(body);
  });
}

describe("HTTP/2 on the node engine", () => {
  it("h2c with prior knowledge and HTTP/1.1 on one port, the same handler", async () => {
    const server = app();
    const session = connect(`http://127.0.0.1:${server.port}`);
    try {
      const json = await h2Request(session, "/j");
      expect(json.status).toBe(200);
      expect(JSON.parse(json.body)).toEqual({ path: "/j", host: `127.0.0.1:${server.port}`, authority: `127.0.0.1:${server.port}`, latin1: "\u00e1" });
      // A ByteString header value stays one byte per character on HTTP/2 too.
      expect(Buffer.from(String(json.headers["x-name"]), "latin1")).toEqual(Buffer.from([0xe1]));
      const echo = await h2Request(session, "/echo", "POST", "x".repeat(100_000));
      expect(echo.body).toHaveLength(100_000);
      expect(echo.headers["x-method"]).toBe("POST");
      expect((await h2Request(session, "/stream")).body).toBe("ab");
      // A connection-specific header (forbidden in HTTP/2) is dropped, not a stream error.
      const close = await h2Request(session, "/close");
      expect([close.status, close.body, close.headers.connection]).toEqual([200, "bye", undefined]);
      const boom = await h2Request(session, "/boom");
      expect(boom.status).toBe(500);
      // Several streams at once on one connection.
      const many = await Promise.all(Array.from({ length: 20 }, (_, i) => h2Request(session, `/n${i}`)));
      expect(many.map((r) => JSON.parse(r.body).path)).toEqual(Array.from({ length: 20 }, (_, i) => `/n${i}`));
    } finally {
      session.close();
    }
    const h1 = await fetch(`http://127.0.0.1:${server.port}/over-h1`);
    expect(((await h1.json()) as { path: string }).path).toBe("/over-h1");
  });

  it("over TLS: h2 by ALPN, HTTP/1.1 for clients without it, on one port", async () => {
    const server = app({ tls: { key, cert } });
    expect(server.url.protocol).toBe("https:");
    const session = connect(`https://localhost:${server.port}`, { ca: cert });
    try {
      const res = await h2Request(session, "/tls");
      expect(res.status).toBe(200);
      expect(session.alpnProtocol).toBe("h2");
      expect(JSON.parse(res.body).path).toBe("/tls");
    } finally {
      session.close();
    }
    const body = await new Promise<string>((resolve, reject) => {
      httpsGet({ host: "localhost", port: server.port, path: "/h1", ca: cert, ALPNProtocols: ["http/1.1"] }, (res) => {
        let text = "";
        res.setEncoding("utf8").on("data", (c: string) => (text += c)).on("end", () => resolve(`${res.httpVersion} ${text}`));
      }).on("error", reject);
    });
    expect(body).toMatch(/^1\.1 \{"path":"\/h1"/);
  });

  it("graceful stop waits for an HTTP/2 request in flight, then closes", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const server = track(serve({ port: 0, hostname: "127.0.0.1", engine: "node", http2: true, fetch: async () => { await gate; return new UwsResponse("late"); } }));
    const session = connect(`http://127.0.0.1:${server.port}`);
    session.on("error", () => {});
    const pending = h2Request(session, "/");
    await new Promise((r) => setTimeout(r, 50));
    const stopped = server.stop();
    release();
    expect((await pending).body).toBe("late");
    await stopped;
    session.close();
  });
});

describe("HTTP/2 and the engine choice", () => {
  it('engine "uws" with http2 is a coded error: the core speaks HTTP/1.1 only', () => {
    const err = thrown(() => serve({ port: 0, engine: "uws", http2: true, fetch: () => new Response("x") }));
    expect(err.code).toBe("UWSERVE_ERR_ENGINE_UNSUPPORTED");
    expect(err.message).toContain("http2");
  });

  it('"auto" with http2 serves on the node engine', () => {
    const server = track(serve({ port: 0, hostname: "127.0.0.1", http2: true, fetch: () => new Response("x") }));
    expect(server.engine).toBe("node");
    // The reason line goes to stderr once per process; where the core can't load it may name that instead.
    expect(coreUnavailable() === null || server.engine === "node").toBe(true);
  });

  it("http2 must be a boolean", () => {
    const err = thrown(() => serve({ port: 0, http2: "yes", fetch: () => new Response("x") } as never));
    expect(err.code).toBe("UWSERVE_ERR_INVALID_OPTION");
    expect(err.message).toContain('"http2"');
  });
});
