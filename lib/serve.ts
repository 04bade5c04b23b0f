/**
 * `serve()`: recognises the Bun and Deno call styles, validates every option before any
 * native code runs (TypeError for a wrong type, RangeError for a wrong value, hints for
 * misspellings), resolves defaults, and starts a Server.
 */
import { invalidOption, optionOutOfRange, uwserveError, describeValue } from "./errors.js";
import { Server } from "./server.js";
import { compileRouteOptions } from "./core/dispatch.js";
import type { ResolvedOptions } from "./options.js";
import type { DenoHandler, DenoServeOptions, ServeOptions } from "./types.js";
import { resolveWebSocketOptions } from "./websocket/websocket-options.js";
import { importEntryAgain } from "./entry.js";
import { defaultEngineChoice, ENGINE_CHOICES, type EngineChoice } from "./engines/select.js";
import { resolveWorkerCount, serveAsWorker, workerRole } from "./workers/workers.js";
import { resolveBackplane } from "./backplane/from-url.js";
import { resolveAccessLog } from "./observability/access-log.js";

const DEFAULT_MAX_BODY = 128 * 1024 * 1024;
const DEFAULT_MAX_HEADER = 16 * 1024;
/** The uWS core's HTTP idle timeout, fixed inside the binary (HTTP_IDLE_TIMEOUT_S). */
const CORE_IDLE_TIMEOUT = 10;

/** Options this version implements. */
const KNOWN = new Set([
  "fetch", "error", "port", "hostname", "development", "maxRequestBodySize", "reusePort", "idleTimeout",
  "maxHeaderSize", "id", "handler", "onListen", "onError", "signal", "routes", "static", "websocket", "unix", "path", "tls", "cert", "key",
  "compression", "automaticCompression", "workers", "engine", "http2", "backplane", "telemetry", "accessLog",
]);

/**
 * Starts a server. Call styles:
 * - Bun: `serve({ fetch, error, port, ... })`
 * - Deno: `serve(handler)`, `serve(options, handler)`, `serve({ handler, ...options })`
 */
export function serve<R extends string>(options: ServeOptions<R>): Server;
export function serve(options: DenoServeOptions): Server;
export function serve(handler: DenoHandler): Server;
export function serve(options: DenoServeOptions, handler: DenoHandler): Server;
export function serve(first?: unknown, second?: unknown): Server {
  const options = resolveCall(first, second);
  return (options.workers !== null ? serveInWorker(options) : null) ?? new Server(options);
}

/** This worker's server, when the thread is one of the workers `serve({ workers })` started. */
let workerServer: Server | null = null;
/** True while the worker evaluates its entry again for a reload. */
let reevaluating = false;

/**
 * `serve({ workers })` inside one of the workers it started (they re-run the main module):
 * the first call makes this thread's server on the group's port; a call while the entry is
 * evaluated again (reload() on another thread) hands its handlers to that server. Null on any
 * other thread.
 */
function serveInWorker(options: ResolvedOptions): Server | null {
  const role = workerRole();
  if (role?.entry === undefined) return null;
  if (workerServer !== null) {
    if (!reevaluating) {
      throw uwserveError(Error, "UWSERVE_ERR_INVALID_CALL", "uwserve: serve({ workers }) was called twice in one worker thread; each worker runs one server of the group");
    }
    workerServer.adoptHandlers(options);
    return workerServer;
  }
  const entry = role.entry;
  const server = new Server({ ...options, port: role.port, reusePort: true });
  workerServer = server;
  serveAsWorker(server, async () => {
    reevaluating = true;
    try {
      await importEntryAgain(entry);
    } finally {
      reevaluating = false;
    }
  });
  return server;
}

function resolveCall(first: unknown, second: unknown): ResolvedOptions {
  if (typeof first === "function") {
    if (second !== undefined) {
      throw uwserveError(TypeError, "UWSERVE_ERR_INVALID_CALL", "uwserve: serve(handler) takes no second argument; use serve(options, handler)");
    }
    return resolveOptions({}, "deno", first as DenoHandler);
  }
  if (typeof first !== "object" || first === null || Array.isArray(first)) {
    throw uwserveError(
      TypeError,
      "UWSERVE_ERR_INVALID_CALL",
      `uwserve: serve() expects an options object ({ fetch }), a handler function, or (options, handler); received ${describeValue(first)}`,
    );
  }
  const options = first as Record<string, unknown>;
  if (second !== undefined) {
    if (typeof second !== "function") {
      throw uwserveError(TypeError, "UWSERVE_ERR_INVALID_CALL", `uwserve: serve(options, handler): handler must be a function, but received ${describeValue(second)}`);
    }
    if (options.fetch !== undefined || options.handler !== undefined) {
      throw uwserveError(TypeError, "UWSERVE_ERR_INVALID_CALL", "uwserve: serve(options, handler): pass the handler once, not also as options.fetch/handler");
    }
    return resolveOptions(options, "deno", second as DenoHandler);
  }
  if (options.handler !== undefined) {
    if (options.fetch !== undefined) {
      throw uwserveError(TypeError, "UWSERVE_ERR_INVALID_CALL", 'uwserve: give either "fetch" (Bun style) or "handler" (Deno style), not both');
    }
    if (typeof options.handler !== "function") throw invalidOption("handler", "a function", options.handler);
    return resolveOptions(options, "deno", options.handler as DenoHandler);
  }
  if (options.fetch === undefined && options.routes === undefined && options.static === undefined) {
    for (const key of Object.keys(options)) checkKey(key);
    throw uwserveError(
      TypeError,
      "UWSERVE_ERR_INVALID_CALL",
      'uwserve: serve() needs a request handler: { fetch(req, server) } (Bun style) or a handler function (Deno style)',
    );
  }
  return resolveOptions(options, "bun", null);
}

