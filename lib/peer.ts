/** Optional peer dependencies (redis, nats, @opentelemetry/api): loaded only when a feature asks. */
import { createRequire } from "node:module";
import { uwserveError } from "./errors.js";

/**
 * Loads an optional peer dependency from the application's point of view, with a coded error
 * naming the package when it is not installed.
 */
export function loadPeer<T>(name: string, purpose: string): T {
  const require = createRequire(import.meta.url);
  try {
    return require(name) as T;
  } catch (err) {
    if ((err as { code?: string }).code === "MODULE_NOT_FOUND" && String((err as Error).message).includes(name)) {
      throw uwserveError(Error, "UWSERVE_ERR_PEER_MISSING", `uwserve: ${purpose} needs the package "${name}", which is not installed: npm install ${name}`);
    }
    throw err;
  }
}
