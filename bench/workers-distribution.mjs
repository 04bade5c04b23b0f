#!/usr/bin/env node
// How `uwserve --workers N` should spread connections over its worker threads (issue 6), measured
// on raw uWebSockets.js "Hello, World!" servers:
//
//   reuseport  every worker thread's App listens on the same explicit port; uSockets sets
//              SO_REUSEPORT on Linux, so the kernel hashes each new connection to one listener.
//   acceptor   the main thread's App listens and owns no routes; each worker's App (not listening)
//              is added with app.addChildAppDescriptor(workerApp.getDescriptor()), so the acceptor
//              accepts every connection and hands its fd round-robin to a worker loop (adoptSocket).
//
// Loads (wrk, pinned away from the server where there are cores to spare): keep-alive at 100 and
// 256 connections, and churn (`Connection: close` on every request: a new connection per request,
// where accept distribution matters most). Each worker counts its requests in shared memory, so
// the report shows how evenly requests spread; each thread reads its own CPU from
// /proc/thread-self/stat, and the runner reads the whole server process's from /proc/<pid>/stat.
// Rounds are interleaved (every round runs every worker count and both modes, the mode order
// alternating); the tables are medians over rounds.
//
//   node bench/workers-distribution.mjs                          # N=2, 3 rounds, 5 s per cell
//   node bench/workers-distribution.mjs --workers 2,4,8 --rounds 3 --duration 5 --out /tmp/d.md
//
// | flag | default | |
// |---|---|---|
// | --workers a,b | 2 | worker-thread counts to compare |
// | --modes a,b | reuseport,acceptor | |
// | --loads a,b | ka100,ka256,churn | ka<C>: keep-alive with C connections; churn: 100 connections, Connection: close |
// | --rounds R | 3 | interleaved rounds |
// | --duration S | 5 | measured seconds per cell (wrk's unit: whole seconds) |
// | --warmup S | 1 | unmeasured keep-alive load after each server start |
// | --pin auto\|off | auto | auto: server on cores 0..N-1, wrk on the rest, when a core remains for wrk |
// | --wrk-threads T | auto | auto: one per wrk core (at most 8); 2 when unpinned |
// | --node PATH | this node | node binary for the servers |
// | --wrk PATH | wrk | |
// | --no-probe | | skip the robustness probes (a worker leaving; exiting with workers alive) |
// | --uws DIR | node_modules/uWebSockets.js | another copy of the package (its uws.js and .node files) |
// | --label TEXT | hostname | named in the report and its file name |
// | --out FILE | bench/results/distribution-<label>-<date>.md | the markdown report ("-" for stdout only) |
//
// Acceptor mode needs App.getDescriptor/addChildAppDescriptor. In uwebsockets@3.0.6 only the
// binaries for Node ≥ 22 (ABI 127/137/141) have them, and those need glibc ≥ 2.38
// (__isoc23_strtol & co.); the Node 20 one (ABI 115) has neither method, and the report then marks
// acceptor "unsupported". The 2026-11 local runs used Node 22 and a copy of the ABI-127 binary
// whose GLIBC_2.38 need was made weak plus a tiny shim forwarding __isoc23_strto* to strto*
// (`--uws <that copy>`), since that machine has glibc 2.36.
//
// Internal: `--serve <mode> <N> <port>` is the server process (spawned by the runner).
import { spawn, execFileSync } from "node:child_process";
import { createServer } from "node:net";
import { get as httpGet } from "node:http";
import { cpus, hostname } from "node:os";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";

const SELF = fileURLToPath(import.meta.url);
const HOST = "127.0.0.1";
const BODY = "Hello, World!";

/** utime + stime of this thread, in clock ticks (sync fs runs on the calling thread). */
function threadTicks() {
  const stat = readFileSync("/proc/thread-self/stat", "utf8");
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(rest[11]) + Number(rest[12]);
}

/** utime + stime of a whole process (every thread), in clock ticks. */
function processTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(rest[11]) + Number(rest[12]);
}

