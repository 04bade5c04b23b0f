// ServerWebSocket members: data, readyState, remoteAddress, send*/byte counts, subscriptions, cork, close/terminate, getBufferedAmount, a closed socket, binaryType.
import { describe, expect, it, vi } from "vitest";
import { sleep } from "./helpers/client.js";
import { trackServers, waitFor, withTimeout } from "./helpers/server.js";
import { connectWs, deferred, RawWs, serveWs } from "./helpers/ws.js";

const track = trackServers();

describe("data, readyState, remoteAddress", () => {
  it("data is the upgrade's data and can be reassigned/mutated across handlers", async () => {
    const seen: unknown[] = [];
    const server = track(
      serveWs(
        {
          open(ws: any) {
            seen.push(structuredClone(ws.data));
            ws.data.count = 0;
          },
          message(ws: any) {
            ws.data.count++;
            seen.push(ws.data.count);
            ws.send(String(ws.data.count));
          },
        },
        { data: () => ({ name: "n" }) },
      ),
    );
    const client = await connectWs(server);
    try {
      await client.send("a");
      await client.send("b");
      expect(await client.nextText()).toBe("1");
      expect(await client.nextText()).toBe("2");
      expect(seen).toEqual([{ name: "n" }, 1, 2]);
    } finally {
      client.terminate();
    }
  });

  it("readyState is 1 while open, not 1 right after close(), 3 in close() and afterwards", async () => {
    const states: Array<[string, number]> = [];
    const done = deferred<void>();
    let socket: any;
    const server = track(
      serveWs({
        open(ws: any) {
          socket = ws;
          states.push(["open", ws.readyState]);
        },
        message(ws: any) {
          states.push(["message", ws.readyState]);
          ws.close(1000, "x");
          states.push(["after close()", ws.readyState]);
        },
        close(ws: any) {
          states.push(["close", ws.readyState]);
          done.resolve();
        },
      }),
    );
    const client = await connectWs(server);
    await client.send("go");
    await withTimeout(done.promise, 5000, "close()");
    await sleep(20);
    states.push(["later", socket.readyState]);
    const at = (name: string) => states.find(([n]) => n === name)?.[1];
    expect(at("open")).toBe(1);
    expect(at("message")).toBe(1);
    // close() may run the close handler synchronously (then it is already 3) or later (2 meanwhile).
    expect([2, 3]).toContain(at("after close()"));
    expect(at("close")).toBe(3);
    expect(at("later")).toBe(3);
    expect(states.length).toBe(5);
  });

  it('remoteAddress is "127.0.0.1" for a loopback client (also inside close())', async () => {
    const addrs: unknown[] = [];
    const closed = deferred<void>();
    const server = track(
      serveWs({
        open(ws: any) {
          addrs.push(ws.remoteAddress);
          ws.close();
        },
        message() {},
        close(ws: any) {
          addrs.push(ws.remoteAddress);
          closed.resolve();
        },
      }),
    );
    const client = await connectWs(server);
    await client.waitClose();
    await withTimeout(closed.promise, 5000, "close()");
    expect(addrs).toEqual(["127.0.0.1", "127.0.0.1"]);
  });
});

describe("send, sendText, sendBinary", () => {
  it("return the byte count and deliver text as text, binary as binary", async () => {
    const results: Record<string, number> = {};
    const server = track(
      serveWs({
        open(ws: any) {
          results.sendString = ws.send("héllo"); // 6 bytes in UTF-8
          results.sendBuffer = ws.send(Buffer.from([1, 2, 3]));
          results.sendUint8 = ws.send(new Uint8Array([4, 5]));
          results.sendArrayBuffer = ws.send(new Uint8Array([6, 7, 8, 9]).buffer);
          results.sendDataView = ws.send(new DataView(new Uint8Array([10, 11, 12, 13, 14]).buffer, 1, 2));
          results.sendText = ws.sendText("€"); // 3 bytes
          results.sendBinary = ws.sendBinary(new Uint8Array([0xff]));
          results.sendCompressFlag = ws.send("zz", true);
          ws.send(""); // an empty message is still delivered (its count, 0, is ambiguous with "dropped")
        },
        message() {},
      }),
    );
    const client = await connectWs(server);
    try {
      const got = await client.waitMessages(9);
      expect(results).toEqual({
        sendString: 6,
        sendBuffer: 3,
        sendUint8: 2,
        sendArrayBuffer: 4,
        sendDataView: 2,
        sendText: 3,
        sendBinary: 1,
        sendCompressFlag: 2,
      });
      expect(got.map((m) => (m.binary ? `b:${(m.data as Buffer).toString("hex")}` : `t:${m.data}`))).toEqual([
        "t:héllo",
        "b:010203",
        "b:0405",
        "b:06070809",
        "b:0b0c",
        "t:€",
        "b:ff",
        "t:zz",
        "t:",
      ]);
    } finally {
      client.terminate();
    }
  });

  it("sending from outside a handler (a timer) works and returns the byte count", async () => {
    const results: number[] = [];
    const server = track(
      serveWs({
        open(ws: any) {
          setTimeout(() => results.push(ws.send("later")), 20);
        },
        message() {},
      }),
    );
    const client = await connectWs(server);
    try {
      expect(await client.nextText()).toBe("later");
      expect(results).toEqual([5]);
    } finally {
      client.terminate();
    }
  });
});

