// The cross-thread topic hub (native/hub.cc through lib/hub.ts) with real worker_threads:
// interest mirroring, exactly-once and per-publisher order under concurrent publishers,
// members joining, leaving, being terminated and crashing mid-stream, the bounded queues, and
// memory after 100,000 publishes.
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { afterEach, describe, expect, it } from "vitest";
import { HUB_BACKPRESSURE, hubStats, joinHub, type HubMember } from "../dist/websocket/hub.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const HUB_URL = pathToFileURL(join(ROOT, "dist", "websocket", "hub.js")).href;
const DEADLINE_MS = 20_000;

/**
 * A worker that joins the hub on command and keeps books on what it receives. Payloads are
 * "<publisher>:<seq>" (anything may follow a ";"); per publisher, seq must arrive strictly increasing.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
(async () => {
  const { joinHub } = await import(workerData.hubUrl);
  const decoder = new TextDecoder();
  let member = null;
  let total = 0;
  let disorder = 0;
  let bytes = 0;
  let batches = 0;
  let throwOn = null;
  const last = new Map();     // publisher -> last seq
  const counts = {};          // "publisher|topic" -> count
  const order = [];           // what onMessage saw vs microtasks/immediates (microtask test)
  let traceOrder = false;
  const onMessage = (topic, payload, isBinary) => {
    if (throwOn !== null && topic === throwOn) throw new Error("onMessage threw for " + topic);
    bytes += payload.byteLength;
    const text = decoder.decode(payload.byteLength > 64 ? payload.subarray(0, 64) : payload);
    const colon = text.indexOf(":");
    const publisher = text.slice(0, colon);
    const seq = parseInt(text.slice(colon + 1), 10);
    const prev = last.get(publisher);
    if (prev !== undefined && seq <= prev) disorder++;
    last.set(publisher, seq);
    const key = publisher + "|" + topic;
    counts[key] = (counts[key] ?? 0) + 1;
    total++;
    if (traceOrder) {
      order.push("message");
      Promise.resolve().then(() => order.push("microtask"));
      setImmediate(() => order.push("immediate"));
    }
  };
  const encoder = new TextEncoder();
  const publishAll = async ({ tag, topics, count, chunk, binary, compress, delayMs }) => {
    const results = {};
    for (let seq = 0; seq < count; seq++) {
      const topic = topics[seq % topics.length];
      const text = tag + ":" + seq;
      const r = binary ? member.publish(topic, encoder.encode(text), true, !!compress) : member.publish(topic, text);
      results[r] = (results[r] ?? 0) + 1;
      if ((seq + 1) % chunk === 0) {
        await new Promise((resolve) => (delayMs ? setTimeout(resolve, delayMs) : setImmediate(resolve)));
      }
    }
    return results;
  };
  const commands = {
    join: ({ group }) => { member = joinHub(onMessage, { group }); return member.id; },
    sub: ({ topics }) => topics.map((t) => member.subscribe(t)),
    unsub: ({ topics }) => topics.map((t) => member.unsubscribe(t)),
    publish: publishAll,
    books: () => ({ total, disorder, bytes, counts, stats: member && !member.left ? member.stats() : null }),
    reset: () => { total = 0; disorder = 0; bytes = 0; last.clear(); for (const k in counts) delete counts[k]; },
    leave: () => member.leave(),
    block: ({ flag }) => { Atomics.wait(new Int32Array(flag), 0, 0); return "unblocked"; },
    throwOn: ({ topic }) => { throwOn = topic; },
    traceOrder: () => { traceOrder = true; },
    order: () => order,
    gc: async () => {
      for (let i = 0; i < 3; i++) { globalThis.gc?.(); await new Promise((r) => setImmediate(r)); }
      return typeof globalThis.gc === "function";
    },
  };
  parentPort.on("message", async ({ id, cmd, args }) => {
    try {
      parentPort.postMessage({ id, ok: true, value: await commands[cmd](args ?? {}) });
    } catch (err) {
      parentPort.postMessage({ id, ok: false, error: String(err && err.stack || err) });
    }
  });
  parentPort.postMessage({ ready: true });
})();
`;

interface Books {
  total: number;
  disorder: number;
  bytes: number;
  counts: Record<string, number>;
  stats: { queued: number; received: number; delivered: number; dropped: number; wakeups: number } | null;
}

class Peer {
  readonly worker: Worker;
  readonly ready: Promise<void>;
  readonly exited: Promise<number>;
  errors: Error[] = [];
  #next = 0;
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { hubUrl: HUB_URL } });
    this.ready = new Promise((resolve) => {
      this.worker.on("message", (msg: { ready?: boolean; id: number; ok: boolean; value: unknown; error: string }) => {
        if (msg.ready) return resolve();
        const waiter = this.#pending.get(msg.id);
        this.#pending.delete(msg.id);
        if (msg.ok) waiter?.resolve(msg.value);
        else waiter?.reject(new Error(msg.error));
      });
    });
    this.worker.on("error", (err) => this.errors.push(err));
    this.exited = new Promise((resolve) => this.worker.on("exit", resolve));
    this.exited.then(() => {
      for (const waiter of this.#pending.values()) waiter.reject(new Error("worker exited"));
      this.#pending.clear();
    });
  }

  call<T = unknown>(cmd: string, args?: Record<string, unknown>): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, cmd, args });
    });
  }

  books(): Promise<Books> {
    return this.call<Books>("books");
  }
}

const peers: Peer[] = [];
const members: HubMember[] = [];
let groupSeq = 0;

/** Takes a count, returns that many workers, ready and joined to a fresh group (returned too). */
async function spawn(count: number, group = `g${process.pid}-${groupSeq++}`): Promise<{ group: string; workers: Peer[] }> {
  const workers = Array.from({ length: count }, () => new Peer());
  peers.push(...workers);
  await Promise.all(workers.map((w) => w.ready));
  await Promise.all(workers.map((w) => w.call("join", { group })));
  return { group, workers };
}

