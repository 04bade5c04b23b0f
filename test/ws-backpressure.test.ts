// Backpressure with a client that stops reading (raw TCP, paused): send → -1, drain, backpressureLimit drops (dropped hook, droppedMessages), closeOnBackpressureLimit, publish under backpressure.
import { describe, expect, it } from "vitest";
import { sleep } from "./helpers/client.js";
import { trackServers, waitFor, withTimeout } from "./helpers/server.js";
import { closeAll, connectWs, deferred, RawWs, serveWs } from "./helpers/ws.js";

const track = trackServers();

/** A message of `size` bytes whose first 4 bytes are its sequence number. */
function numbered(seq: number, size: number): Buffer {
  const b = Buffer.alloc(size, seq & 0xff);
  b.writeUInt32BE(seq, 0);
  return b;
}

/**
 * Calls `send(seq)` until `stop(result)` is true (or `max` calls), yielding to the event loop
 * every few calls so the core can flush; returns every result.
 */
async function sendUntil(send: (seq: number) => number, stop: (result: number) => boolean, max: number): Promise<number[]> {
  const results: number[] = [];
  for (let seq = 0; seq < max; seq++) {
    const r = send(seq);
    results.push(r);
    if (stop(r)) return results;
    if (seq % 8 === 7) await new Promise((r) => setImmediate(r));
  }
  throw new Error(`no stop result after ${max} sends; last results: ${results.slice(-5).join(", ")}`);
}

/** A server that hands its one socket to the test, and a paused raw client connected to it. */
async function pausedPair(websocket: Record<string, unknown>) {
  const opened = deferred<any>();
  const server: any = track(
    serveWs({
      message() {},
      ...websocket,
      open(ws: any) {
        opened.resolve(ws);
        (websocket.open as ((ws: any) => void) | undefined)?.(ws);
      },
    }),
  );
  const raw = await RawWs.open(server.port, "/");
  const ws = await withTimeout(opened.promise, 5000, "open()");
  raw.pause();
  return { server, raw, ws };
}

describe("send under backpressure", () => {
  it("send returns -1 once the client stops reading; resuming fires drain and every queued message arrives, in order", async () => {
    const drained = deferred<void>();
    let drains = 0;
    const { raw, ws } = await pausedPair({
      drain() {
        drains++;
        drained.resolve();
      },
    });
    const size = 256 * 1024;
    try {
      const results = await sendUntil((seq) => ws.send(numbered(seq, size)), (r) => r === -1, 400);
      // Everything before the first -1 went out whole.
      expect(results.slice(0, -1).every((r) => r === size)).toBe(true);
      expect(results.at(-1)).toBe(-1);
      expect(ws.getBufferedAmount()).toBeGreaterThan(0);
      // A few more while still under the 16 MiB default: queued too, not dropped.
      const more = [ws.send(numbered(results.length, size)), ws.send(numbered(results.length + 1, size))];
      expect(more).toEqual([-1, -1]);
      const total = results.length + more.length;
      expect(drains).toBe(0);

      raw.resume();
      await withTimeout(drained.promise, 10_000, "drain()");
      await raw.until(() => raw.dataFrames.length >= total, 10_000, `${total} frames`);
      await sleep(50);
      const frames = raw.dataFrames;
      expect(frames.length).toBe(total);
      expect(frames.map((f) => f.payload.readUInt32BE(0))).toEqual(Array.from({ length: total }, (_, i) => i));
      expect(frames.every((f) => f.payload.length === size)).toBe(true);
      await waitFor(() => ws.getBufferedAmount() === 0, 5000, "getBufferedAmount() back to 0");
      // After draining, a send goes out at once again.
      expect(ws.send("ok")).toBe(2);
    } finally {
      raw.destroy();
    }
  });

  it("over a small backpressureLimit further sends return 0 and are counted (dropped hook, server.droppedMessages())", async () => {
    const dropped: Array<{ data: unknown; topic: unknown; same: boolean }> = [];
    let socket: any;
    const { server, raw, ws } = await pausedPair({
      backpressureLimit: 64 * 1024,
      dropped(w: any, data: unknown, topic: unknown) {
        dropped.push({ data, topic, same: w === socket });
      },
    });
    socket = ws;
    const size = 16 * 1024;
    try {
      expect(server.droppedMessages()).toBe(0);
      const results = await sendUntil((seq) => ws.send(numbered(seq, size)), (r) => r === 0, 5000);
      expect(results).toContain(-1);
      // Three more: all dropped while the client still doesn't read.
      for (let i = 0; i < 3; i++) results.push(ws.send(numbered(results.length, size)));
      expect(results.slice(-4)).toEqual([0, 0, 0, 0]);
      const zeros = results.filter((r) => r === 0).length;
      expect(zeros).toBe(4);
      expect(dropped.length).toBe(zeros);
      expect(dropped.every((d) => d.topic === null && d.same)).toBe(true);
      expect(Buffer.from(dropped[0]!.data as Uint8Array).readUInt32BE(0)).toBe(results.indexOf(0));
      expect(server.droppedMessages()).toBe(zeros);

      // The client gets exactly the messages that were not dropped.
      raw.resume();
      const delivered = results.map((r, seq) => [r, seq] as const).filter(([r]) => r !== 0).map(([, seq]) => seq);
      await raw.until(() => raw.dataFrames.length >= delivered.length, 10_000, `${delivered.length} frames`);
      await sleep(50);
      expect(raw.dataFrames.map((f) => f.payload.readUInt32BE(0))).toEqual(delivered);
      expect(raw.closed).toBe(false);
    } finally {
      raw.destroy();
    }
  });

  it("closeOnBackpressureLimit: going over the limit closes the socket (close handler runs, the client is disconnected)", async () => {
    const closed = deferred<number>();
    const { server, raw, ws } = await pausedPair({
      backpressureLimit: 64 * 1024,
      closeOnBackpressureLimit: true,
      close: (_ws: any, code: number) => closed.resolve(code),
    });
    try {
      const results = await sendUntil(
        (seq) => ws.send(numbered(seq, 16 * 1024)),
        (r) => r === 0,
        5000,
      );
      expect(results.at(-1)).toBe(0);
      raw.resume();
      const code = await withTimeout(closed.promise, 10_000, "close() after going over the limit");
      expect(typeof code).toBe("number");
      await raw.until(() => raw.closed, 10_000, "the client connection to be closed");
      await waitFor(() => server.pendingWebSockets === 0, 5000, "pendingWebSockets 0");
      expect(ws.readyState).toBe(3);
      expect(ws.send("late")).toBe(0);
    } finally {
      raw.destroy();
    }
  });

  it("an exception in drain() is reported to the error hook", async () => {
    const reported = deferred<unknown>();
    const { raw, ws } = await pausedPair({
      drain() {
        throw new Error("drain failed");
      },
      error: (_ws: any, e: unknown) => reported.resolve(e),
    });
    try {
      await sendUntil((seq) => ws.send(numbered(seq, 256 * 1024)), (r) => r === -1, 400);
      raw.resume();
      expect(String(await withTimeout(reported.promise, 10_000, "the error hook"))).toContain("drain failed");
    } finally {
      raw.destroy();
    }
  });
});

