// Pub/sub across processes through a broker: uwserve's Redis and NATS backplanes against socket.io with
// @socket.io/redis-adapter and a plain `ws` server relaying through node-redis; writes bench/results/backplane-<date>.md.
//
//   npm run build && node bench/backplane.mjs [--rounds N] [--duration S] [--only a,b] [--scenarios a,b] [--no-save] …
//
// Each cell: process A publishes (_backplane-procs.mjs <kind> pub), process B holds the subscribers (<kind> sub), both
// on a redis-server / nats-server this run started; the subscribers are the connections of one client process
// (_backplane-procs.mjs client) to B. A and the broker share core 0, B and the client core 1: the publish path on
// one core, the delivery path on the other. uwserve-local is one uwserve process (core 0) publishing to its own
// subscribers: the in-process path the added latency is measured against. Report: _backplane-report.mjs.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import net from "node:net";
import os from "node:os";
import { runBench, spawnPinned, stop, cpuSeconds, canPin, hasCommand } from "./_proc.mjs";
import { eachFlag } from "./_flags.mjs";
import { FLAGS, summarize, targetList, renderMarkdown, flagText, int, pct, us } from "./_backplane-report.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BENCH = fileURLToPath(new URL(".", import.meta.url));
const PROCS = join(BENCH, "_backplane-procs.mjs");

const TABLE = [
  { name: "uwserve-redis", kind: "uwserve", broker: "redis" },
  { name: "uwserve-nats", kind: "uwserve", broker: "nats" },
  { name: "socketio-redis", kind: "socketio", broker: "redis", proto: "sio" },
  { name: "ws-redis", kind: "ws-redis", broker: "redis" },
  { name: "uwserve-local", kind: "uwserve", broker: null },
];

const HELP = `Usage: node bench/backplane.mjs [options]

  --rounds N            interleaved rounds, medians reported (default 3)
  --duration S          measured seconds per fan-out cell (default 3)
  --warmup S            unmeasured publishing before each measurement (default 1)
  --only a,b            servers (default all): ${TABLE.map((s) => s.name).join(", ")}
  --scenarios a,b       fanout-<N> (one per --subscribers entry), latency (default all)
  --subscribers N,N     fan-out subscriber counts on B, one topic (default 1,10,500)
  --window W            fan-out: messages in flight until every subscriber has them (default: 1024, and at most
                        32,768 deliveries: 65 messages for 500 subscribers)
  --rate R              latency: messages/s published on a timer in A (default 1000)
  --latency-duration S  latency: measured seconds (default 5)
  --size N              message bytes, at least 24 (default 64)
  --quick               1 round, 1 s, 0.5 s warm-up: a smoke run, not numbers
  --no-save             print the report only`;

function parseArgs(argv) {
  const o = { rounds: 3, duration: 3, warmup: 1, only: null, scenarios: null, subscribers: [1, 10, 500], window: null, rate: 1000, latencyDuration: 5, size: 64, quick: false, save: true };
  const explicit = new Set();
  eachFlag(argv, fail, (flag, arg, { value, number, list }) => {
    explicit.add(flag);
    switch (flag) {
      case "--rounds": o.rounds = Math.round(number(1)); break;
      case "--duration": o.duration = number(0.5); break;
      case "--warmup": o.warmup = number(0); break;
      case "--only": o.only = list(value()); break;
      case "--scenarios": o.scenarios = list(value()); break;
      case "--subscribers": o.subscribers = list(value()).map((n) => Math.round(number(1, n))); break;
      case "--window": o.window = Math.round(number(1)); break;
      case "--rate": o.rate = number(1); break;
      case "--latency-duration": o.latencyDuration = number(1); break;
      case "--size": o.size = Math.round(number(24)); break;
      case "--quick": o.quick = true; break;
      case "--no-save": o.save = false; break;
      case "--help": case "-h": console.log(HELP); process.exit(0); break;
      default: fail(`unknown option ${arg}\n\n${HELP}`);
    }
  });
  // The client counts each seq in a 16,384-slot ring; uint16 counts.
  if (o.window > 8192) fail("--window: at most 8192");
  // uwserve's backplane drops what is beyond 10,000 unacknowledged publishes (maxPending): stay clear of it.
  if (o.window > 5000) console.error("bench:backplane: a --window over 5,000 may reach the backplane's maxPending (10,000) and drop");
  if (o.subscribers.some((n) => n > 65535)) fail("--subscribers: at most 65535");
  if (o.quick) {
    if (!explicit.has("--rounds")) o.rounds = 1;
    if (!explicit.has("--duration")) o.duration = 1;
    if (!explicit.has("--warmup")) o.warmup = 0.5;
    if (!explicit.has("--latency-duration")) o.latencyDuration = 2;
  }
  return o;
}

