// Automatic compression (compression: true / Deno's automaticCompression), by Deno's rules,
// decoded by real clients: node:http + zlib, fetch (undici decodes), curl --compressed.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { brotliDecompressSync, createGunzip, gunzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { file, Response, serve, type Server } from "../dist/index.js";
import { trackServers } from "./helpers/server.js";

const track = trackServers();
const dir = mkdtempSync(join(tmpdir(), "uwserve-compress-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TEXT = "uwserve compresses this text because it repeats. ".repeat(40); // ~2 KB
const JSON_BODY = JSON.stringify({ items: Array.from({ length: 40 }, (_, i) => ({ id: i, name: `item ${i}`, ok: true })) });

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** GET with node:http (which never decodes), so the bytes on the wire are checked. */
function get(server: Server, path: string, headers: Record<string, string> = {}, method = "GET"): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: server.port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end();
  });
}

function decode(raw: Raw): string {
  const encoding = raw.headers["content-encoding"];
  if (encoding === "gzip") return gunzipSync(raw.body).toString();
  if (encoding === "br") return brotliDecompressSync(raw.body).toString();
  return raw.body.toString();
}

function compressingServer(handler: (req: Request) => Response | Promise<Response>, options: Record<string, unknown> = { compression: true }): Server {
  return track(serve({ port: 0, hostname: "127.0.0.1", ...options, fetch: handler }));
}

const text = () => new Response(TEXT, { headers: { "content-type": "text/plain;charset=utf-8" } });

describe("choosing an encoding from Accept-Encoding", () => {
  const cases: Array<[string, string | undefined]> = [
    ["gzip", "gzip"],
    ["br", "br"],
    ["gzip, deflate, br", "gzip"], // a tie: gzip (cheaper on Node)
    ["gzip;q=0.5, br;q=0.8", "br"],
    ["br;q=0, gzip", "gzip"],
    ["br;q=0", undefined],
    ["gzip;q=0, br;q=0", undefined],
    ["identity", undefined],
    ["identity;q=1, gzip;q=0.5", undefined],
    ["gzip;q=0.5", "gzip"],
    ["*", "gzip"],
    ["*;q=0.3, br;q=0.9", "br"],
    ["deflate", undefined],
    ["GZIP", "gzip"],
  ];
  for (const [accept, expected] of cases) {
    it(`Accept-Encoding: ${accept} → ${expected ?? "identity"}`, async () => {
      const server = compressingServer(text);
      const raw = await get(server, "/", { "accept-encoding": accept });
      expect(raw.headers["content-encoding"]).toBe(expected);
      expect(decode(raw)).toBe(TEXT);
      if (expected) {
        expect(raw.headers.vary).toBe("Accept-Encoding");
        expect(Number(raw.headers["content-length"])).toBe(raw.body.length);
        expect(raw.body.length).toBeLessThan(Buffer.byteLength(TEXT) / 4);
      }
    });
  }

  it("without Accept-Encoding nothing is compressed", async () => {
    const raw = await get(compressingServer(text), "/");
    expect(raw.headers["content-encoding"]).toBeUndefined();
    expect(raw.body.toString()).toBe(TEXT);
  });
});

