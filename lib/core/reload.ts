/**
 * `reload({ fetch, error, routes })`: the handlers the next requests get. In-flight requests
 * keep the object they started with, so the swap is one assignment (server.ts).
 */
import { uwserveError } from "../errors.js";
import type { ErrorHandler, FetchHandler, ReloadOptions } from "../types.js";
import { compileRouteOptions, type Handlers } from "./dispatch.js";

/** Takes the current handlers and reload()'s options; returns the next handlers (throws for a bad option). */
export function nextHandlers<R extends string>(current: Handlers, options: ReloadOptions<R>): Handlers {
  if (typeof options !== "object" || options === null) {
    throw uwserveError(TypeError, "UWSERVE_ERR_INVALID_OPTION", "uwserve: reload() takes an options object ({ fetch, error, routes })");
  }
  const next: Handlers = { ...current };
  for (const key of Object.keys(options)) {
    const value = (options as Record<string, unknown>)[key];
    if (value === undefined) continue;
    switch (key) {
      case "fetch":
        if (typeof value !== "function") throw uwserveError(TypeError, "UWSERVE_ERR_INVALID_OPTION", 'uwserve: reload option "fetch" must be a function');
        next.fetch = value as FetchHandler;
        next.handler = null;
        break;
      case "error":
        if (typeof value !== "function") throw uwserveError(TypeError, "UWSERVE_ERR_INVALID_OPTION", 'uwserve: reload option "error" must be a function');
        next.error = value as ErrorHandler;
        break;
      case "routes":
      case "static":
        break;
      default:
        throw uwserveError(
          TypeError,
          key === "websocket" ? "UWSERVE_ERR_NOT_SUPPORTED" : "UWSERVE_ERR_INVALID_OPTION",
          `uwserve: reload() cannot change "${key}" (it swaps fetch, error and routes)`,
        );
    }
  }
  const { routes, static: statics } = options as { routes?: unknown; static?: unknown };
  if (routes !== undefined || statics !== undefined) {
    next.routes = compileRouteOptions(routes, statics);
  }
  return next;
}
