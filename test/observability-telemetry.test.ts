// serve({ telemetry: true }) with the OpenTelemetry SDK registered as an app registers it:
// spans and metrics read back from in-memory exporters, field by field, on either engine.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { Response, type Server } from "../dist/index.js";
import { pointWith, registerOtel } from "./helpers/otel.js";
import { start, trackServers, waitFor } from "./helpers/server.js";
import { connectWs } from "./helpers/ws.js";
import { ROOT } from "./helpers/workers.js";

const otel = registerOtel();
const track = trackServers();
afterEach(() => otel.spans.reset());

const TRACE_ID = "0af7651916cd43dd8448eb211c80319c";
const PARENT_ID = "b7ad6b7169203331";
const tracer = trace.getTracer("app");

function serveTraced(extra: Record<string, unknown> = {}): Server {
  return track(
    start({
      telemetry: true,
      routes: {
        "/users/:id": (req: Request & { params: { id: string } }) => new Response(`user ${req.params.id}`),
        "/static": new Response("static body"),
        "/nested": async () => {
          // Spans the handler makes are children of the request's span, also after an await.
          tracer.startSpan("before-await").end();
          await new Promise((r) => setTimeout(r, 5));
          await tracer.startActiveSpan("after-await", async (span) => {
            await new Promise((r) => setImmediate(r));
            tracer.startSpan("grandchild").end();
            span.end();
          });
          return new Response("nested");
        },
        "/boom": () => {
          throw new TypeError("boom on purpose");
        },
        "/slow": () => new Promise<Response>((resolve) => setTimeout(() => resolve(new Response("late")), 1500)),
        "/upload": { POST: async (req: Request) => new Response(String((await req.arrayBuffer()).byteLength)) },
      },
      fetch: () => new Response("fallback", { status: 202 }),
      error: () => new Response("handled", { status: 500 }),
      ...extra,
    }),
  );
}

