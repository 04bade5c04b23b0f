// The websocket handlers: open, message (text/binary, buffer lifetime), close codes, ping/pong, async handlers, and errors in every handler.
import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it, vi } from "vitest";
import { sleep } from "./helpers/client.js";
import { ON_NODE_ENGINE } from "./helpers/core.js";
import { fetchFrom, trackServers, waitFor, withTimeout } from "./helpers/server.js";
import { clientFrame, closeAll, connectWs, deferred, OP, RawWs, serveWs } from "./helpers/ws.js";

const track = trackServers();

describe("open", () => {
  it("is called once per connection, with an open socket, before any message", async () => {
    const events: string[] = [];
    const server = track(
      serveWs({
        open(ws: any) {
          events.push(`open:${ws.readyState}`);
        },
        message(ws: any, msg: string) {
          events.push(`message:${msg}`);
          ws.send("ack");
        },
      }),
    );
    const client = await connectWs(server);
    try {
      await client.send("x");
      expect(await client.nextText()).toBe("ack");
      expect(events).toEqual(["open:1", "message:x"]);
    } finally {
      client.terminate();
    }
  });

  it("open can send before the client sends anything", async () => {
    const server = track(serveWs({ open: (ws: any) => ws.send("welcome"), message() {} }));
    const client = await connectWs(server);
    try {
      expect(await client.nextText()).toBe("welcome");
    } finally {
      client.terminate();
    }
  });
});

describe("message", () => {
  it("text arrives as a string (UTF-8 decoded), binary as a Buffer", async () => {
    const got: Array<{ type: string; isBuffer: boolean; value: string }> = [];
    const server = track(
      serveWs({
        message(ws: any, msg: string | Buffer) {
          got.push({ type: typeof msg, isBuffer: Buffer.isBuffer(msg), value: typeof msg === "string" ? msg : msg.toString("hex") });
          ws.send("ok");
        },
      }),
    );
    const client = await connectWs(server);
    try {
      await client.send("héllo wörld ✓ 😀");
      await client.send(Buffer.from([0, 1, 2, 255]), { binary: true });
      await client.send("");
      await client.send(Buffer.alloc(0), { binary: true });
      await client.waitMessages(4);
      expect(got).toEqual([
        { type: "string", isBuffer: false, value: "héllo wörld ✓ 😀" },
        { type: "object", isBuffer: true, value: "000102ff" },
        { type: "string", isBuffer: false, value: "" },
        { type: "object", isBuffer: true, value: "" },
      ]);
    } finally {
      client.terminate();
    }
  });

  it("a binary message's Buffer still holds its bytes after the callback returns and after an await", async () => {
    const kept: Buffer[] = [];
    const afterAwait: string[] = [];
    const views: Array<{ byteOffset: number; bufferLength: number; length: number }> = [];
    const server = track(
      serveWs({
        async message(ws: any, msg: Buffer) {
          kept.push(msg);
          views.push({ byteOffset: msg.byteOffset, bufferLength: msg.buffer.byteLength, length: msg.length });
          const before = msg.toString("hex");
          await sleep(20);
          afterAwait.push(before === msg.toString("hex") ? "same" : `changed ${before} -> ${msg.toString("hex")}`);
          ws.send("done");
        },
      }),
    );
    const client = await connectWs(server);
    const payloads = [Buffer.alloc(64, 0xaa), Buffer.alloc(64, 0xbb), randomBytes(3000), Buffer.alloc(10, 0xcc)];
    try {
      for (const p of payloads) await client.send(p, { binary: true });
      await client.waitMessages(payloads.length);
      expect(afterAwait).toEqual(payloads.map(() => "same"));
      expect(kept.map((b) => b.toString("hex"))).toEqual(payloads.map((b) => b.toString("hex")));
      // Its .buffer is exactly the message (a copy, not a view into a shared slab).
      expect(views).toEqual(payloads.map((p) => ({ byteOffset: 0, bufferLength: p.length, length: p.length })));
    } finally {
      client.terminate();
    }
  });

  it("a 1 MiB binary message and a 1 MiB text message arrive intact", async () => {
    const hashes: string[] = [];
    const server = track(
      serveWs({
        message(ws: any, msg: string | Buffer) {
          hashes.push(createHash("sha256").update(msg).digest("hex"));
          ws.send(typeof msg === "string" ? `t${msg.length}` : `b${msg.length}`);
        },
      }),
    );
    const client = await connectWs(server);
    const bin = randomBytes(1024 * 1024);
    const text = "abcdé".repeat(200_000);
    try {
      await client.send(bin, { binary: true });
      await client.send(text);
      expect(await client.nextText(10_000)).toBe(`b${bin.length}`);
      expect(await client.nextText(10_000)).toBe(`t${text.length}`);
      expect(hashes).toEqual([createHash("sha256").update(bin).digest("hex"), createHash("sha256").update(text).digest("hex")]);
    } finally {
      client.terminate();
    }
  });

  it("a fragmented message (raw frames) arrives as one message", async () => {
    const got: string[] = [];
    const server = track(
      serveWs({
        message(ws: any, msg: string) {
          got.push(msg);
          ws.send("ok");
        },
      }),
    );
    const raw = await RawWs.open(server.port);
    try {
      raw.write(Buffer.concat([clientFrame(OP.text, "hel", false), clientFrame(OP.continuation, "lo ", false), clientFrame(OP.continuation, "there", true)]));
      await raw.until(() => raw.dataFrames.length >= 1, 5000, "the ack");
      expect(got).toEqual(["hello there"]);
    } finally {
      raw.destroy();
    }
  });

  it("messages from one client reach message() in order (sync handler)", async () => {
    const got: string[] = [];
    const server = track(
      serveWs({
        message(ws: any, msg: string) {
          got.push(msg);
          if (msg === "199") ws.send("end");
        },
      }),
    );
    const client = await connectWs(server);
    try {
      for (let i = 0; i < 200; i++) client.ws.send(String(i));
      expect(await client.nextText()).toBe("end");
      expect(got).toEqual(Array.from({ length: 200 }, (_, i) => String(i)));
    } finally {
      client.terminate();
    }
  });
});