/** The project's uWebSockets.js, or the copy named by --uws (passed to servers as UWS_DIST_PATH). */
function loadUws() {
  const require = createRequire(join(dirname(SELF), "..", "package.json"));
  const dir = process.env.UWS_DIST_PATH;
  return dir ? require(resolve(dir, "uws.js")) : require("uWebSockets.js");
}

// ---------------------------------------------------------------------------------------------
// Server side: `--serve <mode> <N> <port>` (main thread) and its worker threads.
// ---------------------------------------------------------------------------------------------

async function serve(mode, n, port) {
  const sab = new SharedArrayBuffer(n * Int32Array.BYTES_PER_ELEMENT);
  const counts = new Int32Array(sab);
  const workers = [];
  const cpuWaiters = [];
  const gone = [];
  let readyInfo;
  try {
    readyInfo = await Promise.all(Array.from({ length: n }, (_, index) => new Promise((resolve, reject) => {
      const worker = new Worker(SELF, { workerData: { distributionWorker: { index, mode, port, counts: sab } } });
      workers.push(worker);
      cpuWaiters.push([]);
      worker.on("message", (message) => {
        if (message.type === "ready") resolve(message);
        else if (message.type === "failed") reject(Object.assign(new Error(message.detail), { unsupported: message.unsupported }));
        else if (message.type === "cpu") cpuWaiters[index].shift()?.(message.ticks);
      });
      worker.on("error", reject);
      worker.on("exit", (code) => {
        gone[index] = true;
        for (const waiter of cpuWaiters[index].splice(0)) waiter(NaN);
        reject(new Error(`worker ${index} exited (${code}) before it was ready`));
        if (code !== 0) {
          process.send?.({ type: "crash", detail: `worker ${index} exited with code ${code}` });
        }
      });
    })));
  } catch (err) {
    process.send({ type: err.unsupported ? "unsupported" : "failed", detail: String(err.message) });
    process.exit(err.unsupported ? 3 : 1);
  }

  let acceptorReady = Promise.resolve(true);
  let acceptor = null;
  if (mode === "acceptor") {
    const uWS = loadUws();
    acceptor = uWS.App();
    for (const { descriptor } of readyInfo) acceptor.addChildAppDescriptor(descriptor);
    acceptorReady = new Promise((resolve) => acceptor.listen(HOST, port, (token) => resolve(Boolean(token))));
    globalThis.__acceptor = acceptor; // keep it reachable
  }
  if (!(await acceptorReady)) {
    process.send({ type: "failed", detail: `the acceptor could not listen on ${HOST}:${port}` });
    process.exit(1);
  }

  process.on("message", async (message) => {
    if (message?.type === "retire") {
      // Probe: worker `index` leaves (reuseport: closes its listen socket first; acceptor: is
      // removed from the acceptor first only when `remove`), and its thread ends.
      const { index, remove } = message;
      if (remove && acceptor) acceptor.removeChildAppDescriptor(readyInfo[index].descriptor);
      workers[index].once("exit", (code) => process.send({ type: "retired", code }));
      workers[index].postMessage("leave");
      return;
    }
    if (message?.type === "exit") process.exit(0);
    if (message?.type !== "stats") return;
    const perWorker = await Promise.all(workers.map((worker, index) => new Promise((resolve) => {
      if (gone[index]) return resolve(NaN);
      cpuWaiters[index].push(resolve);
      worker.postMessage("cpu");
    })));
    process.send({
      type: "stats",
      counts: Array.from(counts, (_, i) => Atomics.load(counts, i)),
      workerTicks: perWorker,
      mainTicks: threadTicks(),
    });
  });
  process.send({ type: "ready", node: process.version, abi: process.versions.modules });
}

// ---------------------------------------------------------------------------------------------
// Runner.
// ---------------------------------------------------------------------------------------------

