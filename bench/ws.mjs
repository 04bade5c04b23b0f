// WebSocket benchmark runner: echo, fan-out and idle memory, each server in its own pinned process, loaded by the C
// client bench/ws/wsload.c (compiled on first use); writes bench/results/ws-<date>.md and .json.
//
//   node bench/ws.mjs [--rounds N] [--duration S] [--only a,b] [--scenarios a,b] [--windows 32,128] [--strace] …
//
// The xfanout-* and xlatency scenarios run the publisher's connection on one thread and the subscribers' on another
// thread of the same process (servers/ws-threads.mjs): uwserve's hub against pure-JS relays, uwserve on one thread
// for reference.
//
// See the "WebSockets" section of bench/README.md for what the columns and flags mean.
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { execFileSync, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import os from "node:os";
import { runBench, spawnPinned, stop, cpuWindow, coreTicks, peakRssMiB, canPin, hasCommand, startReadyServer, findBinary } from "./_proc.mjs";
import { eachFlag } from "./_flags.mjs";
import { groupCells, median, roundStats } from "./_report.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BENCH = fileURLToPath(new URL(".", import.meta.url));
const RESULTS = join(BENCH, "results");
const WSLOAD_SRC = join(BENCH, "ws", "wsload.c");
// An ignored build folder (.gitignore): the binary is built for this machine by the first run.
const WSLOAD = join(BENCH, "ws", "build", "wsload");

const SERVER_NAMES = ["raw-uws", "uwserve", "uwserve-node", "ws", "bun", "c-ceiling", "uwserve-hub", "relay-port", "relay-broadcast"];
// The two-thread servers (servers/ws-threads.mjs) run only the cross-thread scenarios; of the others, only these do
// (not uwserve-node, raw-uws, ws or bun: they run echo, fanout-* and idle only).
const THREADED = ["uwserve-hub", "relay-port", "relay-broadcast"];
const CROSS_PEERS = ["uwserve", "c-ceiling", ...THREADED];
const RELAYS = ["relay-port", "relay-broadcast"];

const HELP = `Usage: node bench/ws.mjs [options]     (or: npm run bench:ws -- [options])

  --rounds N              interleaved rounds, medians reported (default 3)
  --duration S            measured seconds per cell (default 3)
  --warmup S              unmeasured load before each measurement (default 1)
  --only a,b              servers (default: all available): ${SERVER_NAMES.join(", ")}
  --scenarios a,b         echo, fanout-<W> (one per --windows entry), idle, xfanout-<N> (one per --xt-subscribers
                          entry), xlatency (default: all)
  --windows W,W           fan-out windows: messages in flight until every subscriber has them (default 32,128)
  --xt-subscribers N,N    cross-thread fan-out: subscribers on thread B, one scenario each (default 500,10,1)
  --xt-window W           cross-thread fan-out window (default 128)
  --rate R                xlatency: messages/s the publisher sends on a timer (default 5000)
  --latency-subscribers N xlatency: subscribers on thread B (default 10)
  --thread-cores LIST     pin the two-thread servers to these cores (taskset list, e.g. 0-1) instead of the server's
                          core; they then share the client's core (flagged ⇄)
  --size N                message size in bytes, at least 12 (default 32)
  --echo-connections N    echo clients, 1 message in flight each (default 64)
  --subscribers N         fan-out subscriber connections (default 500)
  --idle-connections N    idle connections for the memory scenario (default 5000)
  --idle-settle S         seconds of quiet before each idle RSS reading, after a forced GC (default 12)
  --retries N             re-measure a noisy cell up to N times (default 1)
  --strace                after the rounds, count the server's send syscalls per delivery with strace -c -f
                          (one extra, unmeasured run per server and load scenario)
  --quick                 1 round, 2 s, 0.5 s warm-up, 3 s idle settle: a smoke run, not numbers
  --no-save               print the report only, write nothing to bench/results/
  --help

c-ceiling is wsload's own minimal C server (one send per socket per loop turn): not a peer but the calibration
showing how far the client itself can go on this machine. uwserve-node is uwserve's node engine: the same
servers/ws-uwserve.mjs with UWSERVE_ENGINE=node (node:http + ws); like ws, it runs echo, fanout-* and idle only.
uwserve-hub, relay-port and relay-broadcast are one process with two uwserve threads (servers/ws-threads.mjs;
publisher on A, subscribers on B) relaying through the native hub, a MessagePort, a BroadcastChannel: they run only
xfanout-* and xlatency, with uwserve (one thread) and c-ceiling as references.`;

// ---------------------------------------------------------------------------------------------
// Options

function parseArgs(argv) {
  const o = {
    rounds: 3, duration: 3, warmup: 1, only: null, scenarios: null, windows: [32, 128], size: 32, echoConnections: 64,
    subscribers: 500, idleConnections: 5000, idleSettle: 12, retries: 1, strace: false, quick: false, save: true,
    xtSubscribers: [500, 10, 1], xtWindow: 128, rate: 5000, latencySubscribers: 10, threadCores: null,
  };
  const explicit = new Set();
  eachFlag(argv, fail, (flag, arg, { value, number, list }) => {
    explicit.add(flag);
    switch (flag) {
      case "--rounds": o.rounds = Math.round(number(1)); break;
      case "--duration": o.duration = number(0.5); break;
      case "--warmup": o.warmup = number(0); break;
      case "--only": o.only = list(value()); break;
      case "--scenarios": o.scenarios = list(value()); break;
      case "--windows": o.windows = list(value()).map((w) => Math.round(number(1, w))); break;
      case "--size": o.size = Math.round(number(12)); break;
      case "--echo-connections": o.echoConnections = Math.round(number(1)); break;
      case "--subscribers": o.subscribers = Math.round(number(1)); break;
      case "--xt-subscribers": o.xtSubscribers = list(value()).map((n) => Math.round(number(1, n))); break;
      case "--xt-window": o.xtWindow = Math.round(number(1)); break;
      case "--rate": o.rate = number(1); break;
      case "--latency-subscribers": o.latencySubscribers = Math.round(number(1)); break;
      case "--thread-cores": o.threadCores = value(); if (!/^\d+([-,]\d+)*$/.test(o.threadCores)) fail("--thread-cores expects a taskset list such as 0-1"); break;
      case "--idle-connections": o.idleConnections = Math.round(number(1)); break;
      case "--idle-settle": o.idleSettle = number(2); break;
      case "--retries": o.retries = Math.round(number(0)); break;
      case "--strace": o.strace = true; break;
      case "--quick": o.quick = true; break;
      case "--no-save": o.save = false; break;
      case "--help": case "-h": console.log(HELP); process.exit(0); break;
      default: fail(`unknown option ${arg}\n\n${HELP}`);
    }
  });
  if (o.windows.some((w) => w >= 4096) || o.xtWindow >= 4096) fail("--windows, --xt-window: at most 4095 messages in flight");
  if (o.quick) {
    if (!explicit.has("--rounds")) o.rounds = 1;
    if (!explicit.has("--duration")) o.duration = 2;
    if (!explicit.has("--warmup")) o.warmup = 0.5;
    if (!explicit.has("--retries")) o.retries = 0;
    if (!explicit.has("--idle-settle")) o.idleSettle = 3;
  }
  return o;
}

function fail(message) {
  console.error(`bench:ws: ${message}`);
  process.exit(2);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// The client

/** Compiles wsload.c into the ignored build folder when the binary is missing or older than the source; returns the compiler's name. */
function buildClient() {
  const cc = process.env.CC ?? "cc";
  let compiler = cc;
  try {
    compiler = execFileSync(cc, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).split("\n")[0].trim();
  } catch {
    fail(`no C compiler: \`${cc} --version\` failed (install gcc, or set CC)`);
  }
  if (!existsSync(WSLOAD) || statSync(WSLOAD).mtimeMs < statSync(WSLOAD_SRC).mtimeMs) {
    mkdirSync(dirname(WSLOAD), { recursive: true });
    console.error(`bench:ws: compiling ${WSLOAD_SRC.slice(ROOT.length)} with ${cc} -O2`);
    try {
      execFileSync(cc, ["-O2", "-Wall", "-o", WSLOAD, WSLOAD_SRC], { stdio: "inherit" });
    } catch {
      fail(`${cc} could not compile ${WSLOAD_SRC}`);
    }
  }
  return compiler;
}

// ---------------------------------------------------------------------------------------------
// Servers

/** Returns every known server with how to start it, or `skip` saying why it cannot run here. */
function serverTable() {
  const file = (name) => join(BENCH, "servers", name);
  // --expose-gc: the idle scenario's SIGUSR2 runs a full collection before each RSS reading (servers/_ws.mjs).
  const node = (name) => ({ cmd: process.execPath, args: ["--expose-gc", file(name)] });
  const dist = existsSync(join(ROOT, "dist", "index.js"));
  const noDist = "dist/index.js not found (run `npm run build`)";
  const bun = findBinary("bun");
  const hub = dist ? hubMissing() : noDist;
  // Both threads of the process share the server's core (see the README): the cells compare what each relay costs.
  const threads = (relay, skip) => ({ ...node("ws-threads.mjs"), env: { BENCH_RELAY: relay }, threads: true, skip });
  return [
    { name: "raw-uws", ...node("ws-raw-uws.mjs") },
    { name: "uwserve", ...node("ws-uwserve.mjs"), skip: dist ? null : noDist },
    // uwserve's node engine (node:http + ws): the same server file, the engine chosen as a process chooses it.
    { name: "uwserve-node", ...node("ws-uwserve.mjs"), env: { UWSERVE_ENGINE: "node" }, skip: dist ? null : noDist },
    { name: "ws", ...node("ws-ws.mjs") },
    { name: "bun", cmd: bun, args: [file("ws-bun.mjs")], skip: bun ? null : "bun not installed (npm install --no-save bun)" },
    { name: "c-ceiling", cmd: WSLOAD, args: ["serve", "-p", "0"], calibration: true },
    { name: "uwserve-hub", ...threads("hub", hub) },
    { name: "relay-port", ...threads("port", dist ? null : noDist) },
    { name: "relay-broadcast", ...threads("broadcast", dist ? null : noDist) },
  ];
}

/** Returns null when this build's native hub loads (dist/websocket/hub.js joinHub), else why not. */
function hubMissing() {
  try {
    execFileSync(process.execPath, ["--input-type=module", "-e", 'const { joinHub } = await import("./dist/websocket/hub.js"); joinHub(() => {}).leave();'], {
      cwd: ROOT, stdio: ["ignore", "ignore", "pipe"],
    });
    return null;
  } catch (error) {
    const why = String(error.stderr ?? "").split("\n").find((l) => /Error/.test(l))?.trim();
    return `the native hub does not load${why ? ` (${why})` : ""}: build the addon (npm run build)`;
  }
}

/**
 * Takes a server entry and a scenario, returns whether that server runs it: the cross-thread ones only CROSS_PEERS,
 * the others every server but the two-thread ones.
 */
function supports(def, scenario) {
  return scenario.cross ? CROSS_PEERS.includes(def.name) : !def.threads;
}

/**
 * Takes a server entry and a core, starts it with PORT=0 and the entry's env over this process's environment
 * (def.env wins), resolves { child, port, port2, stderr() } once it prints "ready <port>" (a two-thread server:
 * "ready <port A> <port B>").
 */
function startServer(def, core) {
  return startReadyServer(def, core, { ...process.env, PORT: "0", ...def.env }).catch((error) => {
    error.startFailed = true;
    throw error;
  });
}

/** Takes a pid, returns its resident set size (VmRSS) in KiB, or null. */
function rssKiB(pid) {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/** Returns the scenarios for these options: echo, one fanout-<W> per window, idle. */
function scenarioList(opts) {
  return [
    {
      name: "echo", kind: "echo", unit: "msg", connections: opts.echoConnections,
      title: `${opts.echoConnections} clients, ${opts.size}-byte text messages, 1 in flight per client`,
      args: ["echo", "-c", opts.echoConnections, "-s", opts.size],
    },
    ...opts.windows.map((w) => ({
      name: `fanout-${w}`, kind: "fanout", unit: "delivery", window: w, connections: opts.subscribers + 1,
      title: `${opts.subscribers} subscribers on one topic, 1 publisher, ${opts.size}-byte text messages, window ${w}`,
      args: ["fanout", "-c", opts.subscribers, "-s", opts.size, "-W", w],
    })),
    {
      name: "idle", kind: "idle", unit: "connection", connections: opts.idleConnections,
      title: `${opts.idleConnections.toLocaleString("en-US")} idle connections: server RSS growth per connection`,
      args: ["idle", "-c", opts.idleConnections],
    },
    // Cross-thread: the client connects the publisher to the server's first port (thread A) and the subscribers to
    // its second (-S; thread B). A one-thread server has one port: both go there.
    ...opts.xtSubscribers.map((n) => ({
      name: `xfanout-${n}`, kind: "fanout", cross: true, unit: "delivery", window: opts.xtWindow, connections: n + 1,
      title: `publisher on thread A, ${n} subscriber${n === 1 ? "" : "s"} on thread B, one topic, ${opts.size}-byte text messages, window ${opts.xtWindow}`,
      args: ["fanout", "-c", n, "-s", opts.size, "-W", opts.xtWindow],
    })),
    {
      name: "xlatency", kind: "latency", cross: true, unit: "delivery", connections: opts.latencySubscribers + 1, rate: opts.rate,
      title: `publisher on thread A sending ${opts.rate.toLocaleString("en-US")} messages/s on a timer, ` +
        `${opts.latencySubscribers} subscribers on thread B, ${opts.size}-byte text messages: publish → receive delay`,
      args: ["fanout", "-c", opts.latencySubscribers, "-s", opts.size, "-R", opts.rate],
    },
  ].map((s) => ({ ...s, args: s.args.map(String) }));
}

// ---------------------------------------------------------------------------------------------
// Flags

/** Flag symbols, in the order they are printed, with their legend line. */
const FLAGS = {
  failed: ["✗", "failed: the client saw a wrong, missing, extra or out-of-order message, a lost delivery or a closed connection, or the server did not start / died (see Failures)"],
  clientBound: ["†", "client-bound: the client used ≥ 90 % of its core while the server stayed < 90 %: the rate understates the server"],
  clientBusy: ["•", "client busy: the client used ≥ 90 % of its core, and the server did too: both at their limit; the c-ceiling row shows how much further the client can go"],
  unsaturated: ["‡", "unsaturated: neither process reached 80 % of its core (waits between the two sides, or work the kernel did outside the server process)"],
  noisy: ["~", "noisy: something else used ≥ 10 % of the server's or client's core during the measurement"],
  sharedCores: ["⇄", "shares cores with the client: a two-thread server pinned to --thread-cores, which include the client's core; server CPU can exceed 100 % and there is no noise check"],
};

function flagsOf(cpu, failed) {
  const { server, client, serverForeign, clientForeign } = cpu ?? {};
  const known = client != null && server != null;
  return {
    failed,
    clientBound: known && client >= 90 && server < 90,
    clientBusy: known && client >= 90 && server >= 90,
    unsaturated: known && client < 80 && server < 80,
    noisy: (serverForeign ?? 0) >= 10 || (clientForeign ?? 0) >= 10,
  };
}

const noFlags = () => Object.fromEntries(Object.keys(FLAGS).map((k) => [k, false]));

// ---------------------------------------------------------------------------------------------
// One cell

/**
 * Takes the server, the scenario and hooks, runs wsload once against it, returns the parsed WSLOAD_JSON result and the
 * CPU of both processes between the client's "phase measure" and "phase done" lines. `onLine(line, child)` sees
 * every stdout line (idle uses it). The promise resolves when the client exits.
 */
function runClient({ server, scenario, opts, cores, extraArgs = [], hooks = {} }) {
  const args = [...scenario.args, "-p", String(server.port), ...(scenario.cross ? ["-S", String(server.port2 ?? server.port)] : []), ...extraArgs];
  const child = spawnPinned(WSLOAD, args, { stdio: ["ignore", "pipe", "pipe"] }, cores.client);
  let stdout = "";
  let stderr = "";
  let pending = "";
  let window = null;
  let cpu = null;
  // A server on several cores (--thread-cores) has no core of its own to check for foreign load.
  const roles = () => ({ server: { pid: server.child.pid, core: cores.shared ? null : cores.server }, client: { pid: child.pid, core: cores.client } });
  child.stdout.on("data", (d) => {
    stdout += d;
    pending += d;
    let nl;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line === "phase measure") {
        window = cpuWindow(roles());
        hooks.onMeasure?.(child);
      } else if (line === "phase done") {
        cpu = window?.close() ?? null;
        hooks.onDone?.(child);
      }
      hooks.onLine?.(line, child);
    }
  });
  child.stderr.on("data", (d) => (stderr = (stderr + d).slice(-4000)));
  const limit = (opts.warmup + opts.duration) * 1000 + 90_000;
  const killTimer = setTimeout(() => child.kill("SIGKILL"), hooks.limitMs ?? limit);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(killTimer);
      const line = stdout.split("\n").find((l) => l.startsWith("WSLOAD_JSON "));
      if (!line) {
        reject(new Error(`wsload ${args.join(" ")} gave no result (exit ${code ?? signal}):\n${stderr.trim()}`));
        return;
      }
      const result = JSON.parse(line.slice("WSLOAD_JSON ".length));
      resolve({ result, code, signal, stderr: stderr.trim(), cpu: cpu && {
        // With the server's threads on the client's core, their time there is the setup, not foreign load.
        server: cpu.server.cpu, client: cpu.client.cpu, serverForeign: cpu.server.foreign, clientForeign: cores.shared ? null : cpu.client.foreign,
      } });
    });
  });
}

