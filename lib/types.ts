/** Public types of uwserve, named after Bun's (`Serve`, `Server`, `SocketAddress`) and Deno's. */

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
  remoteAddr: NetAddr;
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
  /** Let several processes listen on one port (SO_REUSEPORT). Without it a port in use is an error. */
  reusePort?: boolean;
  /** Largest accepted request body in bytes (default 128 MiB); larger gets 413. */
  maxRequestBodySize?: number;
  /** Largest accepted request head in bytes (default 16 KiB, as Node); larger gets 431. */
  maxHeaderSize?: number;
  /**
   * Seconds a connection may sit idle (default 10, 0 disables). The uWS core's HTTP idle
   * timeout is fixed at 10 s inside the binary: other values are accepted with a warning.
   */
  idleTimeout?: number;
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
}

/** `serve(options, handler)` / `serve({ handler, ... })`, as `Deno.serve`. */
export interface DenoServeOptions extends CommonServeOptions {
  handler?: DenoHandler;
  onListen?: (addr: NetAddr) => void;
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
  readonly pendingRequests: number;
  readonly pendingWebSockets: number;
  readonly addr: Addr;
  readonly finished: Promise<void>;
  stop(closeActiveConnections?: boolean): Promise<void>;
  shutdown(): Promise<void>;
  reload<R extends string>(options: ReloadOptions<R>): void;
  fetch(request: Request | string | URL, init?: RequestInit): Promise<Response>;
  requestIP(request: Request): SocketAddress | null;
  timeout(request: Request, seconds: number): void;
  ref(): void;
  unref(): void;
}
