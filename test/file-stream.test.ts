// file() bodies under load: a 50 MiB file to a client that stops reading (the server's memory
// stays flat: no whole-file buffering), fs.openAsBlob() Blobs likewise, a client that leaves
// (the file is closed), and a file truncated mid-download (the connection ends, no hang).
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, mkdtempSync, openSync, rmSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { file, Response as UwsResponse } from "../dist/index.js";
import { undiciInternals } from "../dist/core/_undici.js";
import { DIST_INDEX_URL, ROOT } from "./helpers/client.js";
import { fetchFrom, start, trackServers, withTimeout } from "./helpers/server.js";

const MiB = 1024 * 1024;
const BIG_SIZE = 50 * MiB;
let dir: string;
let bigPath: string;
let bigHash: string;

/** Writes `size` pseudo-random bytes (1 MiB of randomness repeated with a counter) and returns their sha256. */
function writeBigFile(path: string, size: number): string {
  const block = randomBytes(MiB);
  const hash = createHash("sha256");
  const fd = openSync(path, "w");
  try {
    for (let offset = 0, n = 0; offset < size; offset += MiB, n++) {
      block.writeUInt32LE(n, 0);
      const part = block.subarray(0, Math.min(MiB, size - offset));
      writeSync(fd, part);
      hash.update(part);
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest("hex");
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "uwserve-file-stream-"));
  bigPath = join(dir, "big.bin");
  bigHash = writeBigFile(bigPath, BIG_SIZE);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A server in its own process, so its memory is measured without the test client's. */
interface ChildServer {
  port: number;
  child: ChildProcess;
  mem(): Promise<{ rss: number; arrayBuffers: number; fds: number }>;
  stop(): void;
}

const CHILD_SOURCE = `
import { serve, file, Response } from ${JSON.stringify(DIST_INDEX_URL)};
import { openAsBlob, readdirSync } from "node:fs";
const path = process.env.BIG_FILE;
const server = serve({ port: 0, hostname: "127.0.0.1", async fetch(req) {
  const { pathname } = new URL(req.url);
  if (pathname === "/file") return new Response(file(path));
  if (pathname === "/slice") return new Response(file(path).slice(1024, ${BIG_SIZE} - 1024));
  if (pathname === "/native") return new globalThis.Response(file(path));
  if (pathname === "/blob") return new globalThis.Response(await openAsBlob(path));
  if (pathname === "/mem") {
    globalThis.gc();
    const { rss, arrayBuffers } = process.memoryUsage();
    return Response.json({ rss, arrayBuffers, fds: readdirSync("/proc/self/fd").length });
  }
  return new Response("no", { status: 404 });
}});
console.log("PORT " + server.port);
`;

function startChildServer(): Promise<ChildServer> {
  const child = spawn(process.execPath, ["--expose-gc", "--input-type=module", "-e", CHILD_SOURCE], {
    cwd: ROOT,
    env: { ...process.env, BIG_FILE: bigPath },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  const port = new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout!.setEncoding("utf8").on("data", (s: string) => {
      out += s;
      const m = /PORT (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on("exit", (code) => reject(new Error(`server child exited (${code}): ${stderr}`)));
  });
  return withTimeout(port, 10_000, "the server child to listen").then((p) => ({
    port: p,
    child,
    mem: async () => {
      const res = await withTimeout(fetch(`http://127.0.0.1:${p}/mem`), 5000, "/mem");
      return (await res.json()) as { rss: number; arrayBuffers: number; fds: number };
    },
    stop: () => void child.kill("SIGKILL"),
  }));
}

/** A chunked body's payload. */
function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = data.indexOf("\r\n", at);
    const size = parseInt(data.subarray(at, lineEnd).toString("latin1"), 16);
    if (size === 0) return Buffer.concat(parts);
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}

interface SlowDownload {
  status: number;
  headers: string;
  received: number;
  hash: string;
  /** Server memory samples taken while the client wasn't reading. */
  samples: Array<{ rss: number; arrayBuffers: number; fds: number }>;
}

/**
 * GETs `path` over raw TCP, stops reading right after the first bytes for `pauseMs` (sampling
 * the server's memory meanwhile), then reads the rest, hashing it without keeping it.
 */
function slowDownload(server: ChildServer, path: string, pauseMs: number): Promise<SlowDownload> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(server.port, "127.0.0.1");
    const hash = createHash("sha256");
    let head = Buffer.alloc(0);
    let headers = "";
    let length = -1;
    let chunked = false;
    const raw: Buffer[] = [];
    let received = 0;
    let paused = false;
    const samples: SlowDownload["samples"] = [];
    socket.on("connect", () => socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`));
    socket.on("error", reject);
    socket.on("close", () => reject(new Error(`closed after ${received} of ${length} body bytes`)));
    socket.on("data", (data: Buffer) => {
      let body = data;
      if (headers === "") {
        head = Buffer.concat([head, data]);
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) return;
        headers = head.subarray(0, end).toString("latin1");
        length = Number(/content-length: (\d+)/i.exec(headers)?.[1] ?? -1);
        chunked = /transfer-encoding: chunked/i.test(headers);
        body = head.subarray(end + 4);
      }
      received += body.length;
      if (chunked) raw.push(body);
      else hash.update(body);
      if (!paused) {
        paused = true;
        socket.pause();
        void (async () => {
          const until = Date.now() + pauseMs;
          while (Date.now() < until) {
            samples.push(await server.mem());
            await new Promise((r) => setTimeout(r, 200));
          }
          socket.resume();
        })().catch(reject);
      }
      const last = raw.at(-1);
      const chunkedEnd = chunked && last !== undefined && Buffer.concat(raw.slice(-2)).subarray(-7).toString("latin1") === "\r\n0\r\n\r\n";
      if (received === length || chunkedEnd) {
        socket.removeAllListeners("close");
        socket.destroy();
        if (chunked) hash.update(dechunk(Buffer.concat(raw)));
        resolve({ status: Number(headers.slice(9, 12)), headers, received, hash: hash.digest("hex"), samples });
      }
    });
  });
}

/**
 * The server's open descriptors once they are back to `limit` or below (or after 2.5 s): a
 * connection's socket may close a moment after its response, later on the node engine.
 */
async function settledFds(server: ChildServer, limit: number): Promise<number> {
  let fds = (await server.mem()).fds;
  for (let i = 0; i < 50 && fds > limit; i++) {
    await new Promise((r) => setTimeout(r, 50));
    fds = (await server.mem()).fds;
  }
  return fds;
}

describe("a 50 MiB file() to a client that stops reading", () => {
  let server: ChildServer;
  beforeAll(async () => {
    server = await startChildServer();
  });
  afterAll(() => server?.stop());

  it("is sent whole and byte-exact while the server's memory stays flat", async () => {
    // Warm up the code paths (and their allocations) before the baseline.
    await withTimeout(fetch(`http://127.0.0.1:${server.port}/slice`).then((r) => r.arrayBuffer()), 20_000, "warm-up download");
    const before = await server.mem();
    const result = await withTimeout(slowDownload(server, "/file", 1500), 30_000, "the slow download");
    const after = await server.mem();
    expect(result.status).toBe(200);
    expect(result.headers.toLowerCase()).toContain(`content-length: ${BIG_SIZE}`);
    expect(result.received).toBe(BIG_SIZE);
    expect(result.hash).toBe(bigHash);
    expect(result.samples.length).toBeGreaterThanOrEqual(3);
    const peakRss = Math.max(...result.samples.map((s) => s.rss), after.rss);
    const peakBuffers = Math.max(...result.samples.map((s) => s.arrayBuffers));
    // Whole-file buffering would add 50 MiB; one 256 KiB chunk is in flight at a time.
    expect(peakRss - before.rss).toBeLessThan(16 * MiB);
    expect(peakBuffers - before.arrayBuffers).toBeLessThan(2 * MiB);
    // The file was closed once sent (sockets closing meanwhile only lower the count).
    expect(await settledFds(server, before.fds)).toBeLessThanOrEqual(before.fds);
  });

  it("a slice streams the same way: exactly its bytes, 206", async () => {
    const result = await withTimeout(slowDownload(server, "/slice", 600), 30_000, "the slow slice download");
    expect(result.status).toBe(206);
    expect(result.headers.toLowerCase()).toContain(`content-range: bytes 1024-${BIG_SIZE - 1025}/${BIG_SIZE}`);
    expect(result.received).toBe(BIG_SIZE - 2048);
  });

  it("behind undici's Response too: byte-exact, and the stream undici made is never opened", async () => {
    const before = await server.mem();
    const res = await withTimeout(fetch(`http://127.0.0.1:${server.port}/native`), 5000, "/native");
    expect(res.headers.get("content-length")).toBe(String(BIG_SIZE));
    expect(createHash("sha256").update(new Uint8Array(await res.arrayBuffer())).digest("hex")).toBe(bigHash);
    // undici called stream() when the Response was made; had that stream opened the file, the
    // descriptor would stay open until GC.
    expect(await settledFds(server, before.fds)).toBeLessThanOrEqual(before.fds);
  });

  it("an fs.openAsBlob() Blob body is streamed too, not read whole", async () => {
    await withTimeout(fetch(`http://127.0.0.1:${server.port}/blob`).then((r) => r.arrayBuffer()), 20_000, "warm-up download");
    const before = await server.mem();
    const result = await withTimeout(slowDownload(server, "/blob", 1500), 30_000, "the slow blob download");
    expect(result.status).toBe(200);
    if (undiciInternals) {
      expect(result.headers.toLowerCase()).toContain(`content-length: ${BIG_SIZE}`);
      expect(result.headers.toLowerCase()).not.toContain("transfer-encoding");
    } else {
      // undici 7+ hides which Blob a global Response holds (only fs-backed file() Blobs are
      // found again): its stream goes out as it comes, chunked.
      expect(result.headers.toLowerCase()).toContain("transfer-encoding: chunked");
    }
    expect(result.hash).toBe(bigHash);
    const peakRss = Math.max(...result.samples.map((s) => s.rss));
    const peakBuffers = Math.max(...result.samples.map((s) => s.arrayBuffers));
    expect(peakRss - before.rss).toBeLessThan(16 * MiB);
    // Node's Blob reader may read a few chunks ahead of the consumer; far from the 50 MiB.
    expect(peakBuffers - before.arrayBuffers).toBeLessThan(8 * MiB);
  });

  it("a client that leaves mid-download: the file is closed and the server carries on", async () => {
    const before = await server.mem();
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        const socket = net.connect(server.port, "127.0.0.1", () => socket.write("GET /file HTTP/1.1\r\nHost: x\r\n\r\n"));
        socket.once("data", () => {
          socket.destroy();
          resolve();
        });
        socket.on("error", reject);
      }),
      5000,
      "the first bytes",
    );
    // The abort reaches the server, which closes the file after the read in flight. At most as
    // many descriptors as before: a keep-alive connection of an earlier test may close meanwhile.
    let fds = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 50 && fds > before.fds; i++) {
      await new Promise((r) => setTimeout(r, 50));
      fds = (await server.mem()).fds;
    }
    expect(fds).toBeLessThanOrEqual(before.fds);
    const res = await fetch(`http://127.0.0.1:${server.port}/slice`, { headers: { connection: "close" } });
    expect(res.status).toBe(206);
    expect((await res.arrayBuffer()).byteLength).toBe(BIG_SIZE - 2048);
  });
});