describe("subscriptions", () => {
  it("subscribe/unsubscribe/isSubscribed/subscriptions", async () => {
    const log: unknown[] = [];
    const server = track(
      serveWs({
        open(ws: any) {
          log.push([...ws.subscriptions]);
          ws.subscribe("a");
          ws.subscribe("b");
          ws.subscribe("a");
          log.push([...ws.subscriptions].sort(), ws.isSubscribed("a"), ws.isSubscribed("c"));
          ws.unsubscribe("a");
          ws.unsubscribe("never");
          log.push([...ws.subscriptions], ws.isSubscribed("a"), ws.isSubscribed("b"));
          ws.send("done");
        },
        message() {},
      }),
    );
    const client = await connectWs(server);
    try {
      expect(await client.nextText()).toBe("done");
      expect(log).toEqual([[], ["a", "b"], true, false, ["b"], false, true]);
    } finally {
      client.terminate();
    }
  });
});

describe("cork", () => {
  it("returns the callback's value and sends everything inside it, in order", async () => {
    const returned: unknown[] = [];
    const server = track(
      serveWs({
        open(ws: any) {
          returned.push(
            ws.cork((w: any) => {
              w.send("1");
              w.send("2");
              ws.send("3");
              return 42;
            }),
          );
          // From a timer too (outside any core callback).
          setTimeout(() => {
            returned.push(ws.cork(() => (ws.send("4"), ws.send("5"), "x")));
          }, 10);
        },
        message() {},
      }),
    );
    const client = await connectWs(server);
    try {
      await client.waitMessages(5);
      expect(client.messages.map((m) => m.data)).toEqual(["1", "2", "3", "4", "5"]);
      expect(returned).toEqual([42, "x"]);
    } finally {
      client.terminate();
    }
  });

  it("corked sends from a timer go out in one TCP write", async () => {
    const server = track(
      serveWs({
        open(ws: any) {
          setTimeout(() => ws.cork(() => { for (let i = 0; i < 20; i++) ws.send(`m${i}`); }), 20);
        },
        message() {},
      }),
    );
    const raw = await RawWs.open(server.port);
    const chunks: number[] = [];
    raw.socket.on("data", (d: Buffer) => chunks.push(d.length));
    try {
      await raw.until(() => raw.dataFrames.length >= 20, 5000, "20 frames");
      expect(raw.dataFrames.map((f) => f.payload.toString())).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
      // 20 frames of 4-5 bytes: one write of ~100 bytes arrives as one chunk on loopback.
      expect(chunks.length).toBe(1);
    } finally {
      raw.destroy();
    }
  });

  it("an exception inside cork's callback propagates to the caller", async () => {
    const caught = deferred<unknown>();
    const server = track(
      serveWs({
        open(ws: any) {
          try {
            ws.cork(() => {
              throw new Error("inside cork");
            });
          } catch (e) {
            caught.resolve(e);
          }
          ws.send("still open");
        },
        message() {},
      }),
    );
    const client = await connectWs(server);
    try {
      expect(String(await withTimeout(caught.promise, 5000, "the exception"))).toContain("inside cork");
      expect(await client.nextText()).toBe("still open");
    } finally {
      client.terminate();
    }
  });
});

