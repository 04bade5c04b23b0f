// Broker faults against real brokers (issue 15, item 3): unreachable at start, killed
// mid-stream, paused with SIGSTOP, garbage and foreign messages on our channels, messages over
// the broker's size limit, and credentials that must never show. Every broker process is started
// and stopped by the test (test/helpers/brokers.ts).
import { spawn } from "node:child_process";
import { createClient } from "redis";
import { connect as natsConnect } from "@nats-io/transport-node";
import { describe, expect, it, vi } from "vitest";
import { subjectToken } from "../dist/backplane/nats.js";
import { encodeMessage, newOrigin } from "../dist/backplane/wire.js";
import { brokerTitle, NATS_SERVER, REDIS_SERVER, type Broker, type BrokerKind } from "./helpers/brokers.js";
import { DIST_INDEX_URL, sleep } from "./helpers/client.js";
import { backplaneFixture, texts, waitUntil } from "./helpers/backplane.js";
import { fetchFrom } from "./helpers/server.js";

const { startBroker, driver, pubsub, client, linked } = backplaneFixture();

/** Publishes raw bytes on a topic's channel, as another program on the broker could. */
async function inject(kind: BrokerKind, broker: Broker, topic: string, payloads: Uint8Array[]): Promise<void> {
  if (kind === "redis") {
    const c = createClient({ url: broker.url });
    await c.connect();
    for (const p of payloads) await c.publish(`uwserve:${topic}`, Buffer.from(p));
    c.destroy();
  } else {
    const nc = await natsConnect({ servers: `127.0.0.1:${broker.port}` });
    for (const p of payloads) nc.publish(`uwserve.${subjectToken(topic)}`, p);
    await nc.flush();
    await nc.close();
  }
}

const seqs = (lines: string[]) => lines.filter((t) => t.startsWith("n ")).map((t) => Number(t.slice(2)));