function fail(message) {
  console.error(`bench:backplane: ${message}`);
  process.exit(2);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// Processes: each answers one-line commands on stdin with lines on stdout

/** Spawns a node script pinned to `core`; returns it with `send(line)` and `line(prefix, ms)` (the next such line). */
function spawnLines(script, args, env, core) {
  const child = spawnPinned(process.execPath, [script, ...args], { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, ...env } }, core);
  const proc = { child, unread: [], waiters: [], stderr: "" };
  child.stderr.on("data", (d) => (proc.stderr = (proc.stderr + d).slice(-4000)));
  child.stdin.on("error", () => {});
  createInterface({ input: child.stdout }).on("line", (text) => {
    const i = proc.waiters.findIndex((w) => text.startsWith(w.prefix));
    if (i < 0) return void proc.unread.push(text);
    const w = proc.waiters.splice(i, 1)[0];
    w.resolve(text.slice(w.prefix.length));
  });
  child.on("exit", (code, signal) => {
    for (const w of proc.waiters.splice(0)) w.reject(new Error(`${args.join(" ") || "client"} exited (${code ?? signal})${proc.stderr ? `: ${proc.stderr.trim().split("\n").slice(-3).join(" / ")}` : ""}`));
  });
  proc.send = (line) => child.stdin.write(`${line}\n`);
  proc.line = (prefix, ms = 20_000) => {
    const i = proc.unread.findIndex((t) => t.startsWith(prefix));
    if (i >= 0) return Promise.resolve(proc.unread.splice(i, 1)[0].slice(prefix.length));
    if (child.exitCode !== null || child.signalCode !== null) return Promise.reject(new Error(`${args.join(" ") || "client"} is gone: ${proc.stderr.trim()}`));
    return new Promise((resolve, reject) => {
      const w = { prefix, reject, resolve: (v) => (clearTimeout(timer), resolve(v)) };
      const timer = setTimeout(() => {
        proc.waiters.splice(proc.waiters.indexOf(w), 1);
        reject(new Error(`no "${prefix.trim()}" line within ${ms / 1000} s${proc.stderr ? `: ${proc.stderr.trim().split("\n").slice(-3).join(" / ")}` : ""}`));
      }, ms);
      proc.waiters.push(w);
    });
  };
  proc.ask = async (cmd, prefix) => {
    const answer = proc.line(prefix);
    proc.send(cmd);
    return answer;
  };
  return proc;
}

const freePort = () => new Promise((resolve, reject) => {
  const s = net.createServer().once("error", reject).listen(0, "127.0.0.1", () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});

/** Starts redis-server or nats-server on a free port pinned to `core`, resolves { name, url, child, version } once it takes connections. */
async function startBroker(name, core) {
  const port = await freePort();
  const [cmd, args, url] = name === "redis"
    ? ["redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], `redis://127.0.0.1:${port}`]
    : ["nats-server", ["-a", "127.0.0.1", "-p", String(port)], `nats://127.0.0.1:${port}`];
  const child = spawnPinned(cmd, args, { stdio: "ignore" }, core);
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) break;
    const up = await new Promise((resolve) => net.connect(port, "127.0.0.1").once("connect", function () { this.destroy(); resolve(true); }).once("error", () => resolve(false)));
    if (!up) {
      await sleep(50);
      continue;
    }
    const text = execFileSync(cmd, ["--version"], { encoding: "utf8" });
    return { name, url, child, version: `${cmd} ${/v=(\S+)/.exec(text)?.[1] ?? /v(\d\S*)/.exec(text)?.[1] ?? text.trim()}` };
  }
  throw new Error(`${cmd} did not start on port ${port}`);
}