afterEach(async () => {
  for (const m of members.splice(0)) m.leave();
  await Promise.all(peers.splice(0).map((p) => p.worker.terminate()));
});

/** Polls `check` until it returns true; fails with `what` after the deadline. */
async function until(what: string, check: () => Promise<boolean> | boolean, ms = DEADLINE_MS): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Takes a worker and how many messages it must end with; waits for them and returns its books. */
async function settle(peer: Peer, total: number): Promise<Books> {
  let books: Books | undefined;
  await until(`${total} deliveries (have ${books?.total})`, async () => {
    books = await peer.books();
    return books.total >= total;
  });
  // Nothing more may arrive: wait a little and look again.
  await new Promise((r) => setTimeout(r, 50));
  return peer.books();
}

describe("hub: interest mirroring", () => {
  it("queues only to threads with interest, counts per socket, never back to the publisher", async () => {
    const { group, workers } = await spawn(3);
    const [a, b, c] = workers as [Peer, Peer, Peer];
    await a.call("sub", { topics: ["news"] });
    // b subscribes two sockets, then one leaves: still interested.
    expect(await b.call("sub", { topics: ["news", "news"] })).toEqual([1, 2]);
    expect(await b.call("unsub", { topics: ["news"] })).toEqual([1]);
    // The publisher's own interest doesn't make the hub send to it (it delivers locally itself).
    await c.call("sub", { topics: ["news"] });
    expect(await c.call("publish", { tag: "c", topics: ["news"], count: 10, chunk: 100 })).toEqual({ 2: 10 });
    expect(await c.call("publish", { tag: "c", topics: ["sport"], count: 5, chunk: 100 })).toEqual({ 0: 5 });
    expect((await settle(a, 10)).counts).toEqual({ "c|news": 10 });
    expect((await settle(b, 10)).counts).toEqual({ "c|news": 10 });
    const cBooks = await c.books();
    expect(cBooks.total).toBe(0);
    expect(cBooks.stats!.received).toBe(0);

    // b's last socket leaves: b no longer receives; a still does.
    expect(await b.call("unsub", { topics: ["news"] })).toEqual([0]);
    expect(await c.call("publish", { tag: "c", topics: ["news"], count: 5, chunk: 100 })).toEqual({ 1: 5 });
    await settle(a, 15);
    expect((await b.books()).total).toBe(10);
    expect((await b.books()).stats!.received).toBe(10);
    await expect(b.call("unsub", { topics: ["news"] })).rejects.toThrow(/would be -1/);

    // Another group hears nothing.
    const other = await spawn(1);
    await other.workers[0]!.call("sub", { topics: ["news"] });
    expect(await c.call("publish", { tag: "c", topics: ["news"], count: 1, chunk: 100 })).toEqual({ 1: 1 });
    expect(group).not.toBe(other.group);
    await new Promise((r) => setTimeout(r, 50));
    expect((await other.workers[0]!.books()).total).toBe(0);
  });

  it("the main thread is a member like any worker; wrong-thread and after-leave calls throw", async () => {
    const { group, workers } = await spawn(1);
    const worker = workers[0]!;
    const got: Array<[string, string, boolean, boolean]> = [];
    const member = joinHub((topic, payload, isBinary, compress) => {
      got.push([topic, Buffer.from(payload).toString(), isBinary, compress]);
    }, { group });
    members.push(member);
    member.subscribe("t");
    await worker.call("sub", { topics: ["t"] });
    expect(member.publish("t", "main:0")).toBe(1);
    expect(member.publish("t", new TextEncoder().encode("main:1"), true, true)).toBe(1);
    await settle(worker, 2);
    expect(await worker.call("publish", { tag: "w", topics: ["t"], count: 3, chunk: 10 })).toEqual({ 1: 3 });
    await until("3 messages on the main thread", () => got.length === 3);
    expect(got).toEqual([
      ["t", "w:0", false, false],
      ["t", "w:1", false, false],
      ["t", "w:2", false, false],
    ]);
    expect(await worker.call("publish", { tag: "w", topics: ["t"], count: 1, chunk: 10, binary: true, compress: true })).toEqual({ 1: 1 });
    await until("the binary message", () => got.length === 4);
    expect(got[3]).toEqual(["t", "w:0", true, true]);
    const { loadNative } = await import("../dist/transport/native.js");
    const native = loadNative();
    const workerId = (await worker.call<number>("join", { group: `${group}-second` }));
    expect(() => native.hubLeave(workerId)).toThrow(/another thread/);
    expect(() => native.hubPublish(workerId, "t", "x", false, false)).toThrow(/another thread/);
    expect(member.leave()).toBe(true);
    expect(member.leave()).toBe(false);
    expect(() => member.publish("t", "x")).toThrow(/not in the hub/);
    expect(member.stats()).toBeNull();
  });
});

