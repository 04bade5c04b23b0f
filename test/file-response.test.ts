// file() as a response body: byte-exact bodies and their headers, slices (206/Content-Range),
// a missing file (404), HEAD, both Response classes, fetch and curl as clients.
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { file, Response as UwsResponse, type Server } from "../dist/index.js";
import { httpRequest } from "./helpers/client.js";
import { fetchFrom, start, trackServers, withTimeout } from "./helpers/server.js";

const run = promisify(execFile);
const track = trackServers();
let dir: string;
const TEXT = "<!doctype html>\n<h1>héllo</h1>\n";
// Large enough to need many chunks and uWS backpressure on the way out.
const BINARY = randomBytes(3 * 1024 * 1024 + 12_345);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "uwserve-file-response-"));
  writeFileSync(join(dir, "index.html"), TEXT);
  writeFileSync(join(dir, "data.bin"), BINARY);
  writeFileSync(join(dir, "empty.txt"), "");
  mkdirSync(join(dir, "sub"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const p = (name: string) => join(dir, name);
const sha = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

const CLASSES = [
  ["uwserve Response", UwsResponse],
  ["global Response", globalThis.Response],
] as const;

/** Bun's docs example: the Range header's numbers passed to slice() as they are. */
function bunRangeExample(req: Request, path: string, R: typeof Response): Response {
  const [start = 0, end = Infinity] = (req.headers.get("Range") ?? "bytes=0-")
    .split("=")
    .at(-1)!
    .split("-")
    .map((v) => (v === "" ? undefined : Number(v)));
  return new R(file(path).slice(start, end));
}

for (const [label, R] of CLASSES) {
  describe(`file() bodies (${label})`, () => {
    const serveFile = (make: (req: Request) => Response): Server => track(start({ fetch: make }));

    it("a text file: byte-exact, Content-Type from the extension, Content-Length = size", async () => {
      const server = serveFile(() => new R(file(p("index.html"))));
      const res = await httpRequest(server.port);
      expect(res.status).toBe(200);
      expect(res.headers["content-type"]).toBe("text/html;charset=utf-8");
      expect(res.headers["content-length"]).toBe(String(Buffer.byteLength(TEXT)));
      expect(res.headers["content-range"]).toBeUndefined();
      expect(res.headers["transfer-encoding"]).toBeUndefined();
      expect(res.body.toString()).toBe(TEXT);
    });

    it("a binary file of several MiB: byte-exact with Content-Length", async () => {
      const server = serveFile(() => new R(file(p("data.bin"))));
      const res = await fetchFrom(server);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/octet-stream");
      expect(res.headers.get("content-length")).toBe(String(BINARY.length));
      expect(sha(new Uint8Array(await res.arrayBuffer()))).toBe(sha(BINARY));
    });

    it("the user's Content-Type and status win; their Content-Length can't break the framing", async () => {
      const server = serveFile(
        () => new R(file(p("index.html")), { status: 203, headers: { "content-type": "text/x-mine", "content-length": "3", "x-extra": "1" } }),
      );
      const res = await httpRequest(server.port);
      expect(res.status).toBe(203);
      expect(res.headers["content-type"]).toBe("text/x-mine");
      expect(res.headers["x-extra"]).toBe("1");
      expect(res.headers["content-length"]).toBe(String(Buffer.byteLength(TEXT)));
      expect(res.body.toString()).toBe(TEXT);
    });

    it("an empty file: 200 with Content-Length 0", async () => {
      const server = serveFile(() => new R(file(p("empty.txt"))));
      const res = await httpRequest(server.port);
      expect(res.status).toBe(200);
      expect(res.headers["content-length"]).toBe("0");
      expect(res.body.length).toBe(0);
    });

    it("a slice answers 206 with Content-Range and exactly its bytes", async () => {
      const server = serveFile(() => new R(file(p("data.bin")).slice(1000, 1_500_000)));
      const res = await httpRequest(server.port);
      expect(res.status).toBe(206);
      expect(res.headers["content-range"]).toBe(`bytes 1000-1499999/${BINARY.length}`);
      expect(res.headers["content-length"]).toBe(String(1_499_000));
      expect(res.headers["content-type"]).toBe("application/octet-stream");
      expect(sha(res.body)).toBe(sha(BINARY.subarray(1000, 1_500_000)));
    });

    it("Bun's Range example: slice(start, end) from the Range header", async () => {
      const server = serveFile((req) => bunRangeExample(req, p("data.bin"), R));
      const first = await httpRequest(server.port, { headers: { range: "bytes=0-100" } });
      expect(first.status).toBe(206);
      // slice(0, 100) is 100 bytes (Blob's end is exclusive): the header says what is sent.
      expect(first.headers["content-range"]).toBe(`bytes 0-99/${BINARY.length}`);
      expect(first.body.equals(BINARY.subarray(0, 100))).toBe(true);
      const tail = await httpRequest(server.port, { headers: { range: `bytes=${BINARY.length - 10}-` } });
      expect(tail.status).toBe(206);
      expect(tail.headers["content-range"]).toBe(`bytes ${BINARY.length - 10}-${BINARY.length - 1}/${BINARY.length}`);
      expect(tail.body.equals(BINARY.subarray(-10))).toBe(true);
      // The whole file as a "slice" is just the file: 200, no Content-Range.
      const whole = await fetchFrom(server, "/", { headers: { range: "bytes=0-" } });
      expect(whole.status).toBe(200);
      expect(whole.headers.get("content-range")).toBeNull();
      expect(sha(new Uint8Array(await whole.arrayBuffer()))).toBe(sha(BINARY));
    });

    it("a slice past the end of the file: 416 with bytes */size", async () => {
      const server = serveFile(() => new R(file(p("index.html")).slice(10_000)));
      const res = await httpRequest(server.port);
      expect(res.status).toBe(416);
      expect(res.headers["content-range"]).toBe(`bytes */${Buffer.byteLength(TEXT)}`);
      expect(res.headers["content-length"]).toBe("0");
    });

    it("the user's own 206 and Content-Range go out as they are", async () => {
      const server = serveFile(
        () => new R(file(p("index.html")).slice(2, 6), { status: 206, headers: { "Content-Range": "bytes 2-5/*" } }),
      );
      const res = await httpRequest(server.port);
      expect(res.status).toBe(206);
      expect(res.headers["content-range"]).toBe("bytes 2-5/*");
      expect(res.body.toString("latin1")).toBe(Buffer.from(TEXT).subarray(2, 6).toString("latin1"));
    });

    it("a user 206 without Content-Range gets one, even for the whole file", async () => {
      const server = serveFile(() => new R(file(p("index.html")), { status: 206 }));
      const res = await httpRequest(server.port);
      expect(res.status).toBe(206);
      const size = Buffer.byteLength(TEXT);
      expect(res.headers["content-range"]).toBe(`bytes 0-${size - 1}/${size}`);
    });

    it("another status with a slice keeps that status and adds no Content-Range", async () => {
      const server = serveFile(() => new R(file(p("index.html")).slice(0, 5), { status: 404 }));
      const res = await httpRequest(server.port);
      expect(res.status).toBe(404);
      expect(res.headers["content-range"]).toBeUndefined();
      expect(res.body.toString()).toBe(TEXT.slice(0, 5));
    });

    it("a missing file is a 404, not a crash or a 500; the server keeps serving", async () => {
      let errors = 0;
      const server = track(
        start({
          fetch: (req: Request) => new R(file(p(new URL(req.url).pathname.slice(1)))),
          error: () => {
            errors++;
            return new R("error handler", { status: 500 });
          },
        }),
      );
      for (const path of ["/missing.txt", "/no/such/dir.txt", "/sub", "/index.html/x"]) {
        const res = await httpRequest(server.port, { path, headers: { range: "bytes=0-1" } });
        expect([path, res.status, res.body.toString()]).toEqual([path, 404, "Not Found"]);
        expect(res.headers["content-type"]).toBe("text/plain;charset=UTF-8");
      }
      expect(errors).toBe(0);
      const ok = await httpRequest(server.port, { path: "/index.html" });
      expect(ok.body.toString()).toBe(TEXT);
    });

    it("HEAD: the head a GET would get, Content-Length included, no body", async () => {
      const server = serveFile((req) => {
        const path = new URL(req.url).pathname;
        if (path === "/slice") return new R(file(p("data.bin")).slice(10, 20));
        if (path === "/missing") return new R(file(p("missing")));
        return new R(file(p("data.bin")));
      });
      const whole = await httpRequest(server.port, { method: "HEAD" });
      expect(whole.status).toBe(200);
      expect(whole.headers["content-length"]).toBe(String(BINARY.length));
      expect(whole.headers["content-type"]).toBe("application/octet-stream");
      expect(whole.body.length).toBe(0);
      const slice = await httpRequest(server.port, { method: "HEAD", path: "/slice" });
      expect(slice.status).toBe(206);
      expect(slice.headers["content-length"]).toBe("10");
      expect(slice.headers["content-range"]).toBe(`bytes 10-19/${BINARY.length}`);
      expect(slice.body.length).toBe(0);
      const missing = await httpRequest(server.port, { method: "HEAD", path: "/missing" });
      expect(missing.status).toBe(404);
      expect(missing.body.length).toBe(0);
      // The connection stays usable after a HEAD (keep-alive framing intact).
      const again = await fetchFrom(server, "/slice");
      expect(Buffer.from(await again.arrayBuffer()).equals(BINARY.subarray(10, 20))).toBe(true);
    });

    it("serves the same file to many concurrent clients", async () => {
      const server = serveFile(() => new R(file(p("data.bin"))));
      const bodies = await withTimeout(
        Promise.all(Array.from({ length: 8 }, () => fetchFrom(server).then((r) => r.arrayBuffer()))),
        20_000,
        "8 downloads",
      );
      for (const body of bodies) expect(sha(new Uint8Array(body))).toBe(sha(BINARY));
    });
  });
}

describe("file() bodies with curl", () => {
  it("curl downloads the whole file and a range byte-exact", async () => {
    const server = track(start({ fetch: (req: Request) => bunRangeExample(req, p("data.bin"), UwsResponse) }));
    const out = p("curl-out.bin");
    const { stdout } = await run("curl", ["-s", "-S", "--max-time", "20", "-D", "-", "-o", out, `http://127.0.0.1:${server.port}/`]);
    expect(stdout).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(stdout.toLowerCase()).toContain(`content-length: ${BINARY.length}\r\n`);
    expect(sha(readFileSync(out))).toBe(sha(BINARY));
    const ranged = await run("curl", ["-s", "-S", "--max-time", "20", "-D", "-", "-o", out, "-r", "5000-", `http://127.0.0.1:${server.port}/`]);
    expect(ranged.stdout).toMatch(/^HTTP\/1\.1 206 Partial Content\r\n/);
    expect(ranged.stdout.toLowerCase()).toContain(`content-range: bytes 5000-${BINARY.length - 1}/${BINARY.length}\r\n`);
    expect(sha(readFileSync(out))).toBe(sha(BINARY.subarray(5000)));
  });
});

describe("file() in server.fetch() and as an upload body", () => {
  it("server.fetch() hands back the Response; reading it reads the file", async () => {
    const server = track(start({ fetch: () => new UwsResponse(file(p("index.html"))) }));
    const res = await server.fetch(new Request("http://x/"));
    expect(await res.text()).toBe(TEXT);
  });

  it("fetch() can upload a file() body (undici reads it through stream())", async () => {
    const server = track(start({ fetch: async (req: Request) => new UwsResponse(sha(new Uint8Array(await req.arrayBuffer()))) }));
    const res = await fetchFrom(server, "/", { method: "POST", body: file(p("data.bin")), duplex: "half" } as RequestInit);
    expect(await res.text()).toBe(sha(BINARY));
  });
});