function parseArgs(argv) {
  const opts = {
    workers: [2],
    modes: ["reuseport", "acceptor"],
    loads: ["ka100", "ka256", "churn"],
    rounds: 3,
    duration: 5,
    warmup: 1,
    pin: "auto",
    wrkThreads: "auto",
    node: process.execPath,
    wrk: "wrk",
    uws: null,
    probe: true,
    label: hostname(),
    out: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${flag} needs a value`);
      return argv[++i];
    };
    switch (flag) {
      case "--workers": opts.workers = value().split(",").map(Number); break;
      case "--modes": opts.modes = value().split(","); break;
      case "--loads": opts.loads = value().split(","); break;
      case "--rounds": opts.rounds = Number(value()); break;
      case "--duration": opts.duration = Number(value()); break;
      case "--warmup": opts.warmup = Number(value()); break;
      case "--pin": opts.pin = value(); break;
      case "--wrk-threads": opts.wrkThreads = value(); break;
      case "--node": opts.node = value(); break;
      case "--wrk": opts.wrk = value(); break;
      case "--uws": opts.uws = resolve(value()); break;
      case "--no-probe": opts.probe = false; break;
      case "--label": opts.label = value(); break;
      case "--out": opts.out = value(); break;
      case "-h": case "--help":
        console.log(readFileSync(SELF, "utf8").split("\nimport ")[0]);
        process.exit(0);
      default: throw new Error(`unknown flag ${flag}`);
    }
  }
  for (const mode of opts.modes) if (!["reuseport", "acceptor"].includes(mode)) throw new Error(`unknown mode ${mode}`);
  for (const load of opts.loads) if (!/^(ka\d+|churn\d*)$/.test(load)) throw new Error(`unknown load ${load}`);
  return opts;
}

function loadSpec(load) {
  const ka = /^ka(\d+)$/.exec(load);
  if (ka) return { connections: Number(ka[1]), close: false, title: `keep-alive, ${ka[1]} conns` };
  const churn = /^churn(\d*)$/.exec(load);
  const c = Number(churn[1] || 100);
  return { connections: c, close: true, title: `churn (Connection: close), ${c} conns` };
}

// bench/wrk.lua: its done() prints the LOAD_JSON line read below; WRK_CLOSE=1 makes the churn load.
const WRK_LUA = fileURLToPath(new URL("./wrk.lua", import.meta.url));

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, HOST, () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

let hasTaskset = false;
let ticksPerSecond = 100;
function probeHost() {
  try {
    execFileSync("taskset", ["-c", "0", "true"], { stdio: "ignore" });
    hasTaskset = true;
  } catch {
    hasTaskset = false;
  }
  try {
    ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    // 100 Hz is USER_HZ on every mainstream Linux.
  }
}

const live = new Set();
function track(child) {
  live.add(child);
  child.on("exit", () => live.delete(child));
  return child;
}
function killAll() {
  for (const child of live) child.kill("SIGKILL");
}

function pinned(cpuList, cmd, args, options) {
  return cpuList && hasTaskset ? spawn("taskset", ["-c", cpuList, cmd, ...args], options) : spawn(cmd, args, options);
}

/** Starts a server process; resolves { child, stats(), crashed, stderr } or { unsupported|failed }. */
function startServer(opts, mode, n, port, cpuList) {
  const child = track(pinned(cpuList, opts.node, [SELF, "--serve", mode, String(n), String(port)], {
    stdio: ["ignore", "inherit", "pipe", "ipc"],
    env: opts.uws ? { ...process.env, UWS_DIST_PATH: opts.uws } : process.env,
  }));
  const server = { child, stderr: "", crash: null, pending: [] };
  child.stderr.on("data", (chunk) => {
    server.stderr += chunk;
    process.stderr.write(chunk);
  });
  server.waiters = new Map();
  child.on("message", (message) => {
    if (message.type === "stats") server.pending.shift()?.(message);
    else if (message.type === "crash") server.crash = message.detail;
    server.waiters.get(message.type)?.(message);
  });
  server.waitFor = (type, ms) => new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), ms);
    server.waiters.set(type, (message) => { clearTimeout(timer); resolve(message); });
  });
  child.on("exit", (code, signal) => {
    if (!server.stopping) server.crash ??= `server exited (code ${code}, signal ${signal})`;
    for (const waiter of server.pending.splice(0)) waiter(null);
  });
  server.stats = () => new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(null);
    server.pending.push(resolve);
    child.send({ type: "stats" });
  });
  server.stop = () => new Promise((resolve) => {
    server.stopping = true;
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill("SIGKILL"), 2000);
    child.once("exit", () => { clearTimeout(timer); resolve(); });
    child.kill("SIGTERM");
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ failed: "no ready message within 15 s", server }), 15000);
    const onMessage = (message) => {
      if (message.type === "ready") {
        clearTimeout(timer);
        child.off("message", onMessage);
        server.info = message;
        resolve({ server });
      } else if (message.type === "unsupported" || message.type === "failed") {
        clearTimeout(timer);
        child.off("message", onMessage);
        resolve({ [message.type]: message.detail, server });
      }
    };
    child.on("message", onMessage);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ failed: `server exited before ready (code ${code}, signal ${signal})${server.stderr ? ": " + server.stderr.trim().split("\n").slice(-3).join(" | ") : ""}`, server });
    });
  });
}

function runWrk(opts, luaPath, port, spec, seconds, threads, cpuList) {
  return new Promise((resolve) => {
    const args = ["-t", String(Math.min(threads, spec.connections)), "-c", String(spec.connections), "-d", `${seconds}s`,
      "--latency", "-s", luaPath, `http://${HOST}:${port}/`];
    const child = track(pinned(cpuList, opts.wrk, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, WRK_CLOSE: spec.close ? "1" : "0" },
    }));
    let out = "";
    child.stdout.on("data", (chunk) => { out += chunk; });
    child.stderr.on("data", (chunk) => { out += chunk; });
    child.on("exit", () => {
      const line = out.split("\n").find((l) => l.startsWith("LOAD_JSON "));
      if (!line) return resolve({ error: `wrk gave no result: ${out.trim().slice(-300)}` });
      resolve(JSON.parse(line.slice("LOAD_JSON ".length)));
    });
  });
}

