/** What `serve()` hands the server after validating every option (serve.ts). */
import type { RouteTable } from "./core/router.js";
import type { EngineChoice } from "./engines/select.js";
import type { Addr, DenoHandler, ErrorHandler, FetchHandler } from "./types.js";
import type { ResolvedWebSocketOptions } from "./websocket/websocket-options.js";
import type { BackplaneDriver } from "./backplane/driver.js";
import type { ResolvedAccessLog } from "./observability/access-log.js";

/** Everything `serve()` resolved and validated. */
export interface ResolvedOptions {
  style: "bun" | "deno";
  fetch: FetchHandler | null;
  handler: DenoHandler | null;
  error: ErrorHandler | null;
  routes: RouteTable | null;
  port: number;
  hostname: string;
  reusePort: boolean;
  /** Threads to serve on (`workers`), null when not given; above 1 this thread starts a worker group. */
  workers: number | null;
  maxRequestBodySize: number;
  maxHeaderSize: number;
  /** Automatic response compression (`compression` / Deno's `automaticCompression`). */
  compression: boolean;
  /** Seconds a connection may be idle (0: never). */
  idleTimeout: number;
  development: boolean;
  id: string;
  onListen: ((addr: Addr) => void) | null;
  signal: AbortSignal | null;
  /** `unix` (Bun) / `path` (Deno): a unix socket to listen on instead of a port. */
  unix: { path: string; option: string } | null;
  /** The `websocket` option; null without one (Deno's upgradeWebSocket still works). */
  websocket: ResolvedWebSocketOptions | null;
  tls: { tls: unknown; cert: unknown; key: unknown };
  /** `engine` (or UWSERVE_ENGINE): which engine serves. */
  engine: EngineChoice;
  /** HTTP/2 (node engine): h2 by ALPN beside HTTP/1.1 over TLS, h2c with prior knowledge beside HTTP/1.1 without. */
  http2: boolean;
  /** `backplane`: a broker that carries publishes to other processes, else null. */
  backplane: BackplaneDriver | null;
  /** `telemetry` (or UWSERVE_OTEL=1): OpenTelemetry spans and metrics. */
  telemetry: boolean;
  /** `accessLog`: one line per request, else null. */
  accessLog: ResolvedAccessLog | null;
}
