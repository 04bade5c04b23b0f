// Deno style: upgradeWebSocket(req) → { socket, response } end to end: events, MessageEvent data types, CloseEvent, send/close, readyState, protocol, refusals.
import { describe, expect, it, vi } from "vitest";
import { serve, upgradeWebSocket } from "../dist/index.js";
import { sleep } from "./helpers/client.js";
import { fetchFrom, rawExchange, trackServers, withTimeout } from "./helpers/server.js";
import { connectWs, deferred, refusedUpgrade } from "./helpers/ws.js";

const track = trackServers();

/** Deno's serve(options, handler) on 127.0.0.1:0, quiet. */
function denoServe(handler: (req: Request) => Response | Promise<Response>): any {
  return track(serve({ port: 0, hostname: "127.0.0.1", onListen() {} } as never, handler as never));
}

describe("upgradeWebSocket end to end", () => {
  it("onopen, onmessage (string) and send: an echo server", async () => {
    const events: string[] = [];
    const server = denoServe((req) => {
      const { socket, response } = upgradeWebSocket(req);
      socket.onopen = () => {
        events.push(`open:${socket.readyState}`);
        socket.send("hello from deno");
      };
      socket.onmessage = (e: MessageEvent) => {
        events.push(`message:${typeof e.data}`);
        socket.send(`echo:${e.data}`);
      };
      return response;
    });
    const client = await connectWs(server, "/ws");
    try {
      expect(await client.nextText()).toBe("hello from deno");
      await client.send("ü 1");
      expect(await client.nextText()).toBe("echo:ü 1");
      expect(events).toEqual(["open:1", "message:string"]);
    } finally {
      client.terminate();
    }
  });

  it("MessageEvent: text is a string, binary an ArrayBuffer by default, a Blob with binaryType 'blob'", async () => {
    const got: Array<[string, string, string]> = [];
    const server = denoServe((req) => {
      const { socket, response } = upgradeWebSocket(req);
      const initial = socket.binaryType;
      socket.onmessage = async (e: MessageEvent) => {
        const d = e.data;
        if (typeof d === "string") {
          got.push(["string", d, initial]);
          if (d === "blob") socket.binaryType = "blob";
        } else if (d instanceof ArrayBuffer) {
          got.push(["ArrayBuffer", Buffer.from(d).toString("hex"), socket.binaryType]);
        } else if (d instanceof Blob) {
          got.push(["Blob", Buffer.from(await d.arrayBuffer()).toString("hex"), socket.binaryType]);
        } else {
          got.push([Object.prototype.toString.call(d), "", socket.binaryType]);
        }
        socket.send("next");
      };
      return response;
    });
    const client = await connectWs(server, "/");
    try {
      await client.send(Buffer.from([1, 2, 3]), { binary: true });
      await client.nextText();
      await client.send("blob");
      await client.nextText();
      await client.send(Buffer.from([4, 5]), { binary: true });
      await client.nextText();
      expect(got).toEqual([
        ["ArrayBuffer", "010203", "arraybuffer"],
        ["string", "blob", "arraybuffer"],
        ["Blob", "0405", "blob"],
      ]);
    } finally {
      client.terminate();
    }
  });

  it("addEventListener works alongside the on* properties, and event.target is the socket", async () => {
    const seen: string[] = [];
    const server = denoServe((req) => {
      const { socket, response } = upgradeWebSocket(req);
      socket.addEventListener("open", () => seen.push("listener:open"));
      socket.addEventListener("message", (e: Event) => {
        seen.push(`listener:${(e as MessageEvent).data}:${e.target === socket}`);
        socket.send("ack");
      });
      socket.onmessage = (e: MessageEvent) => seen.push(`prop:${e.data}`);
      return response;
    });
    const client = await connectWs(server, "/");
    try {
      await client.send("x");
      expect(await client.nextText()).toBe("ack");
      expect(seen).toContain("listener:open");
      expect(seen).toContain("listener:x:true");
      expect(seen).toContain("prop:x");
    } finally {
      client.terminate();
    }
  });

  it("send() takes strings, ArrayBuffers and typed arrays (text stays text, bytes binary)", async () => {
    const server = denoServe((req) => {
      const { socket, response } = upgradeWebSocket(req);
      socket.onopen = () => {
        socket.send("t");
        socket.send(new Uint8Array([1, 2]).buffer);
        socket.send(new Uint8Array([3, 4, 5]));
        socket.send(Buffer.from([6]));
      };
      return response;
    });
    const client = await connectWs(server, "/");
    try {
      await client.waitMessages(4);
      expect(client.messages.map((m) => (m.binary ? `b:${(m.data as Buffer).toString("hex")}` : `t:${m.data}`))).toEqual(["t:t", "b:0102", "b:030405", "b:06"]);
    } finally {
      client.terminate();
    }
  });

  it("send() of a Blob delivers its bytes as binary", async () => {
    const server = denoServe((req) => {
      const { socket, response } = upgradeWebSocket(req);
      socket.onopen = () => socket.send(new Blob([new Uint8Array([7, 8, 9])]));
      return response;
    });
    const client = await connectWs(server, "/");
    try {
      expect([...(await client.nextBinary())]).toEqual([7, 8, 9]);
    } finally {
      client.terminate();
    }
  });

  it("readyState: 0 right after upgradeWebSocket, 1 in onopen, 3 in onclose; the constants are on the socket", async () => {
    const states: Array<[string, number]> = [];
    const closed = deferred<void>();
    let constants: number[] = [];
    const server = denoServe((req) => {
      const { socket, response } = upgradeWebSocket(req);
      states.push(["created", socket.readyState]);
      constants = [socket.CONNECTING, socket.OPEN, socket.CLOSING, socket.CLOSED];
      socket.onopen = () => {
        states.push(["open", socket.readyState]);
        socket.close();
        states.push(["after close()", socket.readyState]);
      };
      socket.onclose = () => {
        states.push(["close", socket.readyState]);
        closed.resolve();
      };
      return response;
    });
    const client = await connectWs(server, "/");
    await client.waitClose();
    await withTimeout(closed.promise, 5000, "onclose");
    const at = (name: string) => states.find(([n]) => n === name)?.[1];
    expect(constants).toEqual([0, 1, 2, 3]);
    expect(at("created")).toBe(0);
    expect(at("open")).toBe(1);
    expect([2, 3]).toContain(at("after close()"));
    expect(at("close")).toBe(3);
  });

  it("send() before the socket is open throws (like a browser WebSocket in CONNECTING)", async () => {
    const outcome = deferred<string>();
    const server = denoServe((req) => {
      const { socket, response } = upgradeWebSocket(req);
      try {
        socket.send("too early");
        outcome.resolve("sent");
      } catch (e) {
        outcome.resolve(`threw ${(e as Error).name}`);
      }
      return response;
    });
    const client = await connectWs(server, "/");
    try {
      expect(await withTimeout(outcome.promise, 5000, "the early send")).toMatch(/^threw/);
      await sleep(50);
      expect(client.messages.length).toBe(0);
    } finally {
      client.terminate();
    }
  });

  it("onclose gets a CloseEvent with the client's code and reason, wasClean true", async () => {
    const closed = deferred<any>();
    const server = denoServe((req) => {
      const { socket, response } = upgradeWebSocket(req);
      socket.onclose = (e: any) => closed.resolve({ type: e.type, code: e.code, reason: e.reason, wasClean: e.wasClean, isEvent: e instanceof Event });
      return response;
    });
    const client = await connectWs(server, "/");
    client.close(4002, "client bye");
    expect(await withTimeout(closed.promise, 5000, "onclose")).toEqual({ type: "close", code: 4002, reason: "client bye", wasClean: true, isEvent: true });
  });

  it("a dropped client: onclose with 1006 and wasClean false", async () => {
    const closed = deferred<any>();
    const server = denoServe((req) => {
      const { socket, response } = upgradeWebSocket(req);
      socket.onclose = (e: any) => closed.resolve({ code: e.code, wasClean: e.wasClean });
      return response;
    });
    const client = await connectWs(server, "/");
    client.terminate();
    expect(await withTimeout(closed.promise, 5000, "onclose")).toEqual({ code: 1006, wasClean: false });
  });

  it("socket.close(code, reason) from the server reaches the client", async () => {
    const server = denoServe((req) => {
      const { socket, response } = upgradeWebSocket(req);
      socket.onmessage = () => socket.close(4005, "server says bye");
      return response;
    });
    const client = await connectWs(server, "/");
    await client.send("x");
    expect(await client.waitClose()).toEqual({ code: 4005, reason: "server says bye" });
  });

  it("send() then close(code) inside onmessage: the client gets the message, then that close; onclose runs; a second close() is a no-op", async () => {
    const serverClosed = deferred<number>();
    const server = denoServe((req) => {
      const { socket, response } = upgradeWebSocket(req);
      socket.onmessage = (e: MessageEvent) => {
        socket.send(`echo:${e.data}`);
        socket.close(4001, "bye");
        socket.close(4002, "again");
      };
      socket.onclose = (e: CloseEvent) => serverClosed.resolve(e.code);
      return response;
    });
    const client = await connectWs(server, "/");
    await client.send("hi");
    expect(await client.nextText()).toBe("echo:hi");
    expect(await client.waitClose()).toEqual({ code: 4001, reason: "bye" });
    expect(await withTimeout(serverClosed.promise, 5000, "the server's onclose")).toBe(4001);
  });

  it("protocol negotiation: upgradeWebSocket(req, { protocol: 'chat' }) with a client offering it", async () => {
    const protocols = deferred<string>();
    const server = denoServe((req) => {
      const { socket, response } = upgradeWebSocket(req, { protocol: "chat" });
      socket.onopen = () => protocols.resolve(socket.protocol);
      return response;
    });
    const client = await connectWs(server, "/", { protocols: ["superchat", "chat"] });
    try {
      expect(client.protocol).toBe("chat");
      expect(client.response.headers["sec-websocket-protocol"]).toBe("chat");
      expect(await withTimeout(protocols.promise, 5000, "onopen")).toBe("chat");
    } finally {
      client.terminate();
    }
  });

  it("url is the ws: URL of the request; bufferedAmount is a number", async () => {
    const got = deferred<[string, unknown]>();
    const server = denoServe((req) => {
      const { socket, response } = upgradeWebSocket(req);
      socket.onopen = () => got.resolve([socket.url, socket.bufferedAmount]);
      return response;
    });
    const client = await connectWs(server, "/room/1?x=y");
    try {
      const [url, buffered] = await withTimeout(got.promise, 5000, "onopen");
      expect(url).toBe(`ws://127.0.0.1:${server.port}/room/1?x=y`);
      expect(buffered).toBe(0);
    } finally {
      client.terminate();
    }
  });

  it("an async handler can await before upgrading", async () => {
    const server = denoServe(async (req) => {
      await sleep(20);
      const { socket, response } = upgradeWebSocket(req);
      socket.onopen = () => socket.send("late hello");
      return response;
    });
    const client = await connectWs(server, "/");
    try {
      expect(await client.nextText()).toBe("late hello");
    } finally {
      client.terminate();
    }
  });

  it("many messages both ways stay in order", async () => {
    const server = denoServe((req) => {
      const { socket, response } = upgradeWebSocket(req);
      socket.onmessage = (e: MessageEvent) => socket.send(e.data);
      return response;
    });
    const client = await connectWs(server, "/");
    try {
      for (let i = 0; i < 300; i++) client.ws.send(String(i));
      await client.waitMessages(300);
      expect(client.messages.map((m) => m.data)).toEqual(Array.from({ length: 300 }, (_, i) => String(i)));
    } finally {
      client.terminate();
    }
  });

  it("an exception in onmessage does not crash the server", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const server = denoServe((req) => {
      const { socket, response } = upgradeWebSocket(req);
      socket.onmessage = (e: MessageEvent) => {
        if (e.data === "boom") throw new Error("listener failed");
        socket.send(`ok:${e.data}`);
      };
      return response;
    });
    const client = await connectWs(server, "/");
    try {
      await client.send("boom");
      await client.send("after");
      expect(await client.nextText()).toBe("ok:after");
    } finally {
      client.terminate();
    }
  });

  it("works in a Bun-style server without a websocket option (fetch calls upgradeWebSocket)", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        fetch(req: Request) {
          const { socket, response } = upgradeWebSocket(req);
          socket.onmessage = (e: MessageEvent) => socket.send(`bun-style:${e.data}`);
          return response;
        },
      } as never),
    );
    const client = await connectWs(server, "/");
    try {
      await client.send("x");
      expect(await client.nextText()).toBe("bun-style:x");
    } finally {
      client.terminate();
    }
  });
});