describe("what is compressed", () => {
  it("is off by default, as in Bun and Deno 2.9", async () => {
    const raw = await get(compressingServer(text, {}), "/", { "accept-encoding": "gzip" });
    expect(raw.headers["content-encoding"]).toBeUndefined();
  });

  it("Deno's name automaticCompression: true turns it on", async () => {
    const raw = await get(compressingServer(text, { automaticCompression: true }), "/", { "accept-encoding": "gzip" });
    expect(raw.headers["content-encoding"]).toBe("gzip");
  });

  it("64 bytes or more: 63 stay as they are, 64 are compressed", async () => {
    const server = compressingServer((req) => new Response("x".repeat(Number(new URL(req.url).searchParams.get("n"))), { headers: { "content-type": "text/plain" } }));
    expect((await get(server, "/?n=63", { "accept-encoding": "gzip" })).headers["content-encoding"]).toBeUndefined();
    const raw = await get(server, "/?n=64", { "accept-encoding": "gzip" });
    expect(raw.headers["content-encoding"]).toBe("gzip");
    expect(decode(raw)).toBe("x".repeat(64));
  });

  it("only compressible types (mime-db's flag, Deno's list): JSON, HTML, SVG, octet-stream (mime-db marks it) yes; PNG, unknown text/fake, event streams, no type no", async () => {
    const types: Record<string, boolean> = {
      "application/json": true,
      "text/html; charset=utf-8": true,
      "image/svg+xml": true,
      "application/vnd.api+json": true,
      "application/octet-stream": true,
      "TEXT/PLAIN;charset=UTF-8": true,
      "image/png": false,
      "application/x-uwserve-unknown": false,
      // Deno's own tests: a text/* type mime-db doesn't know is not compressed.
      "text/fake": false,
      "text/fake; charset=utf-8": false,
      "text/event-stream": false,
    };
    const server = compressingServer((req) => {
      const type = new URL(req.url).searchParams.get("type");
      return new Response(new TextEncoder().encode(TEXT), type ? { headers: { "content-type": type } } : {});
    });
    for (const [type, compressed] of Object.entries(types)) {
      const raw = await get(server, `/?type=${encodeURIComponent(type)}`, { "accept-encoding": "gzip" });
      expect(raw.headers["content-encoding"], type).toBe(compressed ? "gzip" : undefined);
      expect(decode(raw)).toBe(TEXT);
    }
    expect((await get(server, "/", { "accept-encoding": "gzip" })).headers["content-encoding"]).toBeUndefined();
  });

  it("a string body's default text/plain and Response.json are compressible", async () => {
    const server = compressingServer((req) => (new URL(req.url).pathname === "/json" ? Response.json(JSON.parse(JSON_BODY)) : new Response(TEXT)));
    expect((await get(server, "/", { "accept-encoding": "br" })).headers["content-encoding"]).toBe("br");
    const raw = await get(server, "/json", { "accept-encoding": "gzip" });
    expect(raw.headers["content-encoding"]).toBe("gzip");
    expect(JSON.parse(decode(raw))).toEqual(JSON.parse(JSON_BODY));
  });

  it("never with Content-Encoding, Content-Range or Cache-Control: no-transform", async () => {
    const server = compressingServer((req) => {
      const which = new URL(req.url).pathname;
      const headers: Record<string, string> = { "content-type": "text/plain" };
      if (which === "/encoded") headers["content-encoding"] = "identity";
      if (which === "/range") headers["content-range"] = "bytes 0-99/2000";
      if (which === "/no-transform") headers["cache-control"] = "public, no-transform";
      return new Response(TEXT, { headers });
    });
    for (const path of ["/encoded", "/range", "/no-transform"]) {
      const raw = await get(server, path, { "accept-encoding": "gzip, br" });
      expect(raw.headers["content-encoding"] ?? "identity", path).toBe("identity");
      expect(raw.body.toString()).toBe(TEXT);
    }
  });

  it("an existing Vary is extended, not replaced", async () => {
    const server = compressingServer(() => new Response(TEXT, { headers: { "content-type": "text/plain", vary: "Origin" } }));
    const raw = await get(server, "/", { "accept-encoding": "gzip" });
    expect(raw.headers.vary).toBe("Origin, Accept-Encoding");
  });

  it("HEAD answers are not compressed (same length as the identity body)", async () => {
    const raw = await get(compressingServer(text), "/", { "accept-encoding": "gzip" }, "HEAD");
    expect(raw.headers["content-encoding"]).toBeUndefined();
    expect(Number(raw.headers["content-length"])).toBe(Buffer.byteLength(TEXT));
  });

  it("a large body (4 MiB) is compressed off the event loop and arrives whole", async () => {
    const big = "line of a large compressible body\n".repeat(128 * 1024);
    const server = compressingServer(() => new Response(big, { headers: { "content-type": "text/plain" } }));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const raw = await get(server, "/", { "accept-encoding": "gzip" });
    clearInterval(timer);
    expect(raw.headers["content-encoding"]).toBe("gzip");
    expect(decode(raw)).toBe(big);
    expect(ticks).toBeGreaterThan(0);
  });
});

describe("streams and files", () => {
  it("a streamed body is compressed as it streams: the first part decodes before the stream ends", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const server = compressingServer(
      () =>
        new Response(
          new ReadableStream({
            async start(controller) {
              controller.enqueue(new TextEncoder().encode("first part ".repeat(20)));
              await gate;
              controller.enqueue(new TextEncoder().encode("second part ".repeat(20)));
              controller.close();
            },
          }),
          { headers: { "content-type": "text/plain" } },
        ),
    );
    const decoded = await new Promise<string>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port: server.port, path: "/", headers: { "accept-encoding": "gzip" } }, (res) => {
        expect(res.headers["content-encoding"]).toBe("gzip");
        expect(res.headers["transfer-encoding"]).toBe("chunked");
        let text = "";
        const gunzip = res.pipe(createGunzip());
        gunzip.on("data", (chunk: Buffer) => {
          text += chunk.toString();
          // The first part arrived while the stream still waits: release the rest.
          if (text === "first part ".repeat(20)) release();
        });
        gunzip.on("end", () => resolve(text));
        gunzip.on("error", reject);
      });
      req.on("error", reject);
      req.end();
    });
    expect(decoded).toBe("first part ".repeat(20) + "second part ".repeat(20));
  });

  it("a file() body is compressed; a slice of it (206) is not", async () => {
    const path = join(dir, "page.html");
    writeFileSync(path, `<!doctype html><p>${TEXT}</p>`);
    const server = compressingServer((req) => new Response(new URL(req.url).pathname === "/slice" ? file(path).slice(0, 100) : file(path)));
    const whole = await get(server, "/", { "accept-encoding": "br" });
    expect(whole.headers["content-encoding"]).toBe("br");
    expect(whole.headers["content-type"]).toBe("text/html;charset=utf-8");
    expect(decode(whole)).toBe(`<!doctype html><p>${TEXT}</p>`);
    const slice = await get(server, "/slice", { "accept-encoding": "br" });
    expect(slice.status).toBe(206);
    expect(slice.headers["content-encoding"]).toBeUndefined();
    expect(slice.body.length).toBe(100);
  });

  it("fetch and curl --compressed decode it", async () => {
    const server = compressingServer(text);
    const res = await fetch(`http://127.0.0.1:${server.port}/`);
    expect(res.headers.get("content-encoding")).toBe("gzip"); // undici sends gzip, deflate, br
    expect(await res.text()).toBe(TEXT);
    const { stdout } = await promisify(execFile)("curl", ["-s", "--compressed", `http://127.0.0.1:${server.port}/`]);
    expect(stdout).toBe(TEXT);
  });
});
