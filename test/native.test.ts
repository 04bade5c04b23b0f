// The uwserve_native addon: setListenRef lets a uWS listen socket stop (or start again) keeping its process alive.
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { loadNative } from "../dist/transport/native.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const NATIVE_URL = pathToFileURL(join(ROOT, "dist", "transport", "native.js")).href;
const ADDON = join(ROOT, "build", "Release", "uwserve_native.node");
/** How long a process that should exit gets to do so. */
const EXIT_DEADLINE_MS = 5_000;
/** How long a process that should stay alive is watched. */
const ALIVE_MS = 1_000;
const TEST_TIMEOUT_MS = 20_000;

type Message = Record<string, unknown>;

interface Child {
  proc: ChildProcess;
  /** Resolves with the child's next JSON line on stdout. */
  next(what: string): Promise<Message>;
  /** Resolves with the exit code, or null when the child is still running after `ms`. */
  exitWithin(ms: number): Promise<number | string | null>;
}

function withDeadline<T>(promise: Promise<T>, what: string, ms = EXIT_DEADLINE_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Runs `body` as an ES module in a child node with `require` (from the repo root), `uWS`
 * (uWebSockets.js), `native` (dist/transport/native.js's loadNative()) and `say(obj)` (one JSON line
 * on stdout) in scope.
 */
function runChild(body: string, env: Record<string, string | undefined> = {}): Child {
  const source = [
    `import { createRequire } from "node:module";`,
    `import { loadNative } from ${JSON.stringify(NATIVE_URL)};`,
    `const require = createRequire(${JSON.stringify(join(ROOT, "package.json"))});`,
    `const uWS = require("uWebSockets.js");`,
    `const native = loadNative();`,
    `const say = (message) => console.log(JSON.stringify(message));`,
    body,
  ].join("\n");
  const proc = spawn(process.execPath, ["--input-type=module", "-e", source], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  let pending = "";
  const messages: Message[] = [];
  const waiters: Array<() => void> = [];
  proc.stderr!.setEncoding("utf8").on("data", (s: string) => (err += s));
  proc.stdout!.setEncoding("utf8").on("data", (s: string) => {
    pending += s;
    let newline: number;
    while ((newline = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      if (line.trim()) messages.push(JSON.parse(line) as Message);
    }
    for (const wake of waiters.splice(0)) wake();
  });
  const exited = new Promise<number | string>((resolve) =>
    proc.on("exit", (code, signal) => resolve(code ?? signal ?? "unknown")),
  );
  let read = 0;
  return {
    proc,
    next(what) {
      const take = new Promise<Message>((resolve, reject) => {
        let settled = false;
        const check = () => {
          if (settled) return;
          if (read < messages.length) {
            settled = true;
            resolve(messages[read++]!);
          } else if (proc.exitCode !== null || proc.signalCode !== null) {
            settled = true;
            reject(new Error(`child exited before ${what}; stderr:\n${err}`));
          } else waiters.push(check);
        };
        // After "exit", let the last stdout data arrive before giving up.
        proc.once("exit", () => setImmediate(check));
        check();
      });
      return withDeadline(take, `${what} (stderr so far: ${JSON.stringify(err)})`);
    },
    async exitWithin(ms) {
      let timer: NodeJS.Timeout | undefined;
      const still = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)));
      return Promise.race([exited, still]).finally(() => clearTimeout(timer));
    },
  };
}

/** Takes a child, returns nothing; kills it unless it has already exited (for `finally`). */
function kill(child: Child): void {
  if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill("SIGKILL");
}

/** Child source that listens on 127.0.0.1 (a free port) and hands `port` to `then`. */
const LISTEN_TCP = (then: string) => `
uWS.App().get("/*", (res) => res.end("ok")).listen("127.0.0.1", 0, 1, (ls) => {
  if (!ls) { console.error("listen failed"); process.exit(2); }
  const port = uWS.us_socket_local_port(ls);
  ${then}
});`;

/** The addon is optional: UWSERVE_SKIP_NATIVE=1 (no build at install) skips the tests that need it. */
const SKIP = process.env.UWSERVE_SKIP_NATIVE === "1";

