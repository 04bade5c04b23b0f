// Load generators for the runner: wrk (preferred) or autocannon (fallback), run pinned to the client core with a CPU window over the steady part.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { spawnPinned, cpuWindow, hasCommand } from "./_proc.mjs";

const WRK_LUA = fileURLToPath(new URL("./wrk.lua", import.meta.url));
const AUTOCANNON = fileURLToPath(new URL("./_autocannon.mjs", import.meta.url));

/** Returns wrk's path and version line, or null when it is not installed. */
export function findWrk() {
  for (const path of ["/usr/bin/wrk", "/usr/local/bin/wrk"]) if (existsSync(path)) return { path, version: wrkVersion(path) };
  if (hasCommand("wrk", ["-v"])) return { path: "wrk", version: wrkVersion("wrk") };
  return null;
}

function wrkVersion(path) {
  let out;
  try {
    out = execFileSync(path, ["-v"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (error) {
    // `wrk -v` prints "wrk 4.x [epoll] Copyright …", then usage, and exits 1.
    out = String(error.stdout ?? "");
  }
  return out.split("\n")[0].replace(/\s*Copyright.*$/, "").trim() || "wrk (unknown version)";
}

/** Returns h2load's path and version line (Debian's nghttp2-client), or null when it is not installed. */
export function findH2load() {
  for (const path of ["/usr/bin/h2load", "/usr/local/bin/h2load"]) {
    if (!existsSync(path)) continue;
    try {
      return { path, version: execFileSync(path, ["--version"], { encoding: "utf8" }).split("\n")[0].trim() };
    } catch {
      return { path, version: "h2load (unknown version)" };
    }
  }
  return null;
}

/** A duration h2load prints ("358us", "1.45ms", "2.1s") in milliseconds. */
function h2loadMs(text) {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text ?? "");
  if (!m) return null;
  return Number(m[1]) * (m[2] === "us" ? 1e-3 : m[2] === "ms" ? 1 : 1e3);
}

/**
 * h2load's summary as the LOAD_JSON the other clients print: requests and duration from
 * "finished in …" and "requests: …", errors from the failed/errored/timeout counts and non-2xx
 * statuses. h2load reports no percentiles: p50 is its mean time per request, p99 unknown (null).
 */
export function parseH2load(stdout) {
  const finished = /finished in ([\d.]+)s, ([\d.]+) req\/s/.exec(stdout);
  const requests = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(stdout);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout);
  const traffic = /traffic: [^(]*\((\d+)\) total/.exec(stdout);
  const timing = /time for request:\s+(\S+)\s+(\S+)\s+(\S+)/.exec(stdout);
  if (!finished || !requests || !codes) return null;
  const done = Number(requests[3]);
  return {
    requests: Number(requests[4]),
    bytes: traffic ? Number(traffic[1]) : null,
    duration_us: Number(finished[1]) * 1e6,
    latency_us: { p50: (h2loadMs(timing?.[3]) ?? NaN) * 1000, p99: NaN },
    errors: {
      status: Number(codes[2]) + Number(codes[3]) + Number(codes[4]),
      connect: Number(requests[6]), read: Number(requests[5]), write: 0, timeout: Number(requests[7]),
      incomplete: Math.max(0, done - Number(requests[4]) - Number(requests[5]) - Number(requests[6]) - Number(requests[7])),
    },
  };
}

/**
 * Takes { tool: "wrk" | "autocannon", wrkPath, h2loadPath (an HTTP/2 scenario's client), url (http: or https:), scenario, connections, seconds, server:
 * { pid, core }, clientCore }, runs the load once and returns { rps, requests, bytesPerReq, p99Ms, p50Ms,
 * errors, errorCount, cpu } where cpu holds the server's and client's CPU % and the foreign load
 * on each core, measured from ~0.3 s after the start (connections are up) to ~0.15 s before
 * the end (the client is still alive).
 */
export async function runLoad({ tool, wrkPath, h2loadPath, url, scenario, connections, seconds, server, clientCore }) {
  // Request headers of the scenario (json-gzip's Accept-Encoding) as wrk -H; _autocannon.mjs has no way to send them.
  const headers = Object.entries(scenario.headers ?? {}).flatMap(([name, value]) => ["-H", `${name}: ${value}`]);
  if (headers.length && tool !== "wrk") throw new Error(`${scenario.name} sends request headers, which only the wrk client does: install wrk`);
  const child = scenario.h2
    ? spawnPinned(
      h2loadPath,
      ["-t1", `-c${connections}`, `-m${scenario.streams ?? 1}`, `-D`, String(seconds), url],
      { stdio: ["ignore", "pipe", "pipe"] },
      clientCore,
    )
    : tool === "wrk"
    ? spawnPinned(
      wrkPath,
      ["-t1", `-c${connections}`, `-d${seconds}s`, "--timeout", "5s", ...headers, "-s", WRK_LUA, url],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, WRK_BODY: scenario.body ?? "" } },
      clientCore,
    )
    : spawnPinned(
      process.execPath,
      [AUTOCANNON, JSON.stringify({ url, connections, seconds, method: scenario.method, body: scenario.body })],
      { stdio: ["ignore", "pipe", "pipe"] },
      clientCore,
    );

  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise((resolve, reject) => {
    child.on("exit", (code, signal) => resolve({ code, signal }));
    child.on("error", reject);
  });

  const openAt = Math.min(300, seconds * 150);
  const closeAt = Math.max(openAt + 200, seconds * 1000 - 150);
  let window = null;
  let cpu = null;
  const openTimer = setTimeout(() => {
    window = cpuWindow({ server, client: { pid: child.pid, core: clientCore } });
  }, openAt);
  const closeTimer = setTimeout(() => {
    cpu = window?.close() ?? null;
  }, closeAt);
  // A hung client must not hang the run.
  const killTimer = setTimeout(() => child.kill("SIGKILL"), seconds * 1000 + 20_000);

  const { code, signal } = await exited;
  clearTimeout(openTimer);
  clearTimeout(closeTimer);
  clearTimeout(killTimer);
  cpu ??= window?.close() ?? null;

  const line = scenario.h2 ? null : stdout.split("\n").find((l) => l.startsWith("LOAD_JSON "));
  const r = scenario.h2 ? parseH2load(stdout) : line ? JSON.parse(line.slice("LOAD_JSON ".length)) : null;
  if (!r) {
    throw new Error(`${scenario.h2 ? "h2load" : tool} produced no result (exit ${code ?? signal}):\n${stdout}${stderr}`.trim());
  }
  const errorCount = Object.values(r.errors).reduce((a, b) => a + b, 0);
  return {
    requests: r.requests,
    // Response bytes (head + body) per request as the client read them: shows json-gzip's load was compressed.
    bytesPerReq: r.requests > 0 && r.bytes != null ? r.bytes / r.requests : null,
    rps: r.requests / (r.duration_us / 1e6),
    p50Ms: Number.isFinite(r.latency_us.p50) ? r.latency_us.p50 / 1000 : null,
    p99Ms: Number.isFinite(r.latency_us.p99) ? r.latency_us.p99 / 1000 : null,
    errors: r.errors,
    errorCount,
    cpu: {
      server: cpu?.server.cpu ?? null,
      client: cpu?.client.cpu ?? null,
      serverForeign: cpu?.server.foreign ?? null,
      clientForeign: cpu?.client.foreign ?? null,
    },
  };
}