/** One GET on a fresh connection; resolves true for "200 Hello, World!". */
function getOnce(port) {
  return new Promise((resolvePromise) => {
    const req = httpGet({ host: HOST, port, path: "/", agent: false, timeout: 1000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => { body += chunk; });
      res.on("end", () => resolvePromise(res.statusCode === 200 && body === BODY));
      res.on("error", () => resolvePromise(false));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolvePromise(false));
  });
}

/** How the server process ended (or "still running"), waiting up to `ms`. */
function endOf(child, ms) {
  const describe = () => (child.signalCode ? `killed by ${child.signalCode}` : `exit code ${child.exitCode}`);
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(describe());
  return new Promise((resolvePromise) => {
    const timer = setTimeout(() => resolvePromise("still running"), ms);
    child.once("exit", () => { clearTimeout(timer); resolvePromise(describe()); });
  });
}

/**
 * Robustness probes (one server each, 2 workers): what happens when a worker thread goes away
 * while the server keeps running, and when the process exits normally with its workers alive.
 */
async function probes(opts) {
  const variants = [
    { mode: "reuseport", retire: true, remove: false, what: "worker 1 closes its listen socket, its thread ends; 20 new connections" },
    { mode: "acceptor", retire: true, remove: true, what: "removeChildAppDescriptor(worker 1), then its thread ends; 20 new connections" },
    { mode: "acceptor", retire: true, remove: false, what: "worker 1's thread ends WITHOUT removeChildAppDescriptor; 20 new connections" },
    { mode: "reuseport", retire: false, what: "process.exit(0) on the main thread, workers serving (their handles left open)" },
    { mode: "acceptor", retire: false, what: "process.exit(0) on the main thread, workers serving (their handles left open)" },
  ].filter((v) => opts.modes.includes(v.mode));
  const rows = [];
  for (const variant of variants) {
    const port = await freePort();
    const started = await startServer(opts, variant.mode, 2, port, null);
    if (!started.server.info) {
      rows.push({ ...variant, result: started.unsupported ?? started.failed });
      await started.server.stop();
      continue;
    }
    const { server } = started;
    server.stopping = true; // its exit is the observation here, not a crash of a measured cell
    let ok = 0;
    let served = "";
    if (variant.retire) {
      const before = await server.stats();
      const retired = server.waitFor("retired", 3000);
      server.child.send({ type: "retire", index: 1, remove: variant.remove });
      const r = await retired;
      await new Promise((resolveTimer) => setTimeout(resolveTimer, 200));
      for (let i = 0; i < 20; i++) if (await getOnce(port)) ok++;
      const after = await server.stats();
      served = after ? ` (served: worker 0 ${after.counts[0] - before.counts[0]}, worker 1 ${after.counts[1] - before.counts[1]})` : "";
      const state = await endOf(server.child, 300);
      rows.push({ ...variant, result: `worker 1 ${r ? `exited (${r.code})` : "did not exit in 3 s"}; ${ok}/20 requests OK${served}; server: ${state === "still running" ? "alive" : state}` });
    } else {
      for (let i = 0; i < 5; i++) if (await getOnce(port)) ok++;
      server.child.send({ type: "exit" });
      const state = await endOf(server.child, 3000);
      rows.push({ ...variant, result: `${ok}/5 requests OK before; process ${state === "still running" ? "did not exit within 3 s" : state}` });
    }
    await server.stop();
  }
  return rows;
}

