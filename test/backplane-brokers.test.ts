// The Redis and NATS backplanes against real brokers (issue 15, items 1-3): two servers in this
// process, each with its own driver (so each is a "process" to the other: its own origin and
// connections), clients on real sockets, and the broker started, killed, paused and restarted
// by the test (test/helpers/brokers.ts). Multi-process runs are in backplane-processes.test.ts.
import { createClient } from "redis";
import { connect as natsConnect } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { natsBackplane } from "../dist/backplane/nats.js";
import { redisBackplane } from "../dist/backplane/redis.js";
import { brokerTitle, NATS_SERVER, REDIS_SERVER } from "./helpers/brokers.js";
import { sleep } from "./helpers/client.js";
import { backplaneFixture, numsub, texts, waitUntil } from "./helpers/backplane.js";
import { RawWs } from "./helpers/ws.js";

const { startBroker, driver, pubsub, client, linked } = backplaneFixture();

for (const kind of ["redis", "nats"] as const) {
  const available = (kind === "redis" ? REDIS_SERVER : NATS_SERVER) !== null;

  describe.skipIf(!available)(brokerTitle(`${kind} backplane: semantics`, kind), () => {
    it("carries text and binary to the other process once, never back to the publisher's, and publish() reports the local delivery", async () => {
      const broker = await startBroker(kind);
      const a = pubsub(driver(kind, broker.url));
      const b = pubsub(driver(kind, broker.url));
      const onA = await client(a, ["room-1"]);
      const onB = await client(b, ["room-1"]);
      await linked(a, onB, "room-1");
      onA.messages.length = 0;
      // Nobody on A subscribes to "elsewhere": the local status is 0 although B may listen.
      const onB2 = await client(b, ["elsewhere"]);
      await linked(a, onB2, "elsewhere");
      expect(a.publish("elsewhere", "x")).toBe(0);
      expect(a.publish("room-1", "hello")).toBe(5);
      onA.ws.send("bin room-1 00ff10");
      await onB.waitMessages(2);
      await sleep(200);
      expect(texts(onB)).toEqual(["hello"]);
      expect(onB.messages.filter((m) => m.binary).map((m) => (m.data as Buffer).toString("hex"))).toEqual(["00ff10"]);
      // A's own socket got each once (from the local delivery), none echoed through the broker.
      expect(texts(onA)).toEqual(["hello"]);
      expect(a.backplane!.kind).toBe(kind);
      const stats = b.backplane!.stats();
      expect(stats.state).toBe("connected");
      expect(stats.received).toBeGreaterThanOrEqual(2);
      expect(stats.dropped).toBe(0);
    });

    it("keeps the compress flag: a publish with compress arrives deflated (RSV1) on the other process, one without does not", async () => {
      const broker = await startBroker(kind);
      const a = pubsub(driver(kind, broker.url));
      const b = pubsub(driver(kind, broker.url), {}, { perMessageDeflate: true });
      const onB = await client(b, ["z"]);
      await linked(a, onB, "z");
      const raw = await RawWs.open(b.port, "/?topics=z", { headers: { "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits" } });
      try {
        expect(raw.head.toLowerCase()).toContain("permessage-deflate");
        a.publish("z", "a".repeat(100_000), true);
        a.publish("z", "b".repeat(1000), false);
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

    it(`over TLS (${kind === "redis" ? "rediss://" : "tls://"}) with credentials, the certificate checked against a given CA`, async () => {
      const secret = "tls-Pa55-word";
      const broker = await startBroker(kind, kind === "redis" ? { tls: true, password: secret } : { tls: true, user: "app", password: secret });
      const tlsOptions = kind === "redis" ? { clientOptions: { socket: { ca: broker.certificate } } } : { tls: { ca: broker.certificate } };
      const a = pubsub(driver(kind, broker.url, tlsOptions));
      const b = pubsub(driver(kind, broker.url, tlsOptions));
      const onB = await client(b, ["secure"]);
      await linked(a, onB, "secure");
      a.publish("secure", "over tls");
      await onB.until(() => texts(onB).includes("over tls"), 5000, "the message");
      expect(a.backplane!.where).not.toContain(secret);
      // Without the CA the certificate is refused: reported, never connected.
      const reports: Error[] = [];
      const untrusted = pubsub(driver(kind, broker.url, { onError: (e: Error) => reports.push(e) }));
      await waitUntil(() => reports.length === 1, 5000, "the report");
      expect(untrusted.backplane!.stats().state).toBe("connecting");
      expect(reports[0]!.message).not.toContain(secret);
    });

    it("takes a client the application already has, and leaves it open when the server stops", async () => {
      const broker = await startBroker(kind);
      const redis = kind === "redis" ? createClient({ url: broker.url }) : null;
      const nats = kind === "nats" ? await natsConnect({ servers: `127.0.0.1:${broker.port}` }) : null;
      try {
        // node-redis's client not yet connected (uwserve connects it); nats.js's connected.
        const mine = redis !== null ? redisBackplane({ client: redis as never }) : natsBackplane({ connection: nats as never });
        const a = pubsub(mine);
        const b = pubsub(driver(kind, broker.url));
        const onA = await client(a, ["own"]);
        const onB = await client(b, ["own"]);
        await linked(a, onB, "own");
        await linked(b, onA, "own");
        await a.stop(true);
        await sleep(100);
        // Still usable by the application.
        if (redis !== null) expect(await redis.ping()).toBe("PONG");
        else {
          expect(nats!.isClosed()).toBe(false);
          await nats!.flush();
        }
      } finally {
        redis?.destroy();
        await nats?.close();
      }
    });

    it("sends one turn's publishes to a topic as one broker message, and keeps a publisher's order across topics", async () => {
      const broker = await startBroker(kind);
      const a = pubsub(driver(kind, broker.url));
      const b = pubsub(driver(kind, broker.url));
      const both = await client(b, ["left", "right"]);
      await linked(a, both, "left");
      await linked(a, both, "right");
      const redis = kind === "redis" ? createClient({ url: broker.url }) : null;
      redis?.on("error", () => {});
      await redis?.connect();
      await redis?.sendCommand(["CONFIG", "RESETSTAT"]);
      try {
        // One turn: 1,000 to one topic, then 10 alternating between two.
        for (let i = 0; i < 1000; i++) a.publish("left", `l ${i}`);
        for (let i = 0; i < 10; i++) a.publish(i % 2 === 0 ? "left" : "right", `x ${i}`);
        await both.waitMessages(1010, 10_000);
        expect(texts(both).slice(0, 1000)).toEqual(Array.from({ length: 1000 }, (_, i) => `l ${i}`));
        expect(texts(both).slice(1000)).toEqual(Array.from({ length: 10 }, (_, i) => `x ${i}`));
        if (redis !== null) {
          const info = String(await redis.sendCommand(["INFO", "commandstats"]));
          const calls = Number(/cmdstat_publish:calls=(\d+)/.exec(info)?.[1]);
          // 1,000 publishes of ~12 bytes and the first "left" of the ten fit one batch; the other nine are nine.
          expect(calls).toBeGreaterThanOrEqual(10);
          expect(calls).toBeLessThanOrEqual(12);
        }
      } finally {
        redis?.destroy();
      }
    });

    it("keeps each publisher's order over 2,000 messages, two publishers interleaved", async () => {
      const broker = await startBroker(kind);
      const a = pubsub(driver(kind, broker.url));
      const b = pubsub(driver(kind, broker.url));
      const c = pubsub(driver(kind, broker.url));
      const onC = await client(c, ["t"]);
      await linked(a, onC, "t");
      await linked(b, onC, "t");
      for (let i = 0; i < 1000; i++) {
        a.publish("t", `a ${i}`);
        b.publish("t", `b ${i}`);
      }
      await onC.waitMessages(2000, 15_000);
      const fromA = texts(onC).filter((t) => t.startsWith("a ")).map((t) => Number(t.slice(2)));
      const fromB = texts(onC).filter((t) => t.startsWith("b ")).map((t) => Number(t.slice(2)));
      expect(fromA).toEqual(Array.from({ length: 1000 }, (_, i) => i));
      expect(fromB).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    });

    it("listens to a topic at the broker only while a local socket wants it; churn costs nothing", async () => {
      const broker = await startBroker(kind);
      const a = pubsub(driver(kind, broker.url));
      const b = pubsub(driver(kind, broker.url));
      expect(b.backplane!.stats().subscriptions).toBe(0);
      const onB = await client(b, []);
      for (let i = 0; i < 20; i++) {
        onB.ws.send("sub news");
        onB.ws.send("unsub news");
      }
      onB.ws.send("sub news");
      await onB.until(() => texts(onB).filter((t) => t === "subbed news").length === 21, 5000, "21 subscribes");
      expect(b.backplane!.stats().subscriptions).toBe(1);
      await linked(a, onB, "news");
      if (kind === "redis") expect(await numsub(broker, "uwserve:news")).toBe(1);
      onB.ws.send("unsub news");
      await onB.until(() => texts(onB).filter((t) => t === "unsubbed news").length === 21, 5000, "the last unsubscribe");
      // An unsubscribe lingers a second at the broker, then goes.
      await waitUntil(() => b.backplane!.stats().subscriptions === 0, 5000, "the broker subscription to end");
      if (kind === "redis") expect(await numsub(broker, "uwserve:news")).toBe(0);
      a.publish("news", "after");
      await sleep(200);
      expect(texts(onB)).not.toContain("after");
    });

    it("a prefix keeps two applications on one broker apart; odd topic names travel", async () => {
      const broker = await startBroker(kind);
      const a = pubsub(driver(kind, broker.url, { prefix: "app1" }));
      const b = pubsub(driver(kind, broker.url, { prefix: "app1" }));
      const other = pubsub(driver(kind, broker.url, { prefix: "app2" }));
      const topic = "room.1 *>~ ünï";
      const onB = await client(b, [topic]);
      const onOther = await client(other, [topic]);
      await linked(a, onB, topic);
      a.publish(topic, "for app1");
      await onB.until(() => texts(onB).includes("for app1"), 5000, "the message");
      await sleep(200);
      expect(texts(onOther)).toEqual([]);
      expect(other.backplane!.stats().malformed).toBe(0);
    });
  });
}

