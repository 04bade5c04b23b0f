/** The one module that loads the uWebSockets.js binary; everything else imports it from here. */
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import type * as UWS from "uWebSockets.js";
import { uwserveError } from "../../errors.js";

export type {
  AppOptions,
  HttpRequest,
  HttpResponse,
  TemplatedApp,
  us_listen_socket,
  us_socket_context_t,
  WebSocket,
  WebSocketBehavior,
} from "uWebSockets.js";

const require = createRequire(import.meta.url);

/** glibc version of this process, or null on musl/macOS/Windows. */
export function glibcVersion(): string | null {
  const report = process.report?.getReport?.() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime ?? null;
}

/** Turns the loader's failure into one message that says what is missing and how to fix it. */
function explainLoadFailure(err: unknown): string {
  const abi = process.versions.modules;
  const binary = `uws_${process.platform}_${process.arch}_${abi}.node`;
  const lines = [
    `uwserve: the uWebSockets.js core could not be loaded for Node ${process.version} ` +
      `(${process.platform}-${process.arch}, ABI ${abi}).`,
  ];
  let pkgDir: string | null = null;
  try {
    pkgDir = dirname(require.resolve("uWebSockets.js/package.json"));
  } catch {
    lines.push('The "uWebSockets.js" dependency is not installed: run `npm install` (it is an alias of npm:uwebsockets@3.0.6).');
  }
  const message = err instanceof Error ? err.message : String(err);
  if (pkgDir && !existsSync(join(pkgDir, binary))) {
    lines.push(`No prebuilt binary ${binary} exists for this platform and Node version.`);
    lines.push("uwebsockets@3.0.6 ships binaries for Node 16, 18, 20, 21, 22, 24 and 25 (none for Node 26) on glibc Linux, macOS and Windows (x64/arm64).");
  }
  const glibc = glibcVersion();
  const needed = /GLIBC_(\d+\.\d+)/.exec(message)?.[1];
  if (needed) {
    lines.push(
      `The binary needs glibc ${needed} or newer, but this system has glibc ${glibc ?? "unknown"}. ` +
        "The Node 20/21 binaries need glibc >= 2.27; the Node 22/24/25 binaries need glibc >= 2.38 " +
        "(Debian 12, Ubuntu 22.04, RHEL 9 and Amazon Linux 2023 can load only the Node 20/21 ones, end of life since April 2026). " +
        "Run on a distribution with glibc >= 2.38 (Debian 13, Ubuntu 24.04 or newer).",
    );
  } else if (glibc === null && process.platform === "linux") {
    lines.push("This looks like a musl system (e.g. Alpine): uWebSockets.js ships glibc binaries only.");
  }
  lines.push(`Cause: ${message.split("\n")[0]}`);
  return lines.join("\n");
}

/**
 * What the core buffers of one request head, on every binary. The Node 22+ binaries default to
 * 4 KiB (they read UWS_HTTP_MAX_HEADERS_SIZE once, when the binary loads); the Node 20 binary
 * stops near 100 KiB. uwserve enforces each server's own `maxHeaderSize` (431) itself, so the
 * core only needs a ceiling above any sensible value: heads past it get the core's own 431.
 */
export const CORE_HEAD_LIMIT = 128 * 1024;

/** How this process's uWS binary differs from the others (by Node ABI; each line says why). */
export interface CoreTraits {
  /** Node's ABI, which picks the binary (uws_<platform>_<arch>_<abi>.node). */
  abi: number;
  /**
   * The binaries for Node 22+ carry a newer core: request lines split across reads are parsed,
   * HTTP/1.0 and malformed heads are answered differently (see the README's table per build).
   */
  newerCore: boolean;
  /**
   * The ABI 137+ binaries (Node 24, 25) copy a one-byte JS string's bytes as they are, i.e. as
   * Latin-1, where the older ones encode every string as UTF-8: "é" goes out as 0xE9.
   */
  latin1Strings: boolean;
}

export const coreTraits: CoreTraits = (() => {
  const abi = Number(process.versions.modules);
  return { abi, newerCore: abi >= 127, latin1Strings: abi >= 137 };
})();

/** Stored on `process` so a second copy of uwserve in one process sees the same loaded core. */
const LOADED = Symbol.for("uwserve.core.loaded");
const registry = process as unknown as Record<symbol, typeof UWS | undefined>;

function load(): typeof UWS {
  // Load-time settings of the core go through the environment, read once while the binary
  // loads: set ours unless the user chose one, and put the environment back as it was.
  const previous = process.env.UWS_HTTP_MAX_HEADERS_SIZE;
  if (previous === undefined) process.env.UWS_HTTP_MAX_HEADERS_SIZE = String(CORE_HEAD_LIMIT);
  try {
    return require("uWebSockets.js") as typeof UWS;
  } catch (err) {
    throw uwserveError(Error, "UWSERVE_ERR_UWS_UNAVAILABLE", explainLoadFailure(err), err);
  } finally {
    if (previous === undefined) delete process.env.UWS_HTTP_MAX_HEADERS_SIZE;
  }
}

/** Null when the core loads here, else the coded error that explains why not (loads it to find out). */
export function coreUnavailable(): Error | null {
  try {
    loadCore();
    return null;
  } catch (err) {
    return err as Error;
  }
}

/**
 * The uWebSockets.js module, loaded on first use (the first `serve()`), never at import: so a
 * process that only imports uwserve loads nothing, and the core's settings are applied first.
 */
export function loadCore(): typeof UWS {
  const loaded = registry[LOADED];
  if (loaded !== undefined) return loaded;
  // A binary that failed to load fails the same way again: remember the explanation.
  if (loadFailure !== null) throw loadFailure;
  try {
    return (registry[LOADED] = load());
  } catch (err) {
    loadFailure = err as Error;
    throw err;
  }
}

let loadFailure: Error | null = null;
