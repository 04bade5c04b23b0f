// Memory of a file download under load: one large file (100 MiB) served with `new Response(file(path))`,
// many clients at once, the server's RSS sampled every 100 ms. A server that streams under backpressure
// stays flat; one that buffers the file per client grows by clients × file size.
//
//   node bench/file-memory.mjs [--only uwserve,node-http,bun] [--clients 100] [--size-mib 100] …
//
// Run on its own, or by bench/run.mjs after the file-1mib scenario (--file-memory). See bench/README.md.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import os from "node:os";
import { spawnPinned, stop, killAll, peakRssMiB, canPin } from "./_proc.mjs";
import { makeFile } from "./servers/_assets.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BENCH = fileURLToPath(new URL(".", import.meta.url));
const SELF = fileURLToPath(import.meta.url);

export const MEMORY_SERVERS = ["uwserve", "node-http", "bun"];
export const MEMORY_DEFAULTS = { clients: 100, sizeMiB: 100, rateKiB: 1024, slowSeconds: 8, fullTimeout: 120, limitMiB: 100 };

const HELP = `Usage: node bench/file-memory.mjs [options]

  --only a,b          servers (default: all available): ${MEMORY_SERVERS.join(", ")}
  --clients N         concurrent downloads (default ${MEMORY_DEFAULTS.clients})
  --size-mib N        file size in MiB (default ${MEMORY_DEFAULTS.sizeMiB})
  --rate-kib N        slow phase: each client reads at most N KiB/s (default ${MEMORY_DEFAULTS.rateKiB})
  --slow-seconds S    slow phase length (default ${MEMORY_DEFAULTS.slowSeconds})
  --limit-mib N       "flat" means peak RSS growth below N MiB in both phases (default ${MEMORY_DEFAULTS.limitMiB})
  --no-save           print only; otherwise writes bench/results/file-memory-<ISO date>.md and .json`;

// ---------------------------------------------------------------------------------------------
// Client mode (a child process pinned to the client core): --client <json>

/**
 * Takes { port, clients, size, mode: "slow" | "full", rate, seconds }, opens `clients` raw TCP
 * connections that each GET /file, and reads: "slow" at most `rate` bytes/s per connection for
 * `seconds`, then closes them; "full" every byte as fast as it comes, checking the length and
 * (on the first connection) the SHA-1. Prints CLIENT_JSON with bytes read and errors.
 */
async function clientMain({ port, clients, size, mode, rate, seconds, sha1 }) {
  const started = performance.now();
  let errors = [];
  let totalBytes = 0;
  const one = (index) => new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    let head = Buffer.alloc(0);
    let bodyBytes = 0;
    let expected = null;
    let finished = false;
    const hash = index === 0 && mode === "full" ? createHash("sha1") : null;
    const opened = performance.now();
    let resumeTimer = null;
    const end = (error) => {
      if (finished) return;
      finished = true;
      clearTimeout(resumeTimer);
      if (error) errors.push(`client ${index}: ${error}`);
      if (hash && !error && hash.digest("hex") !== sha1) errors.push(`client ${index}: body SHA-1 differs from the file's`);
      socket.destroy();
      resolve();
    };
    const body = (chunk) => {
      bodyBytes += chunk.length;
      totalBytes += chunk.length;
      hash?.update(chunk);
      if (mode === "full" && bodyBytes >= expected) {
        end(bodyBytes === expected ? null : `${bodyBytes} body bytes, expected ${expected}`);
      } else if (mode === "slow") {
        // Token bucket: pause until the allowance catches up with what was read.
        const ahead = bodyBytes / rate - (performance.now() - opened) / 1000;
        if (ahead > 0) {
          socket.pause();
          resumeTimer = setTimeout(() => socket.resume(), ahead * 1000);
        }
      }
    };
    socket.on("connect", () => socket.write(`GET /file HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`));
    socket.on("data", (chunk) => {
      if (expected !== null) return body(chunk);
      head = Buffer.concat([head, chunk]);
      const at = head.indexOf("\r\n\r\n");
      if (at < 0) return;
      const text = head.subarray(0, at).toString("latin1");
      const status = /^HTTP\/1\.1 (\d+)/.exec(text)?.[1];
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(text)?.[1];
      if (status !== "200" || length === undefined) return end(`status ${status}, content-length ${length ?? "(none)"}`);
      expected = Number(length);
      if (expected !== size) return end(`content-length ${expected}, expected ${size}`);
      const rest = head.subarray(at + 4);
      if (rest.length) body(rest);
    });
    socket.on("error", (e) => end(mode === "slow" && e.code === "ECONNRESET" ? null : e.message));
    socket.on("close", () => end(mode === "full" && bodyBytes < (expected ?? 1) ? `closed after ${bodyBytes} body bytes` : null));
    if (mode === "slow") setTimeout(() => end(null), seconds * 1000);
  });
  await Promise.all(Array.from({ length: clients }, (_, i) => one(i)));
  errors = errors.slice(0, 5);
  console.log(`CLIENT_JSON ${JSON.stringify({ bytes: totalBytes, seconds: (performance.now() - started) / 1000, errors })}`);
}

