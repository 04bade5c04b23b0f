// The Server object: its members, graceful and forced stop, reload, server.fetch, requestIP, timeout, ref/unref, dispose, and Deno's addr/finished/shutdown/info.
import { existsSync } from "node:fs";
import { afterEach, describe, expect, it, vi } from "vitest";
import { serve, type Server } from "../dist/index.js";
import { connectionRefused, DIST_INDEX_URL, NATIVE_ADDON, RawConnection, runNode, sleep } from "./helpers/client.js";
import { start, waitFor, withTimeout } from "./helpers/server.js";

const servers: Server[] = [];
function track<T extends Server>(server: T): T {
  servers.push(server);
  return server;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => withTimeout(s.stop(true), 5000, "server stop")));
  vi.restoreAllMocks();
});

/** A promise with its resolve function, for holding a handler until the test lets it go. */
function gate<T = void>(): { promise: Promise<T>; open: (value: T) => void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
}

/** Whether `promise` has settled after the microtask queue and one macrotask ran. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  await sleep(20);
  return done;
}

const url = (server: Server, path = "/") => `http://127.0.0.1:${server.port}${path}`;

describe("members", () => {
  it("port, hostname and url for an explicit hostname", () => {
    const server = track(start({ fetch: () => new Response("x") }));
    expect(server.port).toBeGreaterThan(0);
    expect(server.hostname).toBe("127.0.0.1");
    expect(server.url).toBeInstanceOf(URL);
    expect(server.url.href).toBe(`http://127.0.0.1:${server.port}/`);
  });

  it("url says localhost for 0.0.0.0", () => {
    const server = track(serve({ port: 0, fetch: () => new Response("x") }));
    expect(server.hostname).toBe("0.0.0.0");
    expect(server.url.href).toBe(`http://localhost:${server.port}/`);
  });

  it("url is a fresh URL each time (mutating it changes nothing)", () => {
    const server = track(start({ fetch: () => new Response("x") }));
    server.url.pathname = "/changed";
    expect(server.url.pathname).toBe("/");
  });

  it('id defaults to "" and takes the option', () => {
    expect(track(start({ fetch: () => new Response("x") })).id).toBe("");
    expect(track(start({ fetch: () => new Response("x"), id: "api-1" })).id).toBe("api-1");
  });

  it("development defaults to false outside NODE_ENV=development and takes the option", () => {
    expect(process.env.NODE_ENV).not.toBe("development");
    expect(track(start({ fetch: () => new Response("x") })).development).toBe(false);
    expect(track(start({ fetch: () => new Response("x"), development: true })).development).toBe(true);
  });

  it("pendingRequests counts requests in flight", async () => {
    const hold = gate();
    let seenInside = -1;
    const server = track(
      start({
        async fetch(_req: Request, srv: Server) {
          seenInside = srv.pendingRequests;
          await hold.promise;
          return new Response("done");
        },
      }),
    );
    expect(server.pendingRequests).toBe(0);
    const responses = [1, 2, 3].map(() => fetch(url(server)).then((r) => r.text()));
    await waitFor(() => server.pendingRequests === 3, 5000, "3 pending requests");
    expect(seenInside).toBeGreaterThanOrEqual(1);
    hold.open();
    expect(await withTimeout(Promise.all(responses), 5000, "responses")).toEqual(["done", "done", "done"]);
    await waitFor(() => server.pendingRequests === 0, 5000, "0 pending requests");
  });

  it("pendingRequests goes back to 0 after a client aborts", async () => {
    const server = track(start({ fetch: () => new Promise(() => {}) }));
    const controller = new AbortController();
    const pending = fetch(url(server), { signal: controller.signal }).catch(() => "aborted");
    await waitFor(() => server.pendingRequests === 1, 5000, "1 pending request");
    controller.abort();
    expect(await pending).toBe("aborted");
    await waitFor(() => server.pendingRequests === 0, 5000, "0 pending after abort");
  });
});

describe("stop()", () => {
  it("graceful: the in-flight request finishes and gets its response; new connections are refused; resolves after", async () => {
    const hold = gate();
    const started = gate();
    const server = track(
      start({
        async fetch(req: Request) {
          if (new URL(req.url).pathname === "/slow") {
            started.open();
            await hold.promise;
            return new Response("finished after stop");
          }
          return new Response("quick");
        },
      }),
    );
    const inFlight = fetch(url(server, "/slow")).then(async (r) => [r.status, await r.text()]);
    await withTimeout(started.promise, 5000, "the slow handler to start");

    const stopped = server.stop();
    expect(await settled(stopped)).toBe(false);
    expect(await connectionRefused(server.port)).toBe(true);

    hold.open();
    expect(await withTimeout(inFlight, 5000, "the in-flight response")).toEqual([200, "finished after stop"]);
    await withTimeout(stopped, 5000, "stop() to resolve");
    expect(server.pendingRequests).toBe(0);
  });

  it("graceful: idle keep-alive connections are closed", async () => {
    const server = track(start({ fetch: () => new Response("hi") }));
    const conn = await RawConnection.open(server.port);
    try {
      const response = await conn.request("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      expect(response).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nhi$/);
      expect(conn.isClosed).toBe(false);
      await withTimeout(server.stop(), 5000, "stop()");
      await withTimeout(conn.closed, 5000, "the idle keep-alive connection to close");
    } finally {
      conn.destroy();
    }
  });

  it("graceful: the in-flight request's connection is closed after its response", async () => {
    const hold = gate();
    const server = track(
      start({
        async fetch() {
          await hold.promise;
          return new Response("last");
        },
      }),
    );
    const conn = await RawConnection.open(server.port);
    try {
      conn.socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      await waitFor(() => server.pendingRequests === 1, 5000, "the request to be in flight");
      const stopped = server.stop();
      hold.open();
      const response = await conn.readResponse();
      expect(response).toMatch(/\r\n\r\nlast$/);
      await withTimeout(conn.closed, 5000, "the connection to close after the last response");
      await withTimeout(stopped, 5000, "stop()");
    } finally {
      conn.destroy();
    }
  });

  it("resolves at once with nothing in flight, and again when called twice", async () => {
    const server = track(start({ fetch: () => new Response("x") }));
    await withTimeout(server.stop(), 5000, "stop()");
    await withTimeout(server.stop(), 5000, "second stop()");
    expect(await connectionRefused(server.port)).toBe(true);
  });

  it("stop(true) cuts in-flight requests: the client sees an error, req.signal aborts", async () => {
    const aborted = gate<unknown>();
    const server = track(
      start({
        fetch(req: Request) {
          req.signal.addEventListener("abort", () => aborted.open(req.signal.reason));
          return new Promise(() => {});
        },
      }),
    );
    const client = fetch(url(server)).then(
      () => "answered",
      () => "failed",
    );
    await waitFor(() => server.pendingRequests === 1, 5000, "the request to be in flight");
    await withTimeout(server.stop(true), 5000, "stop(true)");
    expect(await withTimeout(client, 5000, "the client to fail")).toBe("failed");
    await withTimeout(aborted.promise, 5000, "req.signal to abort");
    expect(server.pendingRequests).toBe(0);
    expect(await connectionRefused(server.port)).toBe(true);
  });

  it("stop(true) while a graceful stop waits: both resolve, the in-flight request is cut", async () => {
    const server = track(start({ fetch: () => new Promise(() => {}) }));
    const client = fetch(url(server)).then(
      () => "answered",
      () => "failed",
    );
    await waitFor(() => server.pendingRequests === 1, 5000, "the request to be in flight");
    const graceful = server.stop();
    expect(await settled(graceful)).toBe(false);
    const forced = server.stop(true);
    await withTimeout(Promise.all([graceful, forced]), 5000, "both stops");
    expect(await withTimeout(client, 5000, "the client")).toBe("failed");
  });

  it("a request's body stream handler still reading when stop(true) runs gets an error, not a hang", async () => {
    const result = gate<string>();
    const server = track(
      start({
        async fetch(req: Request) {
          try {
            await req.text();
            result.open("read");
          } catch (err) {
            result.open(`rejected: ${(err as Error).name}`);
          }
          return new Response("x");
        },
      }),
    );
    const conn = await RawConnection.open(server.port);
    try {
      conn.socket.write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial");
      await waitFor(() => server.pendingRequests === 1, 5000, "the upload to start");
      await withTimeout(server.stop(true), 5000, "stop(true)");
      expect(await withTimeout(result.promise, 5000, "req.text() to settle")).toMatch(/^rejected/);
    } finally {
      conn.destroy();
    }
  });
});

describe("reload()", () => {
  it("new requests get the new fetch; in-flight ones keep the old", async () => {
    const hold = gate();
    const server = track(
      start({
        async fetch() {
          await hold.promise;
          return new Response("v1");
        },
      }),
    );
    const old = fetch(url(server)).then((r) => r.text());
    await waitFor(() => server.pendingRequests === 1, 5000, "the v1 request");
    server.reload({ fetch: () => new Response("v2") });
    expect(await withTimeout(fetch(url(server)).then((r) => r.text()), 5000, "a v2 request")).toBe("v2");
    hold.open();
    expect(await withTimeout(old, 5000, "the v1 response")).toBe("v1");
  });

  it("swaps the error handler, and keeps fetch when only error is given", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const server = track(
      start({
        fetch() {
          throw new Error("boom");
        },
        error: () => new Response("old error", { status: 500 }),
      }),
    );
    expect(await (await fetch(url(server))).text()).toBe("old error");
    server.reload({ error: (err: unknown) => new Response(`new error: ${(err as Error).message}`, { status: 503 }) });
    const res = await fetch(url(server));
    expect(res.status).toBe(503);
    expect(await res.text()).toBe("new error: boom");
  });

  it("validates what it is given", () => {
    const server = track(start({ fetch: () => new Response("x") }));
    expect(() => server.reload({ fetch: 1 } as never)).toThrow(expect.objectContaining({ code: "UWSERVE_ERR_INVALID_OPTION" }));
    expect(() => server.reload({ port: 1 } as never)).toThrow(expect.objectContaining({ code: "UWSERVE_ERR_INVALID_OPTION" }));
    expect(() => server.reload(null as never)).toThrow(TypeError);
  });
});

describe("server.fetch()", () => {
  it("runs the handler without the network, from a string path or a Request", async () => {
    const seen: string[] = [];
    const server = track(
      start({
        fetch(req: Request, srv: Server) {
          seen.push(req.url);
          return new Response(`${req.method} ${new URL(req.url).pathname} ${srv === server}`);
        },
      }),
    );
    const pending = server.pendingRequests;
    const a = await server.fetch("/from-string");
    expect(await a.text()).toBe("GET /from-string true");
    expect(seen[0]).toBe(`http://127.0.0.1:${server.port}/from-string`);
    const b = await server.fetch(new Request("http://example.test/req", { method: "POST", body: "x" }));
    expect(await b.text()).toBe("POST /req true");
    const c = await server.fetch(`http://127.0.0.1:${server.port}/absolute`);
    expect(await c.text()).toBe("GET /absolute true");
    expect(server.pendingRequests).toBe(pending);
  });

  it("works for a Deno-style handler too", async () => {
    const server = track(serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => new Response(`deno ${new URL(req.url).pathname}`)));
    expect(await (await server.fetch("/x")).text()).toBe("deno /x");
  });

  it("goes through the error handler when the handler throws", async () => {
    const server = track(
      start({
        fetch() {
          throw new Error("inside");
        },
        error: (err: Error) => new Response(`handled ${err.message}`, { status: 418 }),
      }),
    );
    const res = await server.fetch("/");
    expect(res.status).toBe(418);
    expect(await res.text()).toBe("handled inside");
  });

  it("answers 500 without an error handler, also for a non-Response result", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const server = track(
      start({
        fetch(req: Request) {
          if (req.url.endsWith("/throw")) throw new Error("secret detail");
          return "not a response" as never;
        },
      }),
    );
    for (const path of ["/throw", "/string"]) {
      const res = await server.fetch(path);
      expect(res.status).toBe(500);
      expect(await res.text()).not.toContain("secret detail");
    }
    expect(errors).toHaveBeenCalled();
  });

  it("works after the server stopped (it never touches the network)", async () => {
    const server = track(start({ fetch: () => new Response("still") }));
    await server.stop();
    expect(await (await server.fetch("/")).text()).toBe("still");
  });
});

describe("requestIP()", () => {
  it("gives 127.0.0.1 / IPv4 for a loopback client, and null once the response finished", async () => {
    let saved: Request | null = null;
    let ip: unknown;
    const server = track(
      start({
        fetch(req: Request, srv: Server) {
          saved = req;
          ip = srv.requestIP(req);
          return new Response("ip");
        },
      }),
    );
    await (await fetch(url(server))).text();
    expect(ip).toMatchObject({ address: "127.0.0.1", family: "IPv4" });
    expect(typeof (ip as { port: number }).port).toBe("number");
    await waitFor(() => server.pendingRequests === 0, 5000, "the request to finish");
    expect(server.requestIP(saved!)).toBeNull();
  });

  it("is null for a Request the server didn't receive", () => {
    const server = track(start({ fetch: () => new Response("x") }));
    expect(server.requestIP(new Request("http://localhost/"))).toBeNull();
  });

  it("works after an await in the handler", async () => {
    let ip: unknown;
    const server = track(
      start({
        async fetch(req: Request, srv: Server) {
          await sleep(10);
          ip = srv.requestIP(req);
          return new Response("x");
        },
      }),
    );
    await (await fetch(url(server))).text();
    expect(ip).toMatchObject({ address: "127.0.0.1", family: "IPv4" });
  });
});

describe("timeout()", () => {
  it("timeout(req, 1) aborts a request whose handler never answers: connection closes, signal aborts", async () => {
    const aborted = gate();
    const server = track(
      start({
        fetch(req: Request, srv: Server) {
          srv.timeout(req, 1);
          req.signal.addEventListener("abort", () => aborted.open());
          return new Promise(() => {});
        },
      }),
    );
    const conn = await RawConnection.open(server.port);
    const began = Date.now();
    try {
      conn.socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      await withTimeout(conn.closed, 5000, "the timed-out connection to close");
      const elapsed = Date.now() - began;
      expect(elapsed).toBeGreaterThanOrEqual(900);
      expect(elapsed).toBeLessThan(4000);
      await withTimeout(aborted.promise, 2000, "req.signal to abort");
      await waitFor(() => server.pendingRequests === 0, 2000, "pendingRequests 0");
    } finally {
      conn.destroy();
    }
  });

  it("timeout(req, 0) disables an earlier timeout", async () => {
    const server = track(
      start({
        async fetch(req: Request, srv: Server) {
          srv.timeout(req, 1);
          srv.timeout(req, 0);
          await sleep(1600);
          return new Response("survived");
        },
      }),
    );
    const res = await withTimeout(fetch(url(server)), 5000, "the slow response");
    expect(await res.text()).toBe("survived");
  });

  it("a request that answers in time is not affected", async () => {
    const server = track(
      start({
        fetch(req: Request, srv: Server) {
          srv.timeout(req, 1);
          return new Response("fast");
        },
      }),
    );
    const conn = await RawConnection.open(server.port);
    try {
      expect(await conn.request("GET / HTTP/1.1\r\nHost: x\r\n\r\n")).toMatch(/fast$/);
      await sleep(1500);
      // Still open and usable: the expired deadline belonged to a finished request.
      expect(await conn.request("GET / HTTP/1.1\r\nHost: x\r\n\r\n")).toMatch(/fast$/);
    } finally {
      conn.destroy();
    }
  });

  it("rejects bad arguments", () => {
    const server = track(start({ fetch: () => new Response("x") }));
    expect(() => server.timeout(new Request("http://x/"), 1)).toThrow(expect.objectContaining({ code: "UWSERVE_ERR_NOT_A_SERVER_REQUEST" }));
    expect(() => server.timeout(new Request("http://x/"), -1)).toThrow(TypeError);
  });
});

describe("ref() / unref()", () => {
  const noAddon = !existsSync(NATIVE_ADDON);
  if (noAddon) {
    it.skip(`needs the native addon ${NATIVE_ADDON} (not built): run node scripts/build-native.mjs`, () => {});
    return;
  }

  const script = (body: string) => `
import { serve } from ${JSON.stringify(DIST_INDEX_URL)};
const server = serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("x") });
console.log(server.port);
${body}`;

  it("an unref'd server lets the process exit by itself", async () => {
    const result = await runNode(script("server.unref();"), { ms: 8000 });
    expect(result.timedOut, result.stderr).toBe(false);
    expect(result.code).toBe(0);
    expect(Number(result.stdout.trim())).toBeGreaterThan(0);
  });

  it("a server keeps the process alive by default", async () => {
    const result = await runNode(script(""), { ms: 1500 });
    expect(result.timedOut).toBe(true);
  });

  it("ref() after unref() keeps it alive again", async () => {
    const result = await runNode(script("server.unref(); server.ref();"), { ms: 1500 });
    expect(result.timedOut).toBe(true);
  });

  it("unref() then ref() in-process keeps serving", async () => {
    const server = track(start({ fetch: () => new Response("still serving") }));
    server.unref();
    server.ref();
    expect(await (await fetch(url(server))).text()).toBe("still serving");
  });
});

describe("dispose", () => {
  it("await using stops the server at the end of the block", async () => {
    let port = 0;
    {
      await using server = serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("scoped") });
      port = server.port;
      expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe("scoped");
    }
    expect(await connectionRefused(port)).toBe(true);
  });

  it("[Symbol.asyncDispose]() returns a promise that resolves once stopped", async () => {
    const server = track(start({ fetch: () => new Response("x") }));
    await withTimeout(server[Symbol.asyncDispose](), 5000, "asyncDispose");
    expect(await connectionRefused(server.port)).toBe(true);
  });

  it("[Symbol.dispose]() stops it too (using)", async () => {
    const server = track(start({ fetch: () => new Response("x") }));
    server[Symbol.dispose]();
    await withTimeout(server.finished, 5000, "finished");
    expect(await connectionRefused(server.port)).toBe(true);
  });
});

describe("Deno members", () => {
  it("addr is { transport, hostname, port }", () => {
    const server = track(serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, () => new Response("x")));
    expect(server.addr).toEqual({ transport: "tcp", hostname: "127.0.0.1", port: server.port });
  });

  it("shutdown() is graceful and finished settles after it", async () => {
    const hold = gate();
    const server = track(
      serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async () => {
        await hold.promise;
        return new Response("graceful");
      }),
    );
    const client = fetch(url(server)).then((r) => r.text());
    await waitFor(() => server.pendingRequests === 1, 5000, "in flight");
    const shutdown = server.shutdown();
    expect(await settled(server.finished)).toBe(false);
    hold.open();
    expect(await withTimeout(client, 5000, "the in-flight response")).toBe("graceful");
    await withTimeout(Promise.all([shutdown, server.finished]), 5000, "shutdown and finished");
  });

  it("finished is pending while the server runs", async () => {
    const server = track(serve({ port: 0, onListen() {} }, () => new Response("x")));
    expect(await settled(server.finished)).toBe(false);
  });

  it("handler info.remoteAddr is the client's address", async () => {
    let remote: unknown;
    const server = track(
      serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (_req, info) => {
        remote = info.remoteAddr;
        return new Response("x");
      }),
    );
    await (await fetch(url(server))).text();
    expect(remote).toMatchObject({ transport: "tcp", hostname: "127.0.0.1" });
    expect(typeof (remote as { port: number }).port).toBe("number");
  });

  it("info.completed resolves once the response has been sent", async () => {
    const completed = gate<{ promise: Promise<void> }>();
    const server = track(
      serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (_req, info) => {
        completed.open({ promise: info.completed });
        return new Response("done");
      }),
    );
    expect(await (await fetch(url(server))).text()).toBe("done");
    const { promise } = await completed.promise;
    await withTimeout(promise, 5000, "info.completed");
  });

  it("info.completed rejects when the client goes away first", async () => {
    const completed = gate<{ promise: Promise<void> }>();
    const server = track(
      serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (_req, info) => {
        completed.open({ promise: info.completed });
        return new Promise(() => {});
      }),
    );
    const controller = new AbortController();
    const client = fetch(url(server), { signal: controller.signal }).catch(() => {});
    const { promise } = await withTimeout(completed.promise, 5000, "the handler");
    controller.abort();
    await client;
    await expect(withTimeout(promise, 5000, "info.completed")).rejects.toThrow();
  });
});
