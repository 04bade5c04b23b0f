// Pub/sub across uwserve processes through a real broker (issue 15, item 4): separate CLI child
// processes with `--backplane`, each on its own port, on the entry test/fixtures/workers-pubsub.mjs
// (its header lists the commands). Every message is counted per publisher and topic, as in
// workers-pubsub.test.ts: exactly the sequence 0..N-1, so nothing lost, nothing twice, in order.
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { Broker, brokerTitle, NATS_SERVER, REDIS_SERVER, type BrokerKind } from "./helpers/brokers.js";
import { HAS_WORKERS } from "./helpers/core.js";
import { withTimeout } from "./helpers/server.js";
import {
  command, connect, connectAcrossThreads, differences, disorder, getText, killChildren, poll, publishFromEach, published, startWorkers, tally,
  type Client, type WorkersCli,
} from "./helpers/workers.js";

const ENTRY = fileURLToPath(new URL("./fixtures/workers-pubsub.mjs", import.meta.url));
const BROKEN = /Assertion|uv_loop_close/;
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const brokers: Broker[] = [];
const clis: WorkersCli[] = [];
const allClients: Client[] = [];
afterEach(() => {
  for (const c of allClients.splice(0)) c.ws.terminate();
});
afterAll(async () => {
  killChildren();
  await Promise.all(brokers.map((b) => b.kill()));
});

async function processes(kind: BrokerKind, count: number, threads = 1, env: Record<string, string> = {}): Promise<{ broker: Broker; urls: URL[] }> {
  const broker = await Broker.start(kind);
  brokers.push(broker);
  const started = range(count).map(() => startWorkers(ENTRY, threads, env, ["--backplane", broker.url]));
  clis.push(...started);
  const urls = await Promise.all(started.map((cli) => withTimeout(cli.url, 15_000, "the listening line")));
  return { broker, urls };
}

async function stats(url: URL): Promise<{ state: string; subscriptions: number; dropped: number; received: number; published: number }> {
  return JSON.parse(await getText(url, "/backplane"));
}

/**
 * Publishes probe rounds ("m probeP… T 0") from every process to `topics` until every client has
 * one from every process: each process then listens at the broker for its clients' topics.
 * The probe lines are dropped afterwards.
 */
async function warmUp(urls: URL[], clients: Client[], topics: string[]): Promise<void> {
  for (let round = 0; ; round++) {
    await Promise.all(urls.map((url, p) => getText(url, `/publish?topics=${topics.join(",")}&id=probe${p}r${round}&count=1`)));
    await sleep(50);
    if (clients.every((c) => urls.every((_, p) => c.received.some((line) => line.startsWith(`m probe${p}r`))))) break;
    if (round > 200) throw new Error("the processes did not link through the broker in time");
  }
  await sleep(300);
  for (const c of clients) {
    const kept = c.received.filter((line) => !line.startsWith("m probe"));
    c.received.length = 0;
    c.received.push(...kept);
  }
}

async function connectMany(url: URL, n: number, path: (i: number) => string): Promise<Client[]> {
  const clients: Client[] = [];
  for (let i = 0; i < n; i++) clients.push(await connect(url, path(i)));
  allClients.push(...clients);
  return clients;
}

async function stopAll(): Promise<void> {
  for (const cli of clis.splice(0)) {
    cli.child.kill("SIGINT");
    expect(await withTimeout(cli.exited, 10_000, "the process to exit")).toBe(0);
    expect(cli.stderr()).not.toMatch(BROKEN);
  }
}