describe("refusals", () => {
  it("a request that is not a WebSocket upgrade: upgradeWebSocket throws a TypeError (500 unless caught)", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const caught: unknown[] = [];
    const server = denoServe((req) => {
      const path = new URL(req.url).pathname;
      if (path === "/caught") {
        try {
          upgradeWebSocket(req);
        } catch (e) {
          caught.push(e);
          return new Response("upgrade required", { status: 426 });
        }
        return new Response("did not throw");
      }
      return upgradeWebSocket(req).response;
    });
    const uncaught = await fetchFrom(server, "/uncaught");
    expect(uncaught.status).toBe(500);
    await uncaught.text();
    const handled = await fetchFrom(server, "/caught");
    expect(handled.status).toBe(426);
    expect(caught.length).toBe(1);
    expect(caught[0]).toBeInstanceOf(TypeError);
  });

  it("an upgrade request with a key that is not the base64 of 16 bytes: upgradeWebSocket throws, no 101", async () => {
    const caught: unknown[] = [];
    const server = denoServe((req) => {
      try {
        return upgradeWebSocket(req).response;
      } catch (e) {
        caught.push(e);
        return new Response("bad handshake", { status: 400 });
      }
    });
    const head =
      `GET / HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      "Sec-WebSocket-Key: c2hvcnQ=AAAAAAAAAAAAAAAA\r\nSec-WebSocket-Version: 13\r\n\r\n";
    const exchange = await rawExchange(server.port, head, { idleMs: 300, deadlineMs: 5000 });
    expect(exchange.data).toMatch(/^HTTP\/1\.1 400 /);
    expect(caught.length).toBe(1);
    expect(caught[0]).toBeInstanceOf(TypeError);
  });

  it("a handler that returns another Response instead of the upgrade response: the client is not upgraded", async () => {
    const server = denoServe((req) => {
      upgradeWebSocket(req);
      return new Response("changed my mind", { status: 403 });
    });
    const refusal = await refusedUpgrade(server, "/");
    expect(refusal.status).toBe(403);
    expect(refusal.body).toBe("changed my mind");
  });
});
