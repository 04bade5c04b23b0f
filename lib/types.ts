/** Public types of uwserve, named after Bun's (`Serve`, `Server`, `SocketAddress`) and Deno's. */
import type { CookieMap } from "./core/cookies.js";
import type { BackplaneStats } from "./backplane/broker.js";
import type { AccessLogOption } from "./observability/access-log.js";
import type { BackplaneDriver } from "./backplane/driver.js";

export type { BackplaneStats, BackplaneState } from "./backplane/broker.js";
export type { BackplaneDriver } from "./backplane/driver.js";

/** A client address, as `server.requestIP(req)` returns it. */
export interface SocketAddress {
  address: string;
  family: "IPv4" | "IPv6";
  /**
   * The client's port. uWebSockets.js does not expose the remote port of an HTTP
   * connection, so this is 0 (unknown) on this core.
   */
  port: number;
}

/** Deno's address shapes (`server.addr`, `info.remoteAddr`, `onListen`). */
export type NetAddr = { transport: "tcp"; hostname: string; port: number };
export type UnixAddr = { transport: "unix"; path: string };
export type Addr = NetAddr | UnixAddr;

/** Deno's second handler argument. */
export interface ServeHandlerInfo {
  remoteAddr: Addr;
  /** Settles when the response has been fully sent (rejects if the client went away first). */
  completed: Promise<void>;
}

export type MaybePromise<T> = T | Promise<T>;

/** Bun-style handler: `fetch(req, server)`. */
export type FetchHandler = (this: ServerLike, request: Request, server: ServerLike) => MaybePromise<Response | undefined | void>;
/** Deno-style handler: `handler(req, info)`. */
export type DenoHandler = (request: Request, info: ServeHandlerInfo) => MaybePromise<Response>;
export type ErrorHandler = (this: ServerLike, error: unknown) => MaybePromise<Response | undefined | void>;

/** Options shared by both call styles. */
export interface CommonServeOptions {
  /** Port to listen on; 0 picks a free one. Bun style default: $PORT, $NODE_PORT, 3000. Deno style: 8000. */
  port?: number | string;
  /** Address to bind; default "0.0.0.0". */
  hostname?: string;
  /** Listen on this unix socket path instead of a port (Bun's name). */
  unix?: string;
  /** Deno's name for `unix`. */
  path?: string;
  /** Let several processes listen on one port (SO_REUSEPORT). Without it a port in use is an error. */
  reusePort?: boolean;
  /**
   * Serve on this many worker threads sharing the port ("auto": one per core); pub/sub spans
   * them. Each worker runs the main module again (as `cluster` does) and its serve() call makes
   * that worker's server; the main thread's server supervises them. Default 1 (this thread).
   */
  workers?: number | "auto";
  /**
   * What carries the HTTP: "uws" (the uWebSockets.js core), "node" (node:http/https), or
   * "auto" (default, or UWSERVE_ENGINE): uws where its core loads, else node, said once on stderr.
   */
  engine?: "auto" | "uws" | "node";
  /**
   * Serve HTTP/2 as well (node engine; "auto" picks it): h2 by ALPN with HTTP/1.1 for other
   * clients over TLS, h2c with prior knowledge beside HTTP/1.1 without TLS, as Deno does.
   */
  http2?: boolean;
  /**
   * uwserve: a broker that carries `publish` to the other processes (`redisBackplane()` from
   * uwserve/redis, `natsBackplane()` from uwserve/nats, or a redis:// / nats:// URL). README, Scaling out.
   */
  backplane?: BackplaneDriver | string | null;
  /**
   * uwserve: an OpenTelemetry SERVER span per request and the HTTP server metrics, through
   * `@opentelemetry/api` (an optional peer) and whatever providers the app registered.
   * Default: UWSERVE_OTEL=1 turns it on. README, Observability.
   */
  telemetry?: boolean;
  /**
   * uwserve: one line per request, buffered: `true` or "common" (common log format with the
   * route and the duration), "json" (JSON lines), or `{ format, write }` to send the lines
   * elsewhere than stdout. Default: UWSERVE_ACCESS_LOG (the CLI's --access-log).
   */
  accessLog?: AccessLogOption;
  /** Largest accepted request body in bytes (default 128 MiB); larger gets 413. */
  maxRequestBodySize?: number;
  /** Largest accepted request head in bytes (default 16 KiB, as Node); larger gets 431. */
  maxHeaderSize?: number;
  /**
   * Seconds a connection may sit idle (default 10, 0 disables). The uWS core's HTTP idle
   * timeout is fixed at 10 s inside the binary: other values are accepted with a warning.
   */
  idleTimeout?: number;
  /** Compress responses automatically (gzip/br by Accept-Encoding, Deno's rules); default false. */
  compression?: boolean;
  /** Deno's name for `compression`. */
  automaticCompression?: boolean;
  /** Readable error pages with stacks. Default: `process.env.NODE_ENV === "development"`. */
  development?: boolean | { hmr?: boolean; console?: boolean };
  /** An identifier for this server (`server.id`). */
  id?: string;
}