function range(a, b) {
  return a === b ? String(a) : `${a}-${b}`;
}

/** Server and wrk CPU lists for N workers, or nulls (unpinned). */
function placement(opts, n, ncpu) {
  if (opts.pin === "off" || !hasTaskset || ncpu - n < 1) {
    const threads = opts.wrkThreads === "auto" ? 2 : Number(opts.wrkThreads);
    return { server: null, wrk: null, threads, note: `unpinned (${ncpu} cores shared by server and wrk)` };
  }
  const wrkCores = ncpu - n;
  const threads = opts.wrkThreads === "auto" ? Math.min(8, wrkCores) : Number(opts.wrkThreads);
  return {
    server: range(0, n - 1),
    wrk: range(n, ncpu - 1),
    threads,
    note: `server on cores ${range(0, n - 1)}, wrk (${threads} threads) on cores ${range(n, ncpu - 1)}`,
  };
}

const median = (values) => {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
};

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  probeHost();
  process.on("exit", killAll);
  for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => { killAll(); process.exit(130); });
  const ncpu = (() => {
    try {
      return Number(execFileSync("nproc", { encoding: "utf8" }).trim());
    } catch {
      return cpus().length;
    }
  })();
  const nodeVersion = execFileSync(opts.node, ["-p", "process.version + ' ABI ' + process.versions.modules"], { encoding: "utf8" }).trim();
  let wrkVersion = "?";
  try {
    wrkVersion = execFileSync(opts.wrk, ["-v"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).split("\n")[0];
  } catch (err) {
    wrkVersion = String(err.stdout ?? "").split("\n")[0] || `not runnable: ${err.message}`;
  }
  const luaPath = WRK_LUA;

  console.error(`# workers-distribution: node ${nodeVersion}, ${wrkVersion}, ${ncpu} cores, ${opts.rounds} rounds × ${opts.duration} s`);
  const cells = []; // one per (round, n, mode, load)
  const notes = new Map(); // `${n}/${mode}` → note (unsupported, failures)
  const unsupported = new Set();

  const probeRows = opts.probe ? await probes(opts) : [];
  for (const row of probeRows) console.error(`probe ${row.mode}: ${row.what} → ${row.result}`);

  for (let round = 0; round < opts.rounds; round++) {
    for (const n of opts.workers) {
      const place = placement(opts, n, ncpu);
      const modes = round % 2 ? [...opts.modes].reverse() : opts.modes;
      for (const mode of modes) {
        if (unsupported.has(mode)) continue;
        const port = await freePort();
        const started = await startServer(opts, mode, n, port, place.server);
        if (!started.server.info) {
          const detail = started.unsupported ?? started.failed;
          notes.set(`${n}/${mode}`, `${started.unsupported ? "unsupported" : "failed to start"}: ${detail}`);
          console.error(`round ${round + 1} N=${n} ${mode}: ${detail}`);
          if (started.unsupported) unsupported.add(mode);
          await started.server.stop();
          continue;
        }
        const { server } = started;
        if (opts.warmup > 0) await runWrk(opts, luaPath, port, loadSpec("ka100"), opts.warmup, place.threads, place.wrk);
        for (const load of opts.loads) {
          const spec = loadSpec(load);
          const before = await server.stats();
          const pidTicks0 = safeTicks(server.child.pid);
          const t0 = process.hrtime.bigint();
          const result = await runWrk(opts, luaPath, port, spec, opts.duration, place.threads, place.wrk);
          const wall = Number(process.hrtime.bigint() - t0) / 1e9;
          const after = await server.stats();
          const pidTicks1 = safeTicks(server.child.pid);
          const cell = { round, n, mode, load, place: place.note, wall };
          if (result.error || !before || !after) {
            cell.error = result.error ?? `server gone: ${server.crash ?? "no stats"}`;
          } else {
            const counts = after.counts.map((c, i) => c - before.counts[i]);
            const total = counts.reduce((a, b) => a + b, 0);
            Object.assign(cell, {
              rps: result.requests / (result.duration_us / 1e6),
              p50: result.latency_us.p50,
              p99: result.latency_us.p99,
              errors: result.errors,
              served: total,
              shares: counts.map((c) => (total ? c / total : 0)),
              serverCores: (pidTicks1 - pidTicks0) / ticksPerSecond / wall,
              workerCores: after.workerTicks.map((t, i) => (t - before.workerTicks[i]) / ticksPerSecond / wall),
              mainCores: (after.mainTicks - before.mainTicks) / ticksPerSecond / wall,
            });
            cell.idleWorkers = counts.filter((c) => c === 0).length;
          }
          if (server.crash) cell.crash = server.crash;
          cells.push(cell);
          console.error(formatProgress(cell));
        }
        if (server.crash) notes.set(`${n}/${mode}`, `crashed: ${server.crash}`);
        await server.stop();
      }
    }
  }

  const report = renderReport(opts, cells, notes, { ncpu, nodeVersion, wrkVersion, probeRows });
  console.log(report);
  if (opts.out !== "-") {
    const stamp = new Date().toISOString().replace(/:/g, "-").replace(/\.\d+Z$/, "Z");
    const out = opts.out ?? join(dirname(SELF), "results", `distribution-${opts.label.replace(/[^\w.-]+/g, "_")}-${stamp}.md`);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, report);
    console.error(`wrote ${out}`);
  }
}