describe("close", () => {
  for (const [label, code, reason] of [
    ["1000 with a reason", 1000, "normal bye"],
    ["4000 (application code) with a UTF-8 reason", 4000, "fertig ✓"],
    ["1001 without a reason", 1001, ""],
  ] as Array<[string, number, string]>) {
    it(`a client-initiated close ${label} reaches close(ws, code, reason)`, async () => {
      const closed = deferred<[number, string, number]>();
      const server = track(serveWs({ message() {}, close: (ws: any, c: number, r: string) => closed.resolve([c, r, ws.readyState]) }));
      const client = await connectWs(server);
      client.close(code, reason || undefined);
      const [c, r, state] = await withTimeout(closed.promise, 5000, "close()");
      expect(c).toBe(code);
      expect(r).toBe(reason);
      expect(state).toBe(3);
      // The client sees its own code echoed back.
      expect((await client.waitClose()).code).toBe(code);
    });
  }

  it("a client close frame without a code reaches close() as 1005", async () => {
    const closed = deferred<[number, string]>();
    const server = track(serveWs({ message() {}, close: (_ws: any, c: number, r: string) => closed.resolve([c, r]) }));
    const client = await connectWs(server);
    client.close();
    expect(await withTimeout(closed.promise, 5000, "close()")).toEqual([1005, ""]);
  });

  it("a client that drops the TCP connection reaches close() as 1006", async () => {
    const closed = deferred<[number, string]>();
    const server = track(serveWs({ message() {}, close: (_ws: any, c: number, r: string) => closed.resolve([c, r]) }));
    const client = await connectWs(server);
    client.terminate();
    const [code] = await withTimeout(closed.promise, 5000, "close()");
    expect(code).toBe(1006);
  });

  it("a server-initiated ws.close(4001, 'bye') is seen by the client, and close() runs with it", async () => {
    const closed = deferred<[number, string]>();
    const server = track(
      serveWs({
        message(ws: any, msg: string) {
          if (msg === "kick") ws.close(4001, "bye");
        },
        close: (_ws: any, c: number, r: string) => closed.resolve([c, r]),
      }),
    );
    const client = await connectWs(server);
    await client.send("kick");
    expect(await client.waitClose()).toEqual({ code: 4001, reason: "bye" });
    expect(await withTimeout(closed.promise, 5000, "close()")).toEqual([4001, "bye"]);
  });

  it("close() is called exactly once per connection", async () => {
    let closes = 0;
    const server: any = track(
      serveWs({
        message(ws: any) {
          ws.close(1000, "a");
          ws.close(1000, "b");
          ws.terminate();
        },
        close() {
          closes++;
        },
      }),
    );
    const client = await connectWs(server);
    await client.send("go");
    await client.waitClose();
    await waitFor(() => server.pendingWebSockets === 0, 5000, "pendingWebSockets 0");
    await sleep(50);
    expect(closes).toBe(1);
  });
});

