// The examples of reference/deno-serve.md, run as written except for `port: 0` and the import line.
import { describe, expect, it, vi } from "vitest";
import { serve, upgradeWebSocket, Response, type Server } from "../dist/index.js";
import WebSocket from "ws";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import https from "node:https";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { httpRequest } from "./helpers/client.js";
import { fetchFrom, trackServers, waitFor, withTimeout } from "./helpers/server.js";

const track = trackServers();
const at = fetchFrom;

/** `Deno.serve(handler)` on port 0: serve({ port: 0 }, handler), which prints its address as Deno does. */
function quietLog() {
  return vi.spyOn(console, "log").mockImplementation(() => {});
}

describe("Deno's built-in HTTP server", () => {
  it('a "Hello World" server', async () => {
    const log = quietLog();
    const server = track(
      serve({ port: 0 }, (_req) => {
        return new Response("Hello, World!");
      }),
    );
    expect(await (await at(server)).text()).toBe("Hello, World!");
    // Deno announces the address when no onListen is given.
    expect(String(log.mock.calls[0]?.[0])).toBe(`Listening on http://localhost:${server.port}/`);
  });

  it("the handler can be an async function", async () => {
    quietLog();
    const server = track(serve({ port: 0 }, async (_req) => new Response("Hello, World!")));
    expect(await (await at(server)).text()).toBe("Hello, World!");
  });

  it("listening on a specific port (4242 → 0), also with hostname 0.0.0.0", async () => {
    quietLog();
    const handler = () => new Response("ok");
    // To listen on port 4242.
    const a = track(serve({ port: 0 }, handler));
    // To listen on port 4242 and bind to 0.0.0.0.
    const b = track(serve({ port: 0, hostname: "0.0.0.0" }, handler));
    expect(b.hostname).toBe("0.0.0.0");
    for (const server of [a, b]) expect(await (await at(server)).text()).toBe("ok");
  });

  it("inspecting the incoming request", async () => {
    const log = quietLog();
    const server = track(
      serve({ port: 0 }, async (req) => {
        console.log("Method:", req.method);

        const url = new URL(req.url);
        console.log("Path:", url.pathname);
        console.log("Query parameters:", url.searchParams);

        console.log("Headers:", req.headers);

        if (req.body) {
          const body = await req.text();
          console.log("Body:", body);
        }

        return new Response("Hello, World!");
      }),
    );
    const res = await at(server, "/inspect?x=1", { method: "POST", body: "the body", headers: { "x-demo": "1" } });
    expect(await res.text()).toBe("Hello, World!");
    const lines = log.mock.calls.slice(1);
    expect(lines[0]).toEqual(["Method:", "POST"]);
    expect(lines[1]).toEqual(["Path:", "/inspect"]);
    expect((lines[2]![1] as URLSearchParams).get("x")).toBe("1");
    expect((lines[3]![1] as Headers).get("x-demo")).toBe("1");
    expect(lines[4]).toEqual(["Body:", "the body"]);
  });

  it("inspecting a GET: req.body is null, so no body is read", async () => {
    const log = quietLog();
    const server = track(
      serve({ port: 0 }, async (req) => {
        if (req.body) {
          const body = await req.text();
          console.log("Body:", body);
        }
        return new Response("Hello, World!");
      }),
    );
    expect(await (await at(server)).text()).toBe("Hello, World!");
    expect(log.mock.calls.some((c) => c[0] === "Body:")).toBe(false);
  });

  it("responding with a 404, a JSON body and a custom header", async () => {
    quietLog();
    const server = track(
      serve({ port: 0 }, (req) => {
        const body = JSON.stringify({ message: "NOT FOUND" });
        return new Response(body, {
          status: 404,
          headers: {
            "content-type": "application/json; charset=utf-8",
          },
        });
      }),
    );
    const res = await httpRequest(server.port);
    expect(res.status).toBe(404);
    expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(JSON.parse(res.body.toString())).toEqual({ message: "NOT FOUND" });
  });

  it("responding with a stream: chunks arrive every second and cancel runs when the client hangs up", { timeout: 15_000 }, async () => {
    quietLog();
    let cancelled = false;
    let intervals = 0;
    const server = track(
      serve({ port: 0 }, (req) => {
        let timer: ReturnType<typeof setInterval>;
        const body = new ReadableStream({
          async start(controller) {
            timer = setInterval(() => {
              intervals++;
              controller.enqueue("Hello, World!\n");
            }, 1000);
          },
          cancel() {
            cancelled = true;
            clearInterval(timer);
          },
        });
        return new Response(body.pipeThrough(new TextEncoderStream()), {
          headers: {
            "content-type": "text/plain; charset=utf-8",
          },
        });
      }),
    );
    const controller = new AbortController();
    const res = await at(server, "/", { signal: controller.signal });
    expect(res.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    const reader = res.body!.getReader();
    const first = await withTimeout(reader.read(), 5000, "the first chunk");
    expect(new TextDecoder().decode(first.value)).toBe("Hello, World!\n");
    controller.abort();
    await waitFor(() => cancelled, 5000, "the stream's cancel to run");
    // The interval is gone: no more enqueues after cancel.
    const after = intervals;
    await new Promise((r) => setTimeout(r, 1500));
    expect(intervals).toBe(after);
    await waitFor(() => server.pendingRequests === 0, 2000, "the request to finish");
  });
});

describe("other sections", () => {
  it.skipIf(spawnSync("openssl", ["version"]).status !== 0)("HTTPS support: serve({ port: 443 → 0, cert, key }, handler) with contents read from files", async () => {
    const dir = mkdtempSync(join(tmpdir(), "uwserve-deno-tls-"));
    try {
      execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "key.pem", "-out", "cert.pem",
        "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], { cwd: dir, stdio: "ignore" });
      const handler = (req: Request) => new Response(`secure ${new URL(req.url).protocol}`);
      const log = quietLog();
      const server = track(
        serve({
          port: 0,
          cert: readFileSync(join(dir, "cert.pem"), "utf8"),
          key: readFileSync(join(dir, "key.pem"), "utf8"),
        }, handler),
      );
      log.mockRestore();
      const body = await new Promise<string>((resolve, reject) => {
        https
          .get({ host: "127.0.0.1", port: server.port, ca: readFileSync(join(dir, "cert.pem")), servername: "localhost", agent: false }, (res) => {
            let text = "";
            res.on("data", (chunk) => (text += chunk));
            res.on("end", () => resolve(text));
          })
          .on("error", reject);
      });
      expect(body).toBe("secure https:");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // Deno serves h2 by itself; uwserve when asked (`http2: true`), on the node engine ("auto" picks it).
  it.skipIf(spawnSync("openssl", ["version"]).status !== 0)("HTTP/2 support: with http2: true the same server answers h2 (ALPN) and HTTP/1.1 over TLS", async () => {
    const dir = mkdtempSync(join(tmpdir(), "uwserve-deno-h2-"));
    try {
      execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "key.pem", "-out", "cert.pem",
        "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], { cwd: dir, stdio: "ignore" });
      const cert = readFileSync(join(dir, "cert.pem"), "utf8");
      const log = quietLog();
      const server = track(serve({ port: 0, http2: true, cert, key: readFileSync(join(dir, "key.pem"), "utf8") }, (req) => new Response(`hello ${new URL(req.url).pathname}`)));
      log.mockRestore();
      expect(server.engine).toBe("node");
      const session = http2.connect(`https://localhost:${server.port}`, { ca: cert });
      const body = await new Promise<string>((resolve, reject) => {
        const stream = session.request({ ":path": "/h2" });
        let text = "";
        stream.setEncoding("utf8").on("data", (c: string) => (text += c)).on("end", () => resolve(text)).on("error", reject);
        stream.end();
      });
      session.close();
      expect(body).toBe("hello /h2");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("Automatic body compression: on with automaticCompression (off by default in Deno 2.9), gzip/br by Accept-Encoding, Vary set", async () => {
    const log = quietLog();
    const body = JSON.stringify({ message: "compress me ".repeat(20) });
    const server = track(serve({ port: 0, automaticCompression: true }, () => new Response(body, { headers: { "content-type": "application/json" } })));
    log.mockRestore();
    const res = await fetch(`http://127.0.0.1:${server.port}/`, { headers: { "accept-encoding": "br" } });
    expect(res.headers.get("content-encoding")).toBe("br");
    expect(res.headers.get("vary")).toBe("Accept-Encoding");
    expect(await res.text()).toBe(body);
  });
});

describe("Serving WebSockets", () => {
// WebSockets: the uws engine only (the node engine gets them with `ws` later).
  it("Deno.upgradeWebSocket: 501 without an upgrade header, pong for ping over the socket", async () => {
    const log = quietLog();
    const opened = vi.fn();
    const server = track(
      serve({ port: 0 }, (req) => {
        if (req.headers.get("upgrade") != "websocket") {
          return new Response(null, { status: 501 });
        }

        const { socket, response } = upgradeWebSocket(req);
        socket.addEventListener("open", () => {
          opened("a client connected!");
        });

        socket.addEventListener("message", (event) => {
          if (event.data === "ping") {
            socket.send("pong");
          }
        });

        return response;
      }),
    );
    log.mockRestore();
    expect((await at(server)).status).toBe(501);
    const client = new WebSocket(`ws://127.0.0.1:${server.port}/`);
    await withTimeout(new Promise((resolve, reject) => client.once("open", resolve).once("error", reject)), 2000, "open");
    const reply = new Promise<string>((resolve) => client.once("message", (data) => resolve(String(data))));
    client.send("ping");
    expect(await withTimeout(reply, 2000, "pong")).toBe("pong");
    expect(opened).toHaveBeenCalledWith("a client connected!");
    client.close();
  });
});

describe("default fetch export", () => {
  it("export default { fetch } served through serve() (what `deno serve` / the CLI does), port 8000 → 0", async () => {
    const defaultExport = {
      fetch(request: Request) {
        const userAgent = request.headers.get("user-agent") || "Unknown";
        return new Response(`User Agent: ${userAgent}`);
      },
    };
    const server = track(serve({ ...defaultExport, port: 0 }));
    const withAgent = await httpRequest(server.port, { headers: { "user-agent": "example-agent/1.0" } });
    expect(withAgent.body.toString()).toBe("User Agent: example-agent/1.0");
    const without = await httpRequest(server.port);
    expect(without.body.toString()).toBe("User Agent: Unknown");
  });
});