describe("telemetry: the request span", () => {
  it("a routed request is a SERVER span named {method} {http.route}, with the stable attributes, continuing the caller's trace", async () => {
    const server = serveTraced();
    const res = await fetch(`http://127.0.0.1:${server.port}/users/42?tab=posts`, {
      headers: { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01`, "user-agent": "otel-test/1.0" },
    });
    expect(await res.text()).toBe("user 42");
    await waitFor(() => otel.ended("GET /users/:id").length === 1, 2000, "the span");
    const span = otel.ended("GET /users/:id")[0]!;
    expect(span.kind).toBe(SpanKind.SERVER);
    expect(span.spanContext().traceId).toBe(TRACE_ID);
    expect(span.parentSpanContext?.spanId).toBe(PARENT_ID);
    expect(span.instrumentationScope.name).toBe("uwserve");
    expect(span.attributes).toEqual({
      "http.request.method": "GET",
      "url.scheme": "http",
      "url.path": "/users/42",
      "url.query": "tab=posts",
      "http.route": "/users/:id",
      "http.response.status_code": 200,
      "network.protocol.version": "1.1",
      "server.address": "127.0.0.1",
      "server.port": server.port,
      "client.address": "127.0.0.1",
      "user_agent.original": "otel-test/1.0",
    });
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
  });

  it("spans the handler starts are its children, before and after await, and the span ends after the body", async () => {
    const server = serveTraced();
    expect(await (await fetch(`http://127.0.0.1:${server.port}/nested`)).text()).toBe("nested");
    await waitFor(() => otel.ended("GET /nested").length === 1, 2000, "the server span");
    const root = otel.ended("GET /nested")[0]!;
    const before = otel.ended("before-await")[0]!;
    const after = otel.ended("after-await")[0]!;
    const grandchild = otel.ended("grandchild")[0]!;
    expect(root.parentSpanContext).toBeUndefined();
    expect(before.parentSpanContext?.spanId).toBe(root.spanContext().spanId);
    expect(after.parentSpanContext?.spanId).toBe(root.spanContext().spanId);
    expect(grandchild.parentSpanContext?.spanId).toBe(after.spanContext().spanId);
    for (const child of [before, after, grandchild]) expect(child.spanContext().traceId).toBe(root.spanContext().traceId);
  });

  it("a handler that throws: the error hook's 500, span status ERROR, error.type 500, the exception recorded", async () => {
    const server = serveTraced();
    const res = await fetch(`http://127.0.0.1:${server.port}/boom`);
    expect(res.status).toBe(500);
    await res.text();
    await waitFor(() => otel.ended("GET /boom").length === 1, 2000, "the span");
    const span = otel.ended("GET /boom")[0]!;
    expect(span.attributes["http.response.status_code"]).toBe(500);
    expect(span.attributes["error.type"]).toBe("500");
    expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: "boom on purpose" });
    const exception = span.events.find((e) => e.name === "exception")!;
    expect(exception.attributes?.["exception.type"]).toBe("TypeError");
    expect(exception.attributes?.["exception.message"]).toBe("boom on purpose");
  });

  it("a client that leaves before the response: the span ends with error.type aborted and no status code", async () => {
    const server = serveTraced();
    const socket = net.connect(server.port, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    socket.write("GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await waitFor(() => server.pendingRequests === 1, 2000, "the request to start");
    socket.destroy();
    await waitFor(() => otel.ended("GET /slow").length === 1, 2000, "the span of the aborted request");
    const span = otel.ended("GET /slow")[0]!;
    expect(span.attributes["error.type"]).toBe("aborted");
    expect(span.attributes["http.response.status_code"]).toBeUndefined();
    expect(span.status).toEqual({ code: SpanStatusCode.ERROR, message: "client disconnected" });
  });

  it("a static route, the fetch fallback and uwserve's own 404 and 405 are spans too", async () => {
    const server = serveTraced();
    const bare = track(start({ telemetry: true, routes: { "/only-get": { GET: () => new Response("g") } } }));
    expect(await (await fetch(`http://127.0.0.1:${server.port}/static`)).text()).toBe("static body");
    expect((await fetch(`http://127.0.0.1:${server.port}/elsewhere`)).status).toBe(202);
    const notFound = await fetch(`http://127.0.0.1:${bare.port}/nothing`);
    expect([notFound.status, await notFound.text(), notFound.headers.get("content-type")]).toEqual([404, "Not Found", null]);
    const notAllowed = await fetch(`http://127.0.0.1:${bare.port}/only-get`, { method: "DELETE" });
    expect([notAllowed.status, notAllowed.headers.get("allow")]).toEqual([405, "GET, HEAD"]);
    await waitFor(() => otel.ended().length === 4, 2000, "four spans");
    const byName = Object.fromEntries(otel.ended().map((s) => [s.name + " " + String(s.attributes["url.path"]), s]));
    expect(byName["GET /static /static"]!.attributes["http.route"]).toBe("/static");
    expect(byName["GET /static /static"]!.attributes["http.response.status_code"]).toBe(200);
    expect(byName["GET /elsewhere"]!.attributes["http.route"]).toBeUndefined();
    expect(byName["GET /elsewhere"]!.attributes["http.response.status_code"]).toBe(202);
    expect(byName["GET /nothing"]!.attributes["http.response.status_code"]).toBe(404);
    expect(byName["GET /nothing"]!.status.code).toBe(SpanStatusCode.UNSET);
    expect(byName["DELETE /only-get /only-get"]!.attributes["http.response.status_code"]).toBe(405);
  });

  it("an unknown method is _OTHER, its span named HTTP, the method kept in http.request.method_original", async () => {
    const server = serveTraced();
    expect((await fetch(`http://127.0.0.1:${server.port}/x`, { method: "PURGE" })).status).toBe(202);
    await waitFor(() => otel.ended("HTTP").length === 1, 2000, "the span");
    const span = otel.ended("HTTP")[0]!;
    expect(span.attributes["http.request.method"]).toBe("_OTHER");
    expect(span.attributes["http.request.method_original"]).toBe("PURGE");
  });

  it("HTTP/2 (h2c, the node engine): network.protocol.version 2, the authority as server.address", async () => {
    const server = track(start({ telemetry: true, http2: true, engine: "node", routes: { "/h2/:x": () => new Response("over h2") } }));
    const session = http2.connect(`http://127.0.0.1:${server.port}`);
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const stream = session.request({ ":path": "/h2/1?v=2" });
        let text = "";
        stream.setEncoding("utf8").on("data", (c: string) => (text += c));
        stream.on("end", () => resolve(text));
        stream.on("error", reject);
        stream.end();
      });
      expect(body).toBe("over h2");
    } finally {
      session.close();
    }
    await waitFor(() => otel.ended("GET /h2/:x").length === 1, 2000, "the span");
    const span = otel.ended("GET /h2/:x")[0]!;
    expect(span.attributes).toMatchObject({
      "network.protocol.version": "2",
      "server.address": "127.0.0.1",
      "server.port": server.port,
      "url.path": "/h2/1",
      "url.query": "v=2",
      "http.response.status_code": 200,
    });
  });

  it("without telemetry (the default) no span is made, even with a provider registered", async () => {
    const server = track(start({ fetch: () => new Response("plain") }));
    expect(await (await fetch(`http://127.0.0.1:${server.port}/`)).text()).toBe("plain");
    await new Promise((r) => setTimeout(r, 50));
    expect(otel.ended()).toHaveLength(0);
  });
});