function safeTicks(pid) {
  try {
    return processTicks(pid);
  } catch {
    return NaN;
  }
}

const pct = (x) => `${(x * 100).toFixed(1)}%`;
const fmtK = (x) => (Number.isFinite(x) ? `${(x / 1000).toFixed(1)}k` : "–");
const fmt2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : "–");
const fmtMs = (us) => (Number.isFinite(us) ? `${(us / 1000).toFixed(2)}` : "–");

function formatProgress(cell) {
  const head = `r${cell.round + 1} N=${cell.n} ${cell.mode.padEnd(9)} ${cell.load.padEnd(6)}`;
  if (cell.error) return `${head} ERROR ${cell.error}`;
  const errs = Object.values(cell.errors).reduce((a, b) => a + b, 0);
  return `${head} ${fmtK(cell.rps).padStart(8)} req/s  p99 ${fmtMs(cell.p99)} ms  cpu ${fmt2(cell.serverCores)} (main ${fmt2(cell.mainCores)}, workers ${cell.workerCores.map(fmt2).join(" ")})  ` +
    `shares ${cell.shares.map(pct).join(" ")}${errs ? `  wrk errors ${JSON.stringify(cell.errors)}` : ""}${cell.crash ? `  CRASH ${cell.crash}` : ""}`;
}

