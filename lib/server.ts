/**
 * The `Server`: one uWS app listening on one address, the request bridge (uWS callback →
 * lazy Request → handler → writer), the request-time error policy, and the server's life
 * (graceful and forced stop, reload, ref/unref, per-request timeouts).
 */
import { coreText } from "./_core_bytes.js";
import { NativeRequest } from "./_globals.js";
import { developmentErrorPage, PRODUCTION_ERROR_BODY } from "./_error_page.js";
import { scanHead } from "./_head.js";
import { RequestContext, type ContextOwner } from "./context.js";
import { resolveTls } from "./tls.js";
import { uwserveError } from "./errors.js";
import { tryLoadNative } from "./native.js";
import { createServerRequest, NO_PARAMS, requestContextOf } from "./request.js";
import type { StaticRoute } from "./static-route.js";
import { compileRoutes, decodeParam, matchRoute, needsNormalizing, normalizePath, type Route, type RouteTable, type RouteTarget } from "./router.js";
import { UwsResponse } from "./response.js";
import type {
  Addr,
  DenoHandler,
  ErrorHandler,
  FetchHandler,
  ReloadOptions,
  ServeHandlerInfo,
  ServerLike,
  UnixAddr,
  SocketAddress,
} from "./types.js";
import { loadCore, type HttpRequest, type HttpResponse, type TemplatedApp, type us_listen_socket, type us_socket_context_t } from "./uws.js";
import { performUpgrade, offeredProtocols, readHandshake } from "./upgrade.js";
import { ServerWebSocket, WebSocketHub } from "./websocket.js";
import { defaultWebSocketOptions, type ResolvedWebSocketOptions } from "./websocket-options.js";
import type { WebSocketData } from "./types.js";
import { badResponseError, endHead, writeResponse } from "./writer.js";
import { networkInterfaces } from "node:os";
import { resolve as resolvePath } from "node:path";
import { prepareUnixPath, removeUnixPath } from "./unix-socket.js";
import { Sweep } from "./sweep.js";
import { hubBackplane, type Backplane } from "./backplane.js";
import { checkWorkersSupported, groupTotal, workerLauncher, planGroup, requestReloadAll, requestStopAll, REQUESTS_SLOT, SLOTS_PER_WORKER, WEBSOCKETS_SLOT, WorkerGroup, workerRole } from "./workers.js";

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
  /** Seconds an upload may stall (0: never); the core's own 10 s covers everything else. */
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
}

/** The handlers a request is dispatched with; swapped whole by reload(), kept by in-flight requests. */
interface Handlers {
  fetch: FetchHandler | null;
  handler: DenoHandler | null;
  error: ErrorHandler | null;
  routes: RouteTable | null;
}



const LISTEN_EXCLUSIVE_PORT = 1;
/** The core's HTTP idle timeout, fixed inside the binary (HTTP_IDLE_TIMEOUT_S). */
const CORE_IDLE_TIMEOUT_S = 10;
const WILDCARD_HOSTS = new Set(["0.0.0.0", "::", "[::]", ""]);

export class Server implements ServerLike, ContextOwner {
  #app: TemplatedApp;
  #listenSocket: us_listen_socket | null;
  #port: number;
  #hostname: string;
  #url: URL;
  #fallbackOrigin: string;
  #options: ResolvedOptions;
  #handlers: Handlers;
  #pending: number;
  #stopping: Promise<void> | null;
  #stopped: boolean;
  #resolveStopped: () => void;
  #finished: Promise<void>;
  /** Requests with a server.timeout() deadline, checked every 250 ms. */
  readonly #timed: Sweep<RequestContext>;
  /** Uploads under an idleTimeout other than the core's 10 s, or paused, checked once a second. */
  readonly #uploads: Sweep<RequestContext>;
  #refed: boolean;
  /** Route shapes registered with the uWS router (it can add routes, never remove them). */
  #shapes: Set<string>;
  /** Shapes of the current table not yet registered (reload() from inside a handler). */
  #unregistered: number;
  readonly #hub: WebSocketHub;
  /** In a worker group: every worker's shared counters (else null). */
  readonly #counters: Int32Array | null;
  /** This worker's first slot in #counters (-1 on the main thread, which serves no request itself). */
  readonly #slot: number;
  /** On the main thread of `serve({ workers })`: the workers that serve (else null). */
  #group: WorkerGroup | null;
  /** Graceful stop: the open-socket count to wait for while WebSockets end their close handshakes. */
  #handshakes: { sockets: number; deadline: number } | null;
  #domains: string[] | null;
  #scheme: "http" | "https";
  readonly maxRequestBodySize: number;
  /** ContextOwner: compress responses (Deno's rules). */
  readonly compression: boolean;