describe("telemetry: metrics", () => {
  it("http.server.* metrics: duration, active requests back to 0, request and response body sizes, with the route and status", async () => {
    const server = serveTraced({ id: "metrics" });
    const before = pointWith(await otel.points("http.server.request.duration"), { "http.route": "/upload" })?.value as { count: number } | undefined;
    const res = await fetch(`http://127.0.0.1:${server.port}/upload`, { method: "POST", body: "12345" });
    expect(await res.text()).toBe("5");
    await waitFor(() => otel.ended("POST /upload").length === 1, 2000, "the span");
    const expected = { "http.request.method": "POST", "url.scheme": "http", "http.route": "/upload", "http.response.status_code": 200, "network.protocol.version": "1.1" };
    const duration = pointWith(await otel.points("http.server.request.duration"), expected)!;
    expect(duration.attributes).toEqual(expected);
    const histogram = duration.value as { count: number; sum: number; buckets: { boundaries: number[] } };
    expect(histogram.count - (before?.count ?? 0)).toBe(1);
    expect(histogram.sum).toBeGreaterThan(0);
    expect(histogram.sum).toBeLessThan(5);
    expect(histogram.buckets.boundaries).toEqual([0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]);
    expect((pointWith(await otel.points("http.server.request.body.size"), expected)!.value as { sum: number }).sum).toBeGreaterThanOrEqual(5);
    expect((pointWith(await otel.points("http.server.response.body.size"), expected)!.value as { max: number }).max).toBe(1);
    const active = pointWith(await otel.points("http.server.active_requests"), { "http.request.method": "POST" })!;
    expect(active.attributes).toEqual({ "http.request.method": "POST", "url.scheme": "http" });
    expect(active.value).toBe(0);
  });

  it("active_requests counts a request while its handler works", async () => {
    const server = serveTraced();
    const slow = fetch(`http://127.0.0.1:${server.port}/slow`);
    await waitFor(() => server.pendingRequests === 1, 2000, "the slow request");
    expect(pointWith(await otel.points("http.server.active_requests"), { "http.request.method": "GET" })!.value).toBe(1);
    expect(await (await slow).text()).toBe("late");
    await waitFor(() => otel.ended("GET /slow").length === 1, 3000, "the span");
    expect(pointWith(await otel.points("http.server.active_requests"), { "http.request.method": "GET" })!.value).toBe(0);
  });

  it("WebSocket instruments: open connections, messages in and out, publish deliveries", async () => {
    const sum = async (name: string) => (await otel.points(name)).reduce((n, p) => n + (p.value as number), 0);
    const base = { received: await sum("uwserve.websocket.messages.received"), sent: await sum("uwserve.websocket.messages.sent"), deliveries: await sum("uwserve.websocket.publish.deliveries") };
    const server = track(
      start({
        telemetry: true,
        fetch: (req: Request, srv: Server) => (srv.upgrade(req) ? undefined : new Response("no")),
        websocket: {
          open: (ws: { subscribe(t: string): void }) => ws.subscribe("room"),
          message: (ws: { send(d: string): number; publish(t: string, d: string): number }, msg: string) => {
            ws.send(`echo ${msg}`);
            ws.publish("room", `from a peer: ${msg}`);
          },
        },
      }),
    );
    const a = await connectWs(server);
    const b = await connectWs(server);
    await waitFor(() => server.pendingWebSockets === 2, 2000, "two sockets");
    expect(await sum("uwserve.websocket.connections")).toBe(2);
    a.ws.send("hi");
    await b.until(() => b.messages.length === 1, 2000, "the publish");
    await a.until(() => a.messages.length === 1, 2000, "the echo");
    expect((await sum("uwserve.websocket.messages.received")) - base.received).toBe(1);
    expect((await sum("uwserve.websocket.messages.sent")) - base.sent).toBe(1);
    expect((await sum("uwserve.websocket.publish.deliveries")) - base.deliveries).toBe(1);
    a.ws.close();
    b.ws.close();
    await waitFor(() => server.pendingWebSockets === 0, 2000, "the sockets to close");
    expect(await sum("uwserve.websocket.connections")).toBe(0);
    // The upgrade request is a span with status 101.
    expect(otel.ended("GET").map((s) => s.attributes["http.response.status_code"])).toEqual([101, 101]);
  });
});