describe("a file that shrinks while it is being sent", () => {
  const track = trackServers();

  it("ends the response by closing the connection: no hang, no crash, the server carries on", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const path = join(dir, "shrinking.bin");
    const size = 32 * MiB;
    writeFileSync(path, randomBytes(MiB));
    truncateSync(path, size); // 1 MiB of data, then zeros up to 32 MiB.
    const server = track(start({ fetch: () => new UwsResponse(file(path)) }));
    const outcome = await withTimeout(
      new Promise<{ received: number; length: number }>((resolve) => {
        const socket = net.connect(server.port, "127.0.0.1", () => socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        let head = "";
        let length = -1;
        let received = 0;
        let truncated = false;
        socket.on("data", (data: Buffer) => {
          if (length < 0) {
            head += data.toString("latin1");
            const end = head.indexOf("\r\n\r\n");
            if (end < 0) return;
            length = Number(/content-length: (\d+)/i.exec(head)?.[1]);
            received += Buffer.byteLength(head.slice(end + 4), "latin1");
          } else {
            received += data.length;
          }
          if (!truncated) {
            // Stop reading, cut the file to 2 MiB from under the server, then read on.
            truncated = true;
            socket.pause();
            truncateSync(path, 2 * MiB);
            setTimeout(() => socket.resume(), 200);
          }
        });
        socket.on("error", () => {});
        socket.on("close", () => resolve({ received, length }));
      }),
      15_000,
      "the connection to end",
    );
    expect(outcome.length).toBe(size);
    expect(outcome.received).toBeLessThan(size);
    expect(outcome.received).toBeGreaterThan(0);
    expect(errors).toHaveBeenCalledWith(expect.stringContaining("after its headers"), expect.objectContaining({ message: expect.stringContaining("shrank") }));
    // The file is still there (2 MiB now) and the server still answers.
    const res = await fetchFrom(server);
    expect(res.headers.get("content-length")).toBe(String(2 * MiB));
    expect((await res.arrayBuffer()).byteLength).toBe(2 * MiB);
  });
});