/** Takes a wsload result, returns a description of what went wrong, or null. */
function problems(result, scenario, code) {
  const errors = Object.entries(result.errors).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`);
  if (result.lost > 0) errors.push(`lost ${result.lost} deliveries`);
  if (result.open < scenario.connections) errors.push(`only ${result.open} of ${scenario.connections} connections open`);
  if (code !== 0 && code !== null) errors.push(`wsload exited ${code}`);
  return errors.length ? `wsload: ${errors.join(", ")}` : null;
}

async function loadCell({ server, scenario, opts, cores }) {
  const { result, code, cpu, stderr } = await runClient({
    server, scenario, opts, cores, extraArgs: ["-w", String(opts.warmup), "-d", String(opts.duration)],
  });
  const problem = problems(result, scenario, code);
  if (problem) throw new Error(problem + (stderr ? `\n${stderr}` : ""));
  if (!(result.seconds > 0)) throw new Error("wsload measured no time");
  const latency = scenario.kind === "latency" ? result.latency : null;
  if (latency && !(latency.count > 0)) throw new Error("wsload recorded no delivery delay");
  return {
    rate: result.deliveries / result.seconds,
    messageRate: result.messages / result.seconds,
    cpu,
    clientSelfCpu: result.cpuPct,
    clientSyscalls: result.syscalls,
    ...(latency ? { p50Us: latency.p50Us, p90Us: latency.p90Us, p99Us: latency.p99Us, maxUs: latency.maxUs, meanUs: latency.meanUs, behind: result.behind } : {}),
  };
}

async function idleCell({ server, scenario, opts, cores }) {
  // RSS of a garbage-collected server depends on when its collector last ran, so every reading that counts follows a
  // full collection (SIGUSR2, servers/_ws.mjs) and comes --idle-settle seconds after the last activity: by then V8's
  // idle-time GC (the "memory reducer", ~8 s after a mark-compact on Node 20) has also shrunk the heap, freeing startup
  // garbage before the first reading and what the upgrades left behind before the second. The "at 2 s" reading, taken
  // without any of this 2 s after the last connection opened, shows what a burst of upgrades costs before that.
  const pid = server.child.pid;
  const collected = async () => {
    process.kill(pid, "SIGUSR2");
    await sleep(500);
    return rssKiB(pid);
  };
  await sleep(opts.idleSettle * 1000);
  const before = await collected();
  let early = null;
  let after = null;
  const { result, code, stderr } = await runClient({
    server, scenario, opts, cores, extraArgs: ["-d", String(2 * opts.idleSettle + 120)],
    hooks: {
      limitMs: (2 * opts.idleSettle + 150) * 1000,
      onLine(line, child) {
        if (!line.startsWith("open ")) return;
        // The client holds every connection until SIGTERM.
        (async () => {
          await sleep(2000);
          early = rssKiB(pid);
          // A mark-compact now re-arms V8's memory reducer (the heap grew), which then runs within the settle time.
          process.kill(pid, "SIGUSR2");
          await sleep(opts.idleSettle * 1000);
          after = await collected();
        })().finally(() => child.kill("SIGTERM"));
      },
    },
  });
  const problem = problems(result, scenario, code === 0 || code === null ? 0 : code);
  if (problem) throw new Error(problem + (stderr ? `\n${stderr}` : ""));
  if (before === null || early === null || after === null) throw new Error("could not read the server's VmRSS");
  return {
    rate: ((after - before) * 1024) / scenario.connections, // bytes per connection, settled
    earlyBytes: ((early - before) * 1024) / scenario.connections, // bytes per connection 2 s after the burst, no GC
    rssBeforeMiB: before / 1024,
    rssAfterMiB: after / 1024,
    cpu: null,
  };
}

/** The cores a cell runs on: the two-thread servers on --thread-cores when given (shared with the client). */
function coresFor(def, opts, cores) {
  return def.threads && opts.threadCores && cores.server !== null ? { server: opts.threadCores, client: cores.client, shared: true } : cores;
}

async function runCell({ round, def, scenario, opts, cores: runCores, failures }) {
  const cores = coresFor(def, opts, runCores);
  const cell = { round, server: def.name, scenario: scenario.name, rate: null, cpu: null, attempts: 0, flags: noFlags() };
  let server = null;
  try {
    server = await startServer(def, cores.server);
    for (;;) {
      cell.attempts++;
      Object.assign(cell, scenario.kind === "idle"
        ? await idleCell({ server, scenario, opts, cores })
        : await loadCell({ server, scenario, opts, cores }));
      cell.flags = { ...flagsOf(cell.cpu, false), sharedCores: cores.shared === true };
      if (server.child.exitCode !== null || server.child.signalCode !== null) {
        throw new Error(`server died during the measurement (${server.child.exitCode ?? server.child.signalCode})`);
      }
      if (cell.flags.noisy && cell.attempts <= opts.retries && scenario.kind !== "idle") continue;
      break;
    }
    cell.rssMiB = peakRssMiB(server.child.pid);
  } catch (error) {
    cell.rate = null;
    cell.flags.failed = true;
    cell.startFailed = error.startFailed === true;
    const stderr = server?.stderr().trim();
    const message = error.message + (stderr && !error.message.includes("server stderr") ? `\n--- server stderr ---\n${stderr}` : "");
    failures.push({ round, server: def.name, scenario: scenario.name, message: message.split("\n").slice(0, 3).join(" / ") });
    const bar = "✗".repeat(60);
    console.error(`\n${bar}\nFAILED: ${def.name} / ${scenario.name} (round ${round})\n${message}\n${bar}\n`);
  } finally {
    if (server) await stop(server.child);
  }
  return cell;
}

function progressLine(cell, scenario, rounds) {
  const f = cell.flags;
  const marks = Object.entries(FLAGS).filter(([k]) => f[k]).map(([, [s]]) => s).join(" ");
  const n = (v) => (v == null ? "–" : `${Math.round(v)}%`);
  const value = cell.rate == null ? "–" : Math.round(cell.rate).toLocaleString("en-US");
  const unit = scenario.kind === "idle" ? "B/conn" : `${scenario.unit === "msg" ? "msg" : "deliveries"}/s`;
  const delay = scenario.kind === "latency" && cell.p50Us != null ? `  p50 ${cell.p50Us} µs p99 ${cell.p99Us} µs` : "";
  return `[${cell.round}/${rounds}] ${cell.scenario.padEnd(12)} ${cell.server.padEnd(15)} ${value.padStart(11)} ${unit}${delay}` +
    (scenario.kind === "idle" ? `  RSS ${cell.rssBeforeMiB?.toFixed(1) ?? "–"} → ${cell.rssAfterMiB?.toFixed(1) ?? "–"} MiB` :
      `  server ${n(cell.cpu?.server)} client ${n(cell.cpu?.client)}`) + `  ${marks}`;
}

// ---------------------------------------------------------------------------------------------
// strace: send syscalls per delivery

/** Takes strace -c output, returns { calls: {syscall: count} }. */
function parseStrace(text) {
  const calls = {};
  for (const line of text.split("\n")) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/.exec(line);
    if (m && m[2] !== "total") calls[m[2]] = Number(m[1]);
  }
  return calls;
}

const SEND_CALLS = ["sendto", "sendmsg", "sendmmsg", "write", "writev"];

async function straceCell({ def, scenario, opts, cores: runCores }) {
  const cores = coresFor(def, opts, runCores);
  const server = await startServer(def, cores.server);
  const file = join(os.tmpdir(), `uwserve-ws-strace-${process.pid}-${def.name}-${scenario.name}.txt`);
  let tracer = null;
  try {
    const { result, code } = await runClient({
      server, scenario, opts, cores, extraArgs: ["-w", String(Math.max(0.5, opts.warmup)), "-d", "3"],
      hooks: {
        onMeasure() {
          tracer = spawn("strace", ["-c", "-f", "-q", "-o", file, "-p", String(server.child.pid)], { stdio: "ignore" });
        },
        onDone() {
          tracer?.kill("SIGINT");
        },
      },
    });
    if (tracer && tracer.exitCode === null && tracer.signalCode === null) {
      await Promise.race([new Promise((r) => tracer.once("exit", r)), sleep(10_000)]);
    }
    const problem = problems(result, scenario, code);
    if (problem) throw new Error(problem);
    const calls = parseStrace(readFileSync(file, "utf8"));
    const sends = SEND_CALLS.reduce((n, k) => n + (calls[k] ?? 0), 0);
    return {
      server: def.name, scenario: scenario.name, sends, calls, deliveries: result.deliveries, messages: result.messages,
      perDelivery: result.deliveries ? sends / result.deliveries : null, perMessage: result.messages ? sends / result.messages : null,
      rate: result.deliveries / result.seconds,
    };
  } finally {
    tracer?.kill("SIGKILL");
    await stop(server.child);
    rmSync(file, { force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Summary, targets, report

function summarize(cells) {
  const summary = {};
  for (const group of groupCells(cells)) {
    const { scenario, server } = group[0];
    const { measured, value: rate, spreadPct, flags } = roundStats(group, "rate", Object.keys(FLAGS));
    (summary[scenario] ??= {})[server] = {
      rounds: group.length,
      rate,
      spreadPct,
      messageRate: median(measured.map((c) => c.messageRate)),
      serverCpu: median(measured.map((c) => c.cpu?.server)),
      clientCpu: median(measured.map((c) => c.cpu?.client)),
      // Server CPU time per message or delivery: compares servers even where the client was the limit.
      cpuNsPerUnit: median(measured.map((c) => (c.cpu?.server == null ? null : (c.cpu.server / 100) * 1e9 / c.rate))),
      // Per published message (fan-out): what crossing threads adds shows here, whatever the number of subscribers.
      cpuNsPerMessage: median(measured.map((c) => (c.cpu?.server == null || !c.messageRate ? null : (c.cpu.server / 100) * 1e9 / c.messageRate))),
      earlyBytes: median(measured.map((c) => c.earlyBytes)),
      rssBeforeMiB: median(measured.map((c) => c.rssBeforeMiB)),
      rssAfterMiB: median(measured.map((c) => c.rssAfterMiB)),
      // xlatency: publish → receive delay per delivery, µs (each round's percentile, then the median of those).
      p50Us: median(measured.map((c) => c.p50Us)),
      p99Us: median(measured.map((c) => c.p99Us)),
      p50Range: measured.length && measured[0].p50Us != null ? [Math.min(...measured.map((c) => c.p50Us)), Math.max(...measured.map((c) => c.p50Us))] : null,
      behind: Math.max(0, ...measured.map((c) => c.behind ?? 0)),
      peakRssMiB: Math.max(0, ...measured.map((c) => c.rssMiB ?? 0)) || null,
      flags,
    };
  }
  return summary;
}

/**
 * The targets uwserve's servers are held to, each naming its server (default "uwserve") and baseline (vs).
 * uwserve: fan-out is compared with Bun when Bun was measured, else with raw uWS (0.90× at W=32; ≥ 5× at W=128, where
 * raw uWS's publish from a message handler falls off a cliff). uwserve-node (node engine, node:http + ws) against the
 * ws library it is built on: echo ≥ 0.90×, each fan-out ≥ 1.5×, idle ≤ 1.2×. Idle memory: lower is better.
 */
function targetList(scenarios, summary) {
  const t = [];
  for (const sc of scenarios) {
    if (sc.cross) continue;
    if (sc.kind === "echo") {
      t.push({ scenario: sc.name, vs: "raw-uws", min: 0.9 });
      t.push({ server: "uwserve-node", scenario: sc.name, vs: "ws", min: 0.9 });
    }
    if (sc.kind === "fanout") {
      if (summary[sc.name]?.bun?.rate) t.push({ scenario: sc.name, vs: "bun", min: 0.9 });
      else if (sc.window === 32) t.push({ scenario: sc.name, vs: "raw-uws", min: 0.9 });
      else if (sc.window === 128) t.push({ scenario: sc.name, vs: "raw-uws", min: 5 });
      t.push({ scenario: sc.name, vs: "ws", min: 3 });
      t.push({ server: "uwserve-node", scenario: sc.name, vs: "ws", min: 1.5 });
    }
    if (sc.kind === "idle") {
      t.push({ scenario: sc.name, vs: "raw-uws", max: 1.5 });
      t.push({ server: "uwserve-node", scenario: sc.name, vs: "ws", max: 1.2 });
    }
  }
  return t.map(({ server = "uwserve", ...target }) => {
    const a = summary[target.scenario]?.[server];
    const b = summary[target.scenario]?.[target.vs];
    const ratio = a?.rate && b?.rate ? a.rate / b.rate : null;
    const cpuRatio = a?.cpuNsPerUnit && b?.cpuNsPerUnit ? b.cpuNsPerUnit / a.cpuNsPerUnit : null;
    const caveats = [];
    for (const [who, s] of [[server, a], [target.vs, b]]) {
      if (!s) continue;
      for (const [name, [symbol]] of Object.entries(FLAGS)) if (s.flags[name]) caveats.push(`${who} ${symbol}`);
    }
    const pass = ratio === null ? null : target.max !== undefined ? ratio <= target.max : ratio >= target.min;
    return { server, ...target, ratio, cpuRatio, pass, caveats };
  }).concat(crossTargets(scenarios, summary));
}

/**
 * The cross-thread targets (uwserve-hub): fan-out ≥ 3× the faster JS relay's deliveries/s in each xfanout scenario;
 * xlatency's median delay at most 100 µs above uwserve's on one thread (the added latency of crossing threads).
 */
function crossTargets(scenarios, summary) {
  const t = [];
  const caveatsOf = (pairs) => pairs.flatMap(([who, s]) => (s ? Object.entries(FLAGS).filter(([name]) => s.flags[name]).map(([, [symbol]]) => `${who} ${symbol}`) : []));
  for (const sc of scenarios.filter((s) => s.cross)) {
    const rows = summary[sc.name] ?? {};
    const hub = rows["uwserve-hub"];
    if (sc.kind === "fanout") {
      const relay = RELAYS.filter((r) => rows[r]?.rate).sort((a, b) => rows[b].rate - rows[a].rate)[0];
      const b = relay ? rows[relay] : null;
      const ratio = hub?.rate && b?.rate ? hub.rate / b.rate : null;
      const cpuRatio = hub?.cpuNsPerUnit && b?.cpuNsPerUnit ? b.cpuNsPerUnit / hub.cpuNsPerUnit : null;
      t.push({
        server: "uwserve-hub", scenario: sc.name, vs: relay ?? "the faster JS relay", min: 3, ratio, cpuRatio,
        pass: ratio === null ? null : ratio >= 3, caveats: caveatsOf([["uwserve-hub", hub], [relay, b]]),
      });
    } else if (sc.kind === "latency") {
      const base = rows.uwserve;
      const added = hub?.p50Us != null && base?.p50Us != null ? hub.p50Us - base.p50Us : null;
      t.push({
        server: "uwserve-hub", scenario: sc.name, vs: "uwserve", kind: "added", maxUs: 100, ratio: added, cpuRatio: null,
        pass: added === null ? null : added <= 100, caveats: caveatsOf([["uwserve-hub", hub], ["uwserve", base]]),
      });
    }
  }
  return t;
}

const int = (n) => (n == null ? "–" : Math.round(n).toLocaleString("en-US"));
const pct = (n) => (n == null ? "–" : `${Math.round(n)} %`);
const ratioText = (a, b) => (a && b ? `${(a / b).toFixed(2)}×` : "–");
const mib = (n) => (n == null ? "–" : `${n.toFixed(1)} MiB`);

function flagText(flags, rounds) {
  return Object.entries(FLAGS)
    .filter(([name]) => flags[name] > 0)
    .map(([name, [symbol]]) => (flags[name] === rounds ? symbol : `${symbol}${flags[name]}/${rounds}`))
    .join(" ");
}

function renderMarkdown({ meta, settings, notes, scenarios, servers, summary, targets, failures, straces, quick }) {
  const out = [];
  const label = (s) => (s === "c-ceiling" ? "c-ceiling (calibration)" : s);
  out.push(`# uwserve WebSocket benchmark — ${meta.date}`, "");
  out.push(`- CPU: ${meta.cpu} (${meta.cores} cores); server pinned to core ${settings.serverCore ?? "–"}, client to core ${settings.clientCore ?? "–"}`);
  out.push(`- Node ${meta.node}${meta.bun ? `, Bun ${meta.bun}` : ""}, ${meta.os}`);
  out.push(`- Client: bench/ws/wsload.c (${meta.compiler}, -O2): one thread, epoll, masked frames, every payload checked`);
  out.push(`- Method: ${settings.rounds} round(s), servers in random order per round, fresh server process per cell; ` +
    `warm-up ${settings.warmup} s, measure ${settings.duration} s; medians across rounds`);
  for (const note of notes) out.push(`- Note: ${note}`);
  out.push("");

  const order = (rows) => servers.filter((s) => rows[s]).sort((a, b) =>
    (rows[a].rate == null) - (rows[b].rate == null) || (b === "c-ceiling") - (a === "c-ceiling") || (rows[b].rate ?? 0) - (rows[a].rate ?? 0));
  for (const sc of scenarios) {
    const rows = summary[sc.name];
    if (!rows) continue;
    out.push(`## ${sc.name} — ${sc.title}`, "");
    const raw = rows["raw-uws"]?.rate;
    const bun = rows.bun?.rate;
    const ws = rows.ws?.rate;
    if (sc.cross) {
      out.push(...crossTable(sc, rows, order(rows), label));
      continue;
    }
    if (sc.kind === "idle") {
      out.push(`| server | bytes/conn | ± | × raw uWS | at 2 s | RSS before | RSS after | flags |`, "|---|--:|--:|--:|--:|--:|--:|---|");
      for (const s of order(rows).sort((a, b) => (rows[a].rate ?? Infinity) - (rows[b].rate ?? Infinity))) {
        const r = rows[s];
        out.push(`| ${label(s)} | ${int(r.rate)} | ${r.spreadPct == null ? "–" : `${r.spreadPct.toFixed(0)} %`} | ` +
          `${s === "c-ceiling" ? "–" : ratioText(r.rate, raw)} | ${int(r.earlyBytes)} | ${mib(r.rssBeforeMiB)} | ${mib(r.rssAfterMiB)} | ${flagText(r.flags, r.rounds)} |`);
      }
      out.push("");
      continue;
    }
    const fan = sc.kind === "fanout";
    const unit = fan ? "deliveries/s" : "msg/s";
    out.push(`| server | ${unit} | ± |${fan ? " messages/s |" : ""} × raw uWS |${fan ? " × Bun |" : ""} × ws | server CPU | client CPU | server ns/${fan ? "delivery" : "msg"} | flags |`);
    out.push(`|---|--:|--:|${fan ? "--:|" : ""}--:|${fan ? "--:|" : ""}--:|--:|--:|--:|---|`);
    for (const s of order(rows)) {
      const r = rows[s];
      const cal = s === "c-ceiling";
      const x = (base) => (cal ? "–" : ratioText(r.rate, base));
      out.push(`| ${label(s)} | ${int(r.rate)} | ${r.spreadPct == null ? "–" : `${r.spreadPct.toFixed(0)} %`} |` +
        `${fan ? ` ${int(r.messageRate)} |` : ""} ${x(raw)} |${fan ? ` ${x(bun)} |` : ""} ${x(ws)} | ` +
        `${pct(r.serverCpu)} | ${pct(r.clientCpu)} | ${r.cpuNsPerUnit == null ? "–" : Math.round(r.cpuNsPerUnit)} | ${flagText(r.flags, r.rounds)} |`);
    }
    out.push("");
  }

  out.push("Columns: rates are medians across rounds (fan-out: frames the subscribers received, counted by the client; " +
    "messages/s: published messages every subscriber received); ± is half the min–max range as a % of the median; " +
    "CPU is % of one core between the client's measure/done marks; server ns/unit is the server's CPU time per message " +
    "or delivery (lower is better; it still compares servers where the client was the limit). Idle bytes/conn: (VmRSS " +
    "with the connections open − VmRSS before) ÷ connections, each reading after a full GC (SIGUSR2) and " +
    `${settings.idleSettle} s after the last activity, so V8's idle GC has run too: what the connections retain. ` +
    "At 2 s: the same, read 2 s after the last connection opened without any GC: garbage from the upgrades included. " +
    "c-ceiling is wsload's minimal C " +
    "server: how far the client goes when the server costs (almost) nothing, not a peer." +
    (scenarios.some((sc) => sc.cross) ? " Cross-thread (xfanout-*, xlatency): uwserve-hub, relay-port and relay-broadcast run the " +
      "publisher's connection on thread A and the subscribers' on thread B of one process (both threads on the server's " +
      `core${settings.threadCores ? `, here on cores ${settings.threadCores} (--thread-cores)` : ""}); ` +
      "uwserve is the same server on one thread (publisher and subscribers together); × relay is the ratio to " +
      "that JS relay. Delay: CLOCK_MONOTONIC in the client from just before the publisher's send() to the subscriber's " +
      "recv() returning, every delivery of the measured phase; p50/p99 are each round's percentile, median across rounds; " +
      "− uwserve's is what crossing threads adds (server ns/message − uwserve's: the server CPU it adds per published message)." : ""), "");
  out.push("Flags (`k/n` = in k of n rounds):", "");
  for (const [symbol, text] of Object.values(FLAGS)) out.push(`- ${symbol} ${text}`);
  out.push("");

  if (straces.length) {
    out.push("## Send syscalls per delivery (strace -c -f, separate unmeasured run)", "");
    out.push("Counted on the server process (all threads) over the client's 3 s measured phase: sendto + sendmsg + " +
      "write + writev. strace slows every syscall, so its rate is only for reading the ratio.", "");
    out.push("| scenario | server | send syscalls | deliveries | per delivery | per published message | rate under strace |");
    out.push("|---|---|--:|--:|--:|--:|--:|");
    for (const s of straces) {
      if (s.error) {
        out.push(`| ${s.scenario} | ${label(s.server)} | – | – | – | – | ${s.error} |`);
        continue;
      }
      out.push(`| ${s.scenario} | ${label(s.server)} | ${int(s.sends)} | ${int(s.deliveries)} | ${s.perDelivery == null ? "–" : s.perDelivery.toFixed(3)} | ` +
        `${s.perMessage == null ? "–" : s.perMessage.toFixed(1)} | ${int(s.rate)}/s |`);
    }
    out.push("");
  }

  const checked = targets.filter((t) => t.ratio !== null);
  if (checked.length && quick) {
    out.push("## uwserve targets", "", "Not checked: a --quick run is a smoke test, its ratios mean nothing.", "");
  } else if (checked.length) {
    out.push("## uwserve targets", "");
    out.push("Measured = ratio of medians (the target's server ÷ baseline). By CPU = baseline's server CPU per message or " +
      "delivery over that server's: the same comparison from server cost alone (idle: lower is better, no CPU column).", "");
    out.push("| target | measured | by CPU | result | caveats |", "|---|--:|--:|---|---|");
    for (const t of checked) {
      if (t.kind === "added") {
        out.push(`| ${t.server} ${t.scenario} median delay ≤ ${t.vs}'s (one thread) + ${t.maxUs} µs | ${t.ratio >= 0 ? "+" : "−"}${Math.abs(t.ratio).toFixed(0)} µs | – | ` +
          `${t.pass ? "PASS" : "**FAIL**"} | ${t.caveats.join(", ")} |`);
        continue;
      }
      const bound = t.max !== undefined ? `≤ ${t.max.toFixed(2)}×` : `≥ ${t.min.toFixed(2)}×`;
      out.push(`| ${t.server} ${t.scenario} ${bound} ${t.vs} | ${t.ratio.toFixed(2)}× | ${t.cpuRatio == null ? "–" : `${t.cpuRatio.toFixed(2)}×`} | ` +
        `${t.pass ? "PASS" : "**FAIL**"} | ${t.caveats.join(", ")} |`);
    }
    const passed = checked.filter((t) => t.pass).length;
    out.push("", `${passed} of ${checked.length} targets met` +
      (checked.length < targets.length ? ` (${targets.length - checked.length} not measured in this run)` : "") + ".", "");
  } else if (targets.length) {
    out.push("## uwserve targets", "", "Not measured in this run (uwserve's servers or their baselines not run, or they failed).", "");
  }

  if (failures.length) {
    out.push("## Failures", "");
    for (const f of failures) out.push(`- round ${f.round}, ${f.server}, ${f.scenario}: ${f.message}`);
    out.push("");
  }
  return out.join("\n");
}