describe("hub: delivery", () => {
  it("exactly once and in publish order per publisher, with 3 threads publishing 6,000 messages each over 10 topics", async () => {
    const { group, workers } = await spawn(4);
    const topics = Array.from({ length: 10 }, (_, i) => `topic-${i}`);
    const odd = topics.filter((_, i) => i % 2 === 1);
    const [p1, p2, p3, sink] = workers as [Peer, Peer, Peer, Peer];
    // The sink listens to everything, p1 to the odd topics, p2 to topic-0 only, p3 to nothing.
    await sink.call("sub", { topics });
    await p1.call("sub", { topics: odd });
    await p2.call("sub", { topics: ["topic-0"] });
    // The main thread listens to everything too.
    const mainSeen = new Map<string, number>();
    let mainTotal = 0;
    let mainDisorder = 0;
    const decoder = new TextDecoder();
    const member = joinHub((_topic, payload) => {
      const [publisher, seq] = decoder.decode(payload).split(":") as [string, string];
      const n = Number(seq);
      if ((mainSeen.get(publisher) ?? -1) >= n) mainDisorder++;
      mainSeen.set(publisher, n);
      mainTotal++;
    }, { group });
    members.push(member);
    for (const t of topics) member.subscribe(t);

    const COUNT = 6000;
    const results = await Promise.all(
      [p1, p2, p3].map((p, i) => p.call<Record<string, number>>("publish", { tag: `p${i + 1}`, topics, count: COUNT, chunk: 250 })),
    );
    // Nothing was dropped: every publish reached every interested thread.
    for (const r of results) expect(r[HUB_BACKPRESSURE]).toBeUndefined();

    const sinkBooks = await settle(sink, 3 * COUNT);
    expect(sinkBooks.total).toBe(3 * COUNT);
    expect(sinkBooks.disorder).toBe(0);
    for (const p of ["p1", "p2", "p3"]) {
      for (const t of topics) expect(sinkBooks.counts[`${p}|${t}`]).toBe(COUNT / 10);
    }
    // Batched: far fewer wake-ups than messages.
    expect(sinkBooks.stats!.wakeups).toBeLessThan(sinkBooks.total);

    // p1 gets p2's and p3's odd-topic messages, never its own.
    const p1Books = await settle(p1, 2 * COUNT / 2);
    expect(p1Books.total).toBe(COUNT);
    expect(p1Books.disorder).toBe(0);
    expect(Object.keys(p1Books.counts).some((k) => k.startsWith("p1|"))).toBe(false);
    const p2Books = await settle(p2, 2 * COUNT / 10);
    expect(p2Books.total).toBe(2 * COUNT / 10);
    expect(p2Books.counts).toEqual({ "p1|topic-0": COUNT / 10, "p3|topic-0": COUNT / 10 });
    expect((await p3.books()).total).toBe(0);

    await until("the main thread's deliveries", () => mainTotal >= 3 * COUNT);
    expect(mainTotal).toBe(3 * COUNT);
    expect(mainDisorder).toBe(0);
    expect(hubStats().queued).toBe(0);
  });

  it("one batch per wake-up, microtasks run after it, and large payloads arrive intact from a shared copy", async () => {
    const { group, workers } = await spawn(3);
    const [a, b, c] = workers as [Peer, Peer, Peer];
    const member = joinHub(() => {}, { group });
    members.push(member);
    await Promise.all(workers.map((w) => w.call("sub", { topics: ["big", "small"] })));

    // a is blocked while 1,000 messages are queued to it: they arrive in one wake-up.
    const flag = new SharedArrayBuffer(4);
    const blocked = a.call("block", { flag });
    await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 1000; i++) member.publish("small", `m:${i}`);
    Atomics.store(new Int32Array(flag), 0, 1);
    Atomics.notify(new Int32Array(flag), 0);
    await blocked;
    const aBooks = await settle(a, 1000);
    expect(aBooks.stats!.wakeups).toBe(1);
    expect(aBooks.disorder).toBe(0);
    await Promise.all(workers.map((w) => settle(w, 1000)));

    // Microtasks queued in onMessage run right after the batch, before the next macrotask.
    await b.call("traceOrder");
    member.publish("small", "m:1000");
    await settle(b, 1001);
    await new Promise((r) => setTimeout(r, 20));
    expect(await b.call<string[]>("order")).toEqual(["message", "microtask", "immediate"]);

    // 1 MiB payloads: one shared copy, three receivers, content checked by size and prefix.
    const before = hubStats();
    const big = "m:" + "2000;" + "y".repeat(1 << 20);
    for (let i = 0; i < 4; i++) expect(member.publish("big", big.replace("2000", String(2000 + i)))).toBe(3);
    const during = hubStats();
    expect(during.livePayloads - before.livePayloads).toBeLessThanOrEqual(4);
    for (const w of [a, b, c]) {
      const books = await settle(w, (w === b ? 1001 : 1000) + 4);
      expect(books.counts["m|big"]).toBe(4);
      expect(books.disorder).toBe(0);
    }
    // Once the receivers collect their views, every shared buffer is freed.
    await until("the shared payloads to be freed", async () => {
      await Promise.all(workers.map((w) => w.call("gc")));
      return hubStats().livePayloads === 0;
    });
    expect(hubStats().livePayloadBytes).toBe(0);
  });

  it("a throw in onMessage is the worker's uncaughtException, and the dead worker leaves the hub", async () => {
    const { group, workers } = await spawn(2);
    const [a, b] = workers as [Peer, Peer];
    const member = joinHub(() => {}, { group });
    members.push(member);
    await a.call("sub", { topics: ["x", "boom"] });
    await b.call("sub", { topics: ["x"] });
    await a.call("throwOn", { topic: "boom" });
    const membersBefore = hubStats().members;
    member.publish("x", "m:0");
    member.publish("boom", "m:1");
    member.publish("x", "m:2");
    const code = await a.exited;
    expect(code).toBe(1);
    expect(a.errors[0]?.message).toMatch(/onMessage threw for boom/);
    expect(hubStats().members).toBe(membersBefore - 1);
    // The others carry on.
    for (let i = 3; i < 100; i++) expect(member.publish("x", `m:${i}`)).toBe(1);
    const books = await settle(b, 99);
    expect(books.total).toBe(99);
    expect(books.disorder).toBe(0);
  });
});

