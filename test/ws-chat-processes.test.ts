// The chat example (examples/chat/) as two processes: two `uwserve --backplane redis://…` CLI
// children on examples/chat/server.ts with CHAT_REDIS_URL set, one real redis-server. Messages and
// join/leave notices cross through the backplane; members and history through Redis
// (examples/chat/redis-rooms.ts). First with `ws` clients (the protocol), then a page in headless
// Chromium on each process (playwright-core, as test/ws-chat-browser.test.ts does).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";
import { createClient } from "redis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { Broker, brokerTitle, REDIS_SERVER } from "./helpers/brokers.js";
import { waitFor, withTimeout } from "./helpers/server.js";
import { CLI, poll, ROOT } from "./helpers/workers.js";

const CHROMIUM = "/usr/bin/chromium";
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const STEP_MS = 5000;
/** The key prefix redis-rooms.ts uses for the chat at /chat. */
const PREFIX = "uwserve-chat:/chat";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Msg = Record<string, any>;

let broker: Broker | undefined;
const children: ChildProcess[] = [];
/** The two chat processes: http://127.0.0.1:PORT */
let a = "";
let b = "";

/** `node dist/cli.js --backplane URL --port 0 --hostname 127.0.0.1 examples/chat/server.ts`, once it listens. */
async function startChat(brokerUrl: string): Promise<string> {
  const child = spawn(process.execPath, [CLI, "--backplane", brokerUrl, "--port", "0", "--hostname", "127.0.0.1", "examples/chat/server.ts"], {
    cwd: ROOT,
    env: { ...process.env, PORT: undefined, NODE_PORT: undefined, CHAT_REDIS_URL: brokerUrl },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => (out += s));
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (out += s));
  await waitFor(() => /uwserve listening on \S+/.test(out) || child.exitCode !== null, 15_000, "the chat to listen").catch((err: Error) => {
    throw new Error(`${err.message}; output:\n${out}`);
  });
  const match = /uwserve listening on (\S+)/.exec(out);
  if (!match) throw new Error(`the chat exited (${child.exitCode}):\n${out}`);
  return new URL(match[1]!).origin;
}

