// Request-time error policy: handler throws/rejects → error()/onError() → else 500 (a page in development); bad returns; client aborts stay quiet.
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from "vitest";
import { Response as UwsResponse, serve, type Server } from "../dist/index.js";
import { httpRequest, RawConnection, sleep } from "./helpers/client.js";
import { start, waitFor, withTimeout } from "./helpers/server.js";

const servers: Server[] = [];
let consoleError: MockInstance<typeof console.error>;
beforeEach(() => {
  consoleError = vi.spyOn(console, "error").mockImplementation(() => {});
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => withTimeout(s.stop(true), 5000, "server stop")));
  vi.restoreAllMocks();
});

function serveWith(options: Record<string, unknown>): Server {
  const server = start(options);
  servers.push(server);
  return server;
}
const url = (server: Server, path = "/") => `http://127.0.0.1:${server.port}${path}`;
const logged = () => consoleError.mock.calls.map((args) => args.map((a) => (a instanceof Error ? `${a.name}: ${a.message}` : String(a))).join(" ")).join("\n");

describe("handler throws or rejects", () => {
  it("a sync throw goes to error(err), whose Response is sent", async () => {
    let received: unknown;
    const server = serveWith({
      fetch() {
        throw new Error("sync boom");
      },
      error(err: unknown) {
        received = err;
        return new Response(`handled: ${(err as Error).message}`, { status: 503, headers: { "x-e": "1" } });
      },
    });
    const res = await httpRequest(server.port);
    expect(res.status).toBe(503);
    expect(res.headers["x-e"]).toBe("1");
    expect(res.body.toString()).toBe("handled: sync boom");
    expect(received).toBeInstanceOf(Error);
  });

  it("a rejection goes to error(err) the same way", async () => {
    const server = serveWith({
      async fetch() {
        await sleep(1);
        throw new TypeError("async boom");
      },
      error: (err: Error) => new Response(`${err.name}: ${err.message}`, { status: 500 }),
    });
    const res = await httpRequest(server.port);
    expect(res.status).toBe(500);
    expect(res.body.toString()).toBe("TypeError: async boom");
  });

  it("a thrown non-Error value reaches error() as is", async () => {
    const server = serveWith({
      fetch() {
        throw "a string";
      },
      error: (err: unknown) => new Response(`typeof ${typeof err}: ${String(err)}`),
    });
    expect((await httpRequest(server.port)).body.toString()).toBe("typeof string: a string");
  });

  it("error() may be async", async () => {
    const server = serveWith({
      fetch() {
        throw new Error("x");
      },
      async error() {
        await sleep(5);
        return new Response("async error handler", { status: 502 });
      },
    });
    const res = await httpRequest(server.port);
    expect(res.status).toBe(502);
    expect(res.body.toString()).toBe("async error handler");
  });

  it("error() is called with `this` the server", async () => {
    let self: unknown;
    const server = serveWith({
      fetch() {
        throw new Error("x");
      },
      error(this: unknown) {
        self = this;
        return new Response("x");
      },
    });
    await httpRequest(server.port);
    expect(self).toBe(server);
  });
});