describe("hub: membership changes mid-stream", () => {
  it("threads join, leave and are terminated while others publish; the rest get every message", async () => {
    const { group, workers } = await spawn(3);
    const [publisher, steady, doomed] = workers as [Peer, Peer, Peer];
    await steady.call("sub", { topics: ["t0", "t1"] });
    await doomed.call("sub", { topics: ["t0", "t1"] });
    const COUNT = 20_000;
    // 20 messages per millisecond or so: the stream lasts about a second.
    const publishing = publisher.call<Record<string, number>>("publish", { tag: "p", topics: ["t0", "t1"], count: COUNT, chunk: 20, delayMs: 1 });

    // Meanwhile: one worker joins, listens a while, leaves, and joins again; another is terminated.
    const [late] = (await spawn(1, group)).workers as [Peer];
    await late.call("sub", { topics: ["t1"] });
    await until("late to receive", async () => (await late.books()).total > 50);
    expect(await late.call("leave")).toBe(true);
    const lateBooks = await late.books();
    expect(lateBooks.disorder).toBe(0);
    await late.call("join", { group });
    await late.call("sub", { topics: ["t1"] });

    await until("doomed to receive", async () => (await doomed.books()).total > 100);
    const membersBefore = hubStats().members;
    await doomed.worker.terminate();
    expect(hubStats().members).toBe(membersBefore - 1);

    const results = await publishing;
    expect(results[HUB_BACKPRESSURE]).toBeUndefined();
    const books = await settle(steady, COUNT);
    expect(books.total).toBe(COUNT);
    expect(books.disorder).toBe(0);
    expect(books.counts).toEqual({ "p|t0": COUNT / 2, "p|t1": COUNT / 2 });
    const lateAgain = await late.books();
    expect(lateAgain.disorder).toBe(0);
    expect(hubStats().queued).toBe(0);
  });
});