/** Takes a cross-thread scenario, its rows, the servers in order and the label function; returns its table's lines. */
function crossTable(sc, rows, ordered, label) {
  const out = [];
  const one = rows.uwserve;
  const relays = RELAYS.filter((r) => rows[r]);
  const us = (n) => (n == null ? "–" : `${Math.round(n)} µs`);
  const diff = (a, b) => (a == null || b == null ? "–" : `${a - b >= 0 ? "+" : "−"}${Math.abs(Math.round(a - b))} µs`);
  if (sc.kind === "latency") {
    out.push("| server | delay p50 | delay p99 | p50 − uwserve's | p99 − uwserve's | p50 min–max | deliveries/s | server CPU | client CPU | flags |");
    out.push("|---|--:|--:|--:|--:|--:|--:|--:|--:|---|");
    const byDelay = [...ordered].sort((a, b) => (b === "c-ceiling") - (a === "c-ceiling") || (rows[a].p50Us ?? Infinity) - (rows[b].p50Us ?? Infinity));
    for (const s of byDelay) {
      const r = rows[s];
      const cal = s === "c-ceiling";
      const base = cal || s === "uwserve";
      out.push(`| ${label(s)} | ${us(r.p50Us)} | ${us(r.p99Us)} | ${base ? "–" : diff(r.p50Us, one?.p50Us)} | ${base ? "–" : diff(r.p99Us, one?.p99Us)} | ` +
        `${r.p50Range ? `${r.p50Range[0]}–${r.p50Range[1]} µs` : "–"} | ${int(r.rate)} | ${pct(r.serverCpu)} | ${pct(r.clientCpu)} | ${flagText(r.flags, r.rounds)} |`);
    }
    const late = ordered.filter((s) => rows[s].behind > 0);
    if (late.length) out.push("", `Publisher fell behind its schedule (over 4,095 messages in flight) with: ${late.join(", ")}: not a moderate load for them.`);
    out.push("");
    return out;
  }
  out.push(`| server | deliveries/s | ± | messages/s | × uwserve (1 thread) |${relays.map((r) => ` × ${r} |`).join("")} server CPU | client CPU | server ns/delivery | server ns/message | − uwserve's | flags |`);
  out.push(`|---|--:|--:|--:|--:|${relays.map(() => "--:|").join("")}--:|--:|--:|--:|--:|---|`);
  for (const s of ordered) {
    const r = rows[s];
    const cal = s === "c-ceiling";
    const x = (base) => (cal ? "–" : ratioText(r.rate, base));
    out.push(`| ${label(s)} | ${int(r.rate)} | ${r.spreadPct == null ? "–" : `${r.spreadPct.toFixed(0)} %`} | ${int(r.messageRate)} | ${s === "uwserve" ? "–" : x(one?.rate)} |` +
      `${relays.map((rl) => ` ${s === rl ? "–" : x(rows[rl].rate)} |`).join("")} ${pct(r.serverCpu)} | ${pct(r.clientCpu)} | ` +
      `${r.cpuNsPerUnit == null ? "–" : Math.round(r.cpuNsPerUnit)} | ${int(r.cpuNsPerMessage)} | ` +
      `${cal || s === "uwserve" || r.cpuNsPerMessage == null || one?.cpuNsPerMessage == null ? "–" : `${r.cpuNsPerMessage >= one.cpuNsPerMessage ? "+" : "−"}${int(Math.abs(r.cpuNsPerMessage - one.cpuNsPerMessage))}`} | ` +
      `${flagText(r.flags, r.rounds)} |`);
  }
  out.push("");
  return out;
}

