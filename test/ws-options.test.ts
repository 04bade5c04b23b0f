// websocket options: validation, maxPayloadLength, perMessageDeflate, sendPings/idleTimeout, publishToSelf, messageConcurrency, maxPendingMessages.
import { describe, expect, it } from "vitest";
import { sleep } from "./helpers/client.js";
import { ENGINE } from "./helpers/core.js";
import { start, trackServers, withTimeout } from "./helpers/server.js";
import { clientFrame, closeAll, connectWs, deferred, OP, RawWs, serveWs, type WsClient } from "./helpers/ws.js";

const track = trackServers();

/** serve() with this websocket option; returns the error it threw, or null (stopping the server). */
async function serveError(websocket: unknown): Promise<Error | null> {
  try {
    const server = start({ fetch: () => new Response("x"), websocket });
    await server.stop(true);
    return null;
  } catch (e) {
    return e as Error;
  }
}

describe("validation", () => {
  for (const bad of [3, 1, 7, 1000, 961, -1, 8.5, Number.NaN, "10"]) {
    it(`idleTimeout ${JSON.stringify(bad)} makes serve() throw an error naming idleTimeout (the core would terminate the process)`, async () => {
      const error = await serveError({ message() {}, idleTimeout: bad });
      expect(error).toBeInstanceOf(Error);
      expect(error!.message).toMatch(/idleTimeout/);
    });
  }

  for (const good of [0, 8, 120, 960]) {
    it(`idleTimeout ${good} is accepted`, async () => {
      expect(await serveError({ message() {}, idleTimeout: good })).toBeNull();
    });
  }

  for (const [name, websocket, pattern] of [
    ["websocket not an object", "yes", /websocket/],
    ["message not a function", { message: 1 }, /message/],
    ["open not a function", { message() {}, open: "x" }, /open/],
    ["maxPayloadLength 0", { message() {}, maxPayloadLength: 0 }, /maxPayloadLength/],
    ["maxPayloadLength negative", { message() {}, maxPayloadLength: -5 }, /maxPayloadLength/],
    ["maxPayloadLength a string", { message() {}, maxPayloadLength: "1mb" }, /maxPayloadLength/],
    ["backpressureLimit negative", { message() {}, backpressureLimit: -1 }, /backpressureLimit/],
    ["sendPings not a boolean", { message() {}, sendPings: "yes" }, /sendPings/],
    ["perMessageDeflate a string", { message() {}, perMessageDeflate: "on" }, /perMessageDeflate/],
    ["perMessageDeflate compress unknown", { message() {}, perMessageDeflate: { compress: "9KB" } }, /perMessageDeflate/],
  ] as Array<[string, unknown, RegExp]>) {
    it(`${name}: serve() throws naming the option`, async () => {
      const error = await serveError(websocket);
      expect(error).toBeInstanceOf(Error);
      expect(error!.message).toMatch(pattern);
    });
  }

  it("a websocket without message() is accepted (Bun requires it in types only; open/close-only servers exist)", async () => {
    // Not asserting either way would hide a crash: accepted, or refused with a clear error.
    const error = await serveError({ open() {} });
    if (error) expect(error.message).toMatch(/message/);
  });
});