/** Throws for options this version doesn't have, with a hint for near-misses. */
function checkKey(key: string): void {
  if (KNOWN.has(key)) return;
  const hint = [...KNOWN].find((known) => isNearMiss(key, known));
  if (hint !== undefined) {
    throw uwserveError(TypeError, "UWSERVE_ERR_INVALID_OPTION", `uwserve: unknown option "${key}"; did you mean "${hint}"?`);
  }
  // Other unknown keys are ignored, as Bun and Deno ignore options they don't know.
}

/** Same letters ignoring case, or one edit apart (for names of 5+ letters). */
function isNearMiss(a: string, b: string): boolean {
  if (a.toLowerCase() === b.toLowerCase()) return true;
  if (Math.min(a.length, b.length) < 5 || Math.abs(a.length - b.length) > 1) return false;
  let i = 0;
  let j = 0;
  let edits = 0;
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  while (i < x.length && j < y.length) {
    if (x[i] === y[j]) {
      i++;
      j++;
      continue;
    }
    if (++edits > 1) return false;
    if (x.length > y.length) i++;
    else if (x.length < y.length) j++;
    else {
      i++;
      j++;
    }
  }
  return edits + (x.length - i) + (y.length - j) <= 1;
}

function resolvePort(value: unknown, style: "bun" | "deno"): number {
  if (value === undefined) {
    if (style === "deno") return 8000;
    const fromEnv = process.env.PORT || process.env.NODE_PORT;
    if (fromEnv === undefined || fromEnv === "") return 3000;
    const port = Number(fromEnv);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw optionOutOfRange(process.env.PORT ? "$PORT" : "$NODE_PORT", "an integer from 0 to 65535", fromEnv);
    }
    return port;
  }
  const port = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof port !== "number") throw invalidOption("port", "a number (0 picks a free port)", value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw optionOutOfRange("port", "an integer from 0 to 65535", value);
  return port;
}

function positiveInteger(options: Record<string, unknown>, name: string, fallback: number): number {
  const value = options[name];
  if (value === undefined) return fallback;
  if (typeof value !== "number") throw invalidOption(name, "a number of bytes", value);
  if (!Number.isInteger(value) || value <= 0) throw optionOutOfRange(name, "a positive integer", value);
  return value;
}

function optionalFunction<T>(options: Record<string, unknown>, name: string): T | null {
  const value = options[name];
  if (value === undefined || value === null) return null;
  if (typeof value !== "function") throw invalidOption(name, "a function", value);
  return value as T;
}

