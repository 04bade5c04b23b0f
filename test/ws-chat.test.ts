// The chat example (examples/chat/) over real WebSockets: `ws` clients against the chat mounted in a
// uwserve server, and the standalone server and the demo run by the CLI.
import { spawn, type ChildProcess } from "node:child_process";
import { join as joinPath } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { createChat, type ChatOptions, type ChatSocket } from "../examples/chat/chat.js";
import { ROOT } from "./helpers/client.js";
import { fetchFrom, start, trackServers, waitFor, withTimeout } from "./helpers/server.js";

const track = trackServers();
const DEADLINE_MS = 5000;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Msg = Record<string, any>;

/** A `ws` client that records every JSON message the server sends. */
interface Client {
  ws: WebSocket;
  messages: Msg[];
  /** Resolves with the first message (from `from` on) that matches; rejects after DEADLINE_MS. */
  next(match: (m: Msg) => boolean, what: string, from?: number): Promise<Msg>;
  /** Resolves with the close code and reason. */
  closed: Promise<{ code: number; reason: string }>;
}

const clients: WebSocket[] = [];
afterEach(() => {
  for (const ws of clients.splice(0)) ws.terminate();
});

function connect(port: number, query: string): WebSocket {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/chat/ws?${query}`);
  clients.push(ws);
  return ws;
}

/** Connects as `name` to `room` and waits for the welcome. */
async function join(port: number, name: string, room: string): Promise<Client & { welcome: Msg }> {
  const ws = connect(port, new URLSearchParams({ name, room }).toString());
  const messages: Msg[] = [];
  ws.on("message", (data, isBinary) => {
    expect(isBinary).toBe(false);
    messages.push(JSON.parse(String(data)) as Msg);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on("close", (code, reason) => resolve({ code, reason: String(reason) })),
  );
  ws.on("error", () => {}); // a failed handshake shows up as a close; the tests check that
  const next = async (match: (m: Msg) => boolean, what: string, from = 0): Promise<Msg> => {
    let found: Msg | undefined;
    await waitFor(() => (found = messages.slice(from).find(match)) !== undefined, DEADLINE_MS, `${name}: ${what}`);
    return found!;
  };
  const welcome = await next((m) => m.type === "welcome", "welcome");
  return { ws, messages, next, closed, welcome };
}

const say = (client: Client, text: string): void => client.ws.send(JSON.stringify({ type: "message", text }));
const said = (client: Client, name: string, text: string) =>
  client.next((m) => m.type === "message" && m.name === name && m.text === text, `"${text}" from ${name}`);

function chatServer(options: ChatOptions = {}) {
  const chat = createChat(options);
  // The close codes the server's close handler saw, by user name.
  const closes: Array<[string, number]> = [];
  const websocket = {
    ...chat.websocket,
    close(ws: ChatSocket, code: number) {
      closes.push([ws.data.name, code]);
      chat.websocket.close(ws);
    },
  };
  const server = track(start({ routes: chat.routes, websocket }));
  return { chat, server, port: server.port, closes };
}

describe("chat example: protocol", () => {
  it("serves the page at /chat", async () => {
    const { server } = chatServer();
    const res = await fetchFrom(server, "/chat");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const html = await res.text();
    expect(html).toContain('<form id="join-form">');
    expect(html).toContain("new WebSocket(url)");
  });

  it("welcomes a newcomer with the members and tells the others it joined", async () => {
    const { chat, port } = chatServer();
    const alice = await join(port, "alice", "lobby");
    expect(alice.welcome).toEqual({ type: "welcome", name: "alice", room: "lobby", members: ["alice"], history: [] });

    const bob = await join(port, "  bob  ", "lobby");
    expect(bob.welcome).toMatchObject({ name: "bob", room: "lobby", members: ["alice", "bob"], history: [] });
    const notice = await alice.next((m) => m.type === "join", "bob's join notice");
    expect(notice).toMatchObject({ type: "join", name: "bob", room: "lobby" });
    expect(typeof notice.time).toBe("number");
    // The newcomer gets a welcome, not its own join notice.
    expect(bob.messages.filter((m) => m.type === "join")).toEqual([]);
    expect(chat.members("lobby")).toEqual(["alice", "bob"]);
  });

  it("delivers a message to everyone in the room, the sender included, in the same order", async () => {
    const { port } = chatServer();
    const alice = await join(port, "alice", "lobby");
    const bob = await join(port, "bob", "lobby");
    say(alice, "hi bob");
    say(bob, "hi alice, <b>not bold</b> & ünïcödé 🎉");
    for (const client of [alice, bob]) {
      await said(client, "bob", "hi alice, <b>not bold</b> & ünïcödé 🎉");
      const texts = client.messages.filter((m) => m.type === "message");
      expect(texts.map((m) => [m.name, m.text])).toEqual([
        ["alice", "hi bob"],
        ["bob", "hi alice, <b>not bold</b> & ünïcödé 🎉"],
      ]);
      expect(texts[0]).toMatchObject({ room: "lobby" });
      expect(texts[1].id).toBeGreaterThan(texts[0].id);
    }
  });

  it("sends the last N messages of the room to a newcomer", async () => {
    const { chat, port } = chatServer({ historySize: 5 });
    const alice = await join(port, "alice", "lobby");
    for (let i = 1; i <= 7; i++) say(alice, `message ${i}`);
    await said(alice, "alice", "message 7");

    const bob = await join(port, "bob", "lobby");
    expect(bob.welcome.history.map((m: Msg) => m.text)).toEqual(["message 3", "message 4", "message 5", "message 6", "message 7"]);
    expect(bob.welcome.history[0]).toMatchObject({ type: "message", name: "alice", room: "lobby" });
    expect(chat.history("lobby")).toHaveLength(5);

    // History outlives the people in the room.
    alice.ws.close();
    bob.ws.close();
    await waitFor(() => chat.members("lobby").length === 0, DEADLINE_MS, "everyone gone");
    const carol = await join(port, "carol", "lobby");
    expect(carol.welcome.history).toHaveLength(5);
    expect(carol.welcome.members).toEqual(["carol"]);
  });

  it("keeps rooms apart", async () => {
    const { chat, port } = chatServer();
    const alice = await join(port, "alice", "red");
    const bob = await join(port, "bob", "blue");
    const carol = await join(port, "carol", "blue");
    say(alice, "red only");
    await said(alice, "alice", "red only");
    say(bob, "blue only");
    await said(carol, "bob", "blue only");
    await said(bob, "bob", "blue only");
    // alice's message was published before bob's reached the server: had it gone to blue, bob and carol would have it by now.
    for (const client of [bob, carol]) expect(client.messages.some((m) => m.room === "red")).toBe(false);
    expect(alice.messages.some((m) => m.room === "blue")).toBe(false);
    expect(alice.messages.filter((m) => m.type === "join")).toEqual([]);
    expect(bob.welcome.history).toEqual([]);
    expect(chat.history("red").map((m) => m.text)).toEqual(["red only"]);
    expect(chat.history("blue").map((m) => m.text)).toEqual(["blue only"]);
  });

  it("tells the room when someone leaves: close, abrupt disconnect, moving rooms", async () => {
    const { chat, port, closes } = chatServer();
    const alice = await join(port, "alice", "lobby");
    const bob = await join(port, "bob", "lobby");
    const carol = await join(port, "carol", "lobby");
    const dave = await join(port, "dave", "lobby");

    bob.ws.close(1000, "bye");
    expect(await alice.next((m) => m.type === "leave" && m.name === "bob", "bob's leave notice")).toMatchObject({ room: "lobby" });

    carol.ws.terminate(); // no close frame: the TCP connection just goes away
    await alice.next((m) => m.type === "leave" && m.name === "carol", "carol's leave notice");

    // dave moves to another room on the same socket: a leave notice here, a join notice and a welcome there.
    const erin = await join(port, "erin", "attic");
    say(erin, "up here");
    await said(erin, "erin", "up here");
    const mark = dave.messages.length;
    dave.ws.send(JSON.stringify({ type: "join", room: "attic" }));
    await alice.next((m) => m.type === "leave" && m.name === "dave", "dave's leave notice");
    const welcome = await dave.next((m) => m.type === "welcome", "dave's welcome to the attic", mark);
    expect(welcome).toMatchObject({ room: "attic", members: ["erin", "dave"] });
    expect(welcome.history.map((m: Msg) => m.text)).toEqual(["up here"]);
    await erin.next((m) => m.type === "join" && m.name === "dave", "dave's join notice");
    say(alice, "still in the lobby");
    await said(alice, "alice", "still in the lobby");
    say(dave, "now in the attic");
    await said(erin, "dave", "now in the attic");
    expect(dave.messages.some((m) => m.type === "message" && m.room === "lobby")).toBe(false);

    expect(chat.members("lobby")).toEqual(["alice"]);
    expect(chat.members("attic")).toEqual(["erin", "dave"]);
    expect(alice.messages.filter((m) => m.type === "leave").map((m) => m.name)).toEqual(["bob", "carol", "dave"]);
    expect(closes).toEqual([["bob", 1000], ["carol", 1006]]); // dave moved on an open socket
  });

  it("refuses bad names and rooms with 400 before upgrading", async () => {
    const { server } = chatServer();
    const cases = [
      "room=lobby",
      "name=&room=lobby",
      "name=%20%20&room=lobby",
      `name=${"x".repeat(25)}&room=lobby`,
      "name=a%0Ab&room=lobby",
      "name=a%E2%80%AEb&room=lobby",
      "name=alice",
      "name=alice&room=Lobby",
      "name=alice&room=-x",
      "name=alice&room=a%20b",
      `name=alice&room=${"r".repeat(33)}`,
      "name=alice&room=room:x",
    ];
    for (const query of cases) {
      const ws = connect(server.port, query);
      const status = await withTimeout(
        new Promise<number>((resolve, reject) => {
          ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
          ws.on("open", () => reject(new Error(`${query}: upgraded`)));
          ws.on("error", reject);
        }),
        DEADLINE_MS,
        `response to ${query}`,
      );
      expect(status, query).toBe(400);
    }
    // A plain GET of the socket URL says what it is.
    const plain = await fetchFrom(server, "/chat/ws?name=alice&room=lobby");
    expect(plain.status).toBe(426);
    // Names are Unicode: 24 characters, emoji included.
    const emoji = await join(server.port, "🎉".repeat(24), "lobby");
    expect(emoji.welcome.name).toBe("🎉".repeat(24));
  });

  it("answers junk with errors and carries on", async () => {
    const { chat, port } = chatServer({ burst: 100 }); // the rate limit is tested on its own below
    const alice = await join(port, "alice", "lobby");
    const mallory = await join(port, "mallory", "lobby");
    const junk: Array<string | Buffer> = [
      "",
      "not json",
      "{",
      "null",
      "42",
      '"message"',
      "[]",
      "{}",
      '{"type":"message"}',
      '{"type":"message","text":42}',
      '{"type":"message","text":"   "}',
      JSON.stringify({ type: "message", text: "x".repeat(1001) }),
      '{"type":"join","room":"Not A Room"}',
      '{"type":"join"}',
      '{"type":"__proto__","text":"x"}',
      '{"__proto__":{"type":"message"},"text":"x"}',
      '{"type":"nope"}',
      Buffer.from([0xff, 0x00, 0x7b]),
    ];
    for (const frame of junk) mallory.ws.send(frame);
    await waitFor(() => mallory.messages.filter((m) => m.type === "error").length === junk.length, DEADLINE_MS, "an error per junk frame");
    for (const m of mallory.messages.filter((m) => m.type === "error")) expect(typeof m.error).toBe("string");
    expect(mallory.messages.find((m) => m.type === "error")).toEqual({ type: "error", error: "not JSON" });

    // Nothing of it reached the room, and both still chat.
    say(mallory, "sorry");
    say(alice, "ok");
    await said(alice, "mallory", "sorry");
    await said(mallory, "alice", "ok");
    expect(alice.messages.filter((m) => m.type === "message").map((m) => m.text)).toEqual(["sorry", "ok"]);
    expect(alice.messages.some((m) => m.type === "error")).toBe(false);
    expect(chat.history("lobby").map((m) => m.text)).toEqual(["sorry", "ok"]);
    // A message of exactly TEXT_MAX characters is fine.
    say(alice, "y".repeat(1000));
    await said(mallory, "alice", "y".repeat(1000));
  });

  it("closes a socket that sends a frame over maxPayloadLength (1009), others unaffected", async () => {
    const { chat, port, closes } = chatServer();
    const alice = await join(port, "alice", "lobby");
    const mallory = await join(port, "mallory", "lobby");
    mallory.ws.send(JSON.stringify({ type: "message", text: "z".repeat(64 * 1024) }));
    const { code } = await withTimeout(mallory.closed, DEADLINE_MS, "mallory's socket to close");
    // The server closes with 1009; the client may see 1006 when the server cuts the connection (see the contract).
    expect([1009, 1006]).toContain(code);
    await alice.next((m) => m.type === "leave" && m.name === "mallory", "mallory's leave notice");
    expect(closes).toEqual([["mallory", 1009]]);
    expect(chat.history("lobby")).toEqual([]);
    say(alice, "still here");
    await said(alice, "alice", "still here");
  });

  it("slows down a flooding client instead of relaying everything", async () => {
    const { chat, port } = chatServer({ burst: 5, perSecond: 1 });
    const alice = await join(port, "alice", "lobby");
    const flood = await join(port, "flood", "lobby");
    for (let i = 0; i < 30; i++) say(flood, `spam ${i}`);
    await flood.next((m) => m.type === "error" && /slow down/.test(m.error), "the slow-down error");
    await said(alice, "flood", "spam 4");
    await new Promise((r) => setTimeout(r, 200));
    expect(flood.messages.filter((m) => m.type === "error")).toHaveLength(1); // one warning, not one per frame
    expect(chat.history("lobby").length).toBeLessThanOrEqual(6);
    expect(alice.messages.filter((m) => m.type === "message").length).toBeLessThanOrEqual(6);
  });

  it("server.stop() with people in rooms closes them (1001) without throwing", async () => {
    const { chat, server, port, closes } = chatServer();
    const alice = await join(port, "alice", "lobby");
    const bob = await join(port, "bob", "lobby");
    await withTimeout(server.stop(), DEADLINE_MS, "graceful stop");
    expect((await withTimeout(alice.closed, DEADLINE_MS, "alice closed")).code).toBe(1001);
    expect((await withTimeout(bob.closed, DEADLINE_MS, "bob closed")).code).toBe(1001);
    expect(closes.map(([, code]) => code)).toEqual([1001, 1001]);
    expect(chat.members("lobby")).toEqual([]);
  });
});

// ---------------------------------------------------------------------------
// The same chat as a user runs it: examples/chat/server.ts and examples/demo.ts under dist/cli.js.

const children = new Set<ChildProcess>();
afterEach(() => {
  for (const child of children) child.kill("SIGKILL");
  children.clear();
});

/** Runs `node dist/cli.js --port 0 ENTRY` and resolves with its port once it listens. */
async function runCli(entry: string): Promise<number> {
  const child = spawn(process.execPath, [joinPath(ROOT, "dist", "cli.js"), "--port", "0", entry], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  await waitFor(() => /listening on http:\/\/[^:]+:(\d+)\//.test(out) || child.exitCode !== null, 15_000, `${entry} to listen`).catch((err) => {
    throw new Error(`${err.message}; output:\n${out}`);
  });
  const match = /listening on http:\/\/[^:]+:(\d+)\//.exec(out);
  if (!match) throw new Error(`${entry} exited (${child.exitCode}):\n${out}`);
  return Number(match[1]);
}

describe("chat example: under the CLI", () => {
  it("examples/chat/server.ts serves the page and the chat", { timeout: 20_000 }, async () => {
    const port = await runCli("examples/chat/server.ts");
    const home = await withTimeout(fetch(`http://127.0.0.1:${port}/`, { redirect: "manual" }), DEADLINE_MS, "GET /");
    expect(home.status).toBe(302);
    expect(home.headers.get("location")).toBe("/chat");
    const page = await withTimeout(fetch(`http://127.0.0.1:${port}/chat`), DEADLINE_MS, "GET /chat");
    expect(await page.text()).toContain("uwserve chat");
    const alice = await join(port, "alice", "lobby");
    const bob = await join(port, "bob", "lobby");
    say(bob, "hello from the CLI");
    await said(alice, "bob", "hello from the CLI");
  });

  it("examples/demo.ts links to the chat and runs it", { timeout: 20_000 }, async () => {
    const port = await runCli("examples/demo.ts");
    const home = await withTimeout(fetch(`http://127.0.0.1:${port}/`), DEADLINE_MS, "GET /");
    expect(await home.text()).toContain('<a href="/chat">');
    const page = await withTimeout(fetch(`http://127.0.0.1:${port}/chat`), DEADLINE_MS, "GET /chat");
    expect(page.status).toBe(200);
    const alice = await join(port, "alice", "demo");
    const bob = await join(port, "bob", "demo");
    say(alice, "hello from the demo");
    await said(bob, "alice", "hello from the demo");
    // The demo's own routes still answer.
    const time = await withTimeout(fetch(`http://127.0.0.1:${port}/api/time`), DEADLINE_MS, "GET /api/time");
    expect(time.status).toBe(200);
  });
});
