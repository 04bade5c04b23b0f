// `uwserve --workers N`: one port served by N worker threads, pub/sub across them through the
// native hub, and a graceful stop on SIGINT that ends every worker and the process cleanly.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { HAS_WORKERS } from "./helpers/core.js";
import { withTimeout } from "./helpers/server.js";
import { CLI, connect, killChildren, startWorkers as startCli, type Client, type WorkersCli } from "./helpers/workers.js";

const dir = mkdtempSync(join(tmpdir(), "uwserve-workers-"));
afterAll(() => {
  killChildren();
  rmSync(dir, { recursive: true, force: true });
});

const ENTRY = `
import { threadId } from "node:worker_threads";
export default {
  fetch(req, server) {
    const path = new URL(req.url).pathname;
    if (path === "/thread") return new Response(String(threadId));
    if (path === "/counts") return new Response([server.pendingRequests, server.pendingWebSockets, server.subscriberCount("room"), threadId].join(" "));
    if (path === "/stop") {
      void server.stop();
      return new Response("stopping");
    }
    if (path === "/crash") {
      // An exception outside any handler: the worker dies with its server and sockets open.
      setTimeout(() => { throw new Error("worker crash on purpose"); }, 10);
      return new Response("crashing " + threadId);
    }
    return server.upgrade(req) ? undefined : new Response("WebSocket only", { status: 400 });
  },
  websocket: {
    open(ws) { ws.subscribe("room"); ws.send("thread " + threadId); },
    message(ws, msg) { ws.publish("room", msg); },
  },
};
`;

function startWorkers(count: number): WorkersCli {
  const entry = join(dir, "chat.mjs");
  writeFileSync(entry, ENTRY);
  return startCli(entry, count);
}

describe.runIf(HAS_WORKERS)("uwserve --workers", { timeout: 30_000 }, () => {
  it("2 workers share the port; a publish on one thread reaches every subscriber on both, exactly once; SIGINT exits 0", async () => {
    const cli = startWorkers(2);
    const url = await withTimeout(cli.url, 15_000, "the listening line");
    const clients: Client[] = [];
    // The kernel spreads connections by their addresses: connect until both threads have some.
    while (clients.length < 40 && (clients.length < 10 || new Set(clients.map((c) => c.thread)).size < 2)) {
      clients.push(await connect(url));
    }
    const threads = new Set(clients.map((c) => c.thread));
    expect(threads.size).toBe(2);

    // Every worker's server reports totals across the group: whichever thread answers, it counts
    // all the sockets and subscribers (and this one request).
    const answeredBy = new Set<string>();
    for (let i = 0; i < 40 && answeredBy.size < 2; i++) {
      const [requests, sockets, subscribers, thread] = (await (await fetch(new URL("/counts", url), { headers: { connection: "close" } })).text()).split(" ");
      expect([Number(requests), Number(sockets), Number(subscribers)]).toEqual([1, clients.length, clients.length]);
      answeredBy.add(thread!);
    }
    expect(answeredBy.size).toBe(2);

    // One publisher on each thread.
    const senders = [...threads].map((thread) => clients.find((c) => c.thread === thread)!);
    senders.forEach((sender, i) => {
      for (let k = 0; k < 20; k++) sender.ws.send(`from ${i}: ${k}`);
    });
    const expected = (client: Client) => senders.filter((s) => s !== client).length * 20;
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && clients.some((c) => c.received.length < expected(c))) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 200));
    for (const client of clients) {
      expect(client.received.length).toBe(expected(client));
      // In publish order per publisher.
      senders.forEach((sender, i) => {
        if (sender === client) return;
        expect(client.received.filter((m) => m.startsWith(`from ${i}:`))).toEqual(Array.from({ length: 20 }, (_, k) => `from ${i}: ${k}`));
      });
    }
    for (const client of clients) client.ws.close();
    cli.child.kill("SIGINT");
    expect(await withTimeout(cli.exited, 10_000, "the process to exit")).toBe(0);
    expect(cli.stderr()).not.toMatch(/uv_loop_close|Assertion failed/);
  });

  it("a worker that crashes with its server open is reported and replaced; the process and the other worker carry on", async () => {
    const cli = startWorkers(2);
    const url = await withTimeout(cli.url, 15_000, "the listening line");
    const crashed = await (await fetch(new URL("/crash", url))).text();
    expect(crashed).toMatch(/^crashing \d+$/);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && !/starting a new one/.test(cli.stderr())) await new Promise((r) => setTimeout(r, 50));
    expect(cli.stderr()).toMatch(/worker \d exited with code 1; starting a new one/);
    // Two threads answer again once the replacement listens on the same port (it starts after
    // the crash is reported): keep asking, on fresh connections, for up to 10 s.
    const threads = new Set<string>();
    const until = Date.now() + 10_000;
    while (threads.size < 2 && Date.now() < until) {
      const res = await fetch(new URL("/thread", url), { headers: { connection: "close" } });
      threads.add(await res.text());
      if (threads.size < 2) await new Promise((r) => setTimeout(r, 25));
    }
    expect(threads.size).toBe(2);
    expect(cli.stderr()).not.toMatch(/uv_loop_close|Assertion failed/);
    cli.child.kill("SIGINT");
    expect(await withTimeout(cli.exited, 10_000, "the process to exit")).toBe(0);
  });

  it("server.stop() inside one worker stops every worker, and the process ends with 0", async () => {
    const cli = startWorkers(2);
    const url = await withTimeout(cli.url, 15_000, "the listening line");
    expect(await (await fetch(new URL("/stop", url), { headers: { connection: "close" } })).text()).toBe("stopping");
    expect(await withTimeout(cli.exited, 10_000, "the process to exit")).toBe(0);
    expect(cli.stderr()).not.toMatch(/uv_loop_close|Assertion failed|starting a new one/);
  });

  it("--workers takes a count or auto; anything else is a usage error", async () => {
    const bad = spawn(process.execPath, [CLI, "--workers", "zero", join(dir, "chat.mjs")], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    bad.stderr!.setEncoding("utf8").on("data", (s: string) => (err += s));
    const code = await new Promise((resolve) => bad.on("exit", resolve));
    expect(code).toBe(1);
    expect(err).toContain('--workers must be "auto" or a whole number');
  });
});