describe("protocol violations from the client", () => {
  it("a text message that is not valid UTF-8 closes the socket with 1007", async () => {
    const closed = deferred<number>();
    const got: unknown[] = [];
    const server = track(serveWs({ message: (_ws: any, m: unknown) => got.push(m), close: (_ws: any, code: number) => closed.resolve(code) }));
    const raw = await RawWs.open(server.port);
    try {
      raw.write(clientFrame(OP.text, Buffer.from([0x68, 0xff, 0xfe, 0x69])));
      expect(await withTimeout(closed.promise, 5000, "close()")).toBe(1007);
      expect(got).toEqual([]);
      await raw.until(() => raw.closed, 5000, "the connection to close");
    } finally {
      raw.destroy();
    }
  });

  it("garbage bytes (reserved opcode, RSV bits) end the connection without crashing the server", async () => {
    let closes = 0;
    const server: any = track(serveWs({ message(ws: any, m: string) { ws.send(m); }, close: () => closes++ }));
    const b = await RawWs.open(server.port);
    try {
      b.write(Buffer.from("GET / HTTP/1.1\r\n\r\n\x00\xff\x13\x37garbage", "latin1"));
      await b.until(() => b.closed, 5000, "the garbage sender to be disconnected");
      await waitFor(() => closes === 1 && server.pendingWebSockets === 0, 5000, "close() called");
      const good = await connectWs(server);
      await good.send("fine");
      expect(await good.nextText()).toBe("fine");
      good.terminate();
    } finally {
      b.destroy();
    }
  });

  it(`an unmasked client frame: ${ON_NODE_ENGINE ? "closed with 1002 (RFC 6455 §5.1; ws checks the mask bit)" : "no crash (the uWS core reads every client frame as masked)"}`, async () => {
    // RFC 6455 5.1 says a server MUST close on an unmasked client frame; the uWS core doesn't
    // check the MASK bit and takes the next 4 bytes as the key: only robustness is asserted there.
    const closed = deferred<number>();
    const server: any = track(serveWs({ message(ws: any, m: string) { ws.send(m); }, close: (_ws: any, code: number) => closed.resolve(code) }));
    const a = await RawWs.open(server.port);
    try {
      a.write(Buffer.from([0x81, 0x02, 0x68, 0x69])); // "hi", not masked
      if (ON_NODE_ENGINE) {
        expect(await withTimeout(closed.promise, 3000, "close()")).toBe(1002);
        await a.until(() => a.closeFrame !== null, 3000, "the close frame");
        expect(a.closeFrame!.code).toBe(1002);
        expect(a.dataFrames.length).toBe(0);
      } else {
        await sleep(100);
      }
      const good = await connectWs(server);
      await good.send("fine");
      expect(await good.nextText()).toBe("fine");
      good.terminate();
    } finally {
      a.destroy();
    }
  });
});

