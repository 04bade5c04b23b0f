// `serve({ workers: N })` in code: the main module runs again in each worker (as `cluster` does),
// serve() returns once every worker listens, and the main thread's server supervises them:
// totals, publish, server.fetch(), reload() reaching every thread, stop(), failures at start.
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { HAS_WORKERS } from "./helpers/core.js";
import WebSocket from "ws";
import { withTimeout } from "./helpers/server.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const UWSERVE = pathToFileURL(join(ROOT, "dist", "index.js")).href;
const TSX = pathToFileURL(join(ROOT, "node_modules", "tsx", "dist", "esm", "index.mjs")).href;
const dir = mkdtempSync(join(tmpdir(), "uwserve-workers-serve-"));
const children = new Set<ChildProcess>();
afterAll(() => {
  for (const child of children) child.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  child: ChildProcess;
  /** Resolves with the first stdout line matching `pattern`. */
  line(pattern: RegExp, ms?: number): Promise<RegExpExecArray>;
  exited: Promise<number | null>;
  stdout: () => string;
  stderr: () => string;
}

function run(name: string, source: string, execArgv: string[] = [], stdin = false): Run {
  const file = join(dir, name);
  writeFileSync(file, source.replaceAll("UWSERVE", UWSERVE));
  const child = spawn(process.execPath, [...execArgv, file], { cwd: dir, stdio: [stdin ? "pipe" : "ignore", "pipe", "pipe"] });
  children.add(child);
  let out = "";
  let err = "";
  child.stdout!.on("data", (chunk: Buffer) => (out += chunk));
  child.stderr!.on("data", (chunk: Buffer) => (err += chunk));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const line = (pattern: RegExp, ms = 15_000): Promise<RegExpExecArray> =>
    withTimeout(
      new Promise<RegExpExecArray>((resolve, reject) => {
        const check = (): void => {
          const match = pattern.exec(out);
          if (match) resolve(match);
        };
        child.stdout!.on("data", check);
        check();
        void exited.then((code) => reject(new Error(`exited (${code}) before printing ${pattern}\nstdout: ${out}\nstderr: ${err}`)));
      }),
      ms,
      `${name} printing ${pattern}`,
    );
  return { child, line, exited, stdout: () => out, stderr: () => err };
}

/** GETs `path` on a new connection each time (so the kernel may pick another worker). */
async function get(url: URL, path: string): Promise<string> {
  const response = await fetch(new URL(path, url), { headers: { connection: "close" } });
  return response.text();
}

/** The answers of `times` requests, as a set. */
async function answers(url: URL, path: string, times = 30): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < times; i++) seen.add(await get(url, path));
  return seen;
}

const CLEAN_EXIT = /Assertion|uv_loop_close|Abort/;

