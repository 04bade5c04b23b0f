// Child processes of the runner: spawned pinned to a core, tracked so none outlives it, measured through /proc (Linux).
import { spawn, execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root: servers run from there. */
const ROOT_DIR = fileURLToPath(new URL("..", import.meta.url));

let ticksPerSecond = 100;
try {
  ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
} catch {
  // getconf missing: 100 Hz is the Linux USER_HZ on every mainstream architecture.
}

/** Takes a command name, returns true when it runs (`<cmd> --version` or `-v` exits). */
export function hasCommand(cmd, args = ["--version"]) {
  try {
    execFileSync(cmd, args, { stdio: "ignore" });
    return true;
  } catch (error) {
    // wrk -v prints its version and then exits 1; ENOENT is the only real "missing".
    return error.code !== "ENOENT";
  }
}

const pinning = process.platform === "linux" && hasCommand("taskset");
/** Whether children can be pinned to a core (taskset present). */
export const canPin = pinning;

const live = new Set();

/**
 * Takes a command, its arguments, spawn options and a core (or null), spawns it through
 * `taskset -c <core>` (which execs, so child.pid is the command's own pid) and tracks it until
 * it exits, so killAll() can reach it.
 */
export function spawnPinned(cmd, args, options, core) {
  const child = core === null || !pinning
    ? spawn(cmd, args, options)
    : spawn("taskset", ["-c", String(core), cmd, ...args], options);
  live.add(child);
  child.on("exit", () => live.delete(child));
  child.on("error", () => live.delete(child));
  return child;
}

/** Takes a child, sends SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
export function stop(child, graceMs = 1500) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

/** SIGKILLs every child still running; synchronous so it also works from an "exit" handler. */
export function killAll() {
  for (const child of live) {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }
  live.clear();
}

/**
 * Runs a benchmark's main(): every child process it started is killed on any exit path (the
 * end, Ctrl-C, SIGTERM/SIGHUP, a throw), so no server, broker or client is left behind.
 */
export function runBench(name, main) {
  process.on("exit", killAll);
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]]) {
    process.on(signal, () => {
      killAll();
      console.error(`\n${name}: ${signal}, stopped every child process.`);
      process.exit(code);
    });
  }
  main().catch((error) => {
    killAll();
    console.error(error);
    process.exit(1);
  });
}

/** Takes a pid, returns its CPU seconds so far (utime + stime of all its threads) or null if gone. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 2 (comm) may contain spaces and parentheses: split after the last ")". The rest
    // starts at field 3 (state), so utime (field 14) and stime (15) are at indexes 11 and 12.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
  } catch {
    return null;
  }
}

/** Takes a pid, returns its peak resident set size in MiB (VmHWM) or null if unavailable. */
export function peakRssMiB(pid) {
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** Returns per-core [busy, total] tick counts from /proc/stat, busy = user + nice + system. */
export function coreTicks() {
  const cores = [];
  try {
    for (const line of readFileSync("/proc/stat", "utf8").split("\n")) {
      const m = /^cpu(\d+)\s+(.*)$/.exec(line);
      if (!m) continue;
      const t = m[2].split(/\s+/).map(Number);
      // user nice system idle iowait irq softirq steal …
      cores[Number(m[1])] = [t[0] + t[1] + t[2], t.slice(0, 8).reduce((a, b) => a + b, 0)];
    }
  } catch {
    // No /proc/stat: the foreign-load check is skipped.
  }
  return cores;
}

/**
 * Takes roles ({ server: { pid, core }, client: { pid, core } }) and opens a measuring window;
 * `close()` returns for each role `cpu` (its process's CPU use, % of one core) and `foreign`
 * (CPU used on its core by anything else, %). The foreign figure is a lower bound: the core's
 * user+nice+system ticks minus the process's own time, leaving out softirq time that the kernel
 * may charge to either. Both readings are taken while the processes are still alive, since
 * /proc forgets a process once it has been reaped.
 */
export function cpuWindow(roles) {
  const start = performance.now();
  const startCores = coreTicks();
  const startCpu = Object.fromEntries(Object.entries(roles).map(([role, r]) => [role, cpuSeconds(r.pid)]));
  return {
    close() {
      const wall = (performance.now() - start) / 1000;
      const endCores = coreTicks();
      const result = {};
      for (const [role, r] of Object.entries(roles)) {
        const end = cpuSeconds(r.pid);
        const cpu = end === null || startCpu[role] === null || wall <= 0 ? null : (100 * (end - startCpu[role])) / wall;
        let foreign = null;
        const a = startCores[r.core];
        const b = endCores[r.core];
        if (a && b && b[1] > a[1] && cpu !== null) {
          foreign = Math.max(0, (100 * (b[0] - a[0])) / (b[1] - a[1]) - cpu);
        }
        result[role] = { cpu, foreign };
      }
      return result;
    },
  };
}

/**
 * Starts a server entry ({ cmd, args, ready? }) pinned to `core` (a core, a taskset list such as
 * "0-1", or null) with `env`, resolves { child, port, port2, stderr() } once it prints "ready
 * <port>" on stdout ("ready <port> <port2>" for a server with a second port, e.g. one per thread;
 * `def.ready` may give another RegExp whose first group is the port); on failure stops it and
 * rejects with its stderr appended.
 */
export function startReadyServer(def, core, env) {
  const child = spawnPinned(def.cmd, def.args, { cwd: ROOT_DIR, stdio: ["ignore", "pipe", "pipe"], env }, core);
  let stderr = "";
  child.stderr.on("data", (d) => (stderr = (stderr + d).slice(-4000)));
  return new Promise((resolve, reject) => {
    let stdout = "";
    const timer = setTimeout(() => reject(new Error('no "ready <port>" line on stdout within 20 s')), 20_000);
    const done = (error, port, port2 = null) => {
      clearTimeout(timer);
      if (error) reject(error);
      else resolve({ child, port, port2, stderr: () => stderr });
    };
    child.stdout.on("data", (d) => {
      if (stdout === null) return;
      stdout = (stdout + d).slice(-1000);
      const m = (def.ready ?? /^ready (\d+)(?: (\d+))?\s*$/m).exec(stdout);
      if (!m) return;
      stdout = null;
      const port = Number(m[1]);
      const port2 = m[2] === undefined ? null : Number(m[2]);
      done(port > 0 && port2 !== 0 ? null : new Error(`printed "${m[0].trim()}": not a usable port`), port, port2);
    });
    child.on("error", (e) => done(new Error(`could not start ${def.cmd}: ${e.message}`)));
    child.on("exit", (code, signal) => done(new Error(`exited (${code ?? signal}) before printing "ready <port>"`)));
  }).catch(async (error) => {
    await stop(child);
    error.message += stderr ? `\n--- server stderr ---\n${stderr.trim()}` : "";
    throw error;
  });
}

/** Takes a binary name, returns its path from node_modules/.bin or PATH, or null. */
export function findBinary(name) {
  const local = join(ROOT_DIR, "node_modules", ".bin", name);
  if (existsSync(local)) return local;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return null;
}