describe("maxPayloadLength", () => {
  it("a message at the limit is delivered; one byte over closes with 1009 (the server's close handler sees 1009)", async () => {
    const closed = deferred<[number, string]>();
    const sizes: number[] = [];
    const server = track(
      serveWs({
        maxPayloadLength: 1024,
        message(ws: any, msg: Buffer) {
          sizes.push(msg.length);
          ws.send(`got ${msg.length}`);
        },
        close: (_ws: any, code: number, reason: string) => closed.resolve([code, reason]),
      }),
    );
    const client = await connectWs(server);
    await client.send(Buffer.alloc(1024, 1), { binary: true });
    expect(await client.nextText()).toBe("got 1024");
    client.ws.send(Buffer.alloc(1025, 2));
    const [code] = await withTimeout(closed.promise, 5000, "close() after the oversized message");
    expect(code).toBe(1009);
    expect(sizes).toEqual([1024]);
    // RFC 6455 §7.4.1: the client gets a close frame with 1009 before the connection closes.
    const clientSide = await client.waitClose();
    expect(clientSide.code).toBe(1009);
    expect(clientSide.reason).toMatch(/Message too big/);
  });

  it("the limit applies to the whole message, not to each fragment: a 1009 close frame, the message never delivered", async () => {
    const closed = deferred<number>();
    const server = track(
      serveWs({ maxPayloadLength: 100, message(ws: any) { ws.send("delivered"); }, close: (_ws: any, code: number) => closed.resolve(code) }),
    );
    const raw = await RawWs.open(server.port);
    try {
      raw.write(Buffer.concat([clientFrame(OP.binary, Buffer.alloc(60), false), clientFrame(OP.continuation, Buffer.alloc(60), true)]));
      expect(await withTimeout(closed.promise, 5000, "close()")).toBe(1009);
      await raw.until(() => raw.closeFrame !== null, 5000, "the close frame");
      expect(raw.closeFrame!.code).toBe(1009);
      expect(raw.dataFrames.length).toBe(0);
    } finally {
      raw.destroy();
    }
  });

  it(`a message far past the limit (over the engine's own ceiling, twice the limit): the engine cuts it, the close handler sees 1009 (${ENGINE})`, async () => {
    const closed = deferred<number>();
    const sizes: number[] = [];
    const server = track(
      serveWs({ maxPayloadLength: 1024, message: (_ws: any, m: Buffer) => sizes.push(m.length), close: (_ws: any, code: number) => closed.resolve(code) }),
    );
    const client = await connectWs(server);
    client.ws.send(Buffer.alloc(200_000, 3));
    expect(await withTimeout(closed.promise, 5000, "close()")).toBe(1009);
    expect(sizes).toEqual([]);
    // No close frame from the uWS core here: the client sees the cut (1006); `ws` sends a bare 1009.
    expect((await client.waitClose()).code).toBe(ENGINE === "node" ? 1009 : 1006);
  });
});

describe("perMessageDeflate", () => {
  it("off by default: a client offering permessage-deflate gets no extension", async () => {
    const server = track(serveWs({ message(ws: any, m: string) { ws.send(m); } }));
    const client = await connectWs(server, "/", { perMessageDeflate: true });
    try {
      expect(client.extensions).toBe("");
      await client.send("plain");
      expect(await client.nextText()).toBe("plain");
    } finally {
      client.terminate();
    }
  });

  it("true negotiates permessage-deflate and big text/binary messages round-trip both ways", async () => {
    const received: number[] = [];
    const server = track(
      serveWs({
        perMessageDeflate: true,
        message(ws: any, m: string | Buffer) {
          received.push(m.length);
          ws.send(m, true);
        },
      }),
    );
    const client = await connectWs(server, "/", { perMessageDeflate: true });
    const text = "compress me please ".repeat(20_000);
    const bin = Buffer.alloc(300_000);
    for (let i = 0; i < bin.length; i++) bin[i] = i % 7;
    try {
      expect(client.extensions).toContain("permessage-deflate");
      await client.send(text, { compress: true });
      await client.send(bin, { binary: true, compress: true });
      await client.send("tiny", { compress: true });
      expect(await client.nextText(10_000)).toBe(text);
      expect((await client.nextBinary(10_000)).equals(bin)).toBe(true);
      expect(await client.nextText()).toBe("tiny");
      expect(received).toEqual([text.length, bin.length, 4]);
    } finally {
      client.terminate();
    }
  });

  it("a compressed message that inflates past maxPayloadLength closes with 1009 (no deflate bomb)", async () => {
    const closed = deferred<number>();
    const sizes: number[] = [];
    const server = track(
      serveWs({
        perMessageDeflate: true,
        maxPayloadLength: 4096,
        message: (_ws: any, m: string) => sizes.push(m.length),
        close: (_ws: any, code: number) => closed.resolve(code),
      }),
    );
    const client = await connectWs(server, "/", { perMessageDeflate: { threshold: 0 } });
    expect(client.extensions).toContain("permessage-deflate");
    await client.send("a".repeat(1000), { compress: true });
    await sleep(50);
    client.ws.send("a".repeat(1_000_000), { compress: true });
    expect(await withTimeout(closed.promise, 5000, "close()")).toBe(1009);
    expect(sizes).toEqual([1000]);
  });

  it("send(data, true) really compresses (RSV1 set, far fewer bytes on the wire); send(data) without the flag does not", async () => {
    const server = track(
      serveWs({
        perMessageDeflate: true,
        open(ws: any) {
          ws.send("a".repeat(100_000), true);
          ws.send("b".repeat(1000), false);
        },
        message() {},
      }),
    );
    const raw = await RawWs.open(server.port, "/", { headers: { "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits" } });
    try {
      expect(raw.head.toLowerCase()).toContain("permessage-deflate");
      await raw.until(() => raw.dataFrames.length >= 2, 5000, "two frames");
      const [first, second] = raw.dataFrames;
      expect(first!.rsv1).toBe(true);
      expect(first!.payload.length).toBeLessThan(5000);
      expect(second!.rsv1).toBe(false);
      expect(second!.payload.toString()).toBe("b".repeat(1000));
    } finally {
      raw.destroy();
    }
  });
});