// ---------------------------------------------------------------------------------------------
// One cell


/**
 * Per-core [user + system, total, steal, busy] ticks from /proc/stat. Busy counts irq and softirq time too (unlike
 * _proc.mjs's coreTicks): loopback TCP runs largely in softirq, which would otherwise hide a saturated core; the
 * foreign-load check uses user + system, the part processes are charged with.
 */
function coreTimes() {
  const cores = [];
  for (const line of readFileSync("/proc/stat", "utf8").split("\n")) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const [user, nice, system, idle, iowait, irq, softirq, steal] = m[2].split(/\s+/).map(Number);
    cores[Number(m[1])] = [user + nice + system, user + nice + system + idle + iowait + irq + softirq + steal, steal, user + nice + system + irq + softirq];
  }
  return cores;
}

/** CPU seconds of each role's process and the cores' ticks, now. */
const cpuNow = (pids) => ({ t: performance.now(), cores: coreTimes(), cpu: Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, pid ? cpuSeconds(pid) : null])) });

/** Two cpuNow readings → % of one core per role; per core % busy, % in processes, % stolen (by the hypervisor). */
function cpuBetween(a, b, cores) {
  const wall = (b.t - a.t) / 1000;
  const cpu = {};
  for (const k of Object.keys(a.cpu)) cpu[k] = a.cpu[k] == null || b.cpu[k] == null ? null : (100 * (b.cpu[k] - a.cpu[k])) / wall;
  const share = (c, i) => {
    const x = a.cores[c ?? 0], y = b.cores[c ?? 0];
    return x && y && y[1] > x[1] ? (100 * (y[i] - x[i])) / (y[1] - x[1]) : null;
  };
  return { cpu, busy: cores.map((c) => share(c, 3)), tasks: cores.map((c) => share(c, 0)), steal: cores.map((c) => share(c, 2)) };
}