describe("hub: bounds", () => {
  it("a thread whose loop is blocked gets at most 65,536 messages queued; the rest are dropped, counted and reported as -1", async () => {
    const { group, workers } = await spawn(2);
    const [stuck, fine] = workers as [Peer, Peer];
    const member = joinHub(() => {}, { group });
    members.push(member);
    await stuck.call("sub", { topics: ["t"] });
    await fine.call("sub", { topics: ["t"] });
    const limit = hubStats().maxQueuedMessages;
    expect(limit).toBe(65_536);

    const flag = new SharedArrayBuffer(4);
    const blocked = stuck.call("block", { flag });
    await new Promise((r) => setTimeout(r, 20));
    const results: Record<number, number> = {};
    const EXTRA = 500;
    for (let i = 0; i < limit + EXTRA; i++) {
      const r = member.publish("t", `m:${i}`);
      results[r] = (results[r] ?? 0) + 1;
      // Let `fine` keep up so only `stuck` is over its bound.
      if (i % 4096 === 4095) await new Promise((r) => setTimeout(r, 5));
    }
    expect(results).toEqual({ 2: limit, [HUB_BACKPRESSURE]: EXTRA });
    const stuckStats = hubStats().queued;
    expect(stuckStats).toBeGreaterThanOrEqual(limit);
    Atomics.store(new Int32Array(flag), 0, 1);
    Atomics.notify(new Int32Array(flag), 0);
    await blocked;
    const stuckBooks = await settle(stuck, limit);
    expect(stuckBooks.total).toBe(limit);
    expect(stuckBooks.disorder).toBe(0);
    expect(stuckBooks.stats!.dropped).toBe(EXTRA);
    const fineBooks = await settle(fine, limit + EXTRA);
    expect(fineBooks.total).toBe(limit + EXTRA);
    expect(fineBooks.stats!.dropped).toBe(0);

    // The byte bound: 64 MiB of 1 MiB payloads fit, the 65th doesn't.
    await stuck.call("reset");
    const flag2 = new SharedArrayBuffer(4);
    const blocked2 = stuck.call("block", { flag: flag2 });
    await new Promise((r) => setTimeout(r, 20));
    await fine.call("unsub", { topics: ["t"] });
    const mib = "m:0;" + "z".repeat((1 << 20) - 4);
    const byteResults: number[] = [];
    for (let i = 0; i < 65; i++) byteResults.push(member.publish("t", mib));
    expect(byteResults.slice(0, 64).every((r) => r === 1)).toBe(true);
    expect(byteResults[64]).toBe(HUB_BACKPRESSURE);
    Atomics.store(new Int32Array(flag2), 0, 1);
    Atomics.notify(new Int32Array(flag2), 0);
    await blocked2;
    await until("the 64 MiB backlog to drain", async () => (await stuck.books()).total >= 64);
  });

  it("100,000 cross-thread publishes leave no payload alive and don't grow the process", async () => {
    const { group, workers } = await spawn(2);
    const member = joinHub(() => {}, { group });
    members.push(member);
    await Promise.all(workers.map((w) => w.call("sub", { topics: ["a", "b"] })));
    const pad = "p".repeat(200);
    let seq = 0;
    const round = async (n: number) => {
      for (let i = 0; i < n; i++, seq++) {
        expect(member.publish(seq % 2 ? "a" : "b", `m:${seq};${pad}`)).toBe(2);
        if (i % 1000 === 999) await Promise.all(workers.map((w) => settle(w, seq + 1)));
      }
      await Promise.all(workers.map((w) => settle(w, seq)));
      await Promise.all(workers.map((w) => w.call("gc")));
      globalThis.gc?.();
    };
    await round(20_000);
    const baseline = process.memoryUsage().rss;
    await round(100_000);
    const growth = process.memoryUsage().rss - baseline;
    for (const w of workers) {
      const books = await w.books();
      expect(books.total).toBe(120_000);
      expect(books.disorder).toBe(0);
    }
    expect(hubStats().livePayloads).toBe(0);
    expect(hubStats().queued).toBe(0);
    // Generous: the V8 heaps breathe; a leaked copy per publish would be ≥ 2 × 100,000 × 200 B.
    expect(growth).toBeLessThan(24 * 1024 * 1024);
  }, 60_000);
});