/** The parameter names of a route pattern: `"/orgs/:orgId/repos/:repoId"` → `"orgId" | "repoId"`. */
export type ExtractRouteParams<Path extends string> = Path extends `${string}:${infer Param}/${infer Rest}`
  ? Param | ExtractRouteParams<`/${Rest}`>
  : Path extends `${string}:${infer Param}`
    ? Param
    : never;

/** A route handler's request: `params` typed from the pattern, like Bun's `BunRequest<T>`. */
export interface RouteRequest<Path extends string = string> extends Request {
  readonly params: { [K in ExtractRouteParams<Path>]: string };
  /** The request's cookies; set() and delete() become Set-Cookie headers on the response (Bun's). */
  readonly cookies: CookieMap;
}
/** Bun's name for {@link RouteRequest}. */
export type BunRequest<Path extends string = string> = RouteRequest<Path>;

export type RouteHandler<Path extends string = string> = (request: RouteRequest<Path>, server: ServerLike) => MaybePromise<Response>;
export type RouteMethodName = "GET" | "HEAD" | "OPTIONS" | "DELETE" | "PATCH" | "POST" | "PUT";
/** A route: a static Response, a handler, handlers per method, or `false` (off). */
export type RouteValue<Path extends string = string> =
  | Response
  | RouteHandler<Path>
  | { [M in RouteMethodName]?: Response | RouteHandler<Path> | false }
  | false;
/** A `routes` table; each handler's `req.params` is typed from its own key. */
export type Routes<R extends string = string> = { [Path in R]: RouteValue<Path> };

/** `serve({ fetch, routes, ... })`, as `Bun.serve`. */
export interface ServeOptions<R extends string = string> extends CommonServeOptions {
  /** Called for requests no route matched (404 without it). Needed unless `routes` is given. */
  fetch?: FetchHandler;
  routes?: Routes<R>;
  /** The older name for a `routes` table of Responses. */
  static?: Record<string, Response>;
  error?: ErrorHandler;
  /** WebSocket handlers and options; `server.upgrade(req)` hands a request to them. */
  websocket?: WebSocketHandler<any>;
}

/** `serve(options, handler)` / `serve({ handler, ... })`, as `Deno.serve`. */
export interface DenoServeOptions extends CommonServeOptions {
  handler?: DenoHandler;
  onListen?: (addr: Addr) => void;
  onError?: (error: unknown) => MaybePromise<Response>;
  signal?: AbortSignal;
}

/** What `reload()` may swap. */
export interface ReloadOptions<R extends string = string> {
  fetch?: FetchHandler;
  error?: ErrorHandler;
  routes?: Routes<R>;
  static?: Record<string, Response>;
}

/** The members a handler can rely on (the `Server` class implements them). */
export interface ServerLike {
  readonly port: number;
  readonly hostname: string;
  readonly url: URL;
  readonly id: string;
  readonly development: boolean;
  /** uwserve: which engine serves ("uws": the uWebSockets.js core; "node": node:http). */
  readonly engine: "uws" | "node";
  readonly pendingRequests: number;
  readonly pendingWebSockets: number;
  readonly addr: Addr;
  readonly finished: Promise<void>;
  stop(closeActiveConnections?: boolean): Promise<void>;
  shutdown(): Promise<void>;
  reload<R extends string>(options: ReloadOptions<R>): void;
  fetch(request: Request | string | URL, init?: RequestInit): Promise<Response>;
  /** Closes idle keep-alive connections now; returns how many (node engine; a coded error on the uws engine). */
  closeIdleConnections(): number;
  requestIP(request: Request): SocketAddress | null;
  timeout(request: Request, seconds: number): void;
  ref(): void;
  unref(): void;
  upgrade<T = undefined>(request: Request, options?: { data?: T; headers?: HeadersInit }): boolean;
  publish(topic: string, data: WebSocketData, compress?: boolean): ServerWebSocketSendStatus;
  subscriberCount(topic: string): number;
  /** uwserve: the broker that carries publishes to other processes (`backplane`), else null. */
  readonly backplane: ServerBackplane | null;
}