// ---------------------------------------------------------------------------------------------
// Main

function machine(compiler, bun) {
  let cpu = os.cpus()[0]?.model ?? "unknown CPU";
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? cpu;
  } catch {
    // Not Linux.
  }
  let bunVersion = null;
  if (bun) {
    try {
      bunVersion = execFileSync(bun, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    } catch {
      // Reported as a failed start instead.
    }
  }
  return {
    date: new Date().toISOString(), cpu, cores: os.availableParallelism?.() ?? os.cpus().length, node: process.version,
    bun: bunVersion, os: `${os.type()} ${os.release()} ${os.arch()}`, compiler,
  };
}

function shuffle(list) {
  const a = [...list];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** Samples both cores for `ms` before the run; returns a note when something else is already busy. */
async function backgroundLoad(cores, ms = 1000) {
  const a = coreTicks();
  await sleep(ms);
  const b = coreTicks();
  const busy = cores.map((c) => (a[c] && b[c] && b[c][1] > a[c][1] ? (100 * (b[c][0] - a[c][0])) / (b[c][1] - a[c][1]) : 0));
  if (busy.every((x) => x < 15)) return null;
  return `the machine was busy before the run (${cores.map((c, i) => `core ${c}: ${Math.round(busy[i])} %`).join(", ")}); expect noisy cells (~).`;
}

function gitRevision() {
  try {
    const rev = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "lib"], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    return `, git ${rev}${dirty ? " + uncommitted lib/ changes" : ""}`;
  } catch {
    return "";
  }
}

