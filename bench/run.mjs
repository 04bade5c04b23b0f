// Benchmark runner: each server in its own pinned process, responses checked, then loaded with wrk (or autocannon); writes bench/results/.
//
//   node bench/run.mjs [--rounds N] [--duration S] [--only a,b] [--scenarios a,b] [--quick] …
//
// See bench/README.md for what the columns and flags mean.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import os from "node:os";
import { SCENARIOS, verify } from "./_scenarios.mjs";
import { ensureTls, makeFile } from "./servers/_assets.mjs";
import { fileMemory, renderFileMemory, MEMORY_SERVERS } from "./file-memory.mjs";
import { stop, killAll, peakRssMiB, coreTicks, canPin, hasCommand, startReadyServer, findBinary } from "./_proc.mjs";
import { findWrk, findH2load, runLoad } from "./_load.mjs";
import { flagsOf, summarize, checkTargets, renderMarkdown } from "./_report.mjs";
import { eachFlag } from "./_flags.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BENCH = fileURLToPath(new URL(".", import.meta.url));
const RESULTS = join(BENCH, "results");

const HELP = `Usage: node bench/run.mjs [options]     (or: npm run bench -- [options])

  --rounds N          interleaved rounds, medians reported (default 3)
  --duration S        measured seconds per cell (default 3)
  --warmup S          warm-up seconds per cell, not measured (default 1)
  --only a,b          servers to run (default: all available; uwserve-workers-1/-2 only when named)
  --scenarios a,b     scenarios to run (default: all)
  --connections N     override every scenario's connection count
  --retries N         re-measure a noisy or unsaturated cell up to N times (default 1)
  --client wrk|autocannon   force a load generator (default: wrk when installed)
  --file-memory       after the rounds, run bench/file-memory.mjs (100 clients × one 100 MiB file, RSS
                      sampled every 100 ms) for uwserve, node-http, bun among --only; on by default
                      when file-1mib runs (not with --quick); --no-file-memory turns it off
  --quick             autocannon, 1 round, 1 s, hello/json/echo/async; a smoke run, not numbers
  --no-save           print the report only, write nothing to bench/results/
  --help

Servers:   raw-uws, raw-uws-global-response, uwserve, uwserve-global, uwserve-node (the node engine),
           uwserve-ref (another build, BENCH_REF_DIST=<its dist/index.js>, for A/B runs),
           uwserve-otel (telemetry on, the OpenTelemetry SDK exporting nowhere; only when named in --only),
           node-http, hono-node, srvx-node, bun, deno,
           uwserve-workers-1, uwserve-workers-2 (uwserve.mjs's server through the CLI with --workers 1 / 2;
           only when named in --only; --workers 2 runs on cores 0-1 and shares core 1 with the load generator)
Scenarios: ${SCENARIOS.map((s) => s.name).join(", ")}
${SCENARIOS.filter((s) => s.peers).map((s) => `           ${s.name}: only ${s.peers.join(", ")}`).join("\n")}
           (json-gzip and json-gzip-only bring json26 along: their ratios need it)`;

// ---------------------------------------------------------------------------------------------
// Options

function parseArgs(argv) {
  const o = {
    rounds: 3, duration: 3, warmup: 1, only: null, scenarios: null, connections: null, retries: 1, client: null, quick: false, save: true, fileMemory: null,
  };
  eachFlag(argv, fail, (flag, arg, { value, number, list }) => {
    switch (flag) {
      case "--rounds": o.rounds = Math.round(number(1)); break;
      case "--duration": o.duration = number(1); break;
      case "--warmup": o.warmup = number(0); break;
      case "--only": o.only = list(value()); break;
      case "--scenarios": o.scenarios = list(value()); break;
      case "--connections": o.connections = Math.round(number(1)); break;
      case "--retries": o.retries = Math.round(number(0)); break;
      case "--client": o.client = value(); break;
      case "--quick": o.quick = true; break;
      case "--file-memory": o.fileMemory = true; break;
      case "--no-file-memory": o.fileMemory = false; break;
      case "--no-save": o.save = false; break;
      case "--help": case "-h": console.log(HELP); process.exit(0); break;
      default: fail(`unknown option ${arg}\n\n${HELP}`);
    }
  });
  if (o.client !== null && o.client !== "wrk" && o.client !== "autocannon") fail(`--client expects wrk or autocannon, got ${o.client}`);
  if (o.quick) {
    const explicit = new Set(argv.map((a) => a.split("=")[0]));
    o.client ??= "autocannon";
    if (!explicit.has("--rounds")) o.rounds = 1;
    if (!explicit.has("--duration")) o.duration = 1;
    if (!explicit.has("--retries")) o.retries = 0;
    o.scenarios ??= ["hello", "json", "echo", "async"];
  }
  return o;
}

