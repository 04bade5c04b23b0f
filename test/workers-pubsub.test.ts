// Pub/sub across `uwserve --workers N` threads, at the server level: real CLI processes, real
// sockets, `ws` clients, and every message counted (issue 6, item 5). The entry is
// test/fixtures/workers-pubsub.mjs (its header lists the commands a client can send).
//
// Published messages read "m PUBLISHER TOPIC SEQ"; a client tallies them per publisher and topic,
// and a check wants exactly the sequence 0..N-1 (so: nothing lost, nothing twice, in order).
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { HAS_WORKERS } from "./helpers/core.js";
import WebSocket from "ws";
import { withTimeout } from "./helpers/server.js";
import { RawWs } from "./helpers/ws.js";
import { command, connectAcrossThreads, connect, differences, disorder, getText, killChildren, poll, publishFromEach, published, startWorkers, summary, tally, type Client, type WorkersCli } from "./helpers/workers.js";

const ENTRY = fileURLToPath(new URL("./fixtures/workers-pubsub.mjs", import.meta.url));
// examples/chat/server.ts, with the thread a socket is on as its first message.
const CHAT = fileURLToPath(new URL("./fixtures/chat-workers.ts", import.meta.url));
const BROKEN = /Assertion|uv_loop_close/;

afterAll(() => killChildren());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** A small seeded PRNG (mulberry32), so a failing run can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function threadsOf(clients: readonly Client[]): string[] {
  return [...new Set(clients.map((c) => c.thread))];
}

async function listening(cli: WorkersCli): Promise<URL> {
  return withTimeout(cli.url, 15_000, "the listening line");
}

async function stopWithSigint(cli: WorkersCli): Promise<void> {
  cli.child.kill("SIGINT");
  expect(await withTimeout(cli.exited, 10_000, "the process to exit")).toBe(0);
  expect(cli.stderr()).not.toMatch(BROKEN);
}