describe.skipIf(SKIP)("setListenRef", { timeout: TEST_TIMEOUT_MS }, () => {
  it("unref lets a process whose only handle is a TCP listen socket exit by itself", async () => {
    const child = runChild(LISTEN_TCP(`say({ port, n: native.setListenRef(port, null, false) });`));
    try {
      const { port, n } = await child.next("the unref result");
      expect(port).toBeGreaterThan(0);
      expect(n).toBe(1);
      expect(await child.exitWithin(EXIT_DEADLINE_MS)).toBe(0);
    } finally {
      kill(child);
    }
  });

  it("a listen socket keeps the process alive by default", async () => {
    const child = runChild(LISTEN_TCP(`say({ port });`));
    try {
      await child.next("the port");
      expect(await child.exitWithin(ALIVE_MS)).toBeNull();
    } finally {
      kill(child);
    }
  });

  it("ref after unref keeps the process alive again", async () => {
    const child = runChild(
      LISTEN_TCP(`say({ unref: native.setListenRef(port, null, false), ref: native.setListenRef(port, null, true) });`),
    );
    try {
      expect(await child.next("the ref results")).toEqual({ unref: 1, ref: 1 });
      expect(await child.exitWithin(ALIVE_MS)).toBeNull();
    } finally {
      kill(child);
    }
  });

  it("only the listen socket on the given port is released", async () => {
    // Two listeners; B is released 1.5 s after A, from a timer that itself does not hold the loop.
    const child = runChild(`
const listen = () => new Promise((resolve) =>
  uWS.App().listen("127.0.0.1", 0, 1, (ls) => resolve(uWS.us_socket_local_port(ls))));
const a = await listen();
const b = await listen();
say({ a: native.setListenRef(a, null, false) });
setTimeout(() => say({ b: native.setListenRef(b, null, false) }), 1500).unref();`);
    try {
      expect(await child.next("A released")).toEqual({ a: 1 });
      expect(await child.exitWithin(ALIVE_MS)).toBeNull();
      expect(await child.next("B released")).toEqual({ b: 1 });
      expect(await child.exitWithin(EXIT_DEADLINE_MS)).toBe(0);
    } finally {
      kill(child);
    }
  });

  it("open connections still keep the process alive after unref, and it exits when they close", async () => {
    const child = runChild(`
let port = 0;
uWS.App()
  .get("/unref", (res) => res.end(String(native.setListenRef(port, null, false))))
  .listen("127.0.0.1", 0, 1, (ls) => { port = uWS.us_socket_local_port(ls); say({ port }); });`);
    let socket: Socket | undefined;
    try {
      const { port } = await child.next("the port");
      socket = connect(port as number, "127.0.0.1");
      socket.setEncoding("utf8");
      let response = "";
      socket.on("data", (s: string) => (response += s));
      socket.write("GET /unref HTTP/1.1\r\nHost: localhost\r\n\r\n");
      await withDeadline(
        new Promise<void>((resolve) => socket!.on("data", () => response.endsWith("\r\n\r\n1") && resolve())),
        "the /unref response",
      );
      expect(response).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      // The keep-alive connection is a separate, still ref'd uv_poll handle.
      expect(await child.exitWithin(ALIVE_MS)).toBeNull();
      socket.destroy();
      expect(await child.exitWithin(EXIT_DEADLINE_MS)).toBe(0);
    } finally {
      socket?.destroy();
      kill(child);
    }
  });

  it("a unix socket listener is matched by its path", async () => {
    const dir = mkdtempSync(join(tmpdir(), "uwserve-native-"));
    const path = join(dir, "s.sock");
    const child = runChild(`
uWS.App().listen_unix((ls) => {
  if (!ls) { console.error("listen_unix failed"); process.exit(2); }
  say({
    otherPath: native.setListenRef(0, ${JSON.stringify(path + ".other")}, false),
    tcp: native.setListenRef(1, null, false),
    n: native.setListenRef(0, ${JSON.stringify(path)}, false),
  });
}, ${JSON.stringify(path)});`);
    try {
      expect(await child.next("the unref results")).toEqual({ otherPath: 0, tcp: 0, n: 1 });
      expect(await child.exitWithin(EXIT_DEADLINE_MS)).toBe(0);
    } finally {
      kill(child);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("works on a worker thread's own loop", async () => {
    // uWS.js registers a worker's sockets on the worker's loop. A listen socket still open when
    // the worker's loop closes aborts the whole process (Node's CheckedUvLoopClose: uWS.js does
    // not close it at env teardown), so the worker closes it on "exit", as uwserve must.
    const worker = `
const { parentPort } = require("node:worker_threads");
const uWS = require("uWebSockets.js");
import(${JSON.stringify(NATIVE_URL)}).then(({ loadNative }) => {
  const native = loadNative();
  uWS.App().listen("127.0.0.1", 0, 1, (ls) => {
    const port = uWS.us_socket_local_port(ls);
    process.on("exit", () => uWS.us_listen_socket_close(ls));
    parentPort.postMessage({ n: native.setListenRef(port, null, false) });
  });
});`;
    const child = runChild(
      `
import { Worker } from "node:worker_threads";
// execArgv: [] so the worker's eval is CommonJS, not this child's --input-type=module.
const w = new Worker(${JSON.stringify(worker)}, { eval: true, execArgv: [] });
w.on("message", (m) => say(m));
w.on("exit", (code) => say({ workerExit: code }));`);
    try {
      expect(await child.next("the worker's unref result")).toEqual({ n: 1 });
      expect(await child.next("the worker's exit")).toEqual({ workerExit: 0 });
      expect(await child.exitWithin(EXIT_DEADLINE_MS)).toBe(0);
    } finally {
      kill(child);
    }
  });

  it("throws TypeError on bad arguments", () => {
    const native = loadNative();
    const call = (...args: unknown[]) => () => (native.setListenRef as (...a: unknown[]) => number)(...args);
    expect(call()).toThrow(new TypeError("setListenRef: expected 3 arguments (port, path, ref), received 0"));
    expect(call(80, null)).toThrow(TypeError);
    expect(call("80", null, false)).toThrow(/port must be a number, received a string/);
    for (const port of [-1, 65536, 1.5, NaN, Infinity]) {
      expect(call(port, null, false)).toThrow(/port must be an integer from 0 to 65535/);
    }
    expect(call(0, null, false)).toThrow(/port must be the bound port/);
    expect(call(80, 5, false)).toThrow(/path must be a string or null, received a number/);
    expect(call(80, undefined, false)).toThrow(/path must be a string or null, received undefined/);
    expect(call(0, "", false)).toThrow(/path must not be empty/);
    expect(call(0, "x".repeat(200), false)).toThrow(/longer than a unix socket address can hold/);
    expect(call(80, null, "no")).toThrow(/ref must be a boolean, received a string/);
    expect(call(80, null, 0)).toThrow(TypeError);
    // Well-formed calls that match nothing on this (vitest) process's loop.
    expect(native.setListenRef(1, null, true)).toBe(0);
    expect(native.setListenRef(0, "/nonexistent/uwserve.sock", false)).toBe(0);
    expect(native.setListenRef(0, "\0uwserve-abstract", false)).toBe(0);
  });
});

describe("loadNative", { timeout: TEST_TIMEOUT_MS }, () => {
  it.skipIf(SKIP)("loads $UWSERVE_NATIVE first", async () => {
    const dir = mkdtempSync(join(tmpdir(), "uwserve-native-"));
    const copy = join(dir, "copy.node");
    copyFileSync(ADDON, copy);
    const child = runChild(
      `say({ loaded: Object.keys(require.cache).filter((k) => k.endsWith(".node") && !k.includes("uws_")) });`,
      { UWSERVE_NATIVE: copy },
    );
    try {
      expect(await child.next("the loaded addons")).toEqual({ loaded: [copy] });
    } finally {
      kill(child);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("fails with one error listing every path tried and the fix", async () => {
    // A package root with dist/ but no build/: the copy of dist/transport/native.js finds nothing.
    const dir = mkdtempSync(join(tmpdir(), "uwserve-native-"));
    mkdirSync(join(dir, "dist", "transport"), { recursive: true });
    for (const file of ["transport/native.js", "errors.js"]) copyFileSync(join(ROOT, "dist", file), join(dir, "dist", file));
    writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
    const script = `
const { loadNative, tryLoadNative } = await import(${JSON.stringify(pathToFileURL(join(dir, "dist", "transport", "native.js")).href)});
let error;
try { loadNative(); } catch (err) { error = { message: err.message, code: err.code }; }
console.log(JSON.stringify({ soft: tryLoadNative(), error }));`;
    const proc = spawn(process.execPath, ["--input-type=module", "-e", script], {
      env: { ...process.env, UWSERVE_NATIVE: join(dir, "missing.node") },
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      let out = "";
      proc.stdout.setEncoding("utf8").on("data", (s: string) => (out += s));
      await withDeadline(new Promise((resolve) => proc.on("exit", resolve)), "the loader child");
      const { soft, error } = JSON.parse(out) as { soft: unknown; error: { message: string; code: string } };
      expect(soft).toBeNull();
      expect(error.code).toBe("UWSERVE_ERR_NATIVE_UNAVAILABLE");
      expect(error.message).toContain(`$UWSERVE_NATIVE=${join(dir, "missing.node")}: not found`);
      expect(error.message).toContain(`${join(dir, "build", "Release", "uwserve_native.node")}: not found`);
      expect(error.message).toContain(`${join(dir, "build", "Debug", "uwserve_native.node")}: not found`);
      expect(error.message).toContain("npm rebuild uwserve");
    } finally {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(SKIP)("callWithQuietStdout", () => {
  it("runs the callback with fd 1 on /dev/null, returns its result, and restores stdout", async () => {
    const script = `
import { loadNative } from ${JSON.stringify(NATIVE_URL)};
import { writeSync } from "node:fs";
writeSync(1, "before\\n");
const result = loadNative().callWithQuietStdout(() => { writeSync(1, "hidden\\n"); return 42; });
writeSync(1, "after " + result + "\\n");
`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout!.on("data", (data) => (out += data));
    await new Promise((resolve) => child.once("close", resolve));
    expect(out).toBe("before\nafter 42\n");
  });

  it("an exception in the callback propagates and stdout is restored", () => {
    const native = loadNative();
    expect(() =>
      native.callWithQuietStdout(() => {
        throw new Error("inside");
      }),
    ).toThrow("inside");
  });
});

describe.skipIf(SKIP)("gzipSync", () => {
  it("produces gzip members zlib decodes, for empty, small and large inputs, reusing its stream", async () => {
    const { gunzipSync } = await import("node:zlib");
    const native = loadNative();
    const inputs = [Buffer.alloc(0), Buffer.from("hello ".repeat(100)), Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251))];
    for (let round = 0; round < 3; round++) {
      for (const input of inputs) {
        const out = native.gzipSync(input, round === 1 ? 1 : 6);
        expect(out[0]).toBe(0x1f);
        expect(out[1]).toBe(0x8b);
        expect(gunzipSync(out).equals(input)).toBe(true);
      }
    }
  });

  it("refuses what isn't a Uint8Array", () => {
    const native = loadNative();
    expect(() => native.gzipSync("text" as never, 6)).toThrow(TypeError);
    expect(() => native.gzipSync(new Uint16Array(4) as never, 6)).toThrow("Uint8Array");
  });
});

describe.skipIf(SKIP)("a worker thread ending with a uWS server still open", () => {
  it("terminate() and an uncaught exception end the worker, not the process; its clients see the connection close", { timeout: TEST_TIMEOUT_MS }, async () => {
    const dist = pathToFileURL(join(ROOT, "dist", "index.js")).href;
    const script = `
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import net from "node:net";
if (isMainThread) {
  for (const mode of ["terminate", "throw"]) {
    const worker = new Worker(new URL(import.meta.url), { workerData: mode });
    worker.on("error", () => {});
    const port = await new Promise((resolve) => worker.once("message", resolve));
    const socket = net.connect(port, "127.0.0.1");
    await new Promise((resolve) => socket.once("connect", resolve));
    const closed = new Promise((resolve) => socket.once("close", resolve));
    socket.on("error", () => {});
    if (mode === "terminate") await worker.terminate(); else worker.postMessage("throw");
    await closed;
    console.log(mode + " ok");
  }
} else {
  const { serve } = await import(${JSON.stringify(dist)});
  const server = serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("x") });
  parentPort.postMessage(server.port);
  parentPort.on("message", () => setTimeout(() => { throw new Error("boom"); }, 1));
}
`;
    const file = join(mkdtempSync(join(tmpdir(), "uwserve-teardown-")), "teardown.mjs");
    writeFileSync(file, script);
    const child = spawn(process.execPath, [file], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (err += d));
    const code = await new Promise((resolve) => child.once("exit", resolve));
    expect(err).not.toMatch(/uv_loop_close|Assertion failed/);
    expect(out).toBe("terminate ok\nthrow ok\n");
    expect(code).toBe(0);
  });
});