describe("sendPings and idleTimeout", () => {
  it("sendPings (default true) pings an idle client before idleTimeout; sendPings false lets the idle socket time out", async () => {
    const ponged = deferred<void>();
    const closedNoPings = deferred<number>();
    const pinging = track(serveWs({ idleTimeout: 8, message() {}, pong: () => ponged.resolve() }));
    const silent = track(serveWs({ idleTimeout: 8, sendPings: false, message() {}, close: (_ws: any, code: number) => closedNoPings.resolve(code) }));
    const a = await connectWs(pinging);
    const b = await connectWs(silent);
    try {
      const started = Date.now();
      // The client auto-pongs; the server's pong() sees it.
      await withTimeout(ponged.promise, 15_000, "a server ping answered by the client");
      expect(a.pings.length).toBeGreaterThanOrEqual(1);
      const code = await withTimeout(closedNoPings.promise, 15_000, "the idle timeout without pings");
      expect(b.pings.length).toBe(0);
      expect(Date.now() - started).toBeGreaterThanOrEqual(6_000);
      expect(typeof code).toBe("number");
      await b.waitClose(5000);
      // The pinged, ponging client is still open.
      expect(a.closeInfo).toBeNull();
    } finally {
      closeAll([a, b]);
    }
  }, 40_000);
});

describe("publishToSelf", () => {
  async function room(publishToSelf: boolean | undefined): Promise<{ clients: WsClient[] }> {
    const server: any = track(
      serveWs({
        ...(publishToSelf === undefined ? {} : { publishToSelf }),
        open(ws: any) {
          ws.subscribe("room");
          ws.send("joined");
        },
        message(ws: any, msg: string) {
          if (msg.startsWith("ws:")) ws.publish("room", `${ws.data.name}:${msg.slice(3)}`);
          else server.publish("room", `server:${msg}`);
        },
      }, { data: (req: Request) => ({ name: new URL(req.url).searchParams.get("name") }) }),
    );
    const clients = [await connectWs(server, "/?name=a"), await connectWs(server, "/?name=b"), await connectWs(server, "/?name=c")];
    for (const c of clients) expect(await c.nextText()).toBe("joined");
    return { clients };
  }

  for (const setting of [false, undefined]) {
    it(`publishToSelf ${setting === undefined ? "default (false)" : "false"}: ws.publish skips the sender, server.publish reaches everyone`, async () => {
      const { clients } = await room(setting);
      const [a, b, c] = clients as [WsClient, WsClient, WsClient];
      try {
        await a.send("ws:hello");
        expect(await b.nextText()).toBe("a:hello");
        expect(await c.nextText()).toBe("a:hello");
        await a.send("all");
        for (const x of [a, b, c]) expect(await x.nextText()).toBe("server:all");
        // a never saw its own ws.publish: its next message after "joined" was the server's.
        expect(a.messages.map((m) => m.data)).toEqual(["joined", "server:all"]);
      } finally {
        closeAll(clients);
      }
    });
  }

  it("publishToSelf true: the sender gets its own message too", async () => {
    const { clients } = await room(true);
    const [a, b, c] = clients as [WsClient, WsClient, WsClient];
    try {
      await a.send("ws:me-too");
      for (const x of [a, b, c]) expect(await x.nextText()).toBe("a:me-too");
    } finally {
      closeAll(clients);
    }
  });
});