describe.runIf(HAS_WORKERS)("uwserve --workers: pub/sub across threads", { timeout: 20_000 }, () => {
  it("300 clients on 3 threads, 10 topics, ws.publish and server.publish from several threads: every subscriber gets every message of its topics exactly once, in order per publisher", async () => {
    const cli = startWorkers(ENTRY, 3);
    const url = await listening(cli);
    const TOPICS = range(10).map((i) => `t${i}`);
    // 1 to 3 topics each, spread over all ten.
    const topicsOf = (i: number) => range(1 + (i % 3)).map((k) => TOPICS[(i * 7 + k * 3 + Math.floor(i / 10)) % 10]!);
    const clients = await connectAcrossThreads(url, { threads: 3, perThread: 20, min: 300, max: 400, path: (i) => `/ws?topics=${topicsOf(i).join(",")}` });
    const threads = threadsOf(clients);
    expect(threads).toHaveLength(3);
    const topics = new Map(clients.map((client, i) => [client, topicsOf(i)]));
    expect(new Set(clients.flatMap((c) => topics.get(c)!)).size).toBe(10);

    // One ws publisher per thread, each itself a subscriber (so it must not get its own messages:
    // publishToSelf is false), each publishing 20 numbered messages to all ten topics from
    // `message`, 200 frames sent at once (more than a loop turn's batch, so some are deferred).
    const COUNT = 20;
    const wsPublishers = threads.map((thread) => clients.find((c) => c.thread === thread)!);
    const idOf = new Map(wsPublishers.map((client, i) => [client, `w${i}`]));
    for (const [client, id] of idOf) {
      for (const seq of range(COUNT)) for (const topic of TOPICS) client.ws.send(`pub ${topic} m ${id} ${topic} ${seq}`);
    }
    // Meanwhile server.publish from HTTP requests (each a publisher of its own, on whichever thread
    // the kernel picks): waves of three until they came from at least two threads.
    const httpPublishers: string[] = [];
    const httpThreads = new Set<string>();
    for (let wave = 0; wave < 5 && httpThreads.size < 2; wave++) {
      const ids = range(3).map((k) => `h${wave * 3 + k}`);
      const answers = await Promise.all(ids.map((id) => getText(url, `/publish?topics=${TOPICS.join(",")}&id=${id}&count=${COUNT}`)));
      for (const answer of answers) {
        expect(answer).toMatch(/^published \d+$/);
        httpThreads.add(answer.split(" ")[1]!);
      }
      httpPublishers.push(...ids);
    }
    expect(httpThreads.size).toBeGreaterThanOrEqual(2);

    const expected = new Map<Client, Map<string, number>>();
    for (const client of clients) {
      const want = new Map<string, number>();
      for (const topic of topics.get(client)!) {
        for (const [publisher, id] of idOf) if (publisher !== client) want.set(`${id} ${topic}`, COUNT);
        for (const id of httpPublishers) want.set(`${id} ${topic}`, COUNT);
      }
      expected.set(client, want);
    }
    const total = (client: Client) => [...expected.get(client)!.values()].reduce((a, b) => a + b, 0);
    await poll(() => clients.every((c) => published(c.received) >= total(c)), 12_000);
    await sleep(300); // anything extra (a duplicate, a message to self) would arrive by now
    const problems = clients.flatMap((client, i) => differences(`client ${i} (${client.thread}, ${topics.get(client)})`, client.received, expected.get(client)!));
    expect(problems.slice(0, 20)).toEqual([]);
    expect(clients.flatMap((c) => c.received.filter((line) => !line.startsWith("m ")))).toEqual([]);

    for (const client of clients) client.ws.close();
    await stopWithSigint(cli);
  });

  it.each([
    [false, "never gets its own message"],
    [true, "gets its own message exactly once"],
  ])("publishToSelf: %s — across threads the publishing socket %s, the sockets on every thread get it once", async (publishToSelf) => {
    const cli = startWorkers(ENTRY, 3, { UWSERVE_TEST_PUBLISH_TO_SELF: publishToSelf ? "1" : "0" });
    const url = await listening(cli);
    const clients = await connectAcrossThreads(url, { threads: 3, perThread: 3, path: () => "/ws?topics=self" });
    const threads = threadsOf(clients);
    expect(threads).toHaveLength(3);
    const publishers = threads.map((thread) => clients.find((c) => c.thread === thread)!);
    const COUNT = 5;
    const expected = publishFromEach(publishers, clients, "self", COUNT, publishToSelf);
    await poll(() => clients.every((c) => published(c.received) >= expected.get(c)!.size * COUNT), 5000);
    await sleep(300);
    const problems = clients.flatMap((client, i) => differences(`client ${i} (${client.thread})`, client.received, expected.get(client)!));
    expect(problems).toEqual([]);
    // The publishers themselves, spelled out.
    publishers.forEach((publisher, i) => {
      expect(tally(publisher.received).get(`p${i} self`) ?? []).toEqual(publishToSelf ? range(COUNT) : []);
    });

    for (const client of clients) client.ws.close();
    await stopWithSigint(cli);
  });

  it("messages from another thread that a congested subscriber here loses are counted in droppedMessages() on this thread", async () => {
    const cli = startWorkers(ENTRY, 2, { UWSERVE_TEST_BACKPRESSURE: String(256 * 1024) });
    const url = await listening(cli);
    // One talking client per thread: a publisher on one, an observer on the other.
    const clients = await connectAcrossThreads(url, { threads: 2 });
    const observer = clients[0]!;
    const publisher = clients.find((c) => c.thread !== observer.thread)!;
    // A subscriber on the observer's thread that never reads.
    let slow: RawWs | null = null;
    const raws: RawWs[] = [];
    for (let i = 0; i < 50 && slow === null; i++) {
      const raw = await RawWs.open(Number(url.port), "/ws?topics=slow");
      raws.push(raw);
      await raw.until(() => raw.dataFrames.length > 0, 3000, "the welcome");
      if (raw.dataFrames[0]!.payload.toString() === observer.thread) slow = raw;
    }
    expect(slow).not.toBeNull();
    slow!.socket.pause();
    try {
      // Rounds with gaps, so this thread sees the subscriber congested before the next round.
      for (let round = 0; round < 8; round++) {
        publisher.ws.send("flood slow 20");
        await poll(() => publisher.received.includes("flooded slow"), 3000);
        publisher.received.length = 0;
        await sleep(150);
      }
      observer.ws.send("dropped slow");
      expect(await poll(() => observer.received.some((m) => m.startsWith("dropped ")), 3000)).toBe(true);
      const [, count, thread] = observer.received.find((m) => m.startsWith("dropped "))!.split(" ");
      expect(`thread ${thread}`).toBe(observer.thread);
      expect(Number(count)).toBeGreaterThan(0);
    } finally {
      for (const raw of raws) raw.destroy();
      for (const client of clients) client.ws.terminate();
      cli.child.kill("SIGKILL");
    }
  });

  it("subscribe/unsubscribe churn on two threads while a third publishes: no crash, no duplicate, order kept; a steady subscriber gets everything; a final round reaches exactly the current subscribers; subscriberCount totals the threads", async () => {
    const cli = startWorkers(ENTRY, 3);
    const url = await listening(cli);
    const clients = await connectAcrossThreads(url, { threads: 3, perThread: 4, path: () => "/ws" });
    const [a, b, c] = threadsOf(clients);
    expect(c).toBeDefined();
    const on = (thread: string | undefined) => clients.filter((client) => client.thread === thread);
    const publisher = on(c)[0]!;
    const steady = [on(a)[0]!, on(c)[1]!]; // one on a churning thread, one beside the publisher
    // Thread b has only churners: its count in the hub drops to zero and comes back, over and over.
    const churners = [...on(a).slice(1, 4), ...on(b).slice(0, 3)];
    for (const client of steady) await command(client, "sub churn", "subbed churn");

    const rnd = random(0x5eed);
    let streaming = true;
    let sent = 0;
    const stream = (async () => {
      const until = Date.now() + 1500;
      while (Date.now() < until) {
        for (let k = 0; k < 4; k++) publisher.ws.send(`pub churn m P churn ${sent++}`);
        await sleep(2);
      }
      streaming = false;
    })();
    const finalState = new Map<Client, boolean>();
    const churn = churners.map(async (client, i) => {
      let subs = 0;
      let unsubs = 0;
      const acked = () => client.received.filter((l) => l === "subbed churn").length === subs && client.received.filter((l) => l === "unsubbed churn").length === unsubs;
      const send = (cmd: "sub" | "unsub") => {
        client.ws.send(`${cmd} churn`);
        if (cmd === "sub") subs++;
        else unsubs++;
      };
      while (streaming) {
        // Bursts of 1–3 commands without waiting, so a subscribe twice or an unsubscribe of
        // nothing happens too; then wait for the answers and pause 0–3 ms.
        const burst = 1 + Math.floor(rnd() * 3);
        for (let k = 0; k < burst; k++) send(rnd() < 0.5 ? "sub" : "unsub");
        if (!(await poll(acked, 5000))) throw new Error(`churner ${i}: commands unanswered`);
        await sleep(Math.floor(rnd() * 4));
      }
      // Half stay subscribed.
      const last = i % 2 === 0;
      send(last ? "sub" : "unsub");
      if (!(await poll(acked, 5000))) throw new Error(`churner ${i}: last command unanswered`);
      finalState.set(client, last);
      return subs + unsubs;
    });
    await stream;
    const commands = await Promise.all(churn);
    expect(Math.min(...commands)).toBeGreaterThan(10);

    // The steady subscribers get the whole stream; everyone else what they get in order, once.
    await poll(() => steady.every((client) => published(client.received) >= sent), 10_000);
    await sleep(300);
    expect(steady.flatMap((client, i) => differences(`steady ${i} (${client.thread})`, client.received, new Map([["P churn", sent]])))).toEqual([]);
    expect(churners.flatMap((client, i) => disorder(`churner ${i} (${client.thread})`, client.received))).toEqual([]);
    const churned = churners.map((client) => published(client.received));
    expect(churned.reduce((x, y) => x + y, 0)).toBeGreaterThan(0); // the churners did catch some
    expect(Math.max(...churned)).toBeLessThan(sent); // and did miss some
    expect(tally(publisher.received).size).toBe(0);

    // A final round after the churn: exactly the current subscribers, each once.
    const subscribers = new Set([...steady, ...churners.filter((client) => finalState.get(client))]);
    const before = new Map(clients.map((client) => [client, client.received.length]));
    for (const seq of range(5)) publisher.ws.send(`pub churn m F churn ${seq}`);
    await poll(() => [...subscribers].every((client) => published(client.received.slice(before.get(client)!)) >= 5), 5000);
    await sleep(300);
    const finalProblems = clients.flatMap((client, i) =>
      differences(`client ${i} (${client.thread}${subscribers.has(client) ? ", subscribed" : ""})`, client.received.slice(before.get(client)!), new Map(subscribers.has(client) ? [["F churn", 5]] : [])),
    );
    expect(finalProblems).toEqual([]);

    // subscriberCount: the total over the three threads, whichever thread answers.
    const answers = new Map<string, number>();
    const counted = await poll(async () => {
      const [count, thread] = (await getText(url, "/count?topic=churn")).split(" ");
      answers.set(thread!, Number(count));
      return answers.size === 3 && [...answers.values()].every((n) => n === subscribers.size);
    }, 8000);
    expect(counted).toBe(true);
    expect([...answers.values()]).toEqual([subscribers.size, subscribers.size, subscribers.size]);

    expect(cli.stderr()).not.toMatch(/starting a new one|Error/);
    for (const client of clients) client.ws.close();
    await stopWithSigint(cli);
  });

  it("a worker that crashes mid-stream: the survivors keep getting every message of the surviving publishers, once and in order; the replacement serves new clients; SIGINT exits 0", async () => {
    const cli = startWorkers(ENTRY, 3);
    const url = await listening(cli);
    const clients = await connectAcrossThreads(url, { threads: 3, perThread: 3, path: () => "/ws?topics=s" });
    const threads = threadsOf(clients);
    expect(threads).toHaveLength(3);
    // One publisher per thread (a subscriber too), each streaming numbered messages.
    const publishers = threads.map((thread) => clients.find((c) => c.thread === thread)!);
    const sent = publishers.map(() => 0);
    let running = true;
    const pump = (async () => {
      while (running) {
        publishers.forEach((publisher, i) => {
          if (publisher.ws.readyState !== WebSocket.OPEN) return;
          for (let k = 0; k < 2; k++) publisher.ws.send(`pub s m p${i} s ${sent[i]!++}`);
        });
        await sleep(5);
      }
    })();
    await sleep(300);

    const answer = await getText(url, "/crash");
    expect(answer).toMatch(/^crashing \d+$/);
    const crashed = `thread ${answer.split(" ")[1]}`;
    expect(threads).toContain(crashed);
    expect(await poll(() => /starting a new one/.test(cli.stderr()), 10_000)).toBe(true);
    expect(cli.stderr()).toMatch(/worker \d exited with code 1; starting a new one/);
    // The crashed thread's clients are cut off (not left hanging).
    const victims = clients.filter((client) => client.thread === crashed);
    await withTimeout(Promise.all(victims.map((client) => client.closed)), 5000, "the crashed thread's clients to close");

    // New connections are served: keep connecting until one lands on the replacement thread.
    const late: Client[] = [];
    const served = await poll(async () => {
      // A connection the dying listener had queued may be reset: count only those served.
      const client = await connect(url, "/ws?topics=s").catch(() => null);
      if (client === null) return false;
      late.push(client);
      return !threads.includes(client.thread);
    }, 10_000);
    expect(served).toBe(true);
    await sleep(300);
    running = false;
    await pump;

    const survivors = publishers.map((publisher, i) => [publisher, i] as const).filter(([publisher]) => publisher.thread !== crashed);
    expect(survivors).toHaveLength(2);
    const deadPublisher = publishers.findIndex((publisher) => publisher.thread === crashed);
    const alive = clients.filter((client) => client.thread !== crashed);
    const wanted = (client: Client) => survivors.filter(([publisher]) => publisher !== client);
    await poll(
      () =>
        [...alive, ...late].every((client) => {
          const seen = tally(client.received);
          return wanted(client).every(([, i]) => seen.get(`p${i} s`)?.at(-1) === sent[i]! - 1);
        }),
      10_000,
    );
    await sleep(300);
    const problems: string[] = [];
    alive.forEach((client, n) => {
      const name = `client ${n} (${client.thread})`;
      const seen = tally(client.received);
      // Everything from the surviving publishers, before and after the crash.
      const expected = new Map<string, number>(wanted(client).map(([, i]) => [`p${i} s`, sent[i]!]));
      const fromDead = `p${deadPublisher} s`;
      if (seen.has(fromDead)) expected.set(fromDead, seen.get(fromDead)!.length); // whatever it got before the crash…
      problems.push(...differences(name, client.received, expected)); // …from 0, in order, once
    });
    late.forEach((client, n) => {
      // Joined mid-stream: a contiguous run up to each surviving publisher's last message.
      const seen = tally(client.received);
      for (const [, i] of survivors) {
        const got = seen.get(`p${i} s`) ?? [];
        if (got.length === 0 || got.some((seq, k) => seq !== got[0]! + k) || got.at(-1) !== sent[i]! - 1) {
          problems.push(`late ${n} (${client.thread}) from p${i}: [${summary(got)}], ${sent[i]} sent`);
        }
      }
      if (seen.has(`p${deadPublisher} s`)) problems.push(`late ${n} got messages of the dead publisher`);
    });
    expect(problems.slice(0, 20)).toEqual([]);

    // The process is up, and every thread (the replacement included) answers.
    expect(await getText(url, "/thread")).toMatch(/^\d+$/);
    for (const client of [...alive, ...late]) client.ws.close();
    await stopWithSigint(cli);
  });

  it.each(["SIGINT", "GET /stop"])("graceful stop with WebSockets open on every thread (%s): each client gets 1001, the process exits 0", async (how) => {
    const cli = startWorkers(ENTRY, 3);
    const url = await listening(cli);
    const clients = await connectAcrossThreads(url, { threads: 3, perThread: 3, path: () => "/ws?topics=s" });
    const threads = threadsOf(clients);
    expect(threads).toHaveLength(3);
    // Messages keep flowing across the threads while they stop.
    const publishers = threads.map((thread) => clients.find((c) => c.thread === thread)!);
    let seq = 0;
    const pump = setInterval(() => {
      for (const publisher of publishers) if (publisher.ws.readyState === WebSocket.OPEN) publisher.ws.send(`pub s m p s ${seq++}`);
    }, 2);
    await sleep(100);
    if (how === "SIGINT") cli.child.kill("SIGINT");
    else expect(await getText(url, "/stop")).toBe("stopping");
    const closes = await withTimeout(Promise.all(clients.map((client) => client.closed)), 10_000, "every client to be closed").finally(() => clearInterval(pump));
    expect(seq).toBeGreaterThan(0);
    expect(closes.map((close) => close.code)).toEqual(clients.map(() => 1001));
    expect(await withTimeout(cli.exited, 10_000, "the process to exit")).toBe(0);
    expect(cli.stderr()).not.toMatch(BROKEN);
    expect(cli.stderr()).not.toMatch(/starting a new one/);
  });

  it("examples/chat under --workers 3: every client, on every thread, gets every chat message of its room once, in order per sender, and the join/leave notices; every thread knows the whole room (members, history, leaves) and message ids are unique", async () => {
    const cli = startWorkers(CHAT, 3);
    const url = await listening(cli);
    interface ChatClient {
      ws: WebSocket;
      name: string;
      room: string;
      /** The worker thread it is on: the fixture's first message. */
      thread: number;
      welcome: Record<string, unknown>;
      events: Array<Record<string, unknown>>;
      closed: Promise<number>;
    }
    const chatConnect = async (name: string, room: string): Promise<ChatClient> => {
      // Joins on other threads reach this thread's copy of the room over a BroadcastChannel: a
      // moment apart, as people do.
      await sleep(20);
      const ws = new WebSocket(new URL(`/chat/ws?name=${name}&room=${room}`, url).href.replace(/^http/, "ws"));
      const events: Array<Record<string, unknown>> = [];
      const closed = new Promise<number>((resolve) => ws.on("close", (code) => resolve(code)));
      ws.on("message", (data) => events.push(JSON.parse(String(data))));
      await withTimeout(new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject))), 3000, "the chat socket");
      await poll(() => events.length >= 2, 3000);
      expect(events[0]).toMatchObject({ type: "thread" });
      expect(events[1]).toMatchObject({ type: "welcome", name, room });
      return { ws, name, room, thread: events[0]!.thread as number, welcome: events[1]!, events, closed };
    };
    const sorted = (names: Iterable<string>) => [...names].sort();
    const clients: ChatClient[] = [];
    const inRoom = (room: string) => clients.filter((c) => c.room === room);
    const threadsIn = (room: string) => new Set(inRoom(room).map((c) => c.thread)).size;
    const ROOMS = ["alpha", "beta"];
    const problems: string[] = [];
    while (clients.length < 60 && (clients.length < 12 || ROOMS.some((room) => threadsIn(room) < 3))) {
      const client = await chatConnect(`u${clients.length}`, ROOMS[clients.length % 2]!);
      clients.push(client);
      // The welcome lists everyone in the room, whichever thread they are on.
      const want = sorted(inRoom(client.room).map((c) => c.name));
      const got = sorted(client.welcome.members as string[]);
      if (got.join() !== want.join()) problems.push(`${client.name} (thread ${client.thread}) welcomed with [${got.join()}], wanted [${want.join()}]`);
    }
    expect(ROOMS.map(threadsIn)).toEqual([3, 3]);
    expect(problems).toEqual([]);

    // Three messages from everyone (the chat allows a burst of 20).
    const PER_CLIENT = 3;
    for (const client of clients) for (const k of range(PER_CLIENT)) client.ws.send(JSON.stringify({ type: "message", text: `${client.name} ${k}` }));
    const messages = (client: ChatClient) => client.events.filter((e) => e.type === "message");
    await poll(() => clients.every((client) => messages(client).length >= inRoom(client.room).length * PER_CLIENT), 10_000);
    await sleep(300);
    for (const client of clients) {
      const got = new Map<string, string[]>();
      for (const event of messages(client)) {
        if (event.room !== client.room) problems.push(`${client.name} (${client.room}) got a message of ${String(event.room)}`);
        const list = got.get(event.name as string) ?? [];
        list.push(event.text as string);
        got.set(event.name as string, list);
      }
      for (const sender of inRoom(client.room)) {
        const want = range(PER_CLIENT).map((k) => `${sender.name} ${k}`);
        const have = got.get(sender.name) ?? [];
        if (have.join("|") !== want.join("|")) problems.push(`${client.name} from ${sender.name}: [${have.join(", ")}]`);
      }
      if (got.size !== inRoom(client.room).length) problems.push(`${client.name}: messages from ${[...got.keys()].join(",")}`);
      // Everyone who joined the room later was announced to it once (ws.publish across threads).
      const joins = client.events.filter((e) => e.type === "join").map((e) => e.name as string);
      const room = inRoom(client.room);
      const later = room.slice(room.indexOf(client) + 1).map((c) => c.name);
      if (joins.includes(client.name)) problems.push(`${client.name}: got its own join (ws.publish skips the sender)`);
      if (new Set(joins).size !== joins.length) problems.push(`${client.name}: a join twice [${joins.join(",")}]`);
      for (const name of later) if (!joins.includes(name)) problems.push(`${client.name}: no join for ${name}`);
      for (const name of joins) if (!room.some((c) => c.name === name)) problems.push(`${client.name}: join of ${name} from another room`);
      const errors = client.events.filter((e) => e.type === "error");
      if (errors.length > 0) problems.push(`${client.name}: errors ${JSON.stringify(errors)}`);
    }
    expect(problems.slice(0, 20)).toEqual([]);

    // Message ids: unique across the threads ("THREAD-N", N counting on the sender's thread), and
    // one message has the same id for everyone.
    const ids = new Map<string, Set<string>>();
    for (const client of clients) {
      for (const event of messages(client)) {
        const sender = clients.find((c) => c.name === event.name)!;
        expect(event.id).toMatch(new RegExp(`^${sender.thread}-\\d+$`));
        const seen = ids.get(event.id as string) ?? new Set();
        ids.set(event.id as string, seen.add(event.text as string));
      }
    }
    expect(ids.size).toBe(clients.length * PER_CLIENT);
    expect([...ids.values()].filter((texts) => texts.size !== 1)).toEqual([]);

    // One more message from each thread, in turn, into alpha…
    const alpha = inRoom("alpha");
    const threads = [...new Set(alpha.map((c) => c.thread))];
    const lastTexts = threads.map((thread) => `last from thread ${thread}`);
    for (const [i, thread] of threads.entries()) {
      alpha.find((c) => c.thread === thread)!.ws.send(JSON.stringify({ type: "message", text: lastTexts[i] }));
      await poll(() => alpha.every((c) => messages(c).some((e) => e.text === lastTexts[i])), 5000);
    }
    // …then a newcomer on each thread: its welcome has everyone in the room and the room's last 50
    // messages, from all three threads, whichever thread it is on.
    const sent = alpha.length * PER_CLIENT + threads.length;
    const newcomers: ChatClient[] = [];
    for (let attempt = 0; attempt < 40 && new Set(newcomers.map((c) => c.thread)).size < 3; attempt++) {
      const newcomer = await chatConnect(`n${attempt}`, "alpha");
      newcomers.push(newcomer);
      const { members, history } = newcomer.welcome as { members: string[]; history: Array<Record<string, unknown>> };
      expect(sorted(members)).toEqual(sorted([...alpha, ...newcomers].map((c) => c.name)));
      expect(history).toHaveLength(Math.min(50, sent));
      expect(history.slice(-threads.length).map((m) => m.text)).toEqual(lastTexts);
      expect(new Set(history.map((m) => m.id)).size).toBe(history.length);
      expect(history.every((m) => m.room === "alpha")).toBe(true);
      // The sender's thread, by the id's prefix: all three are there.
      expect(new Set(history.map((m) => String(m.id).split("-")[0])).size).toBe(3);
    }
    expect(new Set(newcomers.map((c) => c.thread)).size).toBe(3);

    // A leave is announced to the room on every thread, once (server.publish from close)…
    const leaving = alpha[0]!;
    leaving.ws.close();
    await leaving.closed;
    const stay = [...alpha.slice(1), ...newcomers];
    const leaves = (client: ChatClient) => client.events.filter((e) => e.type === "leave" && e.name === leaving.name).length;
    await poll(() => stay.every((client) => leaves(client) >= 1), 5000);
    await sleep(200);
    expect(stay.map(leaves)).toEqual(stay.map(() => 1));
    expect(inRoom("beta").map(leaves)).toEqual(inRoom("beta").map(() => 0));
    // …and taken off the members on every thread: a newcomer on another thread doesn't list it.
    const late: ChatClient[] = [];
    for (let attempt = 0; attempt < 30 && !late.some((c) => c.thread !== leaving.thread); attempt++) {
      const client = await chatConnect(`late${attempt}`, "alpha");
      late.push(client);
      expect(sorted(client.welcome.members as string[])).toEqual(sorted([...stay, ...late].map((c) => c.name)));
    }
    expect(late.some((c) => c.thread !== leaving.thread)).toBe(true);

    for (const client of [...clients, ...newcomers, ...late]) client.ws.close();
    await stopWithSigint(cli);
  });
});
