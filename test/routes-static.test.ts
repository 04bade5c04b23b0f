// Static routes skip the Request and the handler, but never the checks every request gets.
import { describe, expect, it } from "vitest";
import { Response, type Server } from "../dist/index.js";
import { rawRoute } from "./helpers/routes.js";
import { rawRequest, start, trackServers } from "./helpers/server.js";

const track = trackServers();
const serveStatic = (extra: Record<string, unknown> = {}): Server =>
  track(start({ routes: { "/static": new Response("static body", { headers: { "x-static": "1" } }) }, ...extra }));

describe("static routes and request checks", () => {
  it("answers with the prepared response, custom header and all", async () => {
    const server = serveStatic();
    const res = await rawRoute(server.port, "/static");
    expect(res.status).toBe(200);
    expect(res.header("x-static")).toBe("1");
    expect(res.body).toBe("static body");
  });

  it("a request head over maxHeaderSize gets 431, also on a static route", async () => {
    const server = serveStatic({ maxHeaderSize: 4096 });
    const res = await rawRoute(server.port, "/static", { headers: { "x-big": "a".repeat(5000) } });
    expect(res.status).toBe(431);
  });

  it("conflicting Content-Length headers get 400, also on a static route", async () => {
    const server = serveStatic();
    const raw = await rawRequest(
      server.port,
      // No body bytes follow: with some, the core parses them as a next request and drops the
      // connection itself (test/protocol-smuggling.test.ts); either way the route never answers.
      "GET /static HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n",
      500,
    );
    expect(raw.startsWith("HTTP/1.1 400")).toBe(true);
    expect(raw).not.toContain("static body");
  });

  it("two Host headers get 400, also on a static route", async () => {
    const server = serveStatic();
    const raw = await rawRequest(server.port, "GET /static HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 500);
    expect(raw.startsWith("HTTP/1.1 400")).toBe(true);
  });

  it("a static route whose body is a Blob is served whole, every time", async () => {
    const server = track(start({ routes: { "/blob": new Response(new Blob(["from a blob"], { type: "text/x-blob" })) } }));
    for (let i = 0; i < 3; i++) {
      const res = await rawRoute(server.port, "/blob");
      expect(res.status).toBe(200);
      expect(res.header("content-type")).toBe("text/x-blob");
      expect(res.body).toBe("from a blob");
    }
  });
});

describe("static routes with a file() body", () => {
  it("a file is read once at serve() and served from memory", async () => {
    const { file } = await import("../dist/index.js");
    const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const dir = mkdtempSync(join(tmpdir(), "uwserve-static-file-"));
    writeFileSync(join(dir, "a.txt"), "from disk");
    try {
      const server = track(start({ routes: { "/a": new Response(file(join(dir, "a.txt"))) }, fetch: () => new Response("fallback") }));
      const res = await fetch(`http://127.0.0.1:${server.port}/a`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe("from disk");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a missing file doesn't take the process down at serve(): its route answers 404 (as a file() body does), without the error hook", async () => {
    const { file } = await import("../dist/index.js");
    const errors: unknown[] = [];
    const server = track(
      start({
        routes: { "/missing": new Response(file("/nonexistent/uwserve/missing.txt")) },
        fetch: () => new Response("fallback"),
        error(err: unknown) {
          errors.push(err);
          return new Response("error page", { status: 500 });
        },
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    const res = await fetch(`http://127.0.0.1:${server.port}/missing`);
    expect(res.status).toBe(404);
    expect(await res.text()).toBe("Not Found");
    expect(errors).toEqual([]);
  });
});