function resolveOptions(options: Record<string, unknown>, style: "bun" | "deno", handler: DenoHandler | null): ResolvedOptions {
  for (const key of Object.keys(options)) checkKey(key);

  const routes = compileRouteOptions(options.routes, options.static);
  const fetch = style === "bun" ? (options.fetch ?? null) : null;
  if (style === "bun" && fetch !== null && typeof fetch !== "function") {
    throw invalidOption("fetch", "a function (req, server) => Response", fetch);
  }
  if (style === "bun" && fetch === null && (routes === null || routes.byShape.size === 0)) {
    // `routes: {}` (or only `false` entries) and no fetch: every request would be a 404 (Bun refuses too).
    throw uwserveError(
      TypeError,
      "UWSERVE_ERR_INVALID_CALL",
      'uwserve: serve() has nothing to answer with: "routes" has no route and there is no "fetch" handler; give at least one route or a fetch(req, server)',
    );
  }

  const hostname = options.hostname ?? "0.0.0.0";
  if (typeof hostname !== "string" || hostname === "") throw invalidOption("hostname", "a non-empty string", options.hostname);

  const idleTimeout = options.idleTimeout ?? CORE_IDLE_TIMEOUT;
  if (typeof idleTimeout !== "number") throw invalidOption("idleTimeout", "a number of seconds", idleTimeout);
  if (!Number.isInteger(idleTimeout) || idleTimeout < 0 || idleTimeout > 255) {
    throw optionOutOfRange("idleTimeout", "an integer number of seconds from 0 to 255", idleTimeout);
  }

  const development = options.development ?? process.env.NODE_ENV === "development";
  if (typeof development !== "boolean" && (typeof development !== "object" || development === null)) {
    throw invalidOption("development", "a boolean", development);
  }

  if (options.unix !== undefined && options.path !== undefined) {
    throw uwserveError(TypeError, "UWSERVE_ERR_INVALID_CALL", 'uwserve: give either "unix" (Bun) or "path" (Deno), not both');
  }
  const unixOption = options.unix !== undefined ? "unix" : "path";
  const unix = options[unixOption] ?? null;
  if (unix !== null && typeof unix !== "string") throw invalidOption(unixOption, "a socket path (string)", unix);
  if (unix !== null && options.port !== undefined) {
    throw uwserveError(TypeError, "UWSERVE_ERR_INVALID_CALL", `uwserve: give either "port" or "${unixOption}" (a unix socket), not both`);
  }

  if (options.compression !== undefined && options.automaticCompression !== undefined) {
    throw uwserveError(TypeError, "UWSERVE_ERR_INVALID_CALL", 'uwserve: give either "compression" (Bun style) or "automaticCompression" (Deno), not both');
  }
  const compressionOption = options.compression !== undefined ? "compression" : "automaticCompression";
  const compression = options[compressionOption] ?? false;
  if (typeof compression !== "boolean") throw invalidOption(compressionOption, "a boolean", compression);

  const workers = options.workers === undefined ? null : resolveWorkerCount(options.workers, "workers");
  if (workers !== null && workers > 1 && unix !== null) {
    throw uwserveError(TypeError, "UWSERVE_ERR_NOT_SUPPORTED", `uwserve: "workers" share a TCP port; one unix socket ("${unixOption}") can't be served by several threads`);
  }

  const reusePort = options.reusePort ?? false;
  if (typeof reusePort !== "boolean") throw invalidOption("reusePort", "a boolean", reusePort);

  const engine = options.engine ?? defaultEngineChoice();
  if (!(ENGINE_CHOICES as readonly unknown[]).includes(engine)) throw invalidOption("engine", '"auto", "uws" or "node"', engine);

  const http2 = options.http2 ?? false;
  if (typeof http2 !== "boolean") throw invalidOption("http2", "a boolean", http2);

  // UWSERVE_OTEL / UWSERVE_ACCESS_LOG (the CLI's --access-log) are the process defaults.
  const telemetry = options.telemetry ?? envFlag(process.env.UWSERVE_OTEL);
  if (typeof telemetry !== "boolean") throw invalidOption("telemetry", "a boolean", telemetry);
  const accessLog = resolveAccessLog(options.accessLog ?? accessLogFromEnv(process.env.UWSERVE_ACCESS_LOG));

  const id = options.id ?? "";
  if (typeof id !== "string") throw invalidOption("id", "a string", id);

  const signal = options.signal ?? null;
  if (signal !== null && !(signal instanceof AbortSignal)) throw invalidOption("signal", "an AbortSignal", signal);

  const onError = optionalFunction<ResolvedOptions["error"]>(options, "onError");
  const error = optionalFunction<ResolvedOptions["error"]>(options, "error");
  if (onError !== null && error !== null) {
    throw uwserveError(TypeError, "UWSERVE_ERR_INVALID_CALL", 'uwserve: give either "error" (Bun) or "onError" (Deno), not both');
  }

  return {
    style,
    fetch: fetch as ResolvedOptions["fetch"],
    handler,
    routes,
    error: error ?? onError,
    port: resolvePort(options.port, style),
    hostname,
    reusePort,
    workers,
    maxRequestBodySize: positiveInteger(options, "maxRequestBodySize", DEFAULT_MAX_BODY),
    maxHeaderSize: positiveInteger(options, "maxHeaderSize", DEFAULT_MAX_HEADER),
    development: Boolean(development),
    id,
    onListen: optionalFunction(options, "onListen"),
    signal: signal as AbortSignal | null,
    idleTimeout,
    compression,
    unix: unix === null ? null : { path: unix as string, option: unixOption },
    tls: { tls: options.tls, cert: options.cert, key: options.key },
    engine: engine as EngineChoice,
    http2,
    backplane: resolveBackplane(options.backplane),
    telemetry,
    accessLog,
    websocket: options.websocket === undefined || options.websocket === null ? null : resolveWebSocketOptions(options.websocket),
  };
}

/** An on/off environment variable: "1", "true" or "yes" (any case) is on. */
function envFlag(value: string | undefined): boolean {
  return value !== undefined && /^(1|true|yes)$/i.test(value.trim());
}

/** UWSERVE_ACCESS_LOG: "common", "json", or an on/off flag (on: common). */
function accessLogFromEnv(value: string | undefined): unknown {
  if (value === undefined || value === "") return undefined;
  if (value === "common" || value === "json") return value;
  return envFlag(value);
}