describe("publish under backpressure", () => {
  // uwserve learns that a subscriber has data queued from send() results, drain events and a
  // sweep every 100 ms; the publishes below are paced (one per ~3 ms, 64 KiB each, ~2 MiB per
  // sweep) against a 4 MiB limit so a sweep sees the paused socket queued before it is over.
  const size = 64 * 1024;
  const limit = 4 * 1024 * 1024;

  it("a subscriber that stops reading: publish reports -1, then drops over the limit (per-topic count, dropped hook with the topic); a reading subscriber gets everything", async () => {
    const dropped: Array<{ topic: unknown }> = [];
    const { server, raw } = await pausedPair({
      backpressureLimit: limit,
      open(ws: any) {
        ws.subscribe("feed");
      },
      dropped(_ws: any, _data: unknown, topic: unknown) {
        dropped.push({ topic });
      },
    });
    const reader = await connectWs(server, "/");
    try {
      await waitFor(() => server.subscriberCount("feed") === 2, 5000, "two subscribers");
      const results: number[] = [];
      for (let seq = 0; seq < 3000 && server.droppedMessages("feed") === 0; seq++) {
        results.push(server.publish("feed", numbered(seq, size)));
        await sleep(3);
      }
      expect(server.droppedMessages("feed")).toBeGreaterThan(0);
      const firstQueued = results.indexOf(-1);
      expect(firstQueued).toBeGreaterThan(0);
      expect(results.slice(0, firstQueued).every((r) => r === size)).toBe(true);
      // The reader still takes every message, so no publish reports 0.
      expect(results).not.toContain(0);
      expect(server.droppedMessages("feed")).toBe(dropped.length);
      expect(server.droppedMessages()).toBeGreaterThanOrEqual(server.droppedMessages("feed"));
      expect(server.droppedMessages("other")).toBe(0);
      expect(dropped.every((d) => d.topic === "feed")).toBe(true);

      // The reading subscriber got every publish, in order.
      const published = results.length;
      await reader.waitMessages(published, 20_000);
      expect(reader.messages.map((m) => (m.data as Buffer).readUInt32BE(0))).toEqual(Array.from({ length: published }, (_, i) => i));
    } finally {
      closeAll([raw, reader]);
    }
  }, 60_000);

  it("a paused sole subscriber: publish reports -1 while queued, then 0 once it is over the limit", async () => {
    const { server, raw } = await pausedPair({
      backpressureLimit: limit,
      open(ws: any) {
        ws.subscribe("solo");
      },
    });
    try {
      const results: number[] = [];
      for (let seq = 0; seq < 3000 && results.at(-1) !== 0; seq++) {
        results.push(server.publish("solo", numbered(seq, size)));
        await sleep(3);
      }
      expect(results).toContain(-1);
      expect(results.at(-1)).toBe(0);
      expect(server.droppedMessages("solo")).toBeGreaterThan(0);
    } finally {
      raw.destroy();
    }
  }, 60_000);
});