describe.skipIf(REDIS_SERVER === null)(brokerTitle("chat example across two processes (--backplane redis, rooms in Redis)", "redis"), () => {
  beforeAll(async () => {
    broker = await Broker.start("redis");
    [a, b] = await Promise.all([startChat(broker.url), startChat(broker.url)]);
  }, 30_000);
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await broker?.kill();
  });

  describe("protocol, with ws clients", () => {
    const sockets: WebSocket[] = [];
    afterEach(() => {
      for (const ws of sockets.splice(0)) ws.terminate();
    });

    interface Client {
      ws: WebSocket;
      messages: Msg[];
      welcome: Msg;
      next(match: (m: Msg) => boolean, what: string): Promise<Msg>;
    }

    /** Connects to the process at `base` as `name` in `room` and waits for the welcome. */
    async function join(base: string, name: string, room: string): Promise<Client> {
      const ws = new WebSocket(`${base.replace(/^http/, "ws")}/chat/ws?${new URLSearchParams({ name, room })}`);
      sockets.push(ws);
      const messages: Msg[] = [];
      ws.on("message", (data) => messages.push(JSON.parse(String(data)) as Msg));
      ws.on("error", () => {});
      const next = async (match: (m: Msg) => boolean, what: string): Promise<Msg> => {
        let found: Msg | undefined;
        await waitFor(() => (found = messages.find(match)) !== undefined, STEP_MS, `${name}: ${what}`);
        return found!;
      };
      const welcome = await next((m) => m.type === "welcome", "welcome");
      return { ws, messages, welcome, next };
    }
    const say = (client: Client, text: string) => client.ws.send(JSON.stringify({ type: "message", text }));
    const said = (client: Client, name: string, text: string) =>
      client.next((m) => m.type === "message" && m.name === name && m.text === text, `"${text}" from ${name}`);

    it("members, messages and history span the processes; ids are the room's 1, 2, 3…", async () => {
      const alice = await join(a, "alice", "lobby");
      expect(alice.welcome).toEqual({ type: "welcome", name: "alice", room: "lobby", members: ["alice"], history: [] });
      const bob = await join(b, "bob", "lobby");
      expect(bob.welcome).toMatchObject({ members: ["alice", "bob"], history: [] });
      // bob's notice went from process B through the broker: by now B listens on the room too.
      await alice.next((m) => m.type === "join" && m.name === "bob", "bob's join notice");

      say(alice, "from A");
      const first = await said(bob, "alice", "from A");
      say(bob, "from B");
      const second = await said(alice, "bob", "from B");
      await said(alice, "alice", "from A"); // the sender gets its own message back
      await said(bob, "bob", "from B");
      expect([first.id, second.id]).toEqual([1, 2]);
      for (const client of [alice, bob]) {
        expect(client.messages.filter((m) => m.type === "message").map((m) => [m.id, m.name, m.text])).toEqual([[1, "alice", "from A"], [2, "bob", "from B"]]);
      }

      // Newcomers on either process get the whole room: both members and both messages.
      for (const [base, name] of [[b, "carol"], [a, "dave"]] as const) {
        const late = await join(base, name, "lobby");
        expect(late.welcome.history.map((m: Msg) => [m.id, m.name, m.text])).toEqual([[1, "alice", "from A"], [2, "bob", "from B"]]);
        expect(late.welcome.members.slice(0, 3)).toEqual(["alice", "bob", "carol"]);
      }
      await alice.next((m) => m.type === "join" && m.name === "dave", "dave's join notice");
      await bob.next((m) => m.type === "join" && m.name === "dave", "dave's join notice");

      // A leave on B reaches A; the next welcome no longer lists bob.
      bob.ws.close();
      await alice.next((m) => m.type === "leave" && m.name === "bob", "bob's leave notice");
      const erin = await join(a, "erin", "lobby");
      expect(erin.welcome.members).toEqual(["alice", "carol", "dave", "erin"]);
    });

    it("moving rooms and closing leave nobody behind in Redis; a crashed process's members are dropped", async () => {
      const redis = createClient({ url: broker!.url });
      await redis.connect();
      try {
        const alice = await join(a, "alice", "red");
        const bob = await join(b, "bob", "red");
        await alice.next((m) => m.type === "join" && m.name === "bob", "bob's join notice");
        bob.ws.send(JSON.stringify({ type: "join", room: "green" }));
        await alice.next((m) => m.type === "leave" && m.name === "bob", "bob's leave notice");
        const welcome = await bob.next((m) => m.type === "welcome" && m.room === "green", "bob's welcome to green");
        expect(welcome.members).toEqual(["bob"]);
        expect(await redis.hLen(`${PREFIX}:members:red`)).toBe(1);
        expect(await redis.hLen(`${PREFIX}:members:green`)).toBe(1);
        alice.ws.close();
        bob.ws.terminate();
        const left = async () => (await redis.hLen(`${PREFIX}:members:red`)) + (await redis.hLen(`${PREFIX}:members:green`));
        expect(await poll(async () => (await left()) === 0, STEP_MS), "the members to be gone from Redis").toBe(true);

        // A member of a process whose heartbeat key is gone (it crashed): not listed, and removed.
        await redis.hSet(`${PREFIX}:members:red`, "dead-node socket-1", JSON.stringify({ name: "ghost", since: 1 }));
        const carol = await join(b, "carol", "red");
        expect(carol.welcome.members).toEqual(["carol"]);
        expect(await redis.hKeys(`${PREFIX}:members:red`)).toHaveLength(1);
      } finally {
        redis.destroy();
      }
    });
  });

  const browserTitle = HAVE_CHROMIUM
    ? "a page on each process, in headless Chromium"
    : `a page on each process, in headless Chromium — skipped: ${CHROMIUM} is missing (apt-get install chromium; .ci/run does)`;

  describe.skipIf(!HAVE_CHROMIUM)(browserTitle, () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      });
    });
    afterAll(async () => {
      await browser?.close();
    });

    const problems = new Map<Page, string[]>();

    /** Opens the page on `base` in its own browser context, joins `room` as `name`. */
    async function joinAs(base: string, name: string, room: string): Promise<Page> {
      const page = await (await browser.newContext()).newPage();
      page.setDefaultTimeout(STEP_MS);
      const seen: string[] = [];
      problems.set(page, seen);
      page.on("pageerror", (err) => seen.push(String(err)));
      page.on("console", (msg) => {
        if (msg.type() === "error") seen.push(msg.text());
      });
      await page.goto(`${base}/chat`);
      await page.fill("#name", name);
      await page.fill("#room", room);
      await page.click("#join");
      await expectText(page, "#status", `Connected to ${room} as ${name}.`);
      return page;
    }

    async function send(page: Page, text: string): Promise<void> {
      await page.fill("#text", text);
      await page.click("#send");
    }

    async function expectText(page: Page, selector: string, text: string): Promise<void> {
      await page.waitForFunction(([sel, want]) => document.querySelector(sel)?.textContent?.includes(want) ?? false, [selector, text] as const, { timeout: STEP_MS })
        .catch(async (err: Error) => {
          throw new Error(`${selector} never contained ${JSON.stringify(text)}; it has ${JSON.stringify(await page.textContent(selector))} (${err.message})`);
        });
    }

    const logOf = async (page: Page) => (await page.$$eval("#log li", (items) => items.map((li) => li.textContent ?? ""))).join("\n");
    const membersOf = (page: Page) => page.$$eval("#members li", (items) => items.map((li) => li.textContent ?? ""));

    it("a message typed on one page appears on the other; members and history span the processes", { timeout: 60_000 }, async () => {
      const alice = await joinAs(a, "alice", "browsers");
      const bob = await joinAs(b, "bob", "browsers");
      expect(await membersOf(bob)).toEqual(["alice", "bob"]);
      await expectText(alice, "#log", "bob joined.");
      expect(await membersOf(alice)).toEqual(["alice", "bob"]);

      await send(alice, "hello from process A");
      await expectText(bob, "#log", "alice: hello from process A");
      await send(bob, "hello from process B");
      await expectText(alice, "#log", "bob: hello from process B");
      await expectText(bob, "#log", "bob: hello from process B");

      // Joining later, on either process: the history holds what was said on both.
      for (const [base, name] of [[a, "carol"], [b, "dave"]] as const) {
        const late = await joinAs(base, name, "browsers");
        const log = await logOf(late);
        expect(log).toContain("alice: hello from process A");
        expect(log).toContain("bob: hello from process B");
        expect(log.indexOf("alice: hello from process A")).toBeLessThan(log.indexOf("bob: hello from process B"));
        for (const who of ["alice", "bob", name]) expect(await membersOf(late)).toContain(who);
      }
      await expectText(alice, "#members", "dave");
      await expectText(bob, "#members", "carol");
      // Each message shows once on every page (no copy from both the history and the live feed).
      for (const page of [alice, bob]) expect((await logOf(page)).split("hello from process A").length - 1).toBe(1);

      for (const [page, seen] of problems) {
        expect(seen).toEqual([]);
        await page.context().close();
      }
    });
  });
});