describe("without an error handler", () => {
  it('500 with a plain "Internal Server Error" body and no internals', async () => {
    const server = serveWith({
      fetch() {
        throw new Error("secret database password in message");
      },
    });
    const res = await httpRequest(server.port);
    expect(res.status).toBe(500);
    expect(res.body.toString()).toBe("Internal Server Error");
    expect(res.headers["content-type"]).toMatch(/^text\/plain/);
    expect(res.body.toString()).not.toContain("secret");
    expect(logged()).toContain("secret database password in message");
  });

  it("the same for a rejection", async () => {
    const server = serveWith({ fetch: () => Promise.reject(new Error("hidden")) });
    const res = await httpRequest(server.port);
    expect(res.status).toBe(500);
    expect(res.body.toString()).toBe("Internal Server Error");
  });

  it("development: true → an HTML page with the message and the stack", async () => {
    const server = serveWith({
      development: true,
      fetch: function namedHandlerForStack() {
        throw new Error("woops <b>escaped</b>");
      },
    });
    const res = await httpRequest(server.port);
    expect(res.status).toBe(500);
    expect(res.headers["content-type"]).toMatch(/^text\/html/);
    const html = res.body.toString();
    expect(html).toContain("woops &#60;b&#62;escaped&#60;/b&#62;");
    expect(html).not.toContain("<b>escaped</b>");
    expect(html).toContain("namedHandlerForStack");
  });

  it("development: true still lets an error() handler decide", async () => {
    const server = serveWith({
      development: true,
      fetch() {
        throw new Error("x");
      },
      error: () => new Response("custom wins", { status: 500 }),
    });
    expect((await httpRequest(server.port)).body.toString()).toBe("custom wins");
  });

  it("a HEAD request that fails gets a 500 without a body", async () => {
    const server = serveWith({
      fetch() {
        throw new Error("x");
      },
    });
    const res = await httpRequest(server.port, { method: "HEAD" });
    expect(res.status).toBe(500);
    expect(res.body.length).toBe(0);
  });
});

describe("the error handler fails too", () => {
  for (const development of [false, true]) {
    it(`error() throws → plain 500 (development: ${development})`, async () => {
      const server = serveWith({
        development,
        fetch() {
          throw new Error("first");
        },
        error() {
          throw new Error("second failure in error handler");
        },
      });
      const res = await httpRequest(server.port);
      expect(res.status).toBe(500);
      expect(res.body.toString()).toBe("Internal Server Error");
      expect(logged()).toContain("second failure in error handler");
    });
  }

  it("error() rejects → plain 500", async () => {
    const server = serveWith({
      fetch() {
        throw new Error("first");
      },
      error: () => Promise.reject(new Error("rejected in error handler")),
    });
    const res = await httpRequest(server.port);
    expect(res.status).toBe(500);
    expect(res.body.toString()).toBe("Internal Server Error");
  });

  it("error() returns something that is not a Response → plain 500, logged", async () => {
    const server = serveWith({
      fetch() {
        throw new Error("first");
      },
      error: () => "not a response",
    });
    const res = await httpRequest(server.port);
    expect(res.status).toBe(500);
    expect(res.body.toString()).toBe("Internal Server Error");
    expect(logged()).toMatch(/expected a Response/);
  });
});

describe("the handler returns something that is not a Response", () => {
  const cases: Array<[string, unknown]> = [
    ["undefined", undefined],
    ["null", null],
    ["a string", "hello"],
    ["a number", 42],
    ["a plain object without status", { body: "x" }],
    ["a plain object without headers", { status: 200, body: "x" }],
  ];
  for (const [name, value] of cases) {
    it(`${name} → 500 with the reason logged (never an empty 204)`, async () => {
      const server = serveWith({ fetch: () => value });
      const res = await httpRequest(server.port);
      expect(res.status).toBe(500);
      expect(res.body.toString()).toBe("Internal Server Error");
      expect(logged()).toMatch(/uwserve: the handler returned .*expected a Response/);
    });

    it(`${name} from an async handler goes through error() as a TypeError`, async () => {
      let received: unknown;
      const server = serveWith({
        fetch: async () => value,
        error(err: unknown) {
          received = err;
          return new Response("handled", { status: 500 });
        },
      });
      expect((await httpRequest(server.port)).body.toString()).toBe("handled");
      expect(received).toBeInstanceOf(TypeError);
      expect((received as { code?: string }).code).toBe("UWSERVE_ERR_BAD_RESPONSE");
    });
  }

  it("undefined says the handler probably forgot to return", async () => {
    const server = serveWith({ fetch: () => undefined });
    await httpRequest(server.port);
    expect(logged()).toMatch(/forget to return/);
  });
});