// ---------------------------------------------------------------------------------------------
// Orchestration

function findBinary(name) {
  const local = join(ROOT, "node_modules", ".bin", name);
  if (existsSync(local)) return local;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) if (dir && existsSync(join(dir, name))) return join(dir, name);
  return null;
}

function serverDef(name) {
  const file = join(BENCH, "servers", `${name}.mjs`);
  if (name === "bun") {
    const bun = findBinary("bun");
    return { name, cmd: bun, args: [file], skip: bun ? null : "bun not installed" };
  }
  if (name === "uwserve" && !existsSync(join(ROOT, "dist", "index.js"))) return { name, skip: "dist/index.js not found (run `npm run build`)" };
  return { name, cmd: process.execPath, args: [file], skip: null };
}

function rssMiB(pid) {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

function startServer(def, core, path) {
  const env = { ...process.env, PORT: "0", BENCH_SCENARIO: "file-memory", BENCH_FILE: path, BENCH_TLS: "0", BENCH_COMPRESSION: "0" };
  const child = spawnPinned(def.cmd, def.args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env }, core);
  let stderr = "";
  child.stderr.on("data", (d) => (stderr = (stderr + d).slice(-4000)));
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`no "ready <port>" within 20 s\n${stderr}`)), 20_000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = /^ready (\d+)\s*$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]), stderr: () => stderr });
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code ?? signal}) before "ready <port>"\n${stderr}`));
    });
  });
}

/** Runs the client child for one phase while sampling the server's RSS every 100 ms; returns { peakMiB, samples, client }. */
async function phase({ pid, port, clientCore, config }) {
  const child = spawnPinned(process.execPath, [SELF, "--client", JSON.stringify({ port, ...config })], { stdio: ["ignore", "pipe", "pipe"] }, clientCore);
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const samples = [];
  const sample = () => {
    const v = rssMiB(pid);
    if (v !== null) samples.push(v);
  };
  sample();
  const timer = setInterval(sample, 100);
  const killer = setTimeout(() => child.kill("SIGKILL"), (config.timeout ?? 120) * 1000);
  const code = await new Promise((resolve) => child.on("exit", (c, s) => resolve(c ?? s)));
  clearInterval(timer);
  clearTimeout(killer);
  sample();
  const line = out.split("\n").find((l) => l.startsWith("CLIENT_JSON "));
  const client = line ? JSON.parse(line.slice(12)) : { bytes: 0, seconds: 0, errors: [`client exited ${code} without a result: ${err.trim().slice(-500)}`] };
  return { peakMiB: Math.max(...samples), samples: samples.length, client };
}

/**
 * Takes { only, clients, sizeMiB, rateKiB, slowSeconds, limitMiB, cores }, runs each server through
 * both phases and returns { settings, rows, notes } (rows: one per server, or { name, skip/error }).
 */
export async function fileMemory(options = {}) {
  const o = { ...MEMORY_DEFAULTS, ...options };
  const cores = o.cores ?? (canPin && (os.availableParallelism?.() ?? os.cpus().length) >= 2 ? { server: 0, client: 1 } : { server: null, client: null });
  const names = (o.only ?? MEMORY_SERVERS).filter((n) => MEMORY_SERVERS.includes(n));
  const size = o.sizeMiB * 1024 * 1024;
  const made = makeFile(size, "big.bin");
  const sha1 = createHash("sha1").update(readFileSync(made.path)).digest("hex");
  const rows = [];
  try {
    for (const name of names) {
      const def = serverDef(name);
      if (def.skip) {
        rows.push({ name, skip: def.skip });
        continue;
      }
      let server = null;
      try {
        server = await startServer(def, cores.server, made.path);
        const pid = server.child.pid;
        const startMiB = rssMiB(pid);
        // One full download first: checks the answer (length, SHA-1) and runs the lazy first-request work.
        const check = await phase({ pid, port: server.port, clientCore: cores.client, config: { clients: 1, size, mode: "full", sha1, timeout: 60 } });
        if (check.client.errors.length) throw new Error(`check download: ${check.client.errors.join("; ")}`);
        await new Promise((r) => setTimeout(r, 1000));
        const baseMiB = rssMiB(pid);
        const slow = await phase({
          pid, port: server.port, clientCore: cores.client,
          config: { clients: o.clients, size, mode: "slow", rate: o.rateKiB * 1024, seconds: o.slowSeconds, timeout: o.slowSeconds + 30 },
        });
        await new Promise((r) => setTimeout(r, 500));
        const full = await phase({
          pid, port: server.port, clientCore: cores.client,
          config: { clients: o.clients, size, mode: "full", sha1, timeout: o.fullTimeout },
        });
        const errors = [...slow.client.errors, ...full.client.errors];
        if (server.child.exitCode !== null || server.child.signalCode !== null) errors.push("the server died");
        rows.push({
          name, startMiB, baseMiB,
          slow: { peakMiB: slow.peakMiB, growthMiB: slow.peakMiB - baseMiB, samples: slow.samples, readMiB: slow.client.bytes / 2 ** 20 },
          full: {
            peakMiB: full.peakMiB, growthMiB: full.peakMiB - baseMiB, samples: full.samples, seconds: full.client.seconds,
            gibPerS: full.client.bytes / 2 ** 30 / full.client.seconds, completeGiB: full.client.bytes / 2 ** 30,
          },
          hwmMiB: peakRssMiB(pid),
          errors,
          flat: errors.length === 0 && Math.max(slow.peakMiB, full.peakMiB) - baseMiB < o.limitMiB,
        });
      } catch (error) {
        rows.push({ name, error: error.message.split("\n")[0] });
      } finally {
        if (server) await stop(server.child);
      }
      console.error(`file-memory: ${name} ${JSON.stringify(rows.at(-1))}`);
    }
  } finally {
    made.remove();
  }
  return { settings: { clients: o.clients, sizeMiB: o.sizeMiB, rateKiB: o.rateKiB, slowSeconds: o.slowSeconds, limitMiB: o.limitMiB, cores }, rows };
}

/** Takes fileMemory()'s result, returns its markdown section. */
export function renderFileMemory({ settings: s, rows }) {
  const mib = (v) => (v == null ? "–" : `${Math.round(v)} MiB`);
  const out = [
    `## file-memory — ${s.clients} clients downloading one ${s.sizeMiB} MiB file at once`, "",
    `The server's VmRSS sampled every 100 ms. Baseline: 1 s after one full checked download (length and SHA-1). ` +
    `Slow: ${s.clients} raw TCP clients each reading at most ${s.rateKiB} KiB/s for ${s.slowSeconds} s (none finishes). ` +
    `Full: ${s.clients} clients each downloading all ${s.sizeMiB} MiB as fast as they can ` +
    `(${(s.clients * s.sizeMiB / 1024).toFixed(1)} GiB in all). "Flat": peak growth over the baseline below ${s.limitMiB} MiB in both ` +
    `phases, against ${(s.clients * s.sizeMiB / 1024).toFixed(1)} GiB for a server that buffered the file per client.`, "",
    "| server | RSS at start | baseline | slow: peak | slow: growth | full: peak | full: growth | full: GiB/s | VmHWM | flat |",
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|",
  ];
  for (const r of rows) {
    if (r.skip || r.error) {
      out.push(`| ${r.name} | – | – | – | – | – | – | – | – | ${r.skip ? `skipped: ${r.skip}` : `✗ ${r.error}`} |`);
      continue;
    }
    out.push(`| ${r.name} | ${mib(r.startMiB)} | ${mib(r.baseMiB)} | ${mib(r.slow.peakMiB)} | ${mib(r.slow.growthMiB)} | ` +
      `${mib(r.full.peakMiB)} | ${mib(r.full.growthMiB)} | ${r.full.gibPerS.toFixed(2)} | ${mib(r.hwmMiB)} | ` +
      `${r.errors.length ? `✗ ${r.errors.join("; ")}` : r.flat ? "yes" : "**no**"} |`);
  }
  const u = rows.find((r) => r.name === "uwserve" && r.slow);
  if (u) {
    const growth = Math.max(u.slow.growthMiB, u.full.growthMiB);
    out.push("", `uwserve target: flat (peak growth < ${s.limitMiB} MiB): ${u.flat ? "PASS" : "**FAIL**"} ` +
      `(${Math.round(growth)} MiB, ${((growth * 1024) / s.clients).toFixed(0)} KiB per download).`);
  }
  return out.join("\n");
}