describe("telemetry: turning it on", () => {
  it("UWSERVE_OTEL=1 is the default; telemetry: false wins over it; a non-boolean is a coded error", async () => {
    const saved = process.env.UWSERVE_OTEL;
    process.env.UWSERVE_OTEL = "1";
    try {
      const on = track(start({ fetch: () => new Response("on") }));
      const off = track(start({ telemetry: false, fetch: () => new Response("off") }));
      await (await fetch(`http://127.0.0.1:${on.port}/env`)).text();
      await (await fetch(`http://127.0.0.1:${off.port}/not-traced`)).text();
      await waitFor(() => otel.ended("GET").length === 1, 2000, "the span");
      await new Promise((r) => setTimeout(r, 50));
      expect(otel.ended().map((s) => s.attributes["url.path"])).toEqual(["/env"]);
    } finally {
      if (saved === undefined) delete process.env.UWSERVE_OTEL;
      else process.env.UWSERVE_OTEL = saved;
    }
    expect(() => start({ telemetry: "yes", fetch: () => new Response("x") })).toThrow(expect.objectContaining({ code: "UWSERVE_ERR_INVALID_OPTION" }));
  });

  it("without @opentelemetry/api installed, telemetry: true throws UWSERVE_ERR_PEER_MISSING naming the package", () => {
    // An app whose node_modules holds uwserve and its dependencies, but not the API.
    const app = mkdtempSync(join(tmpdir(), "uwserve-otel-peer-"));
    try {
      const modules = join(app, "node_modules");
      mkdirSync(join(modules, "uwserve"), { recursive: true });
      cpSync(join(ROOT, "dist"), join(modules, "uwserve", "dist"), { recursive: true });
      cpSync(join(ROOT, "package.json"), join(modules, "uwserve", "package.json"));
      if (existsSync(join(ROOT, "build"))) cpSync(join(ROOT, "build"), join(modules, "uwserve", "build"), { recursive: true });
      for (const name of readdirSync(join(ROOT, "node_modules"))) {
        if (name !== "@opentelemetry" && name !== "uwserve" && !name.startsWith(".")) symlinkSync(join(ROOT, "node_modules", name), join(modules, name));
      }
      writeFileSync(join(app, "main.mjs"), `
        const { serve } = await import("uwserve");
        try { serve({ port: 0, telemetry: true, fetch: () => new Response("x") }); console.log("no error"); process.exit(0); }
        catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
      `);
      const run = spawnSync(process.execPath, ["main.mjs"], { cwd: app, encoding: "utf8", timeout: 10_000 });
      const result = JSON.parse(run.stdout.trim()) as { code: string; message: string };
      expect(result.code).toBe("UWSERVE_ERR_PEER_MISSING");
      expect(result.message).toContain("npm install @opentelemetry/api");
      expect(run.status).toBe(0);
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  });
});