describe.runIf(HAS_WORKERS)("serve({ workers })", { timeout: 30_000 }, () => {
  it("returns a listening server; every worker answers; the main thread's server publishes, counts and fetches across them; stop() ends them all", async () => {
    const app = run(
      "group.mjs",
      `
import { serve } from "UWSERVE";
import { isMainThread, threadId } from "node:worker_threads";
const server = serve({
  workers: 2,
  port: 0,
  hostname: "127.0.0.1",
  fetch(req, server) {
    const path = new URL(req.url).pathname;
    if (path === "/thread") return new Response(String(threadId));
    return server.upgrade(req) ? undefined : new Response("plain " + threadId);
  },
  websocket: {
    open(ws) { ws.subscribe("news"); ws.send("thread " + threadId); },
    message() {},
  },
});
if (isMainThread) {
  // serve() returned: the workers listen already.
  const first = await fetch(new URL("/thread", server.url), { headers: { connection: "close" } });
  console.log("ready " + server.url.href + " " + first.status);
  const commands = {
    counts: () => console.log("counts " + [server.pendingRequests, server.pendingWebSockets, server.subscriberCount("news")].join(" ")),
    publish: () => console.log("published " + server.publish("news", "from the main thread")),
    fetch: async () => console.log("fetched " + (await (await server.fetch("/thread")).text())),
    stop: async () => { await server.stop(); console.log("stopped"); },
  };
  const { createInterface } = await import("node:readline");
  createInterface({ input: process.stdin }).on("line", (line) => void commands[line.trim()]?.());
}
`,
      [],
      true,
    );
    const { child } = app;
    const ready = await app.line(/ready (\S+) (\d+)/);
    expect(ready[2]).toBe("200");
    const url = new URL(ready[1]!);

    const threads = await answers(url, "/thread");
    expect(threads.size).toBe(2);

    // WebSockets on both threads, all subscribed to "news".
    const sockets: Array<{ ws: WebSocket; thread: string; got: string[] }> = [];
    while (sockets.length < 30 && (sockets.length < 6 || new Set(sockets.map((s) => s.thread)).size < 2)) {
      const ws = new WebSocket(url.href.replace(/^http/, "ws"));
      const got: string[] = [];
      const thread = await withTimeout(
        new Promise<string>((resolve, reject) => {
          ws.on("message", (data) => {
            const text = String(data);
            if (text.startsWith("thread ")) resolve(text);
            else got.push(text);
          });
          ws.once("error", reject);
        }),
        3000,
        "the welcome",
      );
      sockets.push({ ws, thread, got });
    }
    expect(new Set(sockets.map((s) => s.thread)).size).toBe(2);

    child.stdin!.write("counts\n");
    const counts = await app.line(/counts (\d+) (\d+) (\d+)/);
    expect(Number(counts[1])).toBe(0);
    expect(Number(counts[2])).toBe(sockets.length);
    expect(Number(counts[3])).toBe(sockets.length);

    child.stdin!.write("publish\n");
    const published = await app.line(/published (-?\d+)/);
    expect(Number(published[1])).toBeGreaterThan(0);
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && sockets.some((s) => s.got.length < 1)) await new Promise((r) => setTimeout(r, 20));
    for (const socket of sockets) expect(socket.got).toEqual(["from the main thread"]);

    // server.fetch() on the main thread runs the handler there (no network, no worker).
    child.stdin!.write("fetch\n");
    expect((await app.line(/fetched (\d+)/))[1]).toBe("0");

    const closes = sockets.map((s) => new Promise<number>((resolve) => s.ws.once("close", (code) => resolve(code))));
    child.stdin!.write("stop\n");
    expect(await withTimeout(Promise.all(closes), 5000, "the close frames")).toEqual(sockets.map(() => 1001));
    await app.line(/stopped/);
    child.stdin!.end();
    expect(await withTimeout(app.exited, 5000, "the exit")).toBe(0);
    expect(app.stderr()).not.toMatch(CLEAN_EXIT);
  });

  it("reload() in a worker reaches every thread: the others evaluate the TypeScript entry again; reload() on the main thread too", async () => {
    const version = join(dir, "version.txt");
    writeFileSync(version, "v1");
    const app = run(
      "reload.mts",
      `
import { serve } from "UWSERVE";
import { isMainThread, threadId } from "node:worker_threads";
import { readFileSync } from "node:fs";
const version: string = readFileSync(${JSON.stringify(version)}, "utf8");
const server = serve({
  workers: 3,
  port: 0,
  hostname: "127.0.0.1",
  routes: {
    "/version": () => new Response(version),
    "/reload": () => {
      server.reload({ routes: { "/version": () => new Response(readFileSync(${JSON.stringify(version)}, "utf8")) } });
      return new Response("reloaded on " + threadId);
    },
  },
  fetch: () => new Response("fallback"),
});
if (isMainThread) {
  console.log("ready " + server.url.href);
  process.on("SIGUSR2", () => server.reload({ fetch: () => new Response("main's fetch") }));
}
`,
      ["--import", TSX],
    );
    const url = new URL((await app.line(/ready (\S+)/))[1]!);
    expect(await answers(url, "/version")).toEqual(new Set(["v1"]));

    writeFileSync(version, "v2");
    expect(await get(url, "/reload")).toMatch(/^reloaded on \d+$/);
    // The worker that was asked swapped at once; the others re-evaluate the entry (which reads v2).
    const deadline = Date.now() + 5000;
    let seen = await answers(url, "/version");
    while (Date.now() < deadline && !(seen.size === 1 && seen.has("v2"))) seen = await answers(url, "/version", 10);
    expect(seen).toEqual(new Set(["v2"]));

    writeFileSync(version, "v3");
    app.child.kill("SIGUSR2");
    const until = Date.now() + 5000;
    seen = await answers(url, "/version");
    while (Date.now() < until && !(seen.size === 1 && seen.has("v3"))) seen = await answers(url, "/version", 10);
    expect(seen).toEqual(new Set(["v3"]));
    app.child.kill("SIGKILL");
  });

  it("a worker that crashes is reported and replaced; unref() lets the process end with its workers", async () => {
    const app = run(
      "crash.mjs",
      `
import { serve } from "UWSERVE";
import { isMainThread, threadId } from "node:worker_threads";
const server = serve({
  workers: 2,
  port: 0,
  hostname: "127.0.0.1",
  fetch(req) {
    if (new URL(req.url).pathname === "/crash") {
      setTimeout(() => { throw new Error("worker crash on purpose"); }, 10);
      return new Response("crashing " + threadId);
    }
    return new Response(String(threadId));
  },
});
if (isMainThread) {
  console.log("ready " + server.url.href);
  process.on("SIGUSR2", () => { server.unref(); console.log("unrefed"); });
}
`,
    );
    const url = new URL((await app.line(/ready (\S+)/))[1]!);
    const before = await answers(url, "/");
    expect(before.size).toBe(2);
    expect(await get(url, "/crash")).toMatch(/^crashing/);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && !/starting a new one/.test(app.stderr())) await new Promise((r) => setTimeout(r, 50));
    expect(app.stderr()).toContain("worker crash on purpose");
    expect(app.stderr()).toMatch(/worker \d exited with code 1; starting a new one/);
    let after = await answers(url, "/");
    while (Date.now() < deadline && after.size < 2) after = await answers(url, "/", 10);
    expect(after.size).toBe(2);
    expect([...after].some((thread) => !before.has(thread))).toBe(true);

    app.child.kill("SIGUSR2");
    expect(await withTimeout(app.exited, 10_000, "the exit after unref()")).toBe(0);
    expect(app.stderr()).not.toMatch(CLEAN_EXIT);
  });

  it("serve() throws, naming the cause, when a worker fails to start, doesn't call serve(), or the port is taken; and without a main module", async () => {
    const throwing = run(
      "throws.mjs",
      `
import { serve } from "UWSERVE";
import { isMainThread } from "node:worker_threads";
if (!isMainThread) throw new Error("no database in this worker");
try {
  serve({ workers: 2, port: 0, fetch: () => new Response("x") });
} catch (err) {
  console.log("caught " + err.code + ": " + err.message.split("\\n")[0]);
}
`,
    );
    const caught = await throwing.line(/caught (\S+): (.*)/);
    expect(caught[1]).toBe("UWSERVE_ERR_WORKER");
    expect(caught[2]).toMatch(/worker \d failed to start: .*threw while loading: Error: no database in this worker/);
    expect(await withTimeout(throwing.exited, 5000, "the exit")).toBe(0);

    const guarded = run(
      "guarded.mjs",
      `
import { serve } from "UWSERVE";
import { isMainThread } from "node:worker_threads";
if (isMainThread) {
  const started = Date.now();
  try {
    serve({ workers: 2, port: 0, fetch: () => new Response("x") });
  } catch (err) {
    console.log("caught after " + (Date.now() - started) + " ms: " + err.message);
  }
}
`,
    );
    const early = await guarded.line(/caught after (\d+) ms: (.*)/);
    expect(Number(early[1])).toBeLessThan(10_000);
    expect(early[2]).toContain("without starting a server; in a worker the entry must call serve({ workers }) again");

    const taken = run(
      "taken.mjs",
      `
import { serve } from "UWSERVE";
import { isMainThread } from "node:worker_threads";
if (isMainThread) {
  const first = serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("first") });
  try {
    serve({ workers: 2, port: first.port, hostname: "127.0.0.1", fetch: () => new Response("x") });
  } catch (err) {
    console.log("caught " + err.code);
  }
  first.stop(true);
}
`,
    );
    expect((await taken.line(/caught (\S+)/))[1]).toBe("UWSERVE_ERR_PORT_IN_USE");

    const child = spawn(process.execPath, ["--input-type=module", "-e", `import { serve } from ${JSON.stringify(UWSERVE)}; try { serve({ workers: 2, port: 0, fetch: () => new Response("x") }) } catch (err) { console.log(err.code + ": " + err.message) }`], { stdio: ["ignore", "pipe", "pipe"] });
    children.add(child);
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => (out += chunk));
    await withTimeout(new Promise((resolve) => child.once("exit", resolve)), 10_000, "node -e");
    expect(out).toContain("UWSERVE_ERR_WORKER: uwserve: serve({ workers }) runs the main module again in each worker");
  });

  it("without the native addon one thread still serves, and workers > 1 fail at once with a message that says why (serve() and the CLI)", async () => {
    // A copy of the package whose addon was never built (no build/ folder).
    const pkg = join(dir, "unbuilt");
    mkdirSync(pkg);
    cpSync(join(ROOT, "dist"), join(pkg, "dist"), { recursive: true });
    cpSync(join(ROOT, "package.json"), join(pkg, "package.json"));
    symlinkSync(join(ROOT, "node_modules"), join(pkg, "node_modules"));
    const index = pathToFileURL(join(pkg, "dist", "index.js")).href;
    const app = run(
      "no-addon.mjs",
      `
import { serve } from ${JSON.stringify(index)};
const one = serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("one thread") });
console.log("single " + (await (await fetch(one.url)).text()));
await one.stop(true);
try {
  serve({ workers: 2, port: 0, fetch: () => new Response("x") });
} catch (err) {
  console.log("caught " + err.code + ": " + err.message.split("\\n")[0]);
}
`,
    );
    expect((await app.line(/single (.*)/))[1]).toBe("one thread");
    const caught = await app.line(/caught (\S+): (.*)/);
    expect(caught[1]).toBe("UWSERVE_ERR_NATIVE_UNAVAILABLE");
    expect(caught[2]).toContain("workers: 2 needs uwserve's native addon (its hub carries pub/sub between the threads); without it only one thread can serve");
    expect(await withTimeout(app.exited, 5000, "the exit")).toBe(0);

    const entry = join(dir, "export.mjs");
    writeFileSync(entry, `export default { fetch: () => new Response("x") };\n`);
    const cli = spawn(process.execPath, [join(pkg, "dist", "cli.js"), "--workers", "2", "--port", "0", entry], { stdio: ["ignore", "pipe", "pipe"] });
    children.add(cli);
    let err = "";
    cli.stderr!.on("data", (chunk: Buffer) => (err += chunk));
    const code = await withTimeout(new Promise((resolve) => cli.once("exit", resolve)), 10_000, "the CLI's exit");
    expect(code).toBe(1);
    expect(err).toContain("uwserve: cannot start the workers: workers: 2 needs uwserve's native addon");
  });
});
