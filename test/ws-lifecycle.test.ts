// Lifecycle: 1,000 connect/disconnect cycles leave nothing behind; graceful stop() closes sockets with 1001; stop(true) cuts them.
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { connectionRefused, sleep } from "./helpers/client.js";
import { trackServers, waitFor, withTimeout } from "./helpers/server.js";
import { closeAll, connectMany, connectWs, deferred, serveWs } from "./helpers/ws.js";

const track = trackServers();

describe("connect/disconnect cycles", () => {
  it("1,000 cycles (batches of 50, half closed by the client, a quarter terminated, a quarter closed by the server) leave pendingWebSockets at 0", async () => {
    let opens = 0;
    let closes = 0;
    const server: any = track(
      serveWs({
        open() {
          opens++;
        },
        message(ws: any, msg: string) {
          if (msg === "close-me") ws.close(1000, "as asked");
          else ws.send(msg);
        },
        close() {
          closes++;
        },
      }),
    );
    const total = 1000;
    const batch = 50;
    for (let start = 0; start < total; start += batch) {
      const clients = await connectMany(server, batch, () => "/", batch);
      await Promise.all(
        clients.map(async (c, j) => {
          const i = start + j;
          await c.send(`hi ${i}`);
          expect(await c.nextText()).toBe(`hi ${i}`);
          if (i % 4 === 0) c.terminate();
          else if (i % 4 === 1) await c.send("close-me");
          else c.close(1000);
          await c.waitClose();
        }),
      );
    }
    await waitFor(() => server.pendingWebSockets === 0 && closes === total, 10_000, `pendingWebSockets 0 (is ${server.pendingWebSockets}) and ${total} closes (got ${closes})`);
    expect(opens).toBe(total);
    // Still healthy afterwards.
    const c = await connectWs(server);
    await c.send("still");
    expect(await c.nextText()).toBe("still");
    c.terminate();
  }, 120_000);

  it("sequential cycles with open/close only (no messages): counters return to 0 every time", async () => {
    const server: any = track(serveWs({ message() {} }));
    for (let i = 0; i < 100; i++) {
      const c = await connectWs(server);
      await waitFor(() => server.pendingWebSockets === 1, 2000, `pendingWebSockets 1 on cycle ${i}`);
      c.close();
      await c.waitClose();
      await waitFor(() => server.pendingWebSockets === 0, 2000, `pendingWebSockets 0 on cycle ${i}`);
    }
  }, 60_000);
});

describe("stop()", () => {
  it("graceful stop() closes open sockets with 1001, runs close(), resolves, and stops listening", async () => {
    const serverCloses: number[] = [];
    const server: any = track(
      serveWs({
        message(ws: any, m: string) {
          ws.send(m);
        },
        close(_ws: any, code: number) {
          serverCloses.push(code);
        },
      }),
    );
    const port = server.port;
    const clients = await connectMany(server, 5, () => "/");
    try {
      await clients[0]!.send("ping");
      expect(await clients[0]!.nextText()).toBe("ping");
      await withTimeout(server.stop(), 10_000, "graceful stop()");
      const closes = await Promise.all(clients.map((c) => c.waitClose()));
      expect(closes.map((c) => c.code)).toEqual([1001, 1001, 1001, 1001, 1001]);
      expect(serverCloses.sort()).toEqual([1001, 1001, 1001, 1001, 1001]);
      expect(server.pendingWebSockets).toBe(0);
      expect(await connectionRefused(port)).toBe(true);
    } finally {
      closeAll(clients);
    }
  });

  it("graceful stop() while clients keep sending: every client still reads its 1001 (the app waits for the close handshakes before closing)", async () => {
    // uWS runs close() as soon as it sends the close frame; closing the app right then resets
    // sockets whose clients are still sending, and the clients lose the 1001 (they see 1006).
    for (let round = 0; round < 3; round++) {
      const server: any = track(
        serveWs({
          open(ws: any) {
            ws.subscribe("all");
          },
          message(ws: any, m: string) {
            ws.publish("all", m);
          },
        }),
      );
      const clients = await Promise.all(
        Array.from({ length: 20 }, () => {
          const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`);
          const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
          return new Promise<{ ws: WebSocket; closed: Promise<number> }>((resolve, reject) => {
            ws.once("open", () => resolve({ ws, closed }));
            ws.once("error", reject);
          });
        }),
      );
      let sent = 0;
      const pump = setInterval(() => {
        for (const { ws } of clients) if (ws.readyState === WebSocket.OPEN) for (let i = 0; i < 5; i++) ws.send(`m ${sent++}`);
      }, 1);
      await sleep(100);
      await withTimeout(server.stop(), 10_000, "graceful stop()");
      const codes = await withTimeout(Promise.all(clients.map((c) => c.closed)), 10_000, "every close").finally(() => clearInterval(pump));
      expect(sent).toBeGreaterThan(0);
      expect(codes).toEqual(clients.map(() => 1001));
    }
  });

  it("graceful stop() with no sockets resolves at once; a second stop() is harmless", async () => {
    const server: any = track(serveWs({ message() {} }));
    await withTimeout(server.stop(), 5000, "stop()");
    await withTimeout(server.stop(), 5000, "second stop()");
  });

  it("stop(true) cuts open sockets (no close handshake: the client sees 1006) and resolves", async () => {
    const serverCloses: number[] = [];
    const server: any = track(serveWs({ message() {}, close: (_ws: any, code: number) => serverCloses.push(code) }));
    const clients = await connectMany(server, 3, () => "/");
    try {
      await withTimeout(server.stop(true), 5000, "stop(true)");
      const closes = await Promise.all(clients.map((c) => c.waitClose()));
      expect(closes.map((c) => c.code)).toEqual([1006, 1006, 1006]);
      await waitFor(() => serverCloses.length === 3, 5000, "three close() calls");
      expect(server.pendingWebSockets).toBe(0);
    } finally {
      closeAll(clients);
    }
  });

  it("a socket opened with data keeps working until stop(); sends after stop() return 0 and don't throw", async () => {
    const opened = deferred<any>();
    const server: any = track(serveWs({ open: (ws: any) => opened.resolve(ws), message() {} }));
    const client = await connectWs(server);
    const ws = await withTimeout(opened.promise, 5000, "open()");
    await withTimeout(server.stop(), 5000, "stop()");
    await client.waitClose();
    expect(ws.readyState).toBe(3);
    expect(ws.send("late")).toBe(0);
    expect(server.publish("anything", "late")).toBe(0);
    await sleep(10);
  });
});
