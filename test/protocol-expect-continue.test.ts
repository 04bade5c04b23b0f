/**
 * `Expect: 100-continue` uploads: the core answers `100 Continue` itself, the body then arrives
 * whole, and refusals (413, a handler that answers without reading) still reach the client.
 */
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Server } from "../dist/index.js";
import { parseResponses, rawExchange, start } from "./helpers/server.js";

let server: Server | null = null;
afterEach(async () => {
  await server?.stop(true);
  server = null;
});

let dir = "";
let file = "";
let payload: Buffer;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "uwserve-expect-"));
  file = join(dir, "upload.bin");
  payload = randomBytes(200 * 1024);
  writeFileSync(file, payload);
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

/** Runs curl with `-v` and resolves with stdout, stderr (the protocol trace) and the time taken. */
function curl(args: string[]): Promise<{ stdout: string; trace: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    execFile("/usr/bin/curl", ["-sS", "-v", ...args], { timeout: 15_000, maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`curl failed: ${err.message}\n${stderr}`));
      else resolve({ stdout, trace: stderr, ms: Date.now() - started });
    });
  });
}

/** Reads the whole body and answers with its length and hash. */
function hashServer(options: Record<string, unknown> = {}): Server {
  server = start({
    ...options,
    async fetch(req: Request) {
      const body = Buffer.from(await req.arrayBuffer());
      return new Response(`${body.length} ${sha256(body)} ${req.headers.get("expect")}`);
    },
  });
  return server;
}

describe("Expect: 100-continue", () => {
  it("curl -H 'Expect: 100-continue' --data-binary @200KB-file: received whole", async () => {
    const s = hashServer();
    const res = await curl(["-H", "Expect: 100-continue", "--data-binary", `@${file}`, `http://127.0.0.1:${s.port}/upload`]);
    expect(res.stdout).toBe(`${payload.length} ${sha256(payload)} 100-continue`);
    // The core sent 100 Continue, so curl didn't sit out its 1 s expect100-timeout.
    expect(res.trace).toMatch(/< HTTP\/1\.1 100 Continue/);
    expect(res.ms).toBeLessThan(1000);
  });

  it("the same upload chunked (Transfer-Encoding: chunked + Expect) is received whole", async () => {
    const s = hashServer();
    const res = await curl([
      "-H",
      "Expect: 100-continue",
      "-H",
      "Transfer-Encoding: chunked",
      "--data-binary",
      `@${file}`,
      `http://127.0.0.1:${s.port}/upload`,
    ]);
    expect(res.stdout).toBe(`${payload.length} ${sha256(payload)} 100-continue`);
  });

  it("on the wire: 100 Continue first, then the final response once the body is sent", async () => {
    const s = hashServer();
    const body = "hello expect";
    const out = await rawExchange(
      s.port,
      [`POST /raw HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\n\r\n`, body],
      { gapMs: 100 },
    );
    expect(out.data.startsWith("HTTP/1.1 100 Continue\r\n\r\n")).toBe(true);
    const { responses } = parseResponses(out.data.slice("HTTP/1.1 100 Continue\r\n\r\n".length));
    expect(responses).toHaveLength(1);
    expect(responses[0]!.body).toBe(`${body.length} ${sha256(Buffer.from(body))} 100-continue`);
  });

  it("a body over maxRequestBodySize with Expect → curl sees 413", async () => {
    const s = hashServer({ maxRequestBodySize: 100 * 1024 });
    const res = await curl([
      "-H",
      "Expect: 100-continue",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "--data-binary",
      `@${file}`,
      `http://127.0.0.1:${s.port}/upload`,
    ]);
    expect(res.stdout).toBe("413");
  });

  it("a handler that answers without reading the body (401): curl gets the 401", async () => {
    let calls = 0;
    server = start({
      fetch() {
        calls++;
        return new Response("no", { status: 401 });
      },
    });
    const res = await curl([
      "-H",
      "Expect: 100-continue",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "--data-binary",
      `@${file}`,
      `http://127.0.0.1:${server.port}/private`,
    ]);
    expect(res.stdout).toBe("401");
    expect(calls).toBe(1);
  });

  it("several Expect uploads on one keep-alive connection all arrive whole", async () => {
    const s = hashServer();
    const url = `http://127.0.0.1:${s.port}/upload`;
    const res = await curl([
      "-H",
      "Expect: 100-continue",
      "--data-binary",
      `@${file}`,
      url,
      "--next",
      "-H",
      "Expect: 100-continue",
      "--data-binary",
      `@${file}`,
      url,
    ]);
    const line = `${payload.length} ${sha256(payload)} 100-continue`;
    expect(res.stdout).toBe(line + line);
    // curl 7: "Re-using existing connection"; curl 8: "Re-using existing http: connection".
    expect(res.trace).toMatch(/Re-using existing (http: )?connection|Reusing existing/);
  });
});