/** max share ÷ fair share (1/N): 1.00 is perfectly even. */
const imbalance = (shares) => Math.max(...shares) * shares.length;

function renderReport(opts, cells, notes, env) {
  const lines = [];
  lines.push(`# Worker connection distribution: reuseport vs acceptor`, "");
  lines.push(`${new Date().toISOString()} · ${opts.label} · ${env.ncpu} cores · node ${env.nodeVersion} · ${env.wrkVersion} · ` +
    `uWebSockets.js ${opts.uws ?? "node_modules/uWebSockets.js"} · ${opts.rounds} interleaved rounds × ${opts.duration} s per cell (warm-up ${opts.warmup} s per server start) · medians over rounds`, "");
  lines.push(`Raw uWebSockets.js \`GET /*\` → "Hello, World!" text/plain in N worker threads. **reuseport**: each worker's App listens on the same port (SO_REUSEPORT, the kernel hashes connections to listeners). **acceptor**: the main thread's App listens and hands each accepted socket round-robin to the workers' Apps (\`addChildAppDescriptor(getDescriptor())\`). Loads: wrk keep-alive (ka<C> = C connections) and churn (\`Connection: close\` on every request, so a new connection per request).`, "");
  lines.push(`In churn, wrk counts about one read error per request: uWS answers a \`Connection: close\` request and closes without echoing the header, so wrk meets EOF and reconnects; they are not failed requests.`, "");
  lines.push(`Columns: req/s (wrk); p50/p99 latency (ms); server CPU = cores busy in the whole server process (all threads, /proc/pid/stat); main = the main (acceptor) thread's cores; req per CPU-ms = requests per millisecond of server CPU; imbalance = busiest worker's share ÷ fair share (1.00 = even); shares = per-worker request shares of the median round (workers sorted busiest first); idle = workers that served nothing in any round.`, "");

  const placements = [...new Set(cells.map((c) => `N=${c.n}: ${c.place}`))];
  if (placements.length) lines.push(`Placement: ${placements.join("; ")}.`, "");
  for (const [key, note] of notes) lines.push(`- **N=${key.replace("/", " ")}**: ${note}`);
  if (notes.size) lines.push("");

  for (const n of opts.workers) {
    lines.push(`## N = ${n} workers`, "");
    lines.push(`| load | mode | req/s | p50 | p99 | server CPU | main | req per CPU-ms | imbalance | shares (median round) | idle | wrk errors (median per request) |`);
    lines.push(`|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|`);
    const compare = [];
    for (const load of opts.loads) {
      const byMode = {};
      for (const mode of opts.modes) {
        const all = cells.filter((c) => c.n === n && c.mode === mode && c.load === load);
        const ok = all.filter((c) => !c.error);
        if (all.length === 0) {
          lines.push(`| ${load} | ${mode} | ${notes.get(`${n}/${mode}`) ?? "not run"} |||||||||||`);
          continue;
        }
        if (ok.length === 0) {
          lines.push(`| ${load} | ${mode} | error: ${all[0].error} |||||||||||`);
          continue;
        }
        const rps = median(ok.map((c) => c.rps));
        const mid = [...ok].sort((a, b) => a.rps - b.rps)[ok.length >> 1];
        const errs = Object.keys(ok[0].errors)
          .map((k) => [k, median(ok.map((c) => c.errors[k] / (c.rps * c.wall)))])
          .filter(([, v]) => v > 0)
          .map(([k, v]) => `${k} ${v.toFixed(2)}/req`);
        const idle = Math.max(...ok.map((c) => c.idleWorkers));
        byMode[mode] = { rps, p99: median(ok.map((c) => c.p99)), cores: median(ok.map((c) => c.serverCores)) };
        lines.push(`| ${load} | ${mode} | ${fmtK(rps)} | ${fmtMs(median(ok.map((c) => c.p50)))} | ${fmtMs(median(ok.map((c) => c.p99)))} | ` +
          `${fmt2(median(ok.map((c) => c.serverCores)))} | ${fmt2(median(ok.map((c) => c.mainCores)))} | ` +
          `${fmt2(median(ok.map((c) => c.rps * c.wall / (c.serverCores * c.wall * 1000))))} | ` +
          `${fmt2(median(ok.map((c) => imbalance(c.shares))))} | ${[...mid.shares].sort((a, b) => b - a).map(pct).join(" / ")} | ` +
          `${idle} | ${errs.length ? errs.join("; ") : "0"}${ok.length < all.length ? ` (${all.length - ok.length} failed)` : ""} |`);
      }
      if (byMode.reuseport && byMode.acceptor) {
        const r = byMode.acceptor.rps / byMode.reuseport.rps - 1;
        compare.push(`${load}: acceptor ${r >= 0 ? "+" : ""}${(r * 100).toFixed(1)}% req/s vs reuseport ` +
          `(p99 ${fmtMs(byMode.acceptor.p99)} vs ${fmtMs(byMode.reuseport.p99)} ms, CPU ${fmt2(byMode.acceptor.cores)} vs ${fmt2(byMode.reuseport.cores)} cores)`);
      }
    }
    lines.push("");
    if (compare.length) lines.push(...compare.map((c) => `- ${c}`), "");
  }

  if (env.probeRows.length) {
    lines.push(`## Robustness probes (2 workers, unpinned)`, "");
    lines.push(`| mode | what | result |`, `|---|---|---|`);
    for (const row of env.probeRows) lines.push(`| ${row.mode} | ${row.what} | ${row.result} |`);
    lines.push("");
  }

  lines.push(`<details><summary>every cell</summary>`, "", "```");
  for (const cell of cells) lines.push(formatProgress(cell));
  lines.push("```", "", `</details>`, "");
  return lines.join("\n");
}

