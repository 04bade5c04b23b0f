/**
 * Which engine serves: `engine` in serve() (or the CLI's --engine), else UWSERVE_ENGINE, else
 * "auto". "auto" takes the uws engine where its core loads and the node engine elsewhere, and
 * says so once per process on stderr, with the reason and how to get the fast path.
 */
import { uwserveError } from "../errors.js";
import { coreUnavailable } from "./uws/uws.js";
import type { EngineName } from "../core/engine.js";

export type EngineChoice = "auto" | EngineName;
export const ENGINE_CHOICES: readonly EngineChoice[] = ["auto", "uws", "node"];

/** The process-wide default: UWSERVE_ENGINE, else "auto". */
export function defaultEngineChoice(): EngineChoice {
  const value = process.env.UWSERVE_ENGINE;
  if (value === undefined || value === "") return "auto";
  if ((ENGINE_CHOICES as readonly string[]).includes(value)) return value as EngineChoice;
  throw uwserveError(
    TypeError,
    "UWSERVE_ERR_INVALID_OPTION",
    `uwserve: UWSERVE_ENGINE must be "auto", "uws" or "node"; it is ${JSON.stringify(value)}`,
  );
}

let announced = false;

/** net.Server shares a port between threads (listen's reusePort) from Node 22.12 / 23.1. */
const [NODE_MAJOR, NODE_MINOR] = process.versions.node.split(".").map(Number) as [number, number];
export const NODE_SHARES_PORTS = NODE_MAJOR > 23 || (NODE_MAJOR === 23 && NODE_MINOR >= 1) || (NODE_MAJOR === 22 && NODE_MINOR >= 12);

/** What the options need from an engine, for "auto" to decide. */
export interface EngineNeeds {
  workers: boolean;
  /** HTTP/2: only the node engine serves it. */
  http2: boolean;
}

/**
 * The engine for `choice`. "uws" throws UWSERVE_ERR_UWS_UNAVAILABLE where the core can't load,
 * and a coded error for http2; on the node engine, workers before Node 22.12 throw a coded error.
 */
export function pickEngine(choice: EngineChoice, needs: EngineNeeds): EngineName {
  if (choice === "uws") {
    if (needs.http2) {
      throw uwserveError(Error, "UWSERVE_ERR_ENGINE_UNSUPPORTED", 'uwserve: http2 is served by the node engine (node:http2); the uWS core speaks HTTP/1.1 only. Use engine: "node" or "auto"');
    }
    const failure = coreUnavailable();
    if (failure !== null) throw failure;
    return "uws";
  }
  if (choice === "auto") {
    if (needs.http2) {
      checkNodeEngineCan(needs, null);
      announce("http2 was asked for, which the uWS core doesn't speak", "leave http2 off");
      return "node";
    }
    const failure = coreUnavailable();
    if (failure === null) return "uws";
    checkNodeEngineCan(needs, (failure as Error).message);
    announce(shortReason(failure), fastPathHint(failure));
    return "node";
  }
  checkNodeEngineCan(needs, null);
  return "node";
}

/** The one line "auto" writes when it picks the node engine. */
function announce(reason: string, fastPath: string): void {
  if (announced) return;
  announced = true;
  process.stderr.write(`uwserve: serving with the node engine (node:http): ${reason}; for the uWS fast path ${fastPath}, or set engine: "node" to choose it quietly\n`);
}

function checkNodeEngineCan(needs: EngineNeeds, coreFailure: string | null): void {
  if (needs.workers && !NODE_SHARES_PORTS) {
    throw uwserveError(
      Error,
      "UWSERVE_ERR_ENGINE_UNSUPPORTED",
      `uwserve: workers on the node engine need Node 22.12 or newer (its threads share the port with SO_REUSEPORT); this is ${process.version}` +
        (coreFailure === null ? "" : `, and the uws engine can't run here:\n${coreFailure}`),
    );
  }
}

/** One line from the loader's explanation: which binary is missing, or which glibc it needs. */
export function shortReason(failure: Error): string {
  const message = failure.message;
  const glibc = /needs glibc (\S+) or newer, but this system has glibc (\S+)\./.exec(message);
  if (glibc) return `the uWS core for Node ${process.version} needs glibc ${glibc[1]}, this system has ${glibc[2]}`;
  if (/No prebuilt binary/.test(message)) return `uWebSockets.js has no binary for Node ${process.version} (ABI ${process.versions.modules})`;
  if (/musl/.test(message)) return "uWebSockets.js has no binary for musl (Alpine)";
  return `the uWS core could not be loaded (${message.split("\n").pop()})`;
}

export function fastPathHint(failure: Error): string {
  if (/needs glibc \S+ or newer/.test(failure.message)) return "run on glibc >= 2.38 (Debian 13, Ubuntu 24.04)";
  return "run Node 24 or 22 on glibc Linux, macOS or Windows";
}