async function runCell({ round, def, scenario, opts, brokers, cores, failures }) {
  const cell = { round, server: def.name, scenario: scenario.name, flags: Object.fromEntries(Object.keys(FLAGS).map((k) => [k, false])) };
  const procs = [];
  const broker = def.broker ? brokers[def.broker] : null;
  try {
    const env = { BROKER: broker?.url ?? "", SIZE: String(opts.size), PORT: "0" };
    const b = spawnLines(PROCS, [def.kind, def.broker ? "sub" : "local"], env, def.broker ? cores.b : cores.a);
    procs.push(b);
    const a = def.broker ? spawnLines(PROCS, [def.kind, "pub"], env, cores.a) : b;
    if (a !== b) procs.push(a);
    // "ready <WebSocket port> <control port>": the client connects to B's port and acknowledges to A's control port.
    const [bPort, bControl] = (await b.line("ready ")).split(" ").map(Number);
    const control = a === b ? bControl : Number((await a.line("ready ")).split(" ")[1]);
    const client = spawnLines(PROCS, ["client"], { PORT: String(bPort), N: String(scenario.subscribers), PROTO: def.proto ?? "ws", ACK_PORT: String(control) }, cores.client);
    procs.push(client);
    await client.line("open ", 60_000);
    // Publishes go out until every subscriber has had one: B's subscription has reached the broker.
    const probed = client.line("probed", 20_000);
    a.send("probe");
    await probed;
    a.send("quiet");
    await sleep(200);
    await client.ask("arm", "armed");
    const pids = { a: def.broker ? a.child.pid : null, broker: broker?.child.pid ?? null, b: b.child.pid, client: client.child.pid };
    if (scenario.kind === "latency") {
      a.send(`rate ${opts.rate}`);
      await sleep(opts.warmup * 1000);
      await client.ask("lat-start", "lat-started");
      const c0 = cpuNow(pids);
      await sleep(opts.latencyDuration * 1000);
      const lat = JSON.parse(await client.ask("lat-stop", "lat "));
      Object.assign(cell, { p50Us: lat.p50Us, p99Us: lat.p99Us, maxUs: lat.maxUs, samples: lat.count }, cpuBetween(c0, cpuNow(pids), [cores.a, cores.b]));
      if (!(lat.count > 0)) throw new Error("no delivery recorded");
    } else {
      a.send(`window ${scenario.window}`);
      await sleep(opts.warmup * 1000);
      const snap = async () => {
        const [c, p, cpu] = await Promise.all([client.ask("snap", "snap "), a.ask("snap", "snap "), cpuNow(pids)]);
        return { c: JSON.parse(c), p: JSON.parse(p), cpu };
      };
      const s0 = await snap();
      await sleep(opts.duration * 1000);
      const s1 = await snap();
      const seconds = (s1.cpu.t - s0.cpu.t) / 1000;
      const messages = s1.p.published - s0.p.published;
      const brokerSeconds = s1.cpu.cpu.broker - s0.cpu.cpu.broker;
      Object.assign(cell, { rate: (s1.c.deliveries - s0.c.deliveries) / seconds, messageRate: messages / seconds }, cpuBetween(s0.cpu, s1.cpu, [cores.a, cores.b]));
      cell.brokerUsPerMsg = broker && messages > 0 ? (brokerSeconds * 1e6) / messages : null;
      const lost = ["gaps", "dups", "closed", "bad"].filter((k) => s1.c[k] > 0).map((k) => `${k} ${s1.c[k]}`);
      if (lost.length) throw new Error(`client: ${lost.join(", ")}`);
      if (!(cell.rate > 0)) throw new Error("nothing delivered in the measured phase (stalled)");
    }
    a.send("stop");
    // uwserve's own counters: a message the backplane dropped would show here before it shows as a gap.
    const stats = await Promise.all([a, b].filter((p, i) => i === 0 || p !== a).map((p) => p.ask("snap", "snap ").then(JSON.parse)));
    cell.backplane = stats.map((s) => s.backplane).filter(Boolean);
    cell.maxLagUs = stats[0].maxLagUs;
    const dropped = cell.backplane.reduce((n, s) => n + s.dropped, 0);
    if (dropped) throw new Error(`backplane dropped ${dropped}: ${JSON.stringify(cell.backplane)}`);
    const { cpu, busy, tasks } = cell;
    const foreign = [tasks[0] - (cpu.a ?? 0) - (cpu.broker ?? 0) - (def.broker ? 0 : cpu.b), tasks[1] - (def.broker ? cpu.b : 0) - cpu.client];
    // uwserve-local has core 1 to itself: there the client alone is the limit when it fills the core.
    cell.flags.clientHeavy = scenario.kind !== "latency" && (def.broker ? busy[1] >= 90 && cpu.client >= cpu.b : cpu.client >= 90);
    cell.flags.unsaturated = scenario.kind !== "latency" && busy[0] < 80 && busy[1] < 80;
    cell.flags.noisy = foreign.some((f) => f >= 10) || cell.steal.some((st) => st >= 10);
  } catch (error) {
    cell.flags.failed = true;
    cell.rate = null;
    failures.push({ round, server: def.name, scenario: scenario.name, message: error.message.split("\n").slice(0, 3).join(" / ") });
    console.error(`FAILED: ${def.name} / ${scenario.name} (round ${round}): ${error.message}`);
  } finally {
    await Promise.all(procs.reverse().map((p) => stop(p.child)));
  }
  return cell;
}

// ---------------------------------------------------------------------------------------------
// Main

