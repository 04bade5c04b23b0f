/**
 * What a handler returns that Bun answers through its error path rather than the wire: a
 * network error (`Response.error()`), a Response whose body was already sent or read; and
 * the route tables that can't answer at all, or name a file that isn't there.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { file, Response as UwsResponse, serve, type Server } from "../dist/index.js";
import { rawRequest, start, withTimeout } from "./helpers/server.js";

const servers: Server[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(servers.splice(0).map((s) => s.stop(true)));
});
function serveWith(options: Record<string, unknown>): Server {
  const server = start(options);
  servers.push(server);
  return server;
}
const get = (server: Server, path = "/") => withTimeout(fetch(`http://127.0.0.1:${server.port}${path}`), 5000, `GET ${path}`);

const CLASSES = [
  ["uwserve's Response", UwsResponse],
  ["the global Response", globalThis.Response],
] as const;

describe("Response.error() from a handler", () => {
  for (const [label, R] of CLASSES) {
    it(`reaches the error hook, whose Response is sent; the connection stays open (${label})`, async () => {
      const seen: unknown[] = [];
      const server = serveWith({
        fetch: () => R.error(),
        error(err: unknown) {
          seen.push(err);
          return new UwsResponse("handled", { status: 502 });
        },
      });
      // Two requests on one keep-alive connection.
      const raw = await rawRequest(server.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      expect(raw.match(/HTTP\/1\.1 502 /g)?.length).toBe(2);
      expect(raw.match(/handled/g)?.length).toBe(2);
      expect((seen[0] as { code?: string }).code).toBe("UWSERVE_ERR_BAD_RESPONSE");
    });

    it(`returned by the error hook itself: a 500 (${label})`, async () => {
      vi.spyOn(console, "error").mockImplementation(() => {});
      const server = serveWith({
        fetch() {
          throw new Error("boom");
        },
        error: () => R.error(),
      });
      const res = await get(server);
      expect(res.status).toBe(500);
      await res.arrayBuffer();
    });
  }
});

describe("a Response body is sent once", () => {
  for (const [label, R] of CLASSES) {
    it(`the same Response for two requests: the second goes to the error hook (${label})`, async () => {
      const shared = new R("shared body");
      const seen: Array<{ code?: string; message: string }> = [];
      const server = serveWith({
        fetch: () => shared,
        error(err: Error & { code?: string }) {
          seen.push(err);
          return new UwsResponse("second refused", { status: 500 });
        },
      });
      const first = await get(server);
      expect(await first.text()).toBe("shared body");
      expect(shared.bodyUsed).toBe(true);
      const second = await get(server);
      expect(second.status).toBe(500);
      expect(await second.text()).toBe("second refused");
      expect(seen[0]!.code).toBe("UWSERVE_ERR_BODY_USED");
      expect(seen[0]!.message).toMatch(/clone\(\)|routes/);
    });

    it(`a Response whose body the handler read is refused (${label})`, async () => {
      vi.spyOn(console, "error").mockImplementation(() => {});
      const server = serveWith({
        async fetch() {
          const res = new R("read first");
          await res.text();
          return res;
        },
      });
      const res = await get(server);
      expect(res.status).toBe(500);
      await res.arrayBuffer();
    });

    it(`a Response without a body can be returned again and again (${label})`, async () => {
      const empty = new R(null, { status: 204 });
      const server = serveWith({ fetch: () => empty });
      for (let i = 0; i < 3; i++) expect((await get(server)).status).toBe(204);
      expect(empty.bodyUsed).toBe(false);
    });
  }

  it("a static route's Response is served every time (it is serialised once, never consumed)", async () => {
    const server = serveWith({ routes: { "/s": new UwsResponse("static") } });
    for (let i = 0; i < 3; i++) expect(await (await get(server, "/s")).text()).toBe("static");
  });
});

describe("serve() with nothing to answer", () => {
  it("routes: {} and no fetch → UWSERVE_ERR_INVALID_CALL naming both options", () => {
    expect(() => serve({ port: 0, routes: {} })).toThrow(expect.objectContaining({ code: "UWSERVE_ERR_INVALID_CALL", message: expect.stringMatching(/"routes".*"fetch"/) }));
  });

  it("routes of only `false` entries and no fetch → the same error", () => {
    expect(() => serve({ port: 0, routes: { "/a": false, "/b": false } as never })).toThrow(expect.objectContaining({ code: "UWSERVE_ERR_INVALID_CALL" }));
  });

  it("routes: {} with a fetch handler starts", async () => {
    const server = serveWith({ routes: {}, fetch: () => new UwsResponse("fetch") });
    expect(await (await get(server)).text()).toBe("fetch");
  });
});

describe("file() as a route", () => {
  const dir = mkdtempSync(join(tmpdir(), "uwserve-file-route-"));
  const present = join(dir, "here.txt");
  writeFileSync(present, "file contents");

  it("a missing file in a static route answers 404 for that route; the others keep working", async () => {
    const server = serveWith({
      routes: {
        "/missing": new UwsResponse(file(join(dir, "nope.txt"))),
        "/present": new UwsResponse(file(present)),
        "/plain": new UwsResponse("plain"),
      },
    });
    const missing = await get(server, "/missing");
    expect(missing.status).toBe(404);
    expect(await missing.text()).toBe("Not Found");
    expect(await (await get(server, "/present")).text()).toBe("file contents");
    expect(await (await get(server, "/plain")).text()).toBe("plain");
    // Not a one-off: the route keeps answering 404.
    expect((await get(server, "/missing")).status).toBe(404);
  });

  it("a bare file() as a route value is served like new Response(file()); a missing one is a 404", async () => {
    const server = serveWith({ routes: { "/f": file(present), "/gone": file(join(dir, "gone.txt")) } });
    const res = await get(server, "/f");
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("file contents");
    expect((await get(server, "/gone")).status).toBe(404);
  });
});
