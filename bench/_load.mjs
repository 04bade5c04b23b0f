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

/**
 * Takes { tool: "wrk" | "autocannon", wrkPath, url (http: or https:), scenario, connections, seconds, server:
 * { pid, core }, clientCore }, runs the load once and returns { rps, requests, bytesPerReq, p99Ms, p50Ms,
 * errors, errorCount, cpu } where cpu holds the server's and client's CPU % and the foreign load
 * on each core, measured from ~0.3 s after the start (connections are up) to ~0.15 s before
 * the end (the client is still alive).
 */
export async function runLoad({ tool, wrkPath, url, scenario, connections, seconds, server, clientCore }) {
  // Request headers of the scenario (json-gzip's Accept-Encoding) as wrk -H; _autocannon.mjs has no way to send them.
  const headers = Object.entries(scenario.headers ?? {}).flatMap(([name, value]) => ["-H", `${name}: ${value}`]);
  if (headers.length && tool !== "wrk") throw new Error(`${scenario.name} sends request headers, which only the wrk client does: install wrk`);
  const child = tool === "wrk"
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

  const line = stdout.split("\n").find((l) => l.startsWith("LOAD_JSON "));
  if (!line) {
    throw new Error(`${tool} produced no result (exit ${code ?? signal}):\n${stdout}${stderr}`.trim());
  }
  const r = JSON.parse(line.slice("LOAD_JSON ".length));
  const errorCount = Object.values(r.errors).reduce((a, b) => a + b, 0);
  return {
    requests: r.requests,
    // Response bytes (head + body) per request as the client read them: shows json-gzip's load was compressed.
    bytesPerReq: r.requests > 0 && r.bytes != null ? r.bytes / r.requests : null,
    rps: r.requests / (r.duration_us / 1e6),
    p50Ms: r.latency_us.p50 / 1000,
    p99Ms: r.latency_us.p99 / 1000,
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
