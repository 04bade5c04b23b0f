/**
 * Listening on a unix domain socket: the path is checked before the core binds it, a stale
 * socket file left by a crashed run is removed (a live one is an error), and the file is
 * removed again on stop.
 */
import { spawnSync } from "node:child_process";
import { lstatSync, rmSync } from "node:fs";
import { uwserveError } from "../errors.js";

/** sockaddr_un.sun_path holds 108 bytes with its terminating NUL. */
const MAX_PATH_BYTES = 107;

/**
 * Validates `unix`/`path` and clears a stale socket file; throws a uwserve error naming the
 * problem. An abstract name (Linux, a leading NUL) has no file: only the node engine binds one.
 */
export function prepareUnixPath(path: string, option: string, abstractAllowed: boolean): void {
  if (path.startsWith("\0")) {
    if (abstractAllowed && path.length > 1 && Buffer.byteLength(path) <= MAX_PATH_BYTES + 1) return;
    // uSockets copies the path with strlen(): an abstract name (leading NUL) arrives empty.
    throw uwserveError(
      Error,
      "UWSERVE_ERR_NOT_SUPPORTED",
      `uwserve: ${option}: abstract unix sockets ("\\0name") can't be bound by the uWS core (it reads the path as a C string, which ends at the leading NUL); use a filesystem path, or engine: "node"${process.platform === "linux" ? "" : " (on Linux)"}`,
    );
  }
  if (path === "" || path.includes("\0")) {
    throw uwserveError(TypeError, "UWSERVE_ERR_INVALID_OPTION", `uwserve: ${option} must be a non-empty filesystem path without NUL bytes`);
  }
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) {
    throw uwserveError(
      RangeError,
      "UWSERVE_ERR_INVALID_OPTION",
      `uwserve: ${option} is ${Buffer.byteLength(path)} bytes; a unix socket path can be at most ${MAX_PATH_BYTES}`,
    );
  }
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) {
    throw uwserveError(Error, "UWSERVE_ERR_LISTEN", `uwserve: cannot listen on ${path}: the path exists and is not a socket`);
  }
  if (socketIsLive(path)) {
    throw uwserveError(Error, "UWSERVE_ERR_ADDRESS_IN_USE", `uwserve: ${path} is already in use by a running server (a connection to it succeeded)`);
  }
  // Nobody listens: a leftover of a process that didn't stop cleanly.
  rmSync(path, { force: true });
}

/**
 * Whether something accepts connections on `path`. serve() is synchronous and a unix connect
 * is not in Node, so a child process tries it; this runs only when a socket file already exists.
 */
function socketIsLive(path: string): boolean {
  const probe = spawnSync(
    process.execPath,
    [
      "-e",
      `const s=require("net").connect(process.argv[1]);s.on("connect",()=>process.exit(1));s.on("error",(e)=>process.exit(e.code==="ECONNREFUSED"||e.code==="ENOENT"?0:2))`,
      path,
    ],
    { timeout: 5000, stdio: "ignore" },
  );
  return probe.status !== 0;
}

/** Removes the socket file when the server stops (only the one this server created). */
export function removeUnixPath(path: string): void {
  if (path.startsWith("\0")) return; // abstract: no file
  try {
    if (lstatSync(path).isSocket()) rmSync(path, { force: true });
  } catch {
    // already gone
  }
}