async function main(argv) {
  const o = {};
  let save = true;
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].includes("=") ? argv[i].split(/=(.*)/s) : [argv[i], undefined];
    const value = () => inline ?? argv[++i];
    const num = () => {
      const n = Number(value());
      if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag} expects a positive number`);
      return n;
    };
    if (flag === "--only") o.only = value().split(",").map((s) => s.trim()).filter(Boolean);
    else if (flag === "--clients") o.clients = Math.round(num());
    else if (flag === "--size-mib") o.sizeMiB = num();
    else if (flag === "--rate-kib") o.rateKiB = num();
    else if (flag === "--slow-seconds") o.slowSeconds = num();
    else if (flag === "--limit-mib") o.limitMiB = num();
    else if (flag === "--no-save") save = false;
    else if (flag === "--help" || flag === "-h") return console.log(HELP);
    else throw new Error(`unknown option ${argv[i]}\n\n${HELP}`);
  }
  const date = new Date().toISOString();
  const result = await fileMemory(o);
  const report = `# uwserve file memory — ${date}\n\n- Node ${process.version}, ${os.cpus()[0]?.model ?? ""} (${os.availableParallelism?.() ?? os.cpus().length} cores); server on core ${result.settings.cores.server ?? "–"}, clients on core ${result.settings.cores.client ?? "–"}\n\n${renderFileMemory(result)}\n`;
  console.log(report);
  if (save) {
    const dir = join(BENCH, "results");
    mkdirSync(dir, { recursive: true });
    const stamp = `file-memory-${date.replace(/\.\d+Z$/, "Z").replace(/:/g, "-")}`;
    writeFileSync(join(dir, `${stamp}.md`), report);
    writeFileSync(join(dir, `${stamp}.json`), `${JSON.stringify({ date, ...result }, null, 2)}\n`);
    console.error(`file-memory: wrote bench/results/${stamp}.md and .json`);
  }
  if (result.rows.some((r) => r.error || r.errors?.length)) process.exitCode = 1;
}

if (process.argv[1] === SELF) {
  if (process.argv[2] === "--client") {
    await clientMain(JSON.parse(process.argv[3]));
  } else {
    process.on("exit", killAll);
    for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]]) process.on(signal, () => { killAll(); process.exit(code); });
    await main(process.argv.slice(2)).catch((error) => {
      killAll();
      console.error(`file-memory: ${error.message}`);
      process.exit(2);
    });
  }
}