describe("messageConcurrency and maxPendingMessages (uwserve extras)", () => {
  it("default: an async message() runs for each message as it arrives (overlapping)", async () => {
    let running = 0;
    let maxRunning = 0;
    const server = track(
      serveWs({
        async message(ws: any, msg: string) {
          running++;
          maxRunning = Math.max(maxRunning, running);
          await sleep(30);
          running--;
          ws.send(msg);
        },
      }),
    );
    const client = await connectWs(server);
    try {
      for (let i = 0; i < 5; i++) client.ws.send(String(i));
      await client.waitMessages(5);
      expect(maxRunning).toBeGreaterThan(1);
    } finally {
      client.terminate();
    }
  });

  it("messageConcurrency 1: async message() runs one at a time, in order", async () => {
    let running = 0;
    let maxRunning = 0;
    const server = track(
      serveWs({
        messageConcurrency: 1,
        async message(ws: any, msg: string) {
          running++;
          maxRunning = Math.max(maxRunning, running);
          await sleep(Number(msg) % 2 === 0 ? 15 : 1);
          running--;
          ws.send(msg);
        },
      }),
    );
    const client = await connectWs(server);
    try {
      for (let i = 0; i < 12; i++) client.ws.send(String(i));
      await client.waitMessages(12);
      expect(client.messages.map((m) => m.data)).toEqual(Array.from({ length: 12 }, (_, i) => String(i)));
      expect(maxRunning).toBe(1);
    } finally {
      client.terminate();
    }
  });

  for (const concurrency of [undefined, 1]) {
    it(`maxPendingMessages 4${concurrency ? ` with messageConcurrency ${concurrency}` : " (default concurrency)"}: more unsettled message() calls than allowed close the socket with 1008`, async () => {
      const closed = deferred<number>();
      let calls = 0;
      const server = track(
        serveWs({
          maxPendingMessages: 4,
          ...(concurrency ? { messageConcurrency: concurrency } : {}),
          message() {
            calls++;
            return new Promise(() => {}); // never settles
          },
          close: (_ws: any, code: number) => closed.resolve(code),
        }),
      );
      const client = await connectWs(server);
      for (let i = 0; i < 10; i++) client.ws.send(String(i));
      expect(await withTimeout(closed.promise, 5000, "close()")).toBe(1008);
      expect((await client.waitClose()).code).toBe(1008);
      // Default concurrency starts each call (4 pending, the 5th closes); concurrency 1 starts one.
      expect(calls).toBeLessThanOrEqual(concurrency ? 1 : 5);
      expect(calls).toBeGreaterThanOrEqual(concurrency ? 1 : 4);
    });
  }

  it("messageConcurrency 0 or 1.5 makes serve() throw", async () => {
    for (const bad of [0, 1.5, -1]) {
      const error = await serveError({ message() {}, messageConcurrency: bad });
      expect(error?.message).toMatch(/messageConcurrency/);
    }
  });
});
