/** The one module that loads the uWebSockets.js binary; everything else imports it from here. */
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import type * as UWS from "uWebSockets.js";
import { uwserveError } from "./errors.js";

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
function glibcVersion(): string | null {
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
    lines.push("uWebSockets.js ships binaries for Node 16, 18, 20, 21, 22, 24 and 25 on glibc Linux, macOS and Windows (x64/arm64).");
  }
  const glibc = glibcVersion();
  const needed = /GLIBC_(\d+\.\d+)/.exec(message)?.[1];
  if (needed) {
    lines.push(
      `The binary needs glibc ${needed} or newer, but this system has glibc ${glibc ?? "unknown"}. ` +
        "The Node 20/21 binaries need glibc >= 2.27; the Node 22/24/25 binaries need glibc >= 2.38 " +
        "(so Debian 12 and Ubuntu 22.04 can run only Node <= 21). Use Node 20 or 21 here, or a newer distribution.",
    );
  } else if (glibc === null && process.platform === "linux") {
    lines.push("This looks like a musl system (e.g. Alpine): uWebSockets.js ships glibc binaries only.");
  }
  lines.push(`Cause: ${message.split("\n").slice(-1)[0]}`);
  return lines.join("\n");
}

function load(): typeof UWS {
  try {
    return require("uWebSockets.js") as typeof UWS;
  } catch (err) {
    throw uwserveError(Error, "UWSERVE_ERR_UWS_UNAVAILABLE", explainLoadFailure(err), err);
  }
}

/** The uWebSockets.js module. */
export const uws: typeof UWS = load();
