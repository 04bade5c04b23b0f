/**
 * Clients that hang up: mid-upload (the handler's body read rejects, nothing escapes as an
 * unhandled rejection), mid-download of an endless stream (its `cancel()` runs), and while the
 * handler waits (`req.signal` aborts). Every case ends with `pendingRequests` back at 0.
 */
import net from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Server } from "../dist/index.js";
import { start, waitFor, withTimeout } from "./helpers/server.js";

let server: Server | null = null;
let unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => {
  unhandled.push(reason);
};

beforeEach(() => {
  unhandled = [];
  process.on("unhandledRejection", onUnhandled);
});
afterEach(async () => {
  process.off("unhandledRejection", onUnhandled);
  await server?.stop(true);
  server = null;
});

/** A deferred value the handler can settle and the test can await with a deadline. */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Opens a connection, writes `data`, and returns the socket (already connected). */
async function connectAndWrite(port: number, data: string | Buffer): Promise<net.Socket> {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => {});
  await withTimeout(new Promise((r) => socket.once("connect", r)), 5000, "the connection");
  socket.write(data);
  return socket;
}

/** Lets pending promise reactions and timers run, so late unhandled rejections surface. */
const settle = () => new Promise((r) => setTimeout(r, 100));

describe("the client disconnects mid-upload", () => {
  for (const how of ["text()", "arrayBuffer()", "json()", "body reader", "formData()"] as const) {
    it(`a handler awaiting ${how} gets a rejection; no unhandled rejection; pendingRequests → 0`, async () => {
      const entered = deferred<void>();
      const outcome = deferred<unknown>();
      server = start({
        async fetch(req: Request) {
          entered.resolve();
          try {
            if (how === "text()") await req.text();
            else if (how === "arrayBuffer()") await req.arrayBuffer();
            else if (how === "json()") await req.json();
            else if (how === "formData()") await req.formData();
            else {
              const reader = req.body!.getReader();
              for (;;) if ((await reader.read()).done) break;
            }
            outcome.resolve("resolved");
          } catch (err) {
            outcome.resolve(err);
            throw err; // uwserve must swallow this: the client is gone.
          }
          return new Response("unreachable");
        },
      });
      const s = server;
      const socket = await connectAndWrite(
        s.port,
        "POST /up HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000000\r\n\r\n" + "a".repeat(4096),
      );
      await withTimeout(entered.promise, 5000, "the handler to start");
      expect(s.pendingRequests).toBe(1);
      socket.destroy();
      const result = await withTimeout(outcome.promise, 5000, "the body read to settle");
      expect(result).toBeInstanceOf(Error);
      await waitFor(() => s.pendingRequests === 0, 5000, "pendingRequests to return to 0");
      await settle();
      expect(unhandled).toEqual([]);
    });
  }

  it("a chunked upload cut mid-chunk: same outcome", async () => {
    const outcome = deferred<unknown>();
    server = start({
      async fetch(req: Request) {
        try {
          await req.text();
          outcome.resolve("resolved");
        } catch (err) {
          outcome.resolve(err);
        }
        return new Response("late");
      },
    });
    const s = server;
    const socket = await connectAndWrite(s.port, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n400\r\nabc");
    await new Promise((r) => setTimeout(r, 50));
    socket.destroy();
    expect(await withTimeout(outcome.promise, 5000, "the read to settle")).toBeInstanceOf(Error);
    await waitFor(() => s.pendingRequests === 0, 5000, "pendingRequests to return to 0");
    await settle();
    expect(unhandled).toEqual([]);
  });

  it("a handler that never reads the body and answers after the hang-up: nothing crashes", async () => {
    const answered = deferred<void>();
    server = start({
      async fetch() {
        await new Promise((r) => setTimeout(r, 100));
        answered.resolve();
        return new Response("too late");
      },
    });
    const s = server;
    const socket = await connectAndWrite(s.port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc");
    await new Promise((r) => setTimeout(r, 20));
    socket.destroy();
    await withTimeout(answered.promise, 5000, "the handler to answer");
    await waitFor(() => s.pendingRequests === 0, 5000, "pendingRequests to return to 0");
    await settle();
    expect(unhandled).toEqual([]);
  });
});

describe("the client disconnects mid-download", () => {
  it("an endless ReadableStream (Deno's setInterval example): cancel() runs, the interval is cleared", async () => {
    const cancelled = deferred<unknown>();
    let ticks = 0;
    let timer: ReturnType<typeof setInterval> | undefined;
    server = start({
      fetch() {
        const body = new ReadableStream<string>({
          start(controller) {
            timer = setInterval(() => {
              ticks++;
              controller.enqueue("Hello, World!\n");
            }, 5);
          },
          cancel(reason) {
            clearInterval(timer);
            cancelled.resolve(reason);
          },
        });
        return new Response(body.pipeThrough(new TextEncoderStream()), {
          headers: { "content-type": "text/plain; charset=utf-8" },
        });
      },
    });
    const s = server;
    const socket = await connectAndWrite(s.port, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    let received = "";
    socket.setEncoding("latin1");
    await withTimeout(
      new Promise<void>((resolve) => {
        socket.on("data", (d: string) => {
          received += d;
          if (received.split("Hello, World!").length > 5) resolve();
        });
      }),
      5000,
      "a few chunks of the stream",
    );
    expect(received).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(received.toLowerCase()).toContain("transfer-encoding: chunked");
    socket.destroy();
    await withTimeout(cancelled.promise, 5000, "the stream's cancel()");
    await waitFor(() => s.pendingRequests === 0, 5000, "pendingRequests to return to 0");
    const after = ticks;
    await new Promise((r) => setTimeout(r, 50));
    expect(ticks).toBe(after); // the interval really stopped
    await settle();
    expect(unhandled).toEqual([]);
  });

  it("a pull-based endless stream under backpressure: pulls stop while the client reads nothing, and cancel() runs when it leaves", async () => {
    const cancelled = deferred<void>();
    let pulled = 0;
    server = start({
      fetch() {
        return new Response(
          new ReadableStream<Uint8Array>({
            pull(controller) {
              pulled += 64 * 1024;
              controller.enqueue(new Uint8Array(64 * 1024).fill(120));
            },
            cancel() {
              cancelled.resolve();
            },
          }),
        );
      },
    });
    const s = server;
    // Read nothing, so the server fills the socket and waits on backpressure; then hang up.
    const socket = await connectAndWrite(s.port, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
    socket.pause();
    await new Promise((r) => setTimeout(r, 200));
    // The socket buffers are full: the source is no longer pulled, and what it made is bounded
    // (the kernel's buffers on both sides plus what the engine holds, about 1 MiB).
    const stalled = pulled;
    await new Promise((r) => setTimeout(r, 150));
    expect(pulled).toBe(stalled);
    expect(pulled).toBeLessThan(32 * 1024 * 1024);
    socket.destroy();
    await withTimeout(cancelled.promise, 5000, "the stream's cancel()");
    await waitFor(() => s.pendingRequests === 0, 5000, "pendingRequests to return to 0");
    await settle();
    expect(unhandled).toEqual([]);
  });

  it("an endless async generator body: its finally block runs", async () => {
    const finished = deferred<void>();
    server = start({
      fetch() {
        async function* forever() {
          try {
            for (;;) {
              yield "tick\n";
              await new Promise((r) => setTimeout(r, 5));
            }
          } finally {
            finished.resolve();
          }
        }
        return new Response(forever() as unknown as BodyInit);
      },
    });
    const s = server;
    const socket = await connectAndWrite(s.port, "GET /gen HTTP/1.1\r\nHost: x\r\n\r\n");
    await withTimeout(new Promise((r) => socket.once("data", r)), 5000, "the first chunk");
    socket.destroy();
    await withTimeout(finished.promise, 5000, "the generator's finally");
    await waitFor(() => s.pendingRequests === 0, 5000, "pendingRequests to return to 0");
  });
});

describe("req.signal", () => {
  it("aborts when the client hangs up while the handler waits", async () => {
    const entered = deferred<AbortSignal>();
    const abortedWith = deferred<unknown>();
    server = start({
      async fetch(req: Request) {
        req.signal.addEventListener("abort", () => abortedWith.resolve(req.signal.reason));
        entered.resolve(req.signal);
        await new Promise((r) => setTimeout(r, 2000));
        return new Response("too late");
      },
    });
    const s = server;
    const socket = await connectAndWrite(s.port, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n");
    const signal = await withTimeout(entered.promise, 5000, "the handler to start");
    expect(signal.aborted).toBe(false);
    socket.destroy();
    const reason = await withTimeout(abortedWith.promise, 5000, "the abort event");
    expect(signal.aborted).toBe(true);
    // H20: the reason is a string, not an object that could keep things alive.
    expect(typeof reason).toBe("string");
    await waitFor(() => s.pendingRequests === 0, 5000, "pendingRequests to return to 0");
  });

  it("a signal first read after the hang-up is already aborted", async () => {
    const checked = deferred<boolean>();
    server = start({
      async fetch(req: Request) {
        await new Promise((r) => setTimeout(r, 150));
        checked.resolve(req.signal.aborted);
        return new Response("late");
      },
    });
    const socket = await connectAndWrite(server.port, "GET /late HTTP/1.1\r\nHost: x\r\n\r\n");
    await new Promise((r) => setTimeout(r, 30));
    socket.destroy();
    expect(await withTimeout(checked.promise, 5000, "the handler's check")).toBe(true);
  });

  it("does not abort when the response completes normally (H20)", async () => {
    let signal: AbortSignal | null = null;
    server = start({
      fetch(req: Request) {
        signal = req.signal;
        return new Response("ok");
      },
    });
    const res = await fetch(`http://127.0.0.1:${server.port}/`);
    expect(await res.text()).toBe("ok");
    await new Promise((r) => setTimeout(r, 50));
    expect(signal!.aborted).toBe(false);
  });

  it("fetch() passed req.signal is cancelled with the client (a proxied upstream call stops)", async () => {
    const upstreamCancelled = deferred<void>();
    const upstream = start({
      fetch() {
        return new Response(
          new ReadableStream({
            pull: async (c) => {
              await new Promise((r) => setTimeout(r, 10));
              c.enqueue(new TextEncoder().encode("u"));
            },
            cancel: () => upstreamCancelled.resolve(),
          }),
        );
      },
    });
    try {
      server = start({
        fetch(req: Request) {
          return fetch(`http://127.0.0.1:${upstream.port}/`, { signal: req.signal });
        },
      });
      const s = server;
      const socket = await connectAndWrite(s.port, "GET /proxy HTTP/1.1\r\nHost: x\r\n\r\n");
      await withTimeout(new Promise((r) => socket.once("data", r)), 5000, "the proxied response to start");
      socket.destroy();
      await withTimeout(upstreamCancelled.promise, 5000, "the upstream stream's cancel()");
      await waitFor(() => s.pendingRequests === 0, 5000, "pendingRequests to return to 0");
      await settle();
      expect(unhandled).toEqual([]);
    } finally {
      await upstream.stop(true);
    }
  });
});