/** `server.backplane`: the broker driver a server publishes through (README, Scaling out). */
export interface ServerBackplane {
  /** "redis" or "nats". */
  readonly kind: string;
  /** The broker, without credentials. */
  readonly where: string;
  /** The process's counters (in a worker group, the group's one connection). */
  stats(): BackplaneStats;
}

/** What `send`/`publish` report: bytes sent, `-1` queued under backpressure, `0` dropped or nobody to send to. */
export type ServerWebSocketSendStatus = number;
/** Anything a WebSocket message can be made of. */
export type WebSocketData = string | ArrayBufferView | ArrayBuffer | SharedArrayBuffer;
/** Bun's `perMessageDeflate` compressor names. */
export type WebSocketCompressor = "disable" | "shared" | "dedicated" | "3KB" | "4KB" | "8KB" | "16KB" | "32KB" | "64KB" | "128KB" | "256KB";

/** A server-side WebSocket, as Bun's `ServerWebSocket<T>`. */
export interface ServerWebSocket<T = undefined> {
  data: T;
  /** 1 open, 2 closing, 3 closed. */
  readonly readyState: 0 | 1 | 2 | 3;
  readonly remoteAddress: string;
  binaryType: "nodebuffer" | "arraybuffer" | "uint8array";
  readonly subscriptions: string[];
  send(data: WebSocketData, compress?: boolean): ServerWebSocketSendStatus;
  sendText(data: string, compress?: boolean): ServerWebSocketSendStatus;
  sendBinary(data: ArrayBufferView | ArrayBuffer | SharedArrayBuffer, compress?: boolean): ServerWebSocketSendStatus;
  publish(topic: string, data: WebSocketData, compress?: boolean): ServerWebSocketSendStatus;
  publishText(topic: string, data: string, compress?: boolean): ServerWebSocketSendStatus;
  publishBinary(topic: string, data: ArrayBufferView | ArrayBuffer | SharedArrayBuffer, compress?: boolean): ServerWebSocketSendStatus;
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  isSubscribed(topic: string): boolean;
  cork<R>(callback: (ws: ServerWebSocket<T>) => R): R;
  close(code?: number, reason?: string): void;
  terminate(): void;
  ping(data?: WebSocketData): ServerWebSocketSendStatus;
  pong(data?: WebSocketData): ServerWebSocketSendStatus;
  getBufferedAmount(): number;
}

type WsHandlerResult = void | Promise<void>;
/** The `websocket` option of `serve()`, as Bun's `WebSocketHandler<T>`, plus uwserve's extras. */
export interface WebSocketHandler<T = any> {
  open?(ws: ServerWebSocket<T>): WsHandlerResult;
  /** Text arrives as a string, binary as a Buffer (a copy, valid after the call). */
  message?(ws: ServerWebSocket<T>, message: string | Buffer): WsHandlerResult;
  close?(ws: ServerWebSocket<T>, code: number, reason: string): WsHandlerResult;
  drain?(ws: ServerWebSocket<T>): WsHandlerResult;
  ping?(ws: ServerWebSocket<T>, data: Buffer): WsHandlerResult;
  pong?(ws: ServerWebSocket<T>, data: Buffer): WsHandlerResult;
  /** uwserve: an exception or rejection from any handler above (default: console.error). */
  error?(ws: ServerWebSocket<T>, error: unknown): WsHandlerResult;
  /** uwserve: a message not delivered to `ws` because it was over `backpressureLimit` (`topic` null for `send`). */
  dropped?(ws: ServerWebSocket<T>, data: WebSocketData, topic: string | null): WsHandlerResult;
  /** Largest message accepted, in bytes (default 16 MiB); a larger one closes with 1009. */
  maxPayloadLength?: number;
  /** Bytes queued for one socket before messages to it are dropped (default 16 MiB). */
  backpressureLimit?: number;
  closeOnBackpressureLimit?: boolean;
  /** Seconds without traffic before the socket is closed (default 120; 0 or 8–960). */
  idleTimeout?: number;
  /** Ping idle sockets so proxies keep them open (default true). */
  sendPings?: boolean;
  perMessageDeflate?: boolean | { compress?: WebSocketCompressor | boolean; decompress?: WebSocketCompressor | boolean };
  /** Whether `ws.publish()` also reaches the sender (default false). */
  publishToSelf?: boolean;
  /** uwserve: `message` handlers running at once per socket (default Infinity, as Bun; 1 = one at a time, in order). */
  messageConcurrency?: number;
  /** uwserve: messages per socket whose async `message` hasn't settled (default 1024); beyond it the socket closes with 1008. */
  maxPendingMessages?: number;
}