describe("Deno onError", () => {
  it("onError turns a thrown handler into its Response", async () => {
    const server = serve(
      {
        port: 0,
        hostname: "127.0.0.1",
        onListen() {},
        onError: (err) => new Response(`onError: ${(err as Error).message}`, { status: 500 }),
      },
      () => {
        throw new Error("deno boom");
      },
    );
    servers.push(server);
    const res = await httpRequest(server.port);
    expect(res.status).toBe(500);
    expect(res.body.toString()).toBe("onError: deno boom");
  });

  it("onError with serve({ handler, onError })", async () => {
    const server = serve({
      port: 0,
      hostname: "127.0.0.1",
      onListen() {},
      handler: async () => {
        throw new Error("rejected");
      },
      onError: () => new Response("from onError", { status: 418 }),
    });
    servers.push(server);
    expect((await httpRequest(server.port)).status).toBe(418);
  });

  it("without onError a Deno handler error is a plain 500", async () => {
    const server = serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, () => {
      throw new Error("no hook");
    });
    servers.push(server);
    const res = await httpRequest(server.port);
    expect(res.status).toBe(500);
    expect(res.body.toString()).toBe("Internal Server Error");
  });
});

describe("errors after the head was sent", () => {
  /** A Response whose stream sends a first chunk, then fails. */
  const brokenMidBody = () =>
    new UwsResponse(
      new ReadableStream({
        async start(controller) {
          controller.enqueue(new TextEncoder().encode("partial "));
          await sleep(10);
          controller.error(new Error("stream broke"));
        },
      }),
    );

  it("a stream that errors mid-body cuts the connection; the error hook observes it (its Response can't be sent)", async () => {
    const observed: unknown[] = [];
    const server = serveWith({
      fetch: brokenMidBody,
      error(err: unknown) {
        observed.push(err);
        return new Response("too late to be sent");
      },
    });
    // Truncated: the client sees the connection end before the chunked body's end, never a clean end.
    await expect(withTimeout(fetch(url(server)).then((r) => r.text()), 5000, "the broken stream")).rejects.toThrow();
    await waitFor(() => observed.length === 1, 2000, "the error hook to see the stream error");
    expect((observed[0] as Error).message).toBe("stream broke");
    expect(logged()).not.toContain("too late");
  });

  it("without an error hook a stream that errors mid-body is reported on the console", async () => {
    const server = serveWith({
      fetch: brokenMidBody,
    });
    await expect(withTimeout(fetch(url(server)).then((r) => r.text()), 5000, "the broken stream")).rejects.toThrow();
    await waitFor(() => logged().includes("stream broke"), 2000, "the stream error to be reported");
    // The server keeps serving.
    server.reload({ fetch: () => new Response("ok") });
    expect(await (await fetch(url(server))).text()).toBe("ok");
  });

  it("a stream that errors before its first chunk still gets error()'s response", async () => {
    const server = serveWith({
      fetch: () =>
        new UwsResponse(
          new ReadableStream({
            pull(controller) {
              controller.error(new Error("broke at once"));
            },
          }),
        ),
      error: (err: Error) => new Response(`recovered: ${err.message}`, { status: 500 }),
    });
    const res = await httpRequest(server.port);
    expect(res.status).toBe(500);
    expect(res.body.toString()).toBe("recovered: broke at once");
  });

  it("a stream yielding a non-bytes chunk is an error, not a crash", async () => {
    const server = serveWith({
      fetch: () =>
        new UwsResponse(
          new ReadableStream({
            start(controller) {
              controller.enqueue({ not: "bytes" });
              controller.close();
            },
          }),
        ),
    });
    const res = await httpRequest(server.port).catch(() => null);
    if (res !== null) expect(res.status).toBe(500);
  });
});

