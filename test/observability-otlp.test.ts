// End to end: `node --import otel-setup.mjs uwserve --telemetry app.mjs` exports its spans over
// OTLP/HTTP (JSON) to a small receiver this test runs, as a collector would receive them.
import { spawn } from "node:child_process";
import { createServer, type Server as HttpServer } from "node:http";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { waitFor, withTimeout } from "./helpers/server.js";
import { CLI, ROOT } from "./helpers/workers.js";

interface OtlpValue {
  stringValue?: string;
  intValue?: number | string;
}
interface OtlpSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Array<{ key: string; value: OtlpValue }>;
  status?: { code?: number };
}

const received: Array<{ path: string; type: string | undefined; body: { resourceSpans: Array<{ scopeSpans: Array<{ scope: { name: string }; spans: OtlpSpan[] }> }> } }> = [];
let receiver: HttpServer;

afterAll(() => receiver?.close());

function spans(): Array<OtlpSpan & { scope: string }> {
  return received.flatMap((r) => r.body.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => ({ ...s, scope: ss.scope.name })))));
}

function attributes(span: OtlpSpan): Record<string, string | number> {
  return Object.fromEntries(span.attributes.map((a) => [a.key, a.value.stringValue ?? Number(a.value.intValue)]));
}

describe("OTLP/HTTP export", { timeout: 30_000 }, () => {
  it("the request's SERVER span and the handler's child reach a collector, in the caller's trace", async () => {
    receiver = createServer((req, res) => {
      let body = "";
      req.setEncoding("utf8").on("data", (d) => (body += d));
      req.on("end", () => {
        received.push({ path: req.url ?? "", type: req.headers["content-type"], body: JSON.parse(body) });
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    const collector = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
    const child = spawn(
      process.execPath,
      ["--import", join(ROOT, "test", "fixtures", "otel-setup.mjs"), CLI, "--telemetry", "--port", "0", "--hostname", "127.0.0.1", join(ROOT, "test", "fixtures", "otel-app.mjs")],
      { cwd: ROOT, env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: collector, PORT: undefined }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    const exited = new Promise<number | null>((r) => child.on("exit", r));
    try {
      await waitFor(() => /uwserve listening on (\S+)/.test(out), 15_000, `the listening line (stderr: ${err})`);
      const url = new URL(/uwserve listening on (\S+)/.exec(out)![1]!);
      const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
      const res = await fetch(new URL("/orders/17?full=1", url), { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
      expect(await res.json()).toEqual({ id: "17" });
      await waitFor(() => spans().length >= 2, 10_000, `two spans at the collector (stderr: ${err})`);
      expect(received[0]!.path).toBe("/v1/traces");
      expect(received[0]!.type).toBe("application/json");
      const server = spans().find((s) => s.name === "GET /orders/:id")!;
      const child_ = spans().find((s) => s.name === "load order")!;
      expect(server.scope).toBe("uwserve");
      expect(server.kind).toBe(2); // SPAN_KIND_SERVER
      expect(server.traceId).toBe(traceId);
      expect(server.parentSpanId).toBe("00f067aa0ba902b7");
      expect(attributes(server)).toMatchObject({
        "http.request.method": "GET",
        "url.path": "/orders/17",
        "url.query": "full=1",
        "http.route": "/orders/:id",
        "http.response.status_code": 200,
        "server.port": Number(url.port),
      });
      expect(child_.traceId).toBe(traceId);
      expect(child_.parentSpanId).toBe(server.spanId);
    } finally {
      child.kill("SIGINT");
      await withTimeout(exited, 10_000, "the CLI to exit");
    }
  });
});
