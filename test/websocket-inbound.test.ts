// Inbound flow control: how async `message` handlers run (ordering, concurrency) and the bound
// that keeps a flooding client from growing the server's memory without limit.
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { serve, type Server } from "../dist/index.js";
import { trackServers, waitFor, withTimeout } from "./helpers/server.js";

const track = trackServers();

async function connect(server: Server): Promise<WebSocket> {
  const client = new WebSocket(`ws://127.0.0.1:${server.port}/`);
  await withTimeout(new Promise((resolve, reject) => client.once("open", resolve).once("error", reject)), 2000, "open");
  return client;
}

function upgradeAll(req: Request, server: Server): Response | undefined {
  return server.upgrade(req) ? undefined : new Response("upgrade only", { status: 400 });
}

describe("async message handlers", () => {
  it("by default (as Bun) each message's handler starts as it arrives: async handlers overlap", async () => {
    let running = 0;
    let peak = 0;
    const server = track(
      serve({
        port: 0,
        fetch: upgradeAll,
        websocket: {
          async message(ws, msg) {
            running++;
            peak = Math.max(peak, running);
            await sleep(30);
            running--;
            ws.send(`done ${msg}`);
          },
        },
      }),
    );
    const client = await connect(server);
    const replies: string[] = [];
    client.on("message", (data) => replies.push(String(data)));
    for (let i = 0; i < 5; i++) client.send(String(i));
    await waitFor(() => replies.length === 5, 3000, "replies.length === 5");
    expect(peak).toBe(5);
    client.close();
  });

  it("messageConcurrency: 1 runs one handler at a time, in arrival order", async () => {
    let running = 0;
    let peak = 0;
    const order: string[] = [];
    const server = track(
      serve({
        port: 0,
        fetch: upgradeAll,
        websocket: {
          messageConcurrency: 1,
          async message(ws, msg) {
            running++;
            peak = Math.max(peak, running);
            // Later messages finish faster: only a queue keeps them in order.
            await sleep(40 - Number(msg) * 5);
            order.push(String(msg));
            running--;
            ws.send(`done ${msg}`);
          },
        },
      }),
    );
    const client = await connect(server);
    const replies: string[] = [];
    client.on("message", (data) => replies.push(String(data)));
    for (let i = 0; i < 6; i++) client.send(String(i));
    await waitFor(() => replies.length === 6, 3000, "replies.length === 6");
    expect(peak).toBe(1);
    expect(order).toEqual(["0", "1", "2", "3", "4", "5"]);
    expect(replies).toEqual(["done 0", "done 1", "done 2", "done 3", "done 4", "done 5"]);
    client.close();
  });

  it("a client flooding faster than its handler settles is closed with 1008 at maxPendingMessages, the server keeps serving", async () => {
    const gate = Promise.withResolvers?.() ?? (() => {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      return { promise, resolve };
    })();
    let handled = 0;
    const closes: Array<[number, string]> = [];
    const server = track(
      serve({
        port: 0,
        fetch: upgradeAll,
        websocket: {
          messageConcurrency: 2,
          maxPendingMessages: 50,
          async message() {
            handled++;
            await gate.promise;
          },
          close(ws, code, reason) {
            closes.push([code, reason]);
          },
        },
      }),
    );
    const flooder = await connect(server);
    const closed = new Promise<[number, string]>((resolve) => flooder.once("close", (code, reason) => resolve([code, String(reason)])));
    for (let i = 0; i < 200; i++) flooder.send(`m${i}`);
    expect(await withTimeout(closed, 3000, "the flooder is closed")).toEqual([1008, "Too many pending messages"]);
    expect(closes).toEqual([[1008, "Too many pending messages"]]);
    // Only `messageConcurrency` handlers ever started; the rest were queued, then dropped with the socket.
    expect(handled).toBe(2);
    (gate.resolve as () => void)();

    const other = await connect(server);
    expect(server.pendingWebSockets).toBe(1);
    other.close();
  });

  it("with the default concurrency the bound holds too: unsettled handlers past maxPendingMessages close the socket", async () => {
    let handled = 0;
    const server = track(
      serve({
        port: 0,
        fetch: upgradeAll,
        websocket: {
          maxPendingMessages: 20,
          message() {
            handled++;
            return new Promise<void>(() => {});
          },
        },
      }),
    );
    const flooder = await connect(server);
    const closed = new Promise<number>((resolve) => flooder.once("close", (code) => resolve(code)));
    for (let i = 0; i < 100; i++) flooder.send(`m${i}`);
    expect(await withTimeout(closed, 3000, "the flooder is closed")).toBe(1008);
    expect(handled).toBe(20);
  });

  it("a handler that throws or rejects is reported to websocket.error and the socket keeps working", async () => {
    const errors: string[] = [];
    const server = track(
      serve({
        port: 0,
        fetch: upgradeAll,
        websocket: {
          async message(ws, msg) {
            if (msg === "reject") throw new Error("rejected");
            ws.send(`ok ${msg}`);
          },
          error(ws, err) {
            errors.push((err as Error).message);
          },
        },
      }),
    );
    const client = await connect(server);
    const reply = new Promise<string>((resolve) => client.once("message", (data) => resolve(String(data))));
    client.send("reject");
    client.send("after");
    expect(await withTimeout(reply, 2000, "reply after a rejection")).toBe("ok after");
    await waitFor(() => errors.length === 1, 3000, "errors.length === 1");
    expect(errors).toEqual(["rejected"]);
    client.close();
  });
});