async function main() {
  const started = performance.now();
  const opts = parseArgs(process.argv.slice(2));
  if (process.platform !== "linux") fail("Linux only (epoll, /proc)");
  const notes = [];
  const compiler = buildClient();

  const table = serverTable();
  const known = new Set(table.map((s) => s.name));
  for (const name of opts.only ?? []) if (!known.has(name)) fail(`unknown server "${name}" (known: ${[...known].join(", ")})`);
  const allScenarios = scenarioList(opts);
  for (const name of opts.scenarios ?? []) {
    if (!allScenarios.some((s) => s.name === name)) fail(`unknown scenario "${name}" (known: ${allScenarios.map((s) => s.name).join(", ")})`);
  }
  const scenarios = allScenarios.filter((s) => !opts.scenarios || opts.scenarios.includes(s.name));
  const wanted = table.filter((s) => !opts.only || opts.only.includes(s.name));
  for (const s of wanted.filter((s) => s.skip)) {
    console.error(`bench:ws: skipping ${s.name}: ${s.skip}`);
    notes.push(`${s.name} skipped: ${s.skip}.`);
  }
  const servers = wanted.filter((s) => !s.skip);
  if (servers.length === 0) fail("no server to run");
  const cellsPerRound = scenarios.reduce((n, sc) => n + servers.filter((d) => supports(d, sc)).length, 0);
  if (cellsPerRound === 0) fail(`none of ${servers.map((d) => d.name).join(", ")} runs ${scenarios.map((sc) => sc.name).join(", ")}`);
  const threaded = servers.filter((d) => d.threads).map((d) => d.name);
  const plainScenarios = scenarios.filter((sc) => !sc.cross).map((sc) => sc.name);
  if (threaded.length && plainScenarios.length) notes.push(`${threaded.join(", ")}: two-thread servers, run only in the cross-thread scenarios (not ${plainScenarios.join(", ")}).`);
  const notCross = servers.filter((d) => !CROSS_PEERS.includes(d.name)).map((d) => d.name);
  const crossScenarios = scenarios.filter((sc) => sc.cross).map((sc) => sc.name);
  if (notCross.length && crossScenarios.length) notes.push(`${crossScenarios.join(", ")} run only ${CROSS_PEERS.filter((n) => servers.some((d) => d.name === n)).join(", ")} (not ${notCross.join(", ")}).`);
  const nCores = os.availableParallelism?.() ?? os.cpus().length;
  const cores = canPin && nCores >= 2 ? { server: 0, client: 1 } : { server: null, client: null };
  if (cores.server === null) {
    const why = canPin ? "only one core" : "taskset not available";
    console.error(`bench:ws: not pinning server and client to separate cores (${why}); results will be noisier.`);
    notes.push(`server and client not pinned (${why}).`);
  }
  if (threaded.length && crossScenarios.length && opts.threadCores && cores.server !== null) {
    notes.push(`--thread-cores ${opts.threadCores}: the two-thread servers run on cores ${opts.threadCores}, so their threads can run in parallel but share core ${cores.client} with the client (⇄); uwserve (one thread) and c-ceiling stay on core ${cores.server}.`);
  } else if (threaded.length && crossScenarios.length && cores.server !== null) {
    notes.push("the two-thread servers run with both threads pinned to the server's core, as every server is: the cross-thread cells compare what each relay costs on one core, not a speed-up from a second core (2 vCPUs, one is the client's).");
  }
  if (opts.quick) notes.push("--quick run: short and single-round; a smoke test, not a measurement.");
  const dist = join(ROOT, "dist", "index.js");
  if (servers.some((s) => s.name === "uwserve-node")) {
    notes.push("uwserve-node: the same server as uwserve (servers/ws-uwserve.mjs) with UWSERVE_ENGINE=node, uwserve's node engine (node:http + ws).");
  }
  if (process.env.UWSERVE_ENGINE && servers.some((s) => s.name === "uwserve" || s.threads)) {
    notes.push(`UWSERVE_ENGINE=${process.env.UWSERVE_ENGINE} was set for this run: uwserve${servers.some((s) => s.threads) ? " and the two-thread servers" : ""} ran with it.`);
  }
  if (existsSync(dist) && servers.some((s) => s.name === "uwserve" || s.name === "uwserve-node" || s.threads)) {
    notes.push(`uwserve from dist/index.js built ${statSync(dist).mtime.toISOString()}${gitRevision()}.`);
  }
  const busy = cores.server === null ? null : await backgroundLoad([cores.server, cores.client]);
  if (busy) {
    console.error(`bench:ws: warning: ${busy}`);
    notes.push(busy);
  }
  if (opts.strace && !hasCommand("strace", ["-V"])) {
    console.error("bench:ws: --strace: strace is not installed; skipping the syscall counts");
    notes.push("--strace asked for, but strace is not installed.");
    opts.strace = false;
  }

  const meta = machine(compiler, table.find((s) => s.name === "bun")?.cmd);
  const settings = {
    rounds: opts.rounds, duration: opts.duration, warmup: opts.warmup, windows: opts.windows, size: opts.size,
    echoConnections: opts.echoConnections, subscribers: opts.subscribers, idleConnections: opts.idleConnections, idleSettle: opts.idleSettle,
    retries: opts.retries, serverCore: cores.server, clientCore: cores.client,
    xtSubscribers: opts.xtSubscribers, xtWindow: opts.xtWindow, rate: opts.rate, latencySubscribers: opts.latencySubscribers, threadCores: opts.threadCores,
    servers: servers.map((s) => s.name), scenarios: scenarios.map((s) => s.name),
  };
  const perRound = scenarios.reduce((n, sc) => n + servers.filter((d) => supports(d, sc)).length *
    (sc.kind === "idle" ? 2 * opts.idleSettle + 4 : opts.warmup + opts.duration + 1), 0);
  console.error(`bench:ws: ${servers.length} servers × ${scenarios.length} scenarios × ${opts.rounds} rounds ` +
    `(${cellsPerRound * opts.rounds} cells), about ${Math.ceil((perRound * opts.rounds) / 60)} min`);

  const cells = [];
  const failures = [];
  const broken = new Set();
  for (let round = 1; round <= opts.rounds; round++) {
    for (const scenario of scenarios) {
      for (const def of shuffle(servers)) {
        if (!supports(def, scenario)) continue;
        // A server that did not start will not start next time; one that answered wrongly will not answer right.
        if (broken.has(def.name) || broken.has(`${def.name}/${scenario.name}`)) continue;
        const cell = await runCell({ round, def, scenario, opts, cores, failures });
        if (cell.startFailed) broken.add(def.name);
        else if (cell.flags.failed) broken.add(`${def.name}/${scenario.name}`);
        cells.push(cell);
        console.error(progressLine(cell, scenario, opts.rounds));
      }
    }
  }

  const straces = [];
  if (opts.strace) {
    for (const scenario of scenarios.filter((s) => s.kind !== "idle" && s.kind !== "latency")) {
      for (const def of servers) {
        if (!supports(def, scenario)) continue;
        if (broken.has(def.name) || broken.has(`${def.name}/${scenario.name}`)) continue;
        try {
          const s = await straceCell({ def, scenario, opts, cores });
          straces.push(s);
          console.error(`strace ${scenario.name.padEnd(11)} ${def.name.padEnd(10)} ${s.sends} sends / ${s.deliveries} deliveries = ` +
            `${s.perDelivery?.toFixed(3)} per delivery, ${s.perMessage?.toFixed(1)} per message`);
        } catch (error) {
          straces.push({ server: def.name, scenario: scenario.name, error: error.message.split("\n")[0] });
          console.error(`strace ${scenario.name} ${def.name}: ${error.message}`);
        }
      }
    }
  }

  const summary = summarize(cells);
  const targets = targetList(scenarios, summary);
  const minutes = (performance.now() - started) / 60_000;
  notes.push(`the run took ${minutes.toFixed(1)} min.`);
  const report = renderMarkdown({
    meta, settings, notes, scenarios, servers: servers.map((s) => s.name), summary, targets, failures, straces, quick: opts.quick,
  });
  console.log(`\n${report}`);

  if (opts.save) {
    mkdirSync(RESULTS, { recursive: true });
    const stamp = "ws-" + meta.date.replace(/\.\d+Z$/, "Z").replace(/:/g, "-") + (opts.quick ? "-quick" : "");
    writeFileSync(join(RESULTS, `${stamp}.md`), `${report}\n`);
    writeFileSync(join(RESULTS, `${stamp}.json`), `${JSON.stringify({ meta, settings, notes, summary, targets, failures, straces, cells }, null, 2)}\n`);
    // ws-latest.md is the last full run, as results/latest.md for HTTP: a run of some scenarios (--scenarios) or
    // servers (--only) would hide the rest of it.
    const full = !opts.quick && !opts.scenarios && !opts.only;
    if (full) writeFileSync(join(RESULTS, "ws-latest.md"), `${report}\n`);
    console.error(`bench:ws: wrote bench/results/${stamp}.md and .json${full ? ", and bench/results/ws-latest.md" : " (ws-latest.md is only replaced by a full run)"}`);
  }
  if (failures.length) {
    console.error(`bench:ws: ${failures.length} cell(s) FAILED — see "Failures" above.`);
    process.exitCode = 1;
  }
}

runBench("bench:ws", main);