function scenarioList(opts) {
  return [
    ...opts.subscribers.map((n) => {
      // Enough in flight to hide the broker's round trip, without queueing seconds of deliveries at 500 subscribers.
      const window = opts.window ?? Math.max(16, Math.min(1024, Math.ceil(32768 / n)));
      return {
        name: `fanout-${n}`, kind: "fanout", subscribers: n, window,
        title: `A publishes, ${n} subscriber${n === 1 ? "" : "s"} on B, one topic, ${opts.size}-byte text messages, window ${window}`,
      };
    }),
    { name: "latency", kind: "latency", subscribers: 1, title: `A publishes ${int(opts.rate)} messages/s on a timer, 1 subscriber on B: publish → receive` },
  ];
}

function version(pkg) {
  try {
    return JSON.parse(readFileSync(join(ROOT, "node_modules", pkg, "package.json"), "utf8")).version;
  } catch {
    return null;
  }
}

const shuffle = (list) => list.map((x) => [Math.random(), x]).sort((a, b) => a[0] - b[0]).map(([, x]) => x);

async function main() {
  const started = performance.now();
  const opts = parseArgs(process.argv.slice(2));
  if (process.platform !== "linux") fail("Linux only (/proc, taskset)");
  const known = TABLE.map((s) => s.name);
  for (const n of opts.only ?? []) if (!known.includes(n)) fail(`unknown server "${n}" (known: ${known.join(", ")})`);
  const all = scenarioList(opts);
  for (const n of opts.scenarios ?? []) if (!all.some((s) => s.name === n)) fail(`unknown scenario "${n}" (known: ${all.map((s) => s.name).join(", ")})`);
  const scenarios = all.filter((s) => !opts.scenarios || opts.scenarios.includes(s.name));
  const notes = [];
  const missing = {
    uwserve: existsSync(join(ROOT, "dist", "index.js")) ? null : "dist/index.js not found (npm run build)",
    socketio: version("socket.io") && version("@socket.io/redis-adapter") ? null : "socket.io or @socket.io/redis-adapter not installed",
    "ws-redis": version("ws") ? null : "ws not installed",
    redis: !version("redis") ? "redis (node-redis) not installed" : !hasCommand("redis-server") ? "redis-server not installed" : null,
    nats: !version("@nats-io/transport-node") ? "@nats-io/transport-node not installed" : !hasCommand("nats-server") ? "nats-server not installed" : null,
  };
  const servers = [];
  for (const def of TABLE.filter((s) => !opts.only || opts.only.includes(s.name))) {
    const why = missing[def.kind] ?? (def.broker ? missing[def.broker] : null);
    if (!why) servers.push(def);
    else {
      console.error(`bench:backplane: skipping ${def.name}: ${why}`);
      notes.push(`${def.name} skipped: ${why}.`);
    }
  }
  if (!servers.length) fail("no server to run");
  const nCores = os.availableParallelism?.() ?? os.cpus().length;
  const pinned = canPin && nCores >= 2;
  const cores = pinned ? { a: 0, b: 1, client: 1 } : { a: null, b: null, client: null };
  if (!pinned) notes.push(`processes not pinned (${canPin ? "one core" : "taskset not available"}); results are noisier.`);
  if (opts.quick) notes.push("--quick run: short and single-round; a smoke test, not a measurement.");
  // The machine's other load before the run: both cores sampled for a second.
  const t0 = cpuNow({});
  await sleep(1000);
  const { busy } = cpuBetween(t0, cpuNow({}), [0, 1]);
  if (busy.some((b) => b >= 15)) notes.push(`the machine was busy before the run (core 0: ${pct(busy[0])}, core 1: ${pct(busy[1])}); expect noisy cells (~).`);

  const brokers = {};
  for (const name of new Set(servers.map((s) => s.broker).filter(Boolean))) brokers[name] = await startBroker(name, cores.a);
  // A broker's own timers cost CPU with no traffic: what floor the per-message figures sit on at low message rates.
  const idle0 = cpuNow(Object.fromEntries(Object.entries(brokers).map(([k, b]) => [k, b.child.pid])));
  await sleep(3000);
  const { cpu: idle } = cpuBetween(idle0, cpuNow(Object.fromEntries(Object.entries(brokers).map(([k, b]) => [k, b.child.pid]))), []);
  for (const [name, b] of Object.entries(brokers)) b.idlePct = idle[name];
  const cellSeconds = (sc) => 3 + opts.warmup + (sc.kind === "latency" ? opts.latencyDuration : opts.duration) + (sc.subscribers > 100 ? 2 : 0);
  const perRound = scenarios.reduce((n, sc) => n + servers.length * cellSeconds(sc), 0);
  console.error(`bench:backplane: ${servers.length} servers × ${scenarios.length} scenarios × ${opts.rounds} rounds, about ${Math.ceil((perRound * opts.rounds) / 60)} min`);

  const cells = [];
  const failures = [];
  for (let round = 1; round <= opts.rounds; round++) {
    for (const scenario of scenarios) {
      for (const def of shuffle(servers)) {
        const cell = await runCell({ round, def, scenario, opts, brokers, cores, failures });
        cells.push(cell);
        const what = cell.flags.failed ? "FAILED" : scenario.kind === "latency" ? `p50 ${us(cell.p50Us)} p99 ${us(cell.p99Us)}` : `${int(cell.rate)} deliveries/s, ${int(cell.messageRate)} msg/s`;
        const cpu = cell.cpu ? `A ${pct(cell.cpu.a)} broker ${pct(cell.cpu.broker)} B ${pct(cell.cpu.b)} client ${pct(cell.cpu.client)}` : "";
        console.error(`[${round}/${opts.rounds}] ${scenario.name.padEnd(11)} ${def.name.padEnd(15)} ${what}  ${cpu}  ${flagText(Object.fromEntries(Object.entries(cell.flags).map(([k, v]) => [k, Number(v)])), 1)}`);
      }
    }
  }
  await Promise.all(Object.values(brokers).map((b) => stop(b.child)));

  const summary = summarize(cells);
  const targets = targetList(scenarios, summary);
  notes.push(`the run took ${((performance.now() - started) / 60_000).toFixed(1)} min.`);
  const meta = {
    date: new Date().toISOString(), cores: nCores, node: process.version, os: `${os.type()} ${os.release()} ${os.arch()}`,
    cpu: /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? os.cpus()[0]?.model ?? "unknown CPU",
    brokers: Object.values(brokers).map((b) => `${b.version} (idle: ${b.idlePct == null ? "–" : b.idlePct.toFixed(1)} % of a core)`),
    peers: `socket.io ${version("socket.io")} + @socket.io/redis-adapter ${version("@socket.io/redis-adapter")} (createAdapter, node-redis pub/sub clients); ws ${version("ws")}; node-redis ${version("redis")}; @nats-io/transport-node ${version("@nats-io/transport-node")}`,
  };
  const settings = { ...opts, pinned, servers: servers.map((s) => s.name), scenarios: scenarios.map((s) => s.name) };
  const report = renderMarkdown({ meta, settings, notes, scenarios, servers: settings.servers, summary, targets, failures, quick: opts.quick });
  console.log(`\n${report}`);
  if (opts.save) {
    const results = join(BENCH, "results");
    mkdirSync(results, { recursive: true });
    const stamp = `backplane-${meta.date.replace(/\.\d+Z$/, "Z").replace(/:/g, "-")}${opts.quick ? "-quick" : ""}`;
    writeFileSync(join(results, `${stamp}.md`), `${report}\n`);
    writeFileSync(join(results, `${stamp}.json`), `${JSON.stringify({ meta, settings, notes, summary, targets, failures, cells }, null, 2)}\n`);
    console.error(`bench:backplane: wrote bench/results/${stamp}.md and .json`);
  }
  if (failures.length) {
    console.error(`bench:backplane: ${failures.length} cell(s) FAILED — see "Failures" above.`);
    process.exitCode = 1;
  }
}

runBench("bench:backplane", main);
