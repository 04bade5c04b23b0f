/**
 * Helpers for `uwserve --workers N` tests: run the CLI on an entry in a child process, and
 * connect `ws` clients that learn which worker thread they landed on (the entries send
 * "thread <threadId>" on open).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { withTimeout } from "./server.js";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const CLI = join(ROOT, "dist", "cli.js");

/** Every CLI child started here, for killChildren() in afterAll. */
const children = new Set<ChildProcess>();

export function killChildren(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  children.clear();
}

export interface WorkersCli {
  child: ChildProcess;
  /** The URL from the "uwserve listening on" line. */
  url: Promise<URL>;
  exited: Promise<number | null>;
  stdout: () => string;
  stderr: () => string;
}

/** Runs `node dist/cli.js --workers COUNT --port 0 --hostname 127.0.0.1 [ARGS] ENTRY`. */
export function startWorkers(entry: string, count: number, env: Record<string, string | undefined> = {}, args: string[] = []): WorkersCli {
  const child = spawn(process.execPath, [CLI, "--workers", String(count), "--port", "0", "--hostname", "127.0.0.1", ...args, entry], {
    cwd: ROOT,
    env: { ...process.env, PORT: undefined, NODE_PORT: undefined, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let out = "";
  let err = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => (out += s));
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (err += s));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const url = new Promise<URL>((resolve, reject) => {
    child.stdout!.on("data", () => {
      const match = /uwserve listening on (\S+)/.exec(out);
      if (match) resolve(new URL(match[1]!));
    });
    void exited.then((code) => reject(new Error(`uwserve exited (${code}) before listening\n${err}`)));
  });
  return { child, url, exited, stdout: () => out, stderr: () => err };
}

export interface Client {
  ws: WebSocket;
  /** "thread <threadId>", as the entry sent it on open. */
  thread: string;
  /** Every text message after the welcome, in arrival order. */
  received: string[];
  /** Settles with the close code and reason once the connection is closed. */
  closed: Promise<{ code: number; reason: string }>;
}

/** Opens a `ws` client on `path` (default "/") and waits for the entry's "thread N" welcome. */
export async function connect(url: URL, path = "/"): Promise<Client> {
  const ws = new WebSocket(new URL(path, url).href.replace(/^http/, "ws"));
  const received: string[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on("close", (code, reason) => resolve({ code, reason: String(reason) })));
  const thread = await withTimeout(
    new Promise<string>((resolve, reject) => {
      let welcomed = false;
      ws.on("message", (data) => {
        const text = String(data);
        if (!welcomed && text.startsWith("thread ")) {
          welcomed = true;
          resolve(text);
        } else received.push(text);
      });
      ws.once("error", reject);
      void closed.then(({ code }) => reject(new Error(`closed (${code}) before the welcome message`)));
    }),
    3000,
    "the welcome message",
  );
  // A late error (a worker crash, say) must not become an unhandled 'error' event.
  ws.on("error", () => {});
  return { ws, thread, received, closed };
}

/**
 * Connects clients (each from `path(i)`) until every one of `threads` worker threads has at
 * least `perThread` of them and at least `min` are open; gives up after `max`.
 */
export async function connectAcrossThreads(
  url: URL,
  options: { threads: number; perThread?: number; min?: number; max?: number; path?: (i: number) => string },
): Promise<Client[]> {
  const perThread = options.perThread ?? 1;
  const min = options.min ?? 0;
  const max = options.max ?? 200;
  const clients: Client[] = [];
  const byThread = new Map<string, number>();
  const spread = () => byThread.size >= options.threads && [...byThread.values()].every((n) => n >= perThread);
  while (clients.length < max && (clients.length < min || !spread())) {
    const client = await connect(url, options.path?.(clients.length) ?? "/");
    clients.push(client);
    byThread.set(client.thread, (byThread.get(client.thread) ?? 0) + 1);
  }
  return clients;
}

/** Polls `predicate` every 20 ms until it holds or `ms` pass; returns whether it held. */
export async function poll(predicate: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await predicate()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** GET `path` on a fresh connection (so the kernel may pick any worker). */
export async function getText(url: URL, path: string): Promise<string> {
  const res = await fetch(new URL(path, url), { headers: { connection: "close" } });
  return res.text();
}

// ---- counting published messages: "m PUBLISHER TOPIC SEQ" lines (test/fixtures/workers-pubsub.mjs) ----

/** The "m P T SEQ" messages a client got, as "P T" → the sequence numbers in arrival order. */
export function tally(received: readonly string[]): Map<string, number[]> {
  const seen = new Map<string, number[]>();
  for (const line of received) {
    if (!line.startsWith("m ")) continue;
    const [, publisher, topic, seq] = line.split(" ");
    const key = `${publisher} ${topic}`;
    let list = seen.get(key);
    if (!list) seen.set(key, (list = []));
    list.push(Number(seq));
  }
  return seen;
}

export const published = (received: readonly string[]) => received.reduce((n, line) => n + (line.startsWith("m ") ? 1 : 0), 0);

/**
 * What differs between what `client` got and `expected` ("P T" → N: exactly 0..N-1 in order;
 * keys not listed: nothing at all), one line per publisher and topic.
 */
export function differences(name: string, received: readonly string[], expected: ReadonlyMap<string, number>): string[] {
  const problems: string[] = [];
  const seen = tally(received);
  for (const [key, count] of expected) {
    const got = seen.get(key) ?? [];
    if (got.length !== count || got.some((seq, i) => seq !== i)) {
      problems.push(`${name} from ${key}: wanted 0..${count - 1}, got ${got.length} [${summary(got)}]`);
    }
  }
  for (const [key, got] of seen) if (!expected.has(key)) problems.push(`${name} from ${key}: wanted none, got ${got.length} [${summary(got)}]`);
  return problems;
}

/** Sequence numbers that must rise strictly (no duplicate, no reordering), per publisher and topic. */
export function disorder(name: string, received: readonly string[]): string[] {
  const problems: string[] = [];
  for (const [key, got] of tally(received)) {
    const bad = got.findIndex((seq, i) => i > 0 && seq <= got[i - 1]!);
    if (bad >= 0) problems.push(`${name} from ${key}: ${got[bad - 1]} then ${got[bad]} at #${bad} [${summary(got)}]`);
  }
  return problems;
}

export function summary(seqs: number[]): string {
  return seqs.length <= 12 ? seqs.join(",") : `${seqs.slice(0, 6).join(",")} … ${seqs.slice(-6).join(",")}`;
}

/** Sends `command` and waits for the entry's answer to it (e.g. "sub t" → "subbed t"). */
export async function command(client: Client, text: string, answer: string): Promise<void> {
  const before = client.received.filter((line) => line === answer).length;
  client.ws.send(text);
  const ok = await poll(() => client.received.filter((line) => line === answer).length > before, 5000);
  if (!ok) throw new Error(`no "${answer}" for "${text}" within 5 s`);
}

/**
 * Each of `publishers` (publisher i is "p<i>") sends `count` numbered messages to `topic` with
 * the fixture's "pub" command; returns what every client must get: each publisher's sequence,
 * except its own unless `publishToSelf`.
 */
export function publishFromEach(publishers: readonly Client[], clients: readonly Client[], topic: string, count: number, publishToSelf = false): Map<Client, Map<string, number>> {
  publishers.forEach((publisher, i) => {
    for (let seq = 0; seq < count; seq++) publisher.ws.send(`pub ${topic} m p${i} ${topic} ${seq}`);
  });
  const expected = new Map<Client, Map<string, number>>();
  for (const client of clients) {
    const want = new Map<string, number>();
    publishers.forEach((publisher, i) => {
      if (publisher !== client || publishToSelf) want.set(`p${i} ${topic}`, count);
    });
    expected.set(client, want);
  }
  return expected;
}
