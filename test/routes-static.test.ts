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