describe("close and terminate", () => {
  it("close() defaults to 1000 and an empty reason", async () => {
    const server = track(serveWs({ open: (ws: any) => ws.close(), message() {} }));
    const client = await connectWs(server);
    expect(await client.waitClose()).toEqual({ code: 1000, reason: "" });
  });

  it("terminate(): the client sees 1006 and close() is called with 1006", async () => {
    const closed = deferred<number>();
    const server = track(
      serveWs({
        message(ws: any) {
          ws.terminate();
        },
        close: (_ws: any, code: number) => closed.resolve(code),
      }),
    );
    const client = await connectWs(server);
    await client.send("die");
    expect((await client.waitClose()).code).toBe(1006);
    expect(await withTimeout(closed.promise, 5000, "close()")).toBe(1006);
  });
});

describe("getBufferedAmount and binaryType", () => {
  it("getBufferedAmount() is 0 for an idle socket", async () => {
    const amounts: unknown[] = [];
    const server = track(
      serveWs({
        open(ws: any) {
          amounts.push(ws.getBufferedAmount());
          ws.send("x");
        },
        message() {},
      }),
    );
    const client = await connectWs(server);
    try {
      await client.nextText();
      expect(amounts).toEqual([0]);
    } finally {
      client.terminate();
    }
  });

  it('binaryType: "nodebuffer" (default) gives a Buffer, "arraybuffer" an ArrayBuffer, "uint8array" a Uint8Array', async () => {
    const got: Array<[string, string, number]> = [];
    const server = track(
      serveWs({
        open(ws: any) {
          got.push(["default", ws.binaryType, 0]);
        },
        message(ws: any, msg: any) {
          const kind = Buffer.isBuffer(msg) ? "Buffer" : msg instanceof ArrayBuffer ? "ArrayBuffer" : msg instanceof Uint8Array ? "Uint8Array" : typeof msg;
          got.push([ws.binaryType, kind, msg.byteLength]);
          const next = { nodebuffer: "arraybuffer", arraybuffer: "uint8array", uint8array: "nodebuffer" }[ws.binaryType as string];
          ws.binaryType = next;
          ws.send("next");
        },
      }),
    );
    const client = await connectWs(server);
    try {
      for (let i = 0; i < 3; i++) {
        await client.send(Buffer.from([1, 2, 3, 4]), { binary: true });
        await client.nextText();
      }
      expect(got).toEqual([
        ["default", "nodebuffer", 0],
        ["nodebuffer", "Buffer", 4],
        ["arraybuffer", "ArrayBuffer", 4],
        ["uint8array", "Uint8Array", 4],
      ]);
    } finally {
      client.terminate();
    }
  });
});

describe("a closed socket", () => {
  it("inside close(): send returns 0 and subscriptions are empty", async () => {
    const seen = deferred<unknown[]>();
    const server = track(
      serveWs({
        open(ws: any) {
          ws.subscribe("t");
        },
        message() {},
        close(ws: any) {
          seen.resolve([ws.send("x"), ws.sendText("y"), ws.subscriptions.length, ws.isSubscribed("t")]);
        },
      }),
    );
    const client = await connectWs(server);
    client.close(1000);
    expect(await withTimeout(seen.promise, 5000, "close()")).toEqual([0, 0, 0, false]);
  });

  it("send/sendText/sendBinary/publish return 0; nothing throws", async () => {
    let socket: any;
    const opened = deferred<void>();
    const server: any = track(
      serveWs({
        open(ws: any) {
          socket = ws;
          ws.subscribe("t");
          opened.resolve();
        },
        message() {},
      }),
    );
    const client = await connectWs(server);
    await withTimeout(opened.promise, 5000, "open()");
    client.terminate();
    await waitFor(() => server.pendingWebSockets === 0, 5000, "the socket to close");
    expect(socket.readyState).toBe(3);
    const results: unknown[] = [];
    expect(() => {
      results.push(socket.send("x"), socket.sendText("x"), socket.sendBinary(new Uint8Array(1)));
      results.push(socket.publish("t", "x"), socket.publishText("t", "x"), socket.publishBinary("t", new Uint8Array(1)));
      socket.subscribe("u");
      socket.unsubscribe("t");
      results.push(socket.isSubscribed("t"));
      results.push(Array.isArray(socket.subscriptions));
      socket.ping();
      socket.pong();
      socket.close(1000, "again");
      socket.terminate();
      results.push(typeof socket.getBufferedAmount());
      results.push(socket.cork(() => "corked"));
    }).not.toThrow();
    expect(results).toEqual([0, 0, 0, 0, 0, 0, false, true, "number", "corked"]);
  });
});