describe("ping and pong", () => {
  it("a client ping reaches ping(ws, data) as a Buffer, and the client gets its pong", async () => {
    const pinged = deferred<unknown>();
    const server = track(serveWs({ message() {}, ping: (_ws: any, data: unknown) => pinged.resolve(data) }));
    const client = await connectWs(server);
    try {
      client.ws.ping(Buffer.from("are you there"));
      const data = await withTimeout(pinged.promise, 5000, "ping()");
      expect(Buffer.isBuffer(data)).toBe(true);
      expect((data as Buffer).toString()).toBe("are you there");
      await client.until(() => client.pongs.length === 1, 5000, "the pong");
      expect(client.pongs[0]!.toString()).toBe("are you there");
    } finally {
      client.terminate();
    }
  });

  it("ws.ping(data) from the server: the client auto-pongs and pong(ws, data) gets the data", async () => {
    const ponged = deferred<unknown>();
    const server = track(
      serveWs({
        open(ws: any) {
          ws.ping("srv-ping");
        },
        message() {},
        pong: (_ws: any, data: unknown) => ponged.resolve(data),
      }),
    );
    const client = await connectWs(server);
    try {
      const data = await withTimeout(ponged.promise, 5000, "pong()");
      expect(Buffer.isBuffer(data)).toBe(true);
      expect((data as Buffer).toString()).toBe("srv-ping");
      expect(client.pings.map((b) => b.toString())).toEqual(["srv-ping"]);
    } finally {
      client.terminate();
    }
  });

  it("ws.ping() without data sends an empty ping", async () => {
    const server = track(serveWs({ open: (ws: any) => ws.ping(), message() {} }));
    const client = await connectWs(server);
    try {
      await client.until(() => client.pings.length === 1, 5000, "a ping");
      expect(client.pings[0]!.length).toBe(0);
    } finally {
      client.terminate();
    }
  });

  it(`ws.pong(data): ${ON_NODE_ENGINE ? "sent (the node engine sends unsolicited pongs)" : "returns 0 and sends nothing (the uWS core cannot send unsolicited pongs)"}; the socket keeps working`, async () => {
    vi.spyOn(process, "emitWarning").mockImplementation(() => {});
    const results: unknown[] = [];
    const server = track(
      serveWs({
        open(ws: any) {
          try {
            results.push(ws.pong(Buffer.from([1, 2, 3])), ws.pong());
          } catch (e) {
            results.push(String(e));
          }
          ws.send("after pong");
        },
        message() {},
      }),
    );
    const client = await connectWs(server);
    try {
      expect(await client.nextText()).toBe("after pong");
      if (ON_NODE_ENGINE) {
        expect(results).toEqual([3, 0]);
        expect(client.pongs.map((p) => [...p])).toEqual([[1, 2, 3], []]);
      } else {
        expect(results).toEqual([0, 0]);
        expect(client.pongs).toEqual([]);
      }
    } finally {
      client.terminate();
    }
  });
});

describe("async handlers", () => {
  it("async open, message and close work (awaits inside, sends after)", async () => {
    const closed = deferred<number>();
    const server = track(
      serveWs({
        async open(ws: any) {
          await sleep(10);
          ws.send("opened");
        },
        async message(ws: any, msg: string) {
          await sleep(5);
          ws.send(`echo:${msg}`);
        },
        async close(_ws: any, code: number) {
          await sleep(5);
          closed.resolve(code);
        },
      }),
    );
    const client = await connectWs(server);
    expect(await client.nextText()).toBe("opened");
    for (let i = 0; i < 10; i++) client.ws.send(String(i));
    await client.waitMessages(11);
    expect(client.messages.slice(1).map((m) => m.data).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `echo:${i}`).sort());
    client.close(1000);
    expect(await withTimeout(closed.promise, 5000, "async close()")).toBe(1000);
  });
});