describe("client aborts never produce unhandled rejections", () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  const onUncaught = (err: unknown) => unhandled.push(err);
  beforeEach(() => {
    unhandled.length = 0;
    process.on("unhandledRejection", onUnhandled);
    process.on("uncaughtException", onUncaught);
  });
  afterEach(() => {
    process.off("unhandledRejection", onUnhandled);
    process.off("uncaughtException", onUncaught);
  });

  /** Sends a request, waits until the handler runs, then hangs up. */
  async function abortMidRequest(server: Server, payload = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"): Promise<void> {
    const conn = await RawConnection.open(server.port);
    conn.socket.write(payload);
    await waitFor(() => server.pendingRequests === 1, 5000, "the request to be in flight");
    conn.destroy();
    await waitFor(() => server.pendingRequests === 0, 5000, "the abort to be processed");
    // Let any stray rejection surface.
    await sleep(100);
  }

  it("a handler that rejects after the client left", async () => {
    const server = serveWith({
      async fetch() {
        await sleep(50);
        throw new Error("after abort");
      },
    });
    await abortMidRequest(server);
    await sleep(100);
    expect(unhandled).toEqual([]);
  });

  it("a handler whose unguarded req.text() rejects because the upload was cut", async () => {
    const server = serveWith({
      async fetch(req: Request) {
        const text = await req.text();
        return new Response(text);
      },
    });
    await abortMidRequest(server, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nsome");
    expect(unhandled).toEqual([]);
  });

  it("a handler reading the body stream when the upload is cut", async () => {
    const server = serveWith({
      async fetch(req: Request) {
        const reader = req.body!.getReader();
        for (;;) if ((await reader.read()).done) break;
        return new Response("read");
      },
    });
    await abortMidRequest(server, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nsome");
    expect(unhandled).toEqual([]);
  });

  it("a streaming response whose client hangs up", async () => {
    let cancelled = false;
    const server = serveWith({
      fetch: () => {
        let timer: NodeJS.Timeout;
        return new UwsResponse(
          new ReadableStream({
            start(controller) {
              timer = setInterval(() => {
                try {
                  controller.enqueue(new Uint8Array(1024));
                } catch {
                  clearInterval(timer);
                }
              }, 2);
            },
            cancel() {
              cancelled = true;
              clearInterval(timer);
            },
          }),
        );
      },
    });
    await abortMidRequest(server);
    await waitFor(() => cancelled, 2000, "cancel");
    expect(unhandled).toEqual([]);
  });

  it("an async generator response whose client hangs up", async () => {
    let finalized = false;
    const server = serveWith({
      fetch: () =>
        new UwsResponse(
          (async function* () {
            try {
              for (;;) {
                yield new Uint8Array(1024);
                await sleep(2);
              }
            } finally {
              finalized = true;
            }
          })() as never,
        ),
    });
    await abortMidRequest(server);
    await waitFor(() => finalized, 2000, "the generator's finally");
    expect(unhandled).toEqual([]);
  });

  it("a Deno handler that never awaits info.completed, aborted", async () => {
    const server = serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (_req, info) => {
      void info.completed;
      await sleep(50);
      return new Response("late");
    });
    servers.push(server);
    await abortMidRequest(server);
    await sleep(100);
    expect(unhandled).toEqual([]);
  });

  it("a handler awaiting a signal-aware fetch that rejects on abort", async () => {
    const upstream = serveWith({ fetch: () => new Promise(() => {}) });
    const server = serveWith({
      fetch: (req: Request) => fetch(url(upstream), { signal: req.signal }),
    });
    await abortMidRequest(server);
    expect(unhandled).toEqual([]);
  });

  it("nothing is logged as an error for a plain client abort", async () => {
    const server = serveWith({
      async fetch() {
        await sleep(50);
        return new Response("late");
      },
    });
    await abortMidRequest(server);
    await sleep(100);
    expect(consoleError).not.toHaveBeenCalled();
  });
});