function workerMain() {
  const { index, mode, port, counts: sab } = workerData.distributionWorker;
  const counts = new Int32Array(sab);
  const uWS = loadUws();
  const app = uWS.App().get("/*", (res) => {
    Atomics.add(counts, index, 1);
    res.writeHeader("Content-Type", "text/plain").end(BODY);
  });
  globalThis.__app = app; // keep it reachable for the worker's lifetime
  let listenSocket = null;
  parentPort.on("message", (message) => {
    if (message === "cpu") parentPort.postMessage({ type: "cpu", ticks: threadTicks() });
    if (message === "leave") {
      // Nothing else keeps this thread alive: without its listen socket and port it ends.
      if (listenSocket) uWS.us_listen_socket_close(listenSocket);
      parentPort.close();
    }
  });
  if (mode === "reuseport") {
    app.listen(HOST, port, (token) => {
      listenSocket = token;
      if (token) parentPort.postMessage({ type: "ready" });
      else parentPort.postMessage({ type: "failed", detail: `worker ${index} could not listen on ${HOST}:${port}` });
    });
  } else if (typeof app.getDescriptor !== "function") {
    parentPort.postMessage({
      type: "failed",
      unsupported: true,
      detail: `this uWebSockets.js build (node ABI ${process.versions.modules}) has no App.getDescriptor/addChildAppDescriptor`,
    });
  } else {
    parentPort.postMessage({ type: "ready", descriptor: app.getDescriptor() });
  }
}

// Dispatch last, so every module-level constant above is initialised.
if (!isMainThread && workerData?.distributionWorker) {
  workerMain();
} else if (process.argv[2] === "--serve") {
  await serve(process.argv[3], Number(process.argv[4]), Number(process.argv[5]));
} else if (isMainThread) {
  await main();
}