for (const kind of ["redis", "nats"] as const) {
  const available = (kind === "redis" ? REDIS_SERVER : NATS_SERVER) !== null;

  describe.skipIf(!available)(brokerTitle(`${kind} backplane: faults`, kind), () => {
    it("broker unreachable at start: the server serves, local pub/sub works, one report, and it connects when the broker comes up", async () => {
      const broker = await startBroker(kind, {}, false);
      const reports: Error[] = [];
      const a = pubsub(driver(kind, broker.url, { onError: (e: Error) => reports.push(e) }));
      const b = pubsub(driver(kind, broker.url, { onError: () => {} }));
      expect((await fetchFrom(a, "/")).status).toBe(200);
      const one = await client(a, ["t"]);
      const two = await client(a, ["t"]);
      one.ws.send("pub t local");
      await two.until(() => texts(two).includes("local"), 5000, "the local message");
      await sleep(700); // several failed attempts
      expect(reports.map((r) => r.message)).toHaveLength(1);
      expect((reports[0] as Error & { code?: string }).code).toBe("UWSERVE_ERR_BACKPLANE");
      expect(reports[0]!.message).toContain("can't reach the broker");
      const before = a.backplane!.stats();
      expect(before.state).toBe("connecting");
      expect(before.droppedOutbound).toBeGreaterThanOrEqual(1);
      await broker.restart();
      await waitUntil(() => a.backplane!.stats().state === "connected" && b.backplane!.stats().state === "connected", 10_000, "both to connect");
      const onB = await client(b, ["t"]);
      await linked(a, onB, "t");
      expect(reports.map((r) => r.message)).toEqual([reports[0]!.message]);
      expect(a.backplane!.stats().reconnects).toBe(0);
    });

    it("broker killed mid-stream: local delivery goes on, remote resumes after the restart, nothing twice, losses counted", async () => {
      const broker = await startBroker(kind);
      const printed = vi.spyOn(console, "error").mockImplementation(() => {});
      const a = pubsub(driver(kind, broker.url));
      const b = pubsub(driver(kind, broker.url));
      const local = await client(a, ["s"]);
      const remote = await client(b, ["s"]);
      await linked(a, remote, "s");
      const start = a.backplane!.stats();
      let n = 0;
      const publishFor = async (ms: number) => {
        const until = Date.now() + ms;
        while (Date.now() < until) {
          a.publish("s", `n ${n++}`);
          await sleep(2);
        }
      };
      await publishFor(200);
      await broker.kill();
      await publishFor(300);
      await broker.restart();
      await waitUntil(() => a.backplane!.stats().state === "connected" && b.backplane!.stats().state === "connected", 15_000, "reconnection");
      await linked(a, remote, "s");
      const resumedAt = n;
      await publishFor(200);
      await local.until(() => seqs(texts(local)).length === n, 5000, "every local message");
      await remote.until(() => seqs(texts(remote)).at(-1) === n - 1, 5000, "the last message remotely");
      expect(seqs(texts(local))).toEqual(Array.from({ length: n }, (_, i) => i));
      const got = seqs(texts(remote));
      // Strictly rising: nothing twice, nothing out of order; everything after the restart arrived.
      expect(got.every((seq, i) => i === 0 || seq > got[i - 1]!)).toBe(true);
      expect(got.filter((seq) => seq >= resumedAt)).toEqual(Array.from({ length: n - resumedAt }, (_, i) => resumedAt + i));
      expect(got.length).toBeLessThan(n);
      const end = a.backplane!.stats();
      expect(end.published - start.published + end.droppedOutbound - start.droppedOutbound).toBeGreaterThanOrEqual(n);
      expect(end.droppedOutbound).toBeGreaterThan(start.droppedOutbound);
      expect(end.reconnects).toBeGreaterThanOrEqual(1);
      expect(b.backplane!.stats().reconnects).toBeGreaterThanOrEqual(1);
      // One line per outage and one when it is back, per process: not a line per message.
      const lines = printed.mock.calls.map((c) => String(c[0])).filter((l) => l.includes("backplane"));
      expect(lines.filter((l) => l.includes("lost its connection"))).toHaveLength(2);
      expect(lines.filter((l) => l.includes("connected;"))).toHaveLength(2);
      printed.mockRestore();
    });

    it("broker paused (SIGSTOP): publishing never blocks, the unacknowledged backlog stays bounded, and it recovers", async () => {
      const broker = await startBroker(kind);
      // Publishes go out in batches (up to 64 KiB): the bound is on unacknowledged bytes here.
      const a = pubsub(driver(kind, broker.url, { maxPendingBytes: 128 * 1024, onError: () => {} }));
      const b = pubsub(driver(kind, broker.url, { onError: () => {} }));
      const local = await client(a, ["p"]);
      const remote = await client(b, ["p"]);
      await linked(a, remote, "p");
      const start = a.backplane!.stats();
      broker.pause();
      try {
        const payload = "x".repeat(1000);
        const began = performance.now();
        let slowest = 0;
        for (let i = 0; i < 5000; i++) {
          const t = performance.now();
          a.publish("p", `n ${i} ${payload}`);
          slowest = Math.max(slowest, performance.now() - t);
          if (i % 500 === 0) await sleep(1); // let the sockets write
        }
        const took = performance.now() - began;
        // A blocked publish would take seconds; a GC pause on a loaded machine can take tens of milliseconds.
        expect(slowest).toBeLessThan(250);
        expect(took).toBeLessThan(5000);
        const paused = a.backplane!.stats();
        // At most maxPendingBytes unacknowledged (plus what the broker acknowledged as SIGSTOP landed).
        expect(paused.published - start.published).toBeLessThan(600);
        expect(paused.droppedOutbound - start.droppedOutbound).toBeGreaterThan(4400);
        await local.until(() => seqs(texts(local)).length === 5000, 10_000, "every local message");
      } finally {
        broker.resume();
      }
      await linked(a, remote, "p", 15_000);
      a.publish("p", "n 99999 after");
      await remote.until(() => texts(remote).some((t) => t.startsWith("n 99999")), 5000, "a message after the pause");
    });

    it("garbage and foreign messages on our channel are dropped and counted; a well-formed one from another origin is delivered", async () => {
      const broker = await startBroker(kind);
      const a = pubsub(driver(kind, broker.url));
      const b = pubsub(driver(kind, broker.url));
      const onB = await client(b, ["g"]);
      await linked(a, onB, "g");
      const origin = newOrigin();
      // A single-entry batch for topic "g": header 14 + 1 topic byte, then the entry (flags at 15, its length at 22).
      const badFlags = encodeMessage(origin, 0, 1, "g", "x", false, false)!;
      badFlags[15] = 0xf0;
      const overrun = encodeMessage(origin, 0, 6, "g", "hello", false, false)!;
      overrun.writeUInt32BE(999, 22);
      const badUtf8 = encodeMessage(origin, 0, 2, "g", new Uint8Array([0xc3, 0x28]), false, false)!;
      const truncated = encodeMessage(origin, 0, 3, "g", "hello", false, false)!.subarray(0, 20);
      await inject(kind, broker, "g", [
        Buffer.from("plain text from another program"),
        new Uint8Array(0),
        Buffer.from([0x75, 0x77, 0x42, 0x02, 0, 0]),
        encodeMessage(origin, 0, 4, "other-topic", "framed for another channel", false, false)!,
        badFlags,
        badUtf8,
        truncated,
        overrun,
        encodeMessage(origin, 0, 5, "g", "from a foreign origin", false, false)!,
      ]);
      await onB.until(() => texts(onB).includes("from a foreign origin"), 5000, "the well-formed message");
      a.publish("g", "still working");
      await onB.until(() => texts(onB).includes("still working"), 5000, "a message after the garbage");
      const stats = b.backplane!.stats();
      expect(stats.malformed).toBe(8);
      expect(stats.dropped).toBe(8);
      expect(texts(onB)).toEqual(["from a foreign origin", "still working"]);
      expect(stats.state).toBe("connected");
    });

    it("a message over the broker's size limit is dropped and counted; the connection stays", async () => {
      const limit = kind === "redis" ? 1024 * 1024 : 64 * 1024;
      const broker = await startBroker(kind, { maxMessageBytes: limit });
      const a = pubsub(driver(kind, broker.url));
      const b = pubsub(driver(kind, broker.url));
      const local = await client(a, ["big"]);
      const onB = await client(b, ["big"]);
      await linked(a, onB, "big");
      await sleep(200); // the driver has read the broker's limit
      a.publish("big", "y".repeat(limit + 10));
      a.publish("big", "small after");
      await onB.until(() => texts(onB).includes("small after"), 5000, "the small message");
      await local.until(() => texts(local).includes("small after"), 5000, "both locally");
      expect(texts(local).filter((t) => !t.startsWith("probe ")).map((t) => t.length)).toEqual([limit + 10, 11]);
      const stats = a.backplane!.stats();
      expect(stats.tooLarge).toBe(1);
      expect(stats.reconnects).toBe(0);
      expect(texts(onB)).toEqual(["small after"]);
    });

    it("credentials never appear in reports, stats or `where`", async () => {
      const secret = "right-Pa55-123";
      const wrong = "wr0ng-Pa55-xyz";
      const broker = await startBroker(kind, kind === "redis" ? { password: secret } : { token: secret });
      const good = broker.url;
      const bad = good.replace(encodeURIComponent(secret), wrong).replace(secret, wrong);
      expect(bad).toContain(wrong);
      const reports: Error[] = [];
      const refused = pubsub(driver(kind, bad, { onError: (e: Error) => reports.push(e) }));
      const a = pubsub(driver(kind, good));
      const b = pubsub(driver(kind, good));
      const onB = await client(b, ["c"]);
      await linked(a, onB, "c");
      await waitUntil(() => reports.length === 1, 5000, "the report");
      for (const text of [reports[0]!.message, reports[0]!.stack ?? "", refused.backplane!.where, JSON.stringify(refused.backplane!.stats()), a.backplane!.where]) {
        expect(text).not.toContain(wrong);
        expect(text).not.toContain(secret);
      }
      expect(refused.backplane!.stats().state).toBe("connecting");
      // Printed by default (no onError): stderr of a process holds no credential either.
      const child = spawn(process.execPath, ["--input-type=module", "-e", `
        const { serve } = await import(${JSON.stringify(DIST_INDEX_URL)});
        const s = serve({ port: 0, hostname: "127.0.0.1", backplane: ${JSON.stringify(bad)}, fetch: () => new Response("x"), websocket: { message() {} } });
        setTimeout(() => { s.stop(true); process.exit(0); }, 1200);
      `], { stdio: ["ignore", "pipe", "pipe"] });
      let stderr = "";
      child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
      await new Promise((resolve) => child.on("exit", resolve));
      expect(stderr).toContain("backplane");
      expect(stderr).not.toContain(wrong);
      expect(stderr.match(/can't reach the broker/g)).toHaveLength(1);
    });
  });
}
