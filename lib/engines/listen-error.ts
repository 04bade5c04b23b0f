/** Why a listen failed, in words, for engines that report only "failed" (uWS) or report it late (node). */
import { networkInterfaces } from "node:os";
import { uwserveError } from "../errors.js";

const WILDCARD_HOSTS = new Set(["0.0.0.0", "::", "[::]", ""]);

/** Tells a port in use from an address this machine doesn't have (or a unix socket that can't be made). */
export function listenError(hostname: string, port: number, unixPath: string | null): Error {
  if (unixPath !== null) {
    return uwserveError(Error, "UWSERVE_ERR_LISTEN", `uwserve: cannot listen on unix socket ${unixPath} (its directory must exist and be writable)`);
  }
  const local =
    WILDCARD_HOSTS.has(hostname) ||
    hostname === "localhost" ||
    Object.values(networkInterfaces()).some((list) => list?.some((i) => i.address === hostname.replace(/^\[|\]$/g, "")));
  if (local && port !== 0) {
    if (port < 1024 && process.getuid?.() !== 0) {
      return uwserveError(Error, "UWSERVE_ERR_LISTEN", `uwserve: cannot listen on ${hostname}:${port}: ports below 1024 need privileges, or the port is in use`);
    }
    return uwserveError(
      Error,
      "UWSERVE_ERR_PORT_IN_USE",
      `uwserve: port ${port} is already in use on ${hostname} (EADDRINUSE). Stop the other server, choose another port, or pass port: 0 for a free one.`,
    );
  }
  return uwserveError(Error, "UWSERVE_ERR_LISTEN", `uwserve: cannot listen on ${hostname}:${port}: the address is not available on this machine`);
}

export function isWildcardHost(hostname: string): boolean {
  return WILDCARD_HOSTS.has(hostname);
}