  constructor(options: ResolvedOptions) {
    // Before anything is built: workers need the addon, and say so at once.
    if (options.workers !== null && options.workers > 1 && workerRole() === null) checkWorkersSupported(options.workers);
    this.#options = options;
    this.#handlers = { fetch: options.fetch, handler: options.handler, error: options.error, routes: options.routes };
    this.#shapes = new Set();
    this.#unregistered = 0;
    this.#pending = 0;
    this.#stopping = null;
    this.#stopped = false;
    this.#timed = new Sweep(250, (ctx, now) => this.#checkDeadline(ctx, now));
    this.#uploads = new Sweep(1000, (ctx, now) => this.#checkUpload(ctx, now));
    this.#refed = true;
    this.maxRequestBodySize = options.maxRequestBodySize;
    this.compression = options.compression;
    let resolveStopped!: () => void;
    this.#finished = new Promise<void>((resolve) => {
      resolveStopped = resolve;
    });
    this.#resolveStopped = resolveStopped;

    const material = resolveTls(options.tls.tls, options.tls.cert, options.tls.key);
    if (material !== null) {
      try {
        this.#app = loadCore().SSLApp(material.app);
        for (const { serverName, options: o } of material.servers) this.#app.addServerName(serverName, o);
      } finally {
        material.release();
      }
      this.#domains = material.servers.length === 0 ? null : [...material.servers.map((s) => s.serverName), ""];
      this.#scheme = "https";
    } else {
      this.#app = loadCore().App();
      this.#domains = null;
      this.#scheme = "http";
    }
    const role = workerRole();
    // `serve({ workers: N })` on the main thread: N workers serve, this thread supervises.
    const supervise = role === null && options.workers !== null && options.workers > 1;
    const plan = supervise ? planGroup(options.workers!) : null;
    const group = role?.group ?? plan?.group ?? null;
    this.#hub = new WebSocketHub(this.#app, options.websocket ?? defaultWebSocketOptions(), group === null ? null : joinGroupHub(this.#app, group));
    const counters = role?.counters ?? plan?.counters ?? null;
    this.#counters = counters !== null ? new Int32Array(counters) : null;
    this.#slot = role !== null ? role.index * SLOTS_PER_WORKER : -1;
    this.#group = null;
    this.#handshakes = null;
    if (this.#slot >= 0) {
      const counters = this.#counters!;
      const slot = this.#slot + WEBSOCKETS_SLOT;
      this.#hub.onCount = (open) => Atomics.store(counters, slot, open);
    }
    // The catch-all is always there: unmatched requests end in fetch (or 404) through it.
    this.#registerShape("/*", "/*");
    if (options.routes !== null) this.#registerShapes(options.routes);
    this.#listenSocket = null;
    this.#port = 0;
    this.#hostname = options.hostname;
    this.#listen();
    if (plan !== null) this.#startWorkers(plan);
    const unix = options.unix;
    if (unix !== null) {
      // A unix socket has no host or port: the URL names the socket file.
      this.#hostname = "localhost";
      this.#url = new URL(`unix://${encodeURI(resolvePath(unix.path))}`);
      this.#fallbackOrigin = "http://localhost";
    } else {
      const displayHost = WILDCARD_HOSTS.has(this.#hostname) ? "localhost" : this.#hostname;
      const urlHost = displayHost.includes(":") && !displayHost.startsWith("[") ? `[${displayHost}]` : displayHost;
      this.#url = new URL(`${this.#scheme}://${urlHost}:${this.#port}/`);
      this.#fallbackOrigin = `${this.#scheme}://${urlHost}:${this.#port}`;
    }

    if (options.signal !== null) {
      if (options.signal.aborted) void this.stop();
      else options.signal.addEventListener("abort", () => void this.stop(), { once: true });
    }
    if (role !== null) {
      // A worker of a group: the main thread has announced the server.
    } else if (options.onListen !== null) {
      options.onListen(this.addr);
    } else if (options.style === "deno") {
      // Deno announces where it listens unless onListen is given.
      console.log(`Listening on ${this.#url.href}`);
    }
  }

  /** Binds synchronously (uWS calls back before listen() returns), so `port` is right at once. */
  #listen(): void {
    const { hostname, port, reusePort, unix } = this.#options;
    let socket: us_listen_socket | false = false;
    if (unix !== null) {
      prepareUnixPath(unix.path, unix.option);
      this.#app.listen_unix((token) => {
        socket = token;
      }, unix.path);
      if (socket === false) {
        this.#app.close();
        throw uwserveError(Error, "UWSERVE_ERR_LISTEN", `uwserve: cannot listen on unix socket ${unix.path} (its directory must exist and be writable)`);
      }
      this.#listenSocket = socket;
      return;
    }
    const flags = reusePort ? 0 : LISTEN_EXCLUSIVE_PORT;
    // uWebSockets.js takes (host, port, options, cb); its d.ts lacks that overload.
    const listen = this.#app.listen as unknown as (
      host: string,
      port: number,
      options: number,
      cb: (token: us_listen_socket | false) => void,
    ) => void;
    listen.call(this.#app, hostname, port, flags, (token) => {
      socket = token;
    });
    if (socket === false) {
      this.#app.close();
      throw listenError(hostname, port);
    }
    this.#listenSocket = socket;
    this.#port = loadCore().us_socket_local_port(socket);
  }

  /**
   * The main thread picked the port (listening proves it is free, and port 0 becomes a real
   * one that SO_REUSEPORT can share) and leaves it to the workers, which re-run the main module
   * (its serve() call makes each one's server, lib/serve.ts) or, under the CLI, the CLI on its
   * entry. Blocks until all of them listen.
   */
  #startWorkers(plan: { group: string; counters: SharedArrayBuffer }): void {
    loadCore().us_listen_socket_close(this.#listenSocket!);
    this.#listenSocket = null;
    const main = process.argv[1];
    const count = this.#options.workers!;
    const launcher = workerLauncher();
    try {
      if (launcher === null && (main === undefined || main === "")) {
        throw uwserveError(
          Error,
          "UWSERVE_ERR_WORKER",
          "uwserve: serve({ workers }) runs the main module again in each worker, and this process has none (node -e, a REPL); put the server in a file, or run it with `uwserve --workers N entry`",
        );
      }
      const group = new WorkerGroup({
        ...(launcher ?? { script: new URL("./worker-entry.js", import.meta.url), argv: process.argv.slice(2), entry: resolvePath(main!) }),
        count,
        port: this.#port,
        ...plan,
      });
      group.onStopAll = (force) => void this.stop(force);
      group.start();
      this.#group = group;
    } catch (err) {
      this.#hub.shutdown();
      this.#app.close();
      throw err;
    }
  }

  // ---- members -------------------------------------------------------------------------

  get port(): number {
    return this.#port;
  }
  get hostname(): string {
    return this.#hostname;
  }
  get url(): URL {
    return new URL(this.#url.href);
  }
  get id(): string {
    return this.#options.id;
  }
  get development(): boolean {
    return this.#options.development;
  }
  /** ContextOwner: a graceful stop is waiting for in-flight requests. */
  get stopping(): boolean {
    return this.#stopping !== null;
  }
  /** Requests in flight (across every worker of a `--workers` group). */
  get pendingRequests(): number {
    return this.#counters === null ? this.#pending : groupTotal(this.#counters, REQUESTS_SLOT);
  }
  /** Open WebSockets (across every worker of a `--workers` group). */
  get pendingWebSockets(): number {
    return this.#counters === null ? this.#hub.pending : groupTotal(this.#counters, WEBSOCKETS_SLOT);
  }
  get addr(): Addr {
    const unix = this.#options.unix;
    if (unix !== null) return { transport: "unix", path: unix.path };
    return { transport: "tcp", hostname: this.#hostname, port: this.#port };
  }
  /** Deno: settles once the server has stopped. */
  get finished(): Promise<void> {
    return this.#finished;
  }

  /**
   * Stops accepting connections. Graceful by default: idle keep-alive connections are closed,
   * in-flight requests finish (their connections close after the response), then it resolves.
   * `true` cuts every connection at once, also after a graceful stop that is still waiting.
   */
  stop(closeActiveConnections = false): Promise<void> {
    if (this.#group !== null) {
      // The workers stop their servers; this thread's app has nothing to wait for.
      const exited = this.#group.stop(closeActiveConnections);
      this.#stopping ??= this.#finished;
      void exited.then(() => this.#closeEverything());
      return this.#finished;
    }
    // One of a group's workers: the others stop too (the main thread asks each one).
    if (!this.#stopped && workerRole() !== null) requestStopAll(closeActiveConnections);
    if (this.#listenSocket !== null) {
      loadCore().us_listen_socket_close(this.#listenSocket);
      this.#listenSocket = null;
      if (this.#options.unix !== null) removeUnixPath(this.#options.unix.path);
    }
    if (this.#stopped) return Promise.resolve();
    if (closeActiveConnections) {
      this.#closeEverything();
      return this.#finished;
    }
    if (this.#stopping === null) {
      this.#stopping = this.#finished;
      // WebSockets get 1001 Going Away; the app closes once they and the requests are done.
      this.#hub.onIdle = () => this.#closeWhenIdle();
      const ending = this.#hub.pending;
      this.#hub.goingAway();
      if (ending > 0) this.#handshakes = closeHandshakes(ending);
      this.#closeWhenIdle();
    }
    return this.#stopping;
  }

  /**
   * Graceful stop: closes the app once no request and no WebSocket is left. Not at once: this
   * may run inside the cork that wrote a last response or close frame, and closing the app here
   * would close its socket before uWS flushes it on uncork.
   */
  #closeWhenIdle(): void {
    if (this.#pending !== 0 || this.#hub.pending !== 0) return;
    setImmediate(() => this.#closeAfterHandshakes());
  }

  /**
   * uWS runs a WebSocket's close handler as soon as end() sends the close frame, and closes the
   * socket itself when the client's close frame comes back. Closing the app before that resets
   * a socket whose client is still sending (unread data turns close() into a RST), and the
   * client loses the 1001 it hasn't read yet: so the app waits for those sockets (2 s at most).
   */
  #closeAfterHandshakes(): void {
    if (this.#stopped || this.#pending !== 0 || this.#hub.pending !== 0) return;
    const wait = this.#handshakes;
    if (wait !== null && Date.now() < wait.deadline && openSockets() > wait.sockets) {
      setTimeout(() => this.#closeAfterHandshakes(), HANDSHAKE_POLL_MS);
      return;
    }
    this.#closeEverything();
  }

  /** Deno's name for a graceful stop. */
  shutdown(): Promise<void> {
    return this.stop(false);
  }

  /** Closes every socket of the app (idle keep-alive ones included) and settles `finished`. */
  #closeEverything(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#hub.shutdown();
    // app.close() fires onAborted for every open request, which settles their contexts, and
    // the close handler of every WebSocket.
    this.#app.close();
    this.#timed.clear();
    this.#uploads.clear();
    this.#resolveStopped();
  }

  /**
   * Swaps fetch, error and routes for new requests; in-flight requests keep the ones they
   * started with. The uWS router can add routes but never remove them, so every route shape
   * ever registered stays registered and dispatches through the current table: a shape the
   * current table lacks yields to the router's next match (in the end the catch-all, which
   * calls fetch or answers 404). That keeps matching in C++ and makes the swap one assignment.
   *
   * In a worker group this thread takes `options` and every other worker evaluates its entry
   * again and takes the handlers of that evaluation (the README's Workers section says why).
   */
  reload<R extends string>(options: ReloadOptions<R>): void {
    this.reloadThisThread(options);
    // Functions can't cross threads: the other threads of a group evaluate the entry again.
    if (this.#group !== null) this.#group.reload();
    else if (workerRole() !== null) requestReloadAll();
  }

  /** @internal reload() without reaching the other threads (they are reloading themselves). */
  reloadThisThread<R extends string>(options: ReloadOptions<R>): void {
    if (typeof options !== "object" || options === null) {
      throw uwserveError(TypeError, "UWSERVE_ERR_INVALID_OPTION", "uwserve: reload() takes an options object ({ fetch, error, routes })");
    }
    const next: Handlers = { ...this.#handlers };
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
      if (next.routes !== null) this.#registerShapes(next.routes);
    }
    // In-flight requests captured the previous object; new ones see this one.
    this.#handlers = next;
  }

  /** @internal serve() ran again in a worker re-evaluating its entry: take that call's handlers. */
  adoptHandlers(options: ResolvedOptions): void {
    if (options.routes !== null) this.#registerShapes(options.routes);
    this.#handlers = { fetch: options.fetch, handler: options.handler, error: options.error, routes: options.routes };
  }

  /** Registers with the uWS router every shape of `table` it doesn't have yet. */
  #registerShapes(table: RouteTable): void {
    for (const [shape, route] of table.byShape) {
      if (this.#shapes.has(shape)) continue;
      try {
        this.#registerShape(shape, route.pattern);
      } catch {
        // uWebSockets.js refuses to add routes from inside a request handler: add it right
        // after; meanwhile the catch-all matches such requests in JS.
        this.#unregistered++;
        setImmediate(() => {
          this.#unregistered--;
          if (!this.#shapes.has(shape)) this.#registerShape(shape, route.pattern);
        });
      }
    }
  }

  #registerShape(shape: string, pattern: string): void {
    // A WebSocket route on the same pattern: the core sends GETs with a Sec-WebSocket-Key
    // there first (with the socket context an upgrade needs) and yields the others to `any`.
    const register = (): void => {
      this.#app.ws(pattern, this.#hub.behavior((res, req, context) => this.#onRequest(res, req, shape, context)));
      this.#app.any(pattern, (res, req) => this.#onRequest(res, req, shape));
    };
    const domains = this.#domains;
    if (domains === null) {
      register();
    } else {
      // Each SNI name has a router of its own: register there too ("" is the default one). The
      // core prints a line per domain() call; the addon keeps that off the user's stdout.
      const registerEverywhere = (): void => {
        for (const domain of domains) {
          this.#app.domain(domain);
          register();
        }
      };
      const native = tryLoadNative();
      if (native !== null) native.callWithQuietStdout(registerEverywhere);
      else registerEverywhere();
    }
    this.#shapes.add(shape);
  }

  /** Runs the handler without the network, as Bun's `server.fetch()`; routes apply too. */
  async fetch(input: Request | string | URL, init?: RequestInit): Promise<Response> {
    const request =
      input instanceof NativeRequest && init === undefined
        ? input
        : new NativeRequest(typeof input === "string" ? new URL(input, this.#url) : input, init);
    const handlers = this.#handlers;
    let response: unknown;
    try {
      response = await this.#fetchWithoutNetwork(handlers, request);
      if (!isSendable(response)) throw badResponseError(response);
      return response as Response;
    } catch (err) {
      return this.#errorResponse(handlers, err);
    }
  }

  #fetchWithoutNetwork(handlers: Handlers, request: Request): unknown {
    const matched = handlers.routes !== null ? matchRoute(handlers.routes, new URL(request.url).pathname) : null;
    if (matched !== null) {
      const target = targetFor(matched.route, request.method);
      if (target !== null) {
        if (target.kind === "static") return target.response.clone();
        (request as Request & { params?: Record<string, string> }).params = matched.params;
        return target.handler.call(this, request, this);
      }
      if (!hasFallback(handlers)) {
        return new UwsResponse("Method Not Allowed", { status: 405, headers: { allow: matched.route.allow } });
      }
    }
    if (!hasFallback(handlers)) return new UwsResponse("Not Found", { status: 404 });
    return this.#callHandler(handlers, request, null);
  }

  /**
   * Upgrades `request` to a WebSocket (Bun's `server.upgrade`): `data` becomes `ws.data`,
   * `headers` go on the 101. False when the request isn't a valid WebSocket upgrade (or was
   * already answered); the handler then answers it as usual.
   */
  upgrade<T = undefined>(request: Request, options?: { data?: T; headers?: HeadersInit }): boolean {
    if (this.#options.websocket === null) {
      throw uwserveError(
        TypeError,
        "UWSERVE_ERR_NO_WEBSOCKET_HANDLER",
        "uwserve: server.upgrade() needs a `websocket` option in serve() ({ open, message, close, ... })",
      );
    }
    const ctx = requestContextOf(request) as RequestContext | undefined;
    if (ctx === undefined) {
      throw uwserveError(
        TypeError,
        "UWSERVE_ERR_NOT_A_SERVER_REQUEST",
        "uwserve: server.upgrade() takes the request this server is handling (the one fetch or a route handler received)",
      );
    }
    if (options !== undefined && (typeof options !== "object" || options === null)) {
      throw uwserveError(TypeError, "UWSERVE_ERR_INVALID_OPTION", "uwserve: server.upgrade(req, options): options must be { data?, headers? }");
    }
    const handshake = ctx.handshake;
    if (handshake === null || !handshake.valid || ctx.aborted || ctx.responded || ctx.finished || this.#stopping !== null) return false;
    const socket = new ServerWebSocket<unknown>(this.#hub, options?.data, null);
    // Bun answers with the first subprotocol the client offered.
    performUpgrade(ctx, this.#hub, socket, options?.headers, offeredProtocols(handshake)[0] ?? "");
    return true;
  }

  /** Sends `data` to every subscriber of `topic`: bytes, -1 (queued under backpressure) or 0 (nobody / dropped). */
  publish(topic: string, data: WebSocketData, compress = false): number {
    return this.#hub.publish(topic, data, compress);
  }

  subscriberCount(topic: string): number {
    return this.#hub.subscriberCount(topic);
  }

  /** uwserve: messages dropped because a subscriber was over `backpressureLimit`, for `topic` or in all. */
  droppedMessages(topic?: string): number {
    return this.#hub.publisher.dropped(topic);
  }

  /** For Deno's upgradeWebSocket(). */
  webSocketHub(): WebSocketHub {
    return this.#hub;
  }

  requestIP(request: Request): SocketAddress | null {
    const ctx = requestContextOf(request) as RequestContext | undefined;
    if (ctx === undefined || ctx.aborted || ctx.finished || this.#options.unix !== null) return null;
    return remoteAddress(ctx.res);
  }

  /** Aborts `request` if it hasn't completed `seconds` from now (0 disables). One timer for all. */
  timeout(request: Request, seconds: number): void {
    if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0) {
      throw uwserveError(TypeError, "UWSERVE_ERR_INVALID_OPTION", "uwserve: timeout(req, seconds) needs a number of seconds >= 0");
    }
    const ctx = requestContextOf(request) as RequestContext | undefined;
    if (ctx === undefined) {
      throw uwserveError(TypeError, "UWSERVE_ERR_NOT_A_SERVER_REQUEST", "uwserve: timeout() takes a request this server is handling");
    }
    if (ctx.finished) return;
    if (seconds === 0) {
      ctx.deadline = 0;
      this.#timed.delete(ctx);
      return;
    }
    ctx.deadline = Date.now() + seconds * 1000;
    this.#timed.add(ctx);
  }

  /** Keeps `ctx` in the deadline sweep until its deadline passes (then cuts it). */
  #checkDeadline(ctx: RequestContext, now: number): boolean {
    if (ctx.deadline === 0 || ctx.deadline > now) return ctx.deadline !== 0;
    ctx.abortConnection("request timed out");
    return false;
  }

  /** ContextOwner: an upload to check once a second. */
  watchUpload(ctx: RequestContext): void {
    this.#uploads.add(ctx);
  }

  /**
   * idleTimeout for uploads: cuts one idle longer than it (when below the core's 10 s), and
   * keeps restarting the core's timer for one idle less than it (when above, or 0 = never).
   * An upload uwserve paused (its handler isn't reading yet) is never idle: its timer is kept
   * running too.
   */
  #checkUpload(ctx: RequestContext, now: number): boolean {
    if (ctx.finished || ctx.body === null || ctx.body.ended) return false;
    if (ctx.lastData === 0) {
      // First look at an upload that hasn't had a partial chunk yet: its clock starts now.
      ctx.lastData = ctx.coreTimerReset = now;
    }
    if (ctx.flowPaused) {
      if (now - ctx.coreTimerReset >= CORE_IDLE_TIMEOUT_S * 500) ctx.restartCoreTimer(now);
      return true;
    }
    if (!ctx.receiving) return true;
    const limit = this.#options.idleTimeout * 1000;
    if (limit > 0 && now - ctx.lastData >= limit) {
      ctx.abortConnection("upload idle timeout");
      return false;
    }
    if ((limit === 0 || limit > CORE_IDLE_TIMEOUT_S * 1000) && now - ctx.coreTimerReset >= CORE_IDLE_TIMEOUT_S * 500) {
      ctx.restartCoreTimer(now);
    }
    return true;
  }

  ref(): void {
    this.#setRef(true);
  }
  unref(): void {
    this.#setRef(false);
  }

  #setRef(ref: boolean): void {
    if (this.#refed === ref) return;
    this.#refed = ref;
    if (this.#group !== null) {
      this.#group.setRef(ref);
      return;
    }
    if (this.#listenSocket === null) return;
    const native = tryLoadNative();
    if (native === null) {
      process.emitWarning(
        "uwserve: ref()/unref() need the native addon, which is not built; the server keeps the process alive. Run `npm rebuild uwserve`.",
        { code: "UWSERVE_NATIVE_UNAVAILABLE" },
      );
      return;
    }
    native.setListenRef(this.#port, this.#options.unix?.path ?? null, ref);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop(true);
  }
  [Symbol.dispose](): void {
    void this.stop(true);
  }

  // ---- the request bridge ---------------------------------------------------------------

  /** A uWS route handler: `shape` is the route shape the C++ router matched ("/*" for the catch-all). */
  #onRequest(res: HttpResponse, req: HttpRequest, shape: string, wsContext?: us_socket_context_t): void {
    const handlers = this.#handlers;
    // Copy everything now: `req` is invalid after this callback returns (H1).
    const handshake = wsContext === undefined ? null : readHandshake(req, wsContext);
    const path = req.getUrl();
    const method = req.getCaseSensitiveMethod();
    // Which route? The uWS router already chose `shape`; only odd paths are matched in JS.
    let route: Route | null = null;
    let params = NO_PARAMS;
    let decodeParams = false;
    const routes = handlers.routes;
    if (routes !== null) {
      if (needsNormalizing(path)) {
        // The router saw "/w/../x"; the route must be chosen on the path new URL() shows ("/x").
        const matched = matchRoute(routes, normalizePath(path));
        if (matched !== null) ({ route, params } = matched);
      } else {
        route = routes.byShape.get(shape) ?? null;
        if (route === null) {
          if (shape !== "/*") {
            // A shape an earlier table registered: let the router try its next match.
            req.setYield(true);
            return;
          }
          if (this.#unregistered > 0) {
            const matched = matchRoute(routes, path);
            if (matched !== null) ({ route, params } = matched);
          }
        } else {
          decodeParams = route.paramNames.length > 0;
        }
      }
    }
    const target = route !== null ? targetFor(route, method) : null;
    // A ready static route needs no Request: its headers are only checked, not kept.
    const isStatic = target !== null && target.kind === "static" && target.route.ready === null;

    const { maxHeaderSize, maxRequestBodySize } = this.#options;
    const query = req.getQuery() ?? "";
    const head = scanHead(req, method.length + path.length + query.length + 12, !isStatic);
    const { rawHeaders, headerBytes, host, hosts, contentLength, conflictingLength, chunked } = head;

    if (headerBytes > maxHeaderSize) {
      refuse(res, "431 Request Header Fields Too Large", "Request Header Fields Too Large");
      return;
    }
    if (hosts > 1) {
      // RFC 9112 §3.2: more than one Host is a 400; picking one would let two parties disagree.
      refuse(res, "400 Bad Request", "Bad Request: more than one Host header");
      return;
    }
    let declaredLength = 0;
    if (contentLength !== "") {
      declaredLength = /^\d{1,16}$/.test(contentLength) ? Number(contentLength) : -1;
      if (declaredLength < 0 || conflictingLength) {
        refuse(res, "400 Bad Request", "Bad Request: invalid Content-Length");
        return;
      }
      if (declaredLength > maxRequestBodySize) {
        // Refuse before reading a byte; closing lets the client stop sending (H21).
        refuse(res, "413 Payload Too Large", "Payload Too Large");
        return;
      }
    }
    const isHead = method === "HEAD";

    if (isStatic) {
      // Static: no Request, no context, no handler call; the bytes were prepared at serve().
      (target as { route: StaticRoute }).route.write(res, isHead, this.#stopping !== null);
      return;
    }
    if (route !== null && target === null && !hasFallback(handlers)) {
      res.writeStatus("405 Method Not Allowed").writeHeader("allow", route.allow);
      endPlain(res, "Method Not Allowed", isHead, this.#stopping !== null);
      return;
    }
    if (route === null && !hasFallback(handlers)) {
      res.writeStatus("404 Not Found");
      endPlain(res, "Not Found", isHead, this.#stopping !== null);
      return;
    }
    if (decodeParams && target !== null) {
      // uWS hands parameters out by position, raw: decode them now (req dies after this).
      const names = route!.paramNames;
      params = {};
      for (let i = 0; i < names.length; i++) params[names[i]!] = decodeParam(req.getParameter(i));
    }

    const ctx = new RequestContext(res, this, isHead);
    ctx.handshake = handshake;
    res.onAborted(ctx.onAborted);
    const hasBody = (declaredLength > 0 || chunked) && !isHead && method !== "GET";
    const body = hasBody ? ctx.acceptBody() : null;
    if (body !== null && this.#options.idleTimeout !== CORE_IDLE_TIMEOUT_S) this.watchUpload(ctx);

    const request = createServerRequest(method, path, query, rawHeaders, host, this.#fallbackOrigin, body, ctx, params);
    ctx.request = request;
    this.#pending++;
    if (this.#slot >= 0) Atomics.store(this.#counters!, this.#slot + REQUESTS_SLOT, this.#pending);

    let result: unknown;
    try {
      if (target === null) result = this.#callHandler(handlers, request as unknown as Request, ctx);
      else if (target.kind === "handler") result = target.handler.call(this, request as unknown as Request, this);
      else result = target.route.ready!.then(() => target.route.response());
    } catch (err) {
      this.#fail(ctx, handlers, err);
      ctx.corked = false;
      return;
    }
    if (isPromiseLike(result)) {
      ctx.corked = false;
      result.then(
        (response) => this.#respond(ctx, handlers, response),
        (err) => this.#fail(ctx, handlers, err),
      );
      return;
    }
    this.#respond(ctx, handlers, result);
    ctx.corked = false;
  }

  #callHandler(handlers: Handlers, request: Request, ctx: RequestContext | null): unknown {
    if (handlers.fetch !== null) return handlers.fetch.call(this, request, this);
    return handlers.handler!(request, denoInfo(ctx, this.#options.unix));
  }

  #respond(ctx: RequestContext, handlers: Handlers, response: unknown): void {
    // After server.upgrade() the connection is a WebSocket; what the handler returns is ignored.
    if (ctx.upgraded) return;
    const pending = ctx.pendingUpgrade;
    if (pending !== null && response === pending.response) {
      if (ctx.aborted) return;
      performUpgrade(ctx, this.#hub, pending.socket.socket, undefined, pending.socket.protocol);
      return;
    }
    try {
      const pending = writeResponse(ctx, response);
      if (pending !== undefined) pending.catch((err) => this.#fail(ctx, handlers, err));
    } catch (err) {
      this.#fail(ctx, handlers, err);
    }
  }

  /** A handler threw or rejected, or its Response couldn't be written. */
  #fail(ctx: RequestContext, handlers: Handlers, err: unknown): void {
    if ((err as { afterHeaders?: boolean } | null)?.afterHeaders === true) {
      // The body failed after the head went out: the writer cut the connection; report it.
      console.error("uwserve: a response body failed after its headers were sent:", err);
      return;
    }
    if (ctx.upgraded) {
      console.error("uwserve: a handler failed after upgrading to a WebSocket:", err);
      return;
    }
    // The client is gone (its AbortError is expected), or the response is already out.
    if (ctx.aborted || ctx.responded) return;
    const error = handlers.error;
    if (error === null) {
      console.error(err);
      this.#sendInternalError(ctx, err);
      return;
    }
    let result: unknown;
    try {
      result = error.call(this, err);
    } catch (secondary) {
      console.error(secondary);
      this.#sendInternalError(ctx, secondary, true);
      return;
    }
    const send = (response: unknown): void => {
      if (!isSendable(response)) {
        console.error(badResponseError(response));
        this.#sendInternalError(ctx, err, true);
        return;
      }
      try {
        const pending = writeResponse(ctx, response);
        if (pending !== undefined) {
          pending.catch((e) => {
            if (!ctx.responded) this.#sendInternalError(ctx, e, true);
          });
        }
      } catch (e) {
        this.#sendInternalError(ctx, e, true);
      }
    };
    if (isPromiseLike(result)) {
      result.then(send, (secondary) => {
        console.error(secondary);
        this.#sendInternalError(ctx, secondary, true);
      });
    } else {
      send(result);
    }
  }

  /** A 500 uwserve writes itself: a readable page in development, a plain body otherwise. */
  #sendInternalError(ctx: RequestContext, err: unknown, plain = false): void {
    if (ctx.aborted || ctx.responded) return;
    writeResponse(ctx, internalErrorResponse(err, this.#options.development && !plain));
  }

  /** For server.fetch(): the same error policy, as a Response. */
  async #errorResponse(handlers: Handlers, err: unknown): Promise<Response> {
    if (handlers.error !== null) {
      try {
        const response = await handlers.error.call(this, err);
        if (isSendable(response)) return response as Response;
      } catch (secondary) {
        console.error(secondary);
      }
    } else {
      console.error(err);
    }
    return internalErrorResponse(err, this.#options.development);
  }

  /** ContextOwner: called exactly once per request. */
  requestFinished(ctx: RequestContext): void {
    this.#pending--;
    if (this.#slot >= 0) Atomics.store(this.#counters!, this.#slot + REQUESTS_SLOT, this.#pending);
    if (ctx.deadline !== 0) this.#timed.delete(ctx);
    if (this.#stopping !== null) this.#closeWhenIdle();
  }
}

/**
 * Answers a request uwserve refuses before its handler runs, then closes the connection. Never
 * inside the uWS callback: there, `end(body, true)` neither closes the connection nor stops the
 * core from running requests pipelined behind this one in the same read, so a request smuggled
 * after conflicting Content-Lengths would execute. Answered from the next macrotask, the refusal
 * is still pending when such a request is parsed, and the core drops the connection (H8).
 */
function refuse(res: HttpResponse, status: string, body: string): void {
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  setImmediate(() => {
    if (!aborted) res.cork(() => res.writeStatus(status).end(body, true));
  });
}


/** Ends one of uwserve's own short answers (404, 405); a HEAD gets the head only (H5). */
function endPlain(res: HttpResponse, body: string, isHead: boolean, close: boolean): void {
  if (isHead) endHead(res, body.length, close);
  else res.end(body, close);
}

/** The target for `method`: the route's own, GET's for HEAD (sent without a body), or null. */
function targetFor(route: Route, method: string): RouteTarget | null {
  if (route.all !== null) return route.all;
  const methods = route.methods!;
  return methods.get(method) ?? (method === "HEAD" ? (methods.get("GET") ?? null) : null);
}

function hasFallback(handlers: Handlers): boolean {
  return handlers.fetch !== null || handlers.handler !== null;
}

/** `routes` and its older name `static` (a table of Responses); `routes` wins on a shared key. */
export function compileRouteOptions(routes: unknown, statics: unknown): RouteTable | null {
  if (routes === undefined && statics === undefined) return null;
  if (statics === undefined) return compileRoutes(routes);
  if (routes === undefined) return compileRoutes(statics, "static");
  if (typeof statics !== "object" || statics === null) return compileRoutes(statics, "static");
  if (typeof routes !== "object" || routes === null) return compileRoutes(routes);
  return compileRoutes({ ...(statics as object), ...(routes as object) });
}

/** uwserve's own 500: the error page when `readable` (development), else a body without internals. */
function internalErrorResponse(err: unknown, readable: boolean): Response {
  const page = readable ? developmentErrorPage(err) : null;
  return new UwsResponse(page ? page.body : PRODUCTION_ERROR_BODY, {
    status: 500,
    headers: { "content-type": page ? page.type : "text/plain;charset=utf-8" },
  });
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof value === "object" && value !== null && typeof (value as PromiseLike<unknown>).then === "function";
}

function isSendable(value: unknown): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Response).status === "number" &&
    typeof (value as Response).headers === "object"
  );
}

/**
 * In a worker group (and on its main thread), the server joins the cross-thread hub: publishes
 * made here also go to the other workers' subscribers, and theirs arrive here to be published locally.
 */
function joinGroupHub(app: TemplatedApp, group: string): Backplane {
  return hubBackplane((topic, payload, isBinary, compress) => app.publish(coreText(topic), typeof payload === "string" ? coreText(payload) : payload, isBinary, compress), group);
}

/** How long a graceful stop waits for WebSocket close handshakes at most (uWS gives them ~2 s too). */
const HANDSHAKE_WAIT_MS = 2000;
/** Without the addon nothing counts the sockets: a graceful stop gives the handshakes this long. */
const HANDSHAKE_WAIT_BLIND_MS = 100;
const HANDSHAKE_POLL_MS = 5;

/** This thread's open uWS sockets, or Infinity when the addon can't count them. */
function openSockets(): number {
  return tryLoadNative()?.openSocketCount() ?? Number.POSITIVE_INFINITY;
}

/** Right after `ending` WebSockets were sent their close frame: what the socket count must fall to. */
function closeHandshakes(ending: number): { sockets: number; deadline: number } {
  const open = openSockets();
  const blind = open === Number.POSITIVE_INFINITY;
  return { sockets: blind ? 0 : open - ending, deadline: Date.now() + (blind ? HANDSHAKE_WAIT_BLIND_MS : HANDSHAKE_WAIT_MS) };
}

/** Decodes uWS's remote address; IPv4-mapped IPv6 addresses are reported as IPv4. */
function remoteAddress(res: HttpResponse): SocketAddress {
  let address = Buffer.from(res.getRemoteAddressAsText()).toString("latin1");
  if (address.startsWith("::ffff:") && address.includes(".")) address = address.slice(7);
  return { address, family: address.includes(":") ? "IPv6" : "IPv4", port: 0 };
}

function denoInfo(ctx: RequestContext | null, unix: { path: string } | null): ServeHandlerInfo {
  let remoteAddr: ServeHandlerInfo["remoteAddr"];
  if (unix !== null) {
    remoteAddr = { transport: "unix", path: unix.path } satisfies UnixAddr;
  } else {
    const address = ctx !== null ? remoteAddress(ctx.res) : { address: "127.0.0.1", port: 0 };
    remoteAddr = { transport: "tcp", hostname: address.address, port: address.port };
  }
  return {
    remoteAddr,
    get completed() {
      return ctx !== null ? ctx.completed() : Promise.resolve();
    },
  };
}

/** uWS reports only "failed": tell a port in use from an address this machine doesn't have. */
function listenError(hostname: string, port: number): Error {
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
  return uwserveError(
    Error,
    "UWSERVE_ERR_LISTEN",
    `uwserve: cannot listen on ${hostname}:${port}: the address is not available on this machine`,
  );
}