for (const kind of ["redis", "nats"] as const) {
  const available = (kind === "redis" ? REDIS_SERVER : NATS_SERVER) !== null;

  describe.skipIf(!available)(brokerTitle(`uwserve --backplane ${kind}: pub/sub across processes`, kind), { timeout: 40_000 }, () => {
    it("3 processes, 300 clients, 10 topics, ws.publish and server.publish on every process: every subscriber gets every message of its topics exactly once, in order per publisher", async () => {
      const { urls } = await processes(kind, 3);
      const TOPICS = range(10).map((i) => `t${i}`);
      const topicsOf = (i: number) => range(1 + (i % 3)).map((k) => TOPICS[(i * 7 + k * 3 + Math.floor(i / 10)) % 10]!);
      const perProcess = await Promise.all(urls.map((url, p) => connectMany(url, 100, (i) => `/ws?topics=${topicsOf(p * 100 + i).join(",")}`)));
      const clients = perProcess.flat();
      const topics = new Map(clients.map((client, i) => [client, topicsOf(i)]));
      await warmUp(urls, clients, TOPICS);
      for (const url of urls) expect((await stats(url)).subscriptions).toBe(10);

      const COUNT = 20;
      // One ws publisher per process (itself a subscriber: publishToSelf is off), and one HTTP publisher per process.
      const wsPublishers = perProcess.map((list) => list[0]!);
      const idOf = new Map(wsPublishers.map((client, p) => [client, `w${p}`]));
      for (const [client, id] of idOf) for (const seq of range(COUNT)) for (const topic of TOPICS) client.ws.send(`pub ${topic} m ${id} ${topic} ${seq}`);
      const httpIds = urls.map((_, p) => `h${p}`);
      await Promise.all(urls.map((url, p) => getText(url, `/publish?topics=${TOPICS.join(",")}&id=${httpIds[p]}&count=${COUNT}`)));

      const expected = new Map<Client, Map<string, number>>();
      for (const client of clients) {
        const want = new Map<string, number>();
        for (const topic of topics.get(client)!) {
          for (const [publisher, id] of idOf) if (publisher !== client) want.set(`${id} ${topic}`, COUNT);
          for (const id of httpIds) want.set(`${id} ${topic}`, COUNT);
        }
        expected.set(client, want);
      }
      const total = (client: Client) => [...expected.get(client)!.values()].reduce((a, b) => a + b, 0);
      await poll(() => clients.every((c) => published(c.received) >= total(c)), 20_000);
      await sleep(300);
      const problems = clients.flatMap((client, i) => differences(`client ${i} (process ${Math.floor(i / 100)}, ${topics.get(client)})`, client.received, expected.get(client)!));
      expect(problems.slice(0, 20)).toEqual([]);
      for (const url of urls) expect((await stats(url)).dropped).toBe(0);
      await stopAll();
    });

    it.each([
      [false, "never gets its own message"],
      [true, "gets its own message exactly once"],
    ])("publishToSelf: %s — across processes the publishing socket %s, every other socket gets it once", async (publishToSelf) => {
      const { urls } = await processes(kind, 3, 1, { UWSERVE_TEST_PUBLISH_TO_SELF: publishToSelf ? "1" : "0" });
      const perProcess = await Promise.all(urls.map((url) => connectMany(url, 3, () => "/ws?topics=self")));
      const clients = perProcess.flat();
      await warmUp(urls, clients, ["self"]);
      const publishers = perProcess.map((list) => list[0]!);
      const COUNT = 5;
      const expected = publishFromEach(publishers, clients, "self", COUNT, publishToSelf);
      await poll(() => clients.every((c) => published(c.received) >= expected.get(c)!.size * COUNT), 5000);
      await sleep(300);
      expect(clients.flatMap((client, i) => differences(`client ${i}`, client.received, expected.get(client)!))).toEqual([]);
      publishers.forEach((publisher, i) => {
        expect(tally(publisher.received).get(`p${i} self`) ?? []).toEqual(publishToSelf ? range(COUNT) : []);
      });
      await stopAll();
    });

    it("subscribe/unsubscribe churn on one process while another publishes: a steady subscriber gets everything once in order, churning ones never a duplicate", async () => {
      const { urls } = await processes(kind, 2);
      const [steady] = await connectMany(urls[1]!, 1, () => "/ws?topics=churn");
      const churners = await connectMany(urls[1]!, 5, () => "/ws");
      await warmUp(urls, [steady!], ["churn"]);
      let churning = true;
      const churn = (async () => {
        for (let round = 0; churning; round++) {
          await Promise.all(churners.map((c, i) => command(c, (round + i) % 2 === 0 ? "sub churn" : "unsub churn", (round + i) % 2 === 0 ? "subbed churn" : "unsubbed churn")));
        }
      })();
      const BATCHES = 20;
      for (let b = 0; b < BATCHES; b++) {
        await getText(urls[0]!, `/publish?topics=churn&id=b${b}&count=50`);
        await sleep(20);
      }
      churning = false;
      await churn;
      const expected = new Map(range(BATCHES).map((b) => [`b${b} churn`, 50]));
      await poll(() => published(steady!.received) >= BATCHES * 50, 10_000);
      await sleep(300);
      expect(differences("steady", steady!.received, expected)).toEqual([]);
      expect(churners.flatMap((c, i) => disorder(`churner ${i}`, c.received))).toEqual([]);
      // Each churner's interest came and went many times; the broker subscription outlived none of it.
      expect(churners.some((c) => published(c.received) > 0)).toBe(true);
      await stopAll();
    });

    describe.runIf(HAS_WORKERS)("two processes × two worker threads (the hub inside, the broker between)", () => {
      it("every socket on every thread of both processes gets every other socket's messages once, in order; one broker connection per process", async () => {
        const { urls } = await processes(kind, 2, 2);
        const perProcess = await Promise.all(urls.map((url) => connectAcrossThreads(url, { threads: 2, perThread: 3, path: () => "/ws?topics=x" })));
        allClients.push(...perProcess.flat());
        const clients = perProcess.flat();
        await warmUp(urls, clients, ["x"]);
        // One publisher per thread per process.
        const publishers = perProcess.flatMap((list) => [...new Map(list.map((c) => [c.thread, c])).values()]);
        expect(publishers).toHaveLength(4);
        const COUNT = 30;
        const expected = publishFromEach(publishers, clients, "x", COUNT);
        await poll(() => clients.every((c) => published(c.received) >= expected.get(c)!.size * COUNT), 10_000);
        await sleep(300);
        expect(clients.flatMap((client, i) => differences(`client ${i} (${client.thread})`, client.received, expected.get(client)!))).toEqual([]);
        // Every thread reports its process's one connection (shared counters).
        for (const url of urls) {
          const seen = await Promise.all(range(6).map(() => stats(url)));
          for (const s of seen) expect(s).toMatchObject({ state: "connected", subscriptions: 1, dropped: 0 });
        }
        if (kind === "redis") {
          const clientList = await brokerClientCount(brokers.at(-1)!);
          // Two connections per process (Redis pub/sub needs a dedicated one), whatever the thread count.
          expect(clientList).toBe(4);
        }
        await stopAll();
      });
    });
  });
}

async function brokerClientCount(broker: Broker): Promise<number> {
  const { createClient } = await import("redis");
  const c = createClient({ url: broker.url });
  await c.connect();
  try {
    const list = String(await c.sendCommand(["CLIENT", "LIST"]));
    return list.trim().split("\n").length - 1; // minus this one
  } finally {
    c.destroy();
  }
}