function fail(message) {
  console.error(`bench: ${message}`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// Servers

/** Returns every known server with how to start it, or `skip` saying why it cannot run here. */
function serverTable() {
  const file = (name) => join(BENCH, "servers", name);
  const node = (name) => ({ cmd: process.execPath, args: [file(name)] });
  const dist = existsSync(join(ROOT, "dist", "index.js"));
  const noDist = "dist/index.js not found (run `npm run build`)";
  const bun = findBinary("bun");
  const deno = findBinary("deno");
  // uwserve.mjs's server as a CLI entry: --workers 1 serves on the main thread, --workers 2 on two worker threads
  // sharing the port (SO_REUSEPORT). The CLI announces the port on its own line. Two threads need two cores: that
  // server is pinned to cores 0-1 (`cores`), so it shares core 1 with the load generator (flagged ⇄).
  const cli = (count) => ({
    cmd: process.execPath,
    args: [join(ROOT, "dist", "cli.js"), "--workers", String(count), "--port", "0", "--hostname", "127.0.0.1", file("uwserve-cli-entry.mjs")],
    ready: /^uwserve listening on https?:\/\/\S+?:(\d+)\//m,
    optional: true,
    skip: dist ? null : noDist,
  });
  return [
    { name: "raw-uws", ...node("raw-uws.mjs") },
    { name: "raw-uws-global-response", ...node("raw-uws-global-response.mjs") },
    { name: "uwserve", ...node("uwserve.mjs"), skip: dist ? null : noDist },
    { name: "uwserve-global", ...node("uwserve-global.mjs"), skip: dist ? null : noDist },
    { name: "uwserve-node", ...node("uwserve-node.mjs"), skip: dist ? null : noDist },
    { name: "uwserve-ref", ...node("uwserve-ref.mjs"), skip: process.env.BENCH_REF_DIST ? null : "BENCH_REF_DIST not set" },
    { name: "uwserve-otel", ...node("uwserve-otel.mjs"), skip: dist ? null : noDist, optional: true },
    { name: "node-http", ...node("node-http.mjs") },
    { name: "hono-node", ...node("hono-node.mjs") },
    { name: "srvx-node", ...node("srvx-node.mjs") },
    { name: "bun", cmd: bun, args: [file("bun.mjs")], skip: bun ? null : "bun not installed" },
    {
      name: "deno", cmd: deno, args: ["run", "--allow-net", "--allow-env", "--allow-read", file("deno.mjs")],
      skip: deno ? null : "deno not installed",
    },
    { name: "uwserve-workers-1", ...cli(1) },
    { name: "uwserve-workers-2", ...cli(2), cores: "0-1" },
  ];
}

/**
 * Takes a server entry and a scenario, returns whether that server runs it: a scenario with
 * `peers` (routing: only the servers with a routes table; TLS, compression, files) only for those.
 */
function supports(def, scenario) {
  return !scenario.peers || scenario.peers.includes(def.name);
}

/**
 * Takes a server entry, a core, the scenario the cell measures and the run's assets ({ tls:
 * { keyFile, certFile }, file }), starts the server with PORT=0 and BENCH_SCENARIO=<name> (the
 * routing peers register only that scenario's routes table), BENCH_TLS=1 for a TLS scenario,
 * BENCH_COMPRESSION=1 for a compression one, the certificate and file paths; resolves
 * { child, port, stderr() } once it prints "ready <port>".
 */
function startServer(def, core, scenario, assets = {}) {
  // A server that needs more than one core brings its own core list.
  if (def.cores && core !== null) core = def.cores;
  const env = {
    ...process.env, PORT: "0", BENCH_SCENARIO: scenario.name,
    BENCH_TLS: scenario.tls ? "1" : "0", BENCH_COMPRESSION: scenario.compression ? "1" : "0", BENCH_H2: scenario.h2 ? "1" : "0",
    ...(assets.tls ? { BENCH_TLS_KEY: assets.tls.keyFile, BENCH_TLS_CERT: assets.tls.certFile } : {}),
    ...(assets.file ? { BENCH_FILE: assets.file } : {}),
  };
  return startReadyServer(def, core, env);
}

// ---------------------------------------------------------------------------------------------
// Environment

/**
 * Returns what `find()` finds; when it finds nothing and this is root with apt-get, installs
 * Debian's `pkg` (which has `tool`) and asks again.
 */
function findOrInstall(find, tool, pkg) {
  const found = find();
  if (found || process.getuid?.() !== 0 || !hasCommand("apt-get")) return found;
  console.error(`bench: ${tool} not found; trying \`apt-get install -y ${pkg}\` …`);
  try {
    execFileSync("apt-get", ["install", "-y", pkg], { stdio: "inherit" });
  } catch {
    console.error(`bench: apt-get install ${pkg} failed.`);
  }
  return find();
}

/** Returns the load generator to use: wrk if present (installing it with apt-get when root), else autocannon. */
function chooseClient(opts, notes) {
  if (opts.client === "autocannon") {
    notes.push("autocannon (forced): a Node client saturates near 90k req/s on 2 cores; uWS-based cells are client-bound.");
    return { tool: "autocannon", label: `autocannon ${autocannonVersion()} (programmatic, in a child process)` };
  }
  const wrk = findOrInstall(findWrk, "wrk", "wrk");
  if (wrk) return { tool: "wrk", wrkPath: wrk.path, label: `${wrk.version} (-t1, bench/wrk.lua)` };
  if (opts.client === "wrk") fail("wrk is not installed (Debian/Ubuntu: apt-get install wrk; macOS: brew install wrk)");
  const banner = "!".repeat(96);
  console.error(`${banner}\n!! wrk not found: falling back to autocannon.\n` +
    "!! autocannon is a Node client: on 2 cores it saturates near 90k req/s, below raw uWS and uwserve,\n" +
    "!! so their numbers (and every ratio against them) measure the client, not the server.\n" +
    `!! Install wrk for real numbers: apt-get install wrk (Debian/Ubuntu), brew install wrk (macOS).\n${banner}`);
  notes.push("wrk missing, autocannon used: a Node client saturates near 90k req/s on 2 cores; uWS-based cells are client-bound.");
  return { tool: "autocannon", label: `autocannon ${autocannonVersion()} (programmatic, in a child process)` };
}

/**
 * Returns h2load for the HTTP/2 scenarios (installing Debian's nghttp2-client with apt-get when
 * root), or null with a note: those scenarios are then left out of the run.
 */
function chooseH2Client(notes) {
  const h2load = findOrInstall(findH2load, "h2load", "nghttp2-client");
  if (!h2load) notes.push("h2load not installed (Debian/Ubuntu: apt-get install nghttp2-client): the HTTP/2 scenarios were not run.");
  return h2load;
}

function autocannonVersion() {
  try {
    return JSON.parse(readFileSync(join(ROOT, "node_modules", "autocannon", "package.json"), "utf8")).version;
  } catch {
    return "";
  }
}

function machine(client) {
  let cpu = os.cpus()[0]?.model ?? "unknown CPU";
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? cpu;
  } catch {
    // Not Linux: os.cpus() it is.
  }
  return {
    date: new Date().toISOString(),
    cpu,
    cores: os.availableParallelism?.() ?? os.cpus().length,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    client: client.label,
  };
}

/** Samples both cores for `ms` before the run; returns a note when something else is already busy. */
async function backgroundLoad(cores, ms = 1000) {
  const a = coreTicks();
  await new Promise((r) => setTimeout(r, ms));
  const b = coreTicks();
  const busy = cores.map((c) => (a[c] && b[c] && b[c][1] > a[c][1] ? (100 * (b[c][0] - a[c][0])) / (b[c][1] - a[c][1]) : 0));
  if (busy.every((x) => x < 15)) return null;
  return `the machine was busy before the run (${cores.map((c, i) => `core ${c}: ${Math.round(busy[i])} %`).join(", ")}); expect noisy cells (~).`;
}

// ---------------------------------------------------------------------------------------------
// One cell: start, verify, warm up, measure, stop

function shuffle(list) {
  const a = [...list];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

async function runCell({ round, def, scenario, opts, client, cores, failures, assets }) {
  const cell = {
    round, server: def.name, scenario: scenario.name, rps: null, p50Ms: null, p99Ms: null, requests: null, bytesPerReq: null,
    errors: null, cpu: null, rssMiB: null, wire: null, attempts: 0, flags: { failed: false, clientBound: false, unsaturated: false, noisy: false },
  };
  let server = null;
  try {
    server = await startServer(def, cores.server, scenario, assets);
    cell.wire = await verify(server.port, scenario);
    const connections = opts.connections ?? scenario.connections;
    const scheme = scenario.tls ? "https" : "http";
    const base = {
      tool: client.tool, wrkPath: client.wrkPath, h2loadPath: client.h2loadPath, url: `${scheme}://127.0.0.1:${server.port}${scenario.path}`, scenario, connections,
      // A server on cores 0-1 has no core of its own to check for foreign load.
      server: { pid: server.child.pid, core: def.cores ? null : cores.server }, clientCore: cores.client,
    };
    if (opts.warmup > 0) await runLoad({ ...base, seconds: Math.max(1, Math.round(opts.warmup)) });
    for (;;) {
      cell.attempts++;
      const load = await runLoad({ ...base, seconds: Math.max(1, Math.round(opts.duration)) });
      if (def.cores && cores.server !== null) {
        // The server's threads on core 1 count as "foreign" load on the client's core: not noise, the setup.
        load.cpu.clientForeign = null;
        load.sharedCores = true;
      }
      Object.assign(cell, {
        rps: load.rps, p50Ms: load.p50Ms, p99Ms: load.p99Ms, requests: load.requests, bytesPerReq: load.bytesPerReq ?? null, errors: load.errors, cpu: load.cpu,
      });
      cell.flags = flagsOf(load);
      if (server.child.exitCode !== null || server.child.signalCode !== null) {
        throw new Error(`server died during the measurement (${server.child.exitCode ?? server.child.signalCode})`);
      }
      if (cell.flags.failed) {
        const e = load.errors;
        throw new Error(`${client.tool} reported ${load.errorCount} errors of ${load.requests} requests: ` +
          `non-2xx ${e.status}, connect ${e.connect}, read ${e.read}, write ${e.write}, timeout ${e.timeout}`);
      }
      if ((cell.flags.noisy || cell.flags.unsaturated) && cell.attempts <= opts.retries) continue;
      break;
    }
    cell.rssMiB = peakRssMiB(server.child.pid);
  } catch (error) {
    cell.flags.failed = true;
    const stderr = server?.stderr().trim();
    const message = error.message + (stderr && !error.message.includes("server stderr") ? `\n--- server stderr ---\n${stderr}` : "");
    failures.push({ round, server: def.name, scenario: scenario.name, message: message.split("\n")[0] });
    const bar = "✗".repeat(60);
    console.error(`\n${bar}\nFAILED: ${def.name} / ${scenario.name} (round ${round})\n${message}\n${bar}\n`);
  } finally {
    if (server) await stop(server.child);
  }
  return cell;
}

function progressLine(cell, rounds) {
  const f = cell.flags;
  const marks = [f.failed && "✗", f.clientBound && "†", f.unsaturated && "‡", f.noisy && "~", f.sharedCores && "⇄", cell.attempts > 1 && `(${cell.attempts} tries)`]
    .filter(Boolean).join(" ");
  const n = (v) => (v == null ? "–" : `${Math.round(v)}%`);
  return `[${cell.round}/${rounds}] ${cell.scenario.padEnd(11)} ${cell.server.padEnd(24)} ` +
    `${cell.rps == null ? "–".padStart(9) : Math.round(cell.rps).toLocaleString("en-US").padStart(9)} req/s  ` +
    `p99 ${cell.p99Ms == null ? "–" : cell.p99Ms.toFixed(2)} ms  server ${n(cell.cpu?.server)} client ${n(cell.cpu?.client)}  ${marks}`;
}

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const notes = [];

  const table = serverTable();
  const known = new Set(table.map((s) => s.name));
  for (const name of opts.only ?? []) if (!known.has(name)) fail(`unknown server "${name}" (known: ${[...known].join(", ")})`);
  const scenarioNames = new Set(SCENARIOS.map((s) => s.name));
  for (const name of opts.scenarios ?? []) if (!scenarioNames.has(name)) fail(`unknown scenario "${name}" (known: ${[...scenarioNames].join(", ")})`);
  // A scenario measured as a ratio to another (json-gzip ÷ json26) brings that one along.
  for (const name of opts.scenarios ?? []) {
    const pair = SCENARIOS.find((s) => s.name === name).pair;
    if (pair && !opts.scenarios.includes(pair)) {
      opts.scenarios.push(pair);
      console.error(`bench: ${name} also runs ${pair}, its uncompressed pair`);
    }
  }

  // The --workers servers are extra rows for a question of their own: only when asked for by name.
  const wanted = table.filter((s) => (opts.only ? opts.only.includes(s.name) : !s.optional));
  for (const s of wanted.filter((s) => s.skip)) {
    console.error(`bench: skipping ${s.name}: ${s.skip}`);
    notes.push(`${s.name} skipped: ${s.skip}.`);
  }
  const servers = wanted.filter((s) => !s.skip);
  let scenarios = SCENARIOS.filter((s) => !opts.scenarios || opts.scenarios.includes(s.name));
  const h2load = scenarios.some((sc) => sc.h2) ? chooseH2Client(notes) : null;
  if (!h2load) scenarios = scenarios.filter((sc) => !sc.h2);
  if (scenarios.length === 0) fail("no scenario to run");
  if (servers.length === 0) fail("no server to run");
  // scenario name → the selected servers that do not implement it (shown as "–", never started).
  const unsupported = Object.fromEntries(scenarios.map((sc) => [sc.name, servers.filter((d) => !supports(d, sc)).map((d) => d.name)]));
  const cellsPerRound = scenarios.reduce((n, sc) => n + servers.length - unsupported[sc.name].length, 0);
  if (cellsPerRound === 0) fail(`none of ${servers.map((d) => d.name).join(", ")} implements ${scenarios.map((sc) => sc.name).join(", ")}`);
  // One note per reason ("no routes table", "not a TLS peer", …), naming the servers and scenarios.
  const byReason = new Map();
  for (const sc of scenarios.filter((sc) => unsupported[sc.name].length)) {
    const entry = byReason.get(sc.absent) ?? { who: new Set(), scenarios: [] };
    for (const name of unsupported[sc.name]) entry.who.add(name);
    entry.scenarios.push(sc.name);
    byReason.set(sc.absent, entry);
  }
  for (const [reason, { who, scenarios: names }] of byReason) {
    const line = `${[...who].join(", ")}: ${reason}, so ${names.join(", ")} not run for them (–).`;
    console.error(`bench: ${line}`);
    notes.push(line);
  }

  // Made once per run: the self-signed certificate (bench/_tls/, ignored by git) and the file /file serves.
  const assets = {};
  if (scenarios.some((sc) => sc.tls)) {
    try {
      assets.tls = ensureTls();
    } catch (error) {
      fail(`could not make the TLS certificate with openssl: ${error.stderr?.toString().trim() || error.message}`);
    }
    notes.push("TLS: self-signed P-256 certificate made with the openssl CLI (bench/_tls/); wrk and the check don't verify it; keep-alive connections, so no handshakes in the measurement.");
  }
  if (scenarios.some((sc) => sc.path === "/file")) {
    const made = makeFile();
    process.on("exit", made.remove);
    assets.file = made.path;
    notes.push(`file-1mib: a 1 MiB file written at startup to ${made.path} (in the page cache: the scenario measures the server, not the disk).`);
  }

  const nCores = os.availableParallelism?.() ?? os.cpus().length;
  const cores = canPin && nCores >= 2 ? { server: 0, client: 1 } : { server: null, client: null };
  if (cores.server === null) {
    const why = canPin ? "only one core" : "taskset not available";
    console.error(`bench: not pinning server and client to separate cores (${why}); results will be noisier.`);
    notes.push(`server and load generator not pinned (${why}).`);
  }

  const shared = servers.filter((s) => s.cores).map((s) => s.name);
  if (shared.length && cores.server !== null) {
    notes.push(`${shared.join(", ")} pinned to cores ${[...new Set(servers.filter((s) => s.cores).map((s) => s.cores))].join(", ")}, not core 0: ` +
      `its threads share core ${cores.client} with the load generator (⇄), so it shows what a second worker gains on this 2-core machine with the load generator on it, not a 2-core server against a 1-core one.`);
  }
  const client = { ...chooseClient(opts, notes), h2loadPath: h2load?.path ?? null };
  if (h2load) client.label += `; HTTP/2: ${h2load.version} (-t1, -cN -mM)`;
  if (opts.quick) notes.push("--quick run: autocannon, short and single-round; a smoke test, not a measurement.");
  const dist = join(ROOT, "dist", "index.js");
  if (existsSync(dist) && servers.some((s) => s.name.startsWith("uwserve"))) {
    notes.push(`uwserve from dist/index.js built ${statSync(dist).mtime.toISOString()}${gitRevision()}.`);
  }
  const busy = cores.server === null ? null : await backgroundLoad([cores.server, cores.client]);
  if (busy) {
    console.error(`bench: warning: ${busy}`);
    notes.push(busy);
  }

  const meta = machine(client);
  const settings = {
    rounds: opts.rounds, duration: Math.max(1, Math.round(opts.duration)), warmup: opts.warmup > 0 ? Math.max(1, Math.round(opts.warmup)) : 0,
    connections: opts.connections, retries: opts.retries, client: client.tool, serverCore: cores.server, clientCore: cores.client,
    servers: servers.map((s) => s.name), scenarios: scenarios.map((s) => s.name),
  };
  const perCell = settings.warmup + settings.duration + 0.7;
  console.error(`bench: ${servers.length} servers × ${scenarios.length} scenarios × ${opts.rounds} rounds ` +
    `(${cellsPerRound * opts.rounds} cells), about ${Math.ceil((cellsPerRound * opts.rounds * perCell) / 60)} min with ${client.label}`);

  const cells = [];
  const failures = [];
  const broken = new Set();
  for (let round = 1; round <= opts.rounds; round++) {
    for (const scenario of scenarios) {
      for (const def of shuffle(servers)) {
        if (!supports(def, scenario)) continue;
        // A server that answered a scenario wrongly will not answer it right in the next round.
        if (broken.has(`${def.name}/${scenario.name}`)) continue;
        const cell = await runCell({ round, def, scenario, opts, client, cores, failures, assets });
        if (cell.flags.failed && cell.rps === null) broken.add(`${def.name}/${scenario.name}`);
        cells.push(cell);
        console.error(progressLine(cell, opts.rounds));
      }
    }
  }

  let memory = null;
  const runMemory = opts.fileMemory ?? (!opts.quick && scenarios.some((sc) => sc.name === "file-1mib"));
  const memoryServers = servers.map((s) => s.name).filter((n) => MEMORY_SERVERS.includes(n));
  if (runMemory && memoryServers.length) {
    console.error(`bench: file-memory for ${memoryServers.join(", ")} …`);
    memory = await fileMemory({ only: memoryServers, cores });
    for (const row of memory.rows.filter((r) => r.error || r.errors?.length)) {
      failures.push({ round: "–", server: row.name, scenario: "file-memory", message: row.error ?? row.errors.join("; ") });
    }
  }

  const summary = summarize(cells);
  const targets = checkTargets(summary);
  let report = renderMarkdown({
    meta, settings, notes, scenarios, servers: servers.map((s) => s.name), unsupported, summary, targets, failures, quick: opts.quick,
  });
  if (memory) report += `\n${renderFileMemory(memory)}\n`;
  console.log(`\n${report}`);

  if (opts.save) {
    mkdirSync(RESULTS, { recursive: true });
    const stamp = meta.date.replace(/\.\d+Z$/, "Z").replace(/:/g, "-") + (opts.quick ? "-quick" : "");
    writeFileSync(join(RESULTS, `${stamp}.md`), `${report}\n`);
    writeFileSync(join(RESULTS, `${stamp}.json`), `${JSON.stringify({ meta, settings, notes, summary, unsupported, targets, failures, cells, fileMemory: memory }, null, 2)}\n`);
    // latest.md is the last full run: a --quick smoke run is not a measurement, and a run of some
    // scenarios (--scenarios) or servers (--only) would hide the rest of the last full one.
    const full = !opts.quick && !opts.scenarios && !opts.only;
    if (full) writeFileSync(join(RESULTS, "latest.md"), `${report}\n`);
    console.error(`bench: wrote bench/results/${stamp}.md and .json${full ? ", and bench/results/latest.md" : " (latest.md is only replaced by a full run)"}`);
  }
  if (failures.length) {
    console.error(`bench: ${failures.length} cell(s) FAILED — see "Failures" above.`);
    process.exitCode = 1;
  }
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

// Never leave a server or load generator behind: on Ctrl-C, kill, or any exit path.
process.on("exit", killAll);
for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]]) {
  process.on(signal, () => {
    killAll();
    console.error(`\nbench: ${signal}, stopped every child process.`);
    process.exit(code);
  });
}

main().catch((error) => {
  killAll();
  console.error(error);
  process.exit(1);
});