describe("errors in handlers", () => {
  type Trigger = "open" | "message" | "close" | "ping" | "pong";
  /** A server whose `which` handler fails (throws or rejects), and a client that makes it run. */
  async function failIn(which: Trigger, how: "throw" | "reject", withHook: boolean) {
    const reported: Array<{ ws: any; error: unknown }> = [];
    const hook = deferred<void>();
    const boom = new Error(`boom in ${which} (${how})`);
    const fail = how === "throw" ? () => {
      throw boom;
    } : async () => {
      await sleep(1);
      throw boom;
    };
    const handlers: Record<string, unknown> = {
      open(ws: any) {
        if (which === "pong") ws.ping("p");
      },
      message(ws: any, msg: string) {
        ws.send(`echo:${msg}`);
      },
    };
    handlers[which] = fail;
    if (withHook) {
      handlers.error = (ws: any, error: unknown) => {
        reported.push({ ws, error });
        hook.resolve();
      };
    }
    if (which === "message") {
      handlers.message = (ws: any, msg: string) => {
        if (msg === "fail") return fail();
        ws.send(`echo:${msg}`);
      };
    }
    const server: any = track(serveWs(handlers));
    const client = await connectWs(server);
    if (which === "message") await client.send("fail");
    if (which === "ping") client.ws.ping("x");
    if (which === "close") client.close(1000);
    return { server, client, reported, hook, boom };
  }

  for (const which of ["open", "message", "close", "ping", "pong"] as Trigger[]) {
    for (const how of ["throw", "reject"] as const) {
      it(`${which}(): a ${how === "throw" ? "thrown exception" : "rejection"} reaches websocket.error(ws, err)`, async () => {
        vi.spyOn(console, "error").mockImplementation(() => {});
        const { server, client, reported, hook, boom } = await failIn(which, how, true);
        try {
          await withTimeout(hook.promise, 5000, `websocket.error for ${which}`);
          expect(reported.length).toBe(1);
          expect(reported[0]!.error).toBe(boom);
          expect(reported[0]!.ws).toBeTruthy();
          expect(typeof reported[0]!.ws.send).toBe("function");
          // The server keeps serving WebSockets and HTTP.
          const other = await connectWs(server);
          await other.send("still");
          expect(await other.nextText()).toBe("echo:still");
          other.terminate();
          expect((await fetchFrom(server, "/")).status).toBe(400);
        } finally {
          client.terminate();
        }
      });
    }
  }

  it("without an error hook a thrown message() is logged (console.error) and the socket and server keep working", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const { server, client, boom } = await failIn("message", "throw", false);
    try {
      await waitFor(() => logged.mock.calls.length > 0, 5000, "console.error");
      expect(logged.mock.calls.flat().some((a) => a === boom || String(a).includes(boom.message) || String((a as any)?.message).includes(boom.message))).toBe(true);
      await client.send("again");
      expect(await client.nextText()).toBe("echo:again");
      const other = await connectWs(server);
      await other.send("x");
      expect(await other.nextText()).toBe("echo:x");
      other.terminate();
    } finally {
      client.terminate();
    }
  });

  it("without an error hook a rejected close() is logged and never crashes", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const { server } = await failIn("close", "reject", false);
    await waitFor(() => logged.mock.calls.length > 0, 5000, "console.error");
    const other = await connectWs(server);
    await other.send("x");
    expect(await other.nextText()).toBe("echo:x");
    other.terminate();
  });

  it("an error hook that throws itself does not crash the server", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    const server = track(
      serveWs({
        message(ws: any, msg: string) {
          if (msg === "fail") throw new Error("first");
          ws.send(`echo:${msg}`);
        },
        error() {
          throw new Error("the hook failed too");
        },
      }),
    );
    const client = await connectWs(server);
    try {
      await client.send("fail");
      await client.send("ok");
      expect(await client.nextText()).toBe("echo:ok");
      await waitFor(() => logged.mock.calls.length > 0, 5000, "console.error for the failing hook");
    } finally {
      client.terminate();
    }
  });

  it("many failing messages in a row are each reported once", async () => {
    const errors: unknown[] = [];
    const server = track(
      serveWs({
        message(_ws: any, msg: string) {
          if (Number(msg) % 2 === 0) throw new Error(`sync ${msg}`);
          return Promise.reject(new Error(`async ${msg}`));
        },
        error: (_ws: any, e: unknown) => errors.push(e),
      }),
    );
    const client = await connectWs(server);
    try {
      for (let i = 0; i < 50; i++) client.ws.send(String(i));
      await waitFor(() => errors.length >= 50, 5000, `50 errors (got ${errors.length})`);
      await sleep(50);
      expect(errors.length).toBe(50);
      expect(new Set(errors.map((e) => (e as Error).message)).size).toBe(50);
    } finally {
      closeAll([client]);
    }
  });
});
