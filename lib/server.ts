/**
 * The `Server`: what serve() returns. It owns the server's life (graceful and forced stop,
 * reload, ref/unref, counters, worker groups) and the public members; an engine (uws or node,
 * core/engine.ts) carries the HTTP, and every request goes through the shared pipeline
 * (core/dispatch.ts).
 */
import { NativeRequest } from "./core/_globals.js";
import type { RequestContext } from "./core/context.js";
import { Dispatcher, type DispatchHost } from "./core/dispatch.js";
import { nextHandlers } from "./core/reload.js";
import type { ResolvedOptions } from "./options.js";
import type { Engine, EngineName } from "./core/engine.js";
import { RequestTimers } from "./core/timers.js";
import { NodeEngine } from "./engines/node/engine.js";
import { pickEngine } from "./engines/select.js";
import { CORE_IDLE_TIMEOUT_S, UwsEngine } from "./engines/uws/engine.js";
import { isWildcardHost } from "./engines/listen-error.js";
import { uwserveError } from "./errors.js";
import { requestContextOf } from "./core/request.js";
import type { Addr, ReloadOptions, ServerBackplane, ServerLike, SocketAddress, WebSocketData } from "./types.js";
import { BackplaneBridge, serverBackplane } from "./backplane/bridge.js";
import type { RelayPlan } from "./backplane/relay.js";
import { offeredProtocols, performUpgrade } from "./websocket/upgrade.js";
import { ServerWebSocket } from "./websocket/websocket.js";
import { resolve as resolvePath } from "node:path";
import { removeUnixPath } from "./transport/unix-socket.js";
import { RequestObserver } from "./observability/observer.js";
import { checkWorkersSupported, groupTotal, planGroup, requestReloadAll, requestStopAll, REQUESTS_SLOT, SLOTS_PER_WORKER, startWorkerGroup, WEBSOCKETS_SLOT, WorkerGroup, workerRole } from "./workers/workers.js";


export class Server implements ServerLike {
  /** The broker that carries publishes to other processes (`backplane`), else null. */
  readonly backplane: ServerBackplane | null;
  readonly #engine: Engine;
  /** On the main thread of a worker group with a broker: the group's one connection to it. */
  readonly #bridge: BackplaneBridge | null;
  readonly #dispatcher: Dispatcher;
  readonly #timers: RequestTimers;
  #url: URL;
  #hostname: string;
  readonly #options: ResolvedOptions;
  #pending: number;
  #stopping: Promise<void> | null;
  #stopped: boolean;
  #resolveStopped: () => void;
  #finished: Promise<void>;
  #refed: boolean;
  /** In a worker group: every worker's shared counters (else null). */
  readonly #counters: Int32Array | null;
  /** This worker's first slot in #counters (-1 on the main thread, which serves no request itself). */
  readonly #slot: number;
  /** On the main thread of `serve({ workers })`: the workers that serve (else null). */
  #group: WorkerGroup | null;
  /** Graceful stop: the open-socket count to wait for while WebSockets end their close handshakes. */
  #handshakes: { sockets: number; deadline: number } | null;
  /** What the pipeline and each request's context see of this server (not public API). */
  readonly #host: DispatchHost;
  /** Telemetry, the access log and the diagnostics channels. */
  readonly #observer: RequestObserver;

  /** @internal serve() makes servers; its options are validated there. */
  constructor(options: ResolvedOptions) {
    const role = workerRole();
    const supervise = role === null && options.workers !== null && options.workers > 1;
    const engineName = pickEngine(options.engine, { workers: supervise || role !== null, http2: options.http2 });
    // Before anything is built: workers need the addon, and say so at once.
    if (supervise) checkWorkersSupported(options.workers!);
    this.#options = options;
    this.#pending = 0;
    this.#stopping = null;
    this.#stopped = false;
    this.#refed = true;
    this.#timers = new RequestTimers(options.idleTimeout, engineName === "uws" ? CORE_IDLE_TIMEOUT_S : null);
    this.#host = this.#makeHost(engineName);
    // Before the engine listens: a missing @opentelemetry/api throws here.
    this.#observer = new RequestObserver(options, this, engineName, (exchange) => (options.unix !== null ? "" : this.#engine.remoteAddress(exchange).address));
    this.#host.observer = this.#observer;
    let resolveStopped!: () => void;
    this.#finished = new Promise<void>((resolve) => {
      resolveStopped = resolve;
    });
    this.#resolveStopped = resolveStopped;
    this.#dispatcher = new Dispatcher(this.#host, { fetch: options.fetch, handler: options.handler, error: options.error, routes: options.routes });

    const plan = supervise ? planGroup(options.workers!) : null;
    const group = role?.group ?? plan?.group ?? null;
    // A worker group's broker connection lives on its main thread (backplane/bridge.ts).
    this.#bridge = plan !== null && options.backplane !== null ? new BackplaneBridge(options.backplane, plan.group) : null;
    if (plan !== null && this.#bridge !== null) plan.backplane = this.#bridge.share;
    const relayPlan: RelayPlan = { group, driver: group === null ? options.backplane : null, bridge: role?.backplane ?? this.#bridge?.share ?? null };
    try {
      this.#engine = engineName === "uws" ? new UwsEngine(options, this.#dispatcher, relayPlan) : new NodeEngine(options, this.#dispatcher, relayPlan);
    } catch (err) {
      this.#bridge?.close();
      throw err;
    }
    this.backplane = serverBackplane(this.#bridge, role?.backplane ?? null, this.#engine.hub.publisher.relay);
    this.#host.hub = this.#engine.hub;
    this.#observer.scheme = this.#engine.scheme;
    const webSockets = this.#observer.webSockets;
    this.#engine.hub.observer = webSockets;
    this.#engine.hub.publisher.deliveries = webSockets;
    const counters = role?.counters ?? plan?.counters ?? null;
    this.#counters = counters !== null ? new Int32Array(counters) : null;
    this.#slot = role !== null ? role.index * SLOTS_PER_WORKER : -1;
    this.#group = null;
    this.#handshakes = null;
    const hub = this.#engine.hub;
    if (this.#slot >= 0) {
      const counters = this.#counters!;
      const slot = this.#slot + WEBSOCKETS_SLOT;
      hub.onCount = (open) => Atomics.store(counters, slot, open);
    }
    this.#hostname = options.hostname;
    if (plan !== null) {
      // The main thread picked the port; the workers serve it (workers.ts).
      this.#engine.stopListening();
      this.#group = startWorkerGroup(options.workers!, this.#engine.port, plan, (force) => void this.stop(force), () => {
        hub.shutdown();
        this.#bridge?.close();
        this.#engine.closeAll();
      });
    }
    const unix = options.unix;
    let origin: string;
    if (unix !== null) {
      // A unix socket has no host or port: the URL names the socket file.
      this.#hostname = "localhost";
      this.#url = new URL(`unix://${encodeURI(unix.path.startsWith("\0") ? unix.path : resolvePath(unix.path))}`);
      origin = "http://localhost";
    } else {
      const displayHost = isWildcardHost(this.#hostname) ? "localhost" : this.#hostname;
      const urlHost = displayHost.includes(":") && !displayHost.startsWith("[") ? `[${displayHost}]` : displayHost;
      origin = `${this.#engine.scheme}://${urlHost}:${this.#engine.port}`;
      this.#url = new URL(origin + "/");
    }
    this.#engine.fallbackOrigin = origin;

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

  // ---- members -------------------------------------------------------------------------

  get port(): number {
    return this.#engine.port;
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
  /** uwserve: which engine serves ("uws": the uWebSockets.js core; "node": node:http). */
  get engine(): ServerLike["engine"] {
    return this.#engine.name;
  }
  /** Requests in flight (across every worker of a `--workers` group). */
  get pendingRequests(): number {
    return this.#counters === null ? this.#pending : groupTotal(this.#counters, REQUESTS_SLOT);
  }
  /** Open WebSockets (across every worker of a `--workers` group). */
  get pendingWebSockets(): number {
    return this.#counters === null ? this.#engine.hub.pending : groupTotal(this.#counters, WEBSOCKETS_SLOT);
  }
  get addr(): Addr {
    const unix = this.#options.unix;
    if (unix !== null) return { transport: "unix", path: unix.path };
    return { transport: "tcp", hostname: this.#hostname, port: this.#engine.port };
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
      // The workers stop their servers; this thread's engine has nothing to wait for.
      const exited = this.#group.stop(closeActiveConnections);
      this.#stopping ??= this.#finished;
      this.#host.stopping = true;
      void exited.then(() => this.#closeEverything());
      return this.#finished;
    }
    // One of a group's workers: the others stop too (the main thread asks each one).
    if (!this.#stopped && workerRole() !== null) requestStopAll(closeActiveConnections);
    if (!this.#stopped) {
      this.#engine.stopListening();
      if (this.#options.unix !== null) removeUnixPath(this.#options.unix.path);
    }
    if (this.#stopped) return Promise.resolve();
    if (closeActiveConnections) {
      this.#closeEverything();
      return this.#finished;
    }
    if (this.#stopping === null) {
      this.#stopping = this.#finished;
      this.#host.stopping = true;
      // WebSockets get 1001 Going Away; the engine closes once they and the requests are done.
      const hub = this.#engine.hub;
      hub.onIdle = () => this.#closeWhenIdle();
      const ending = hub.pending;
      hub.goingAway();
      if (ending > 0) this.#handshakes = this.#closeHandshakes(ending);
      this.#closeWhenIdle();
    }
    return this.#stopping;
  }

  /**
   * Graceful stop: closes everything once no request and no WebSocket is left. Not at once:
   * this may run inside the cork that wrote a last response or close frame, and closing here
   * would close its socket before uWS flushes it on uncork.
   */
  #closeWhenIdle(): void {
    if (this.#pending !== 0 || this.#engine.hub.pending !== 0) return;
    setImmediate(() => this.#closeAfterHandshakes());
  }

  /**
   * uWS runs a WebSocket's close handler as soon as end() sends the close frame, and closes the
   * socket itself when the client's close frame comes back. Closing before that resets a
   * socket whose client is still sending, and the client loses the 1001 it hasn't read yet:
   * so the stop waits for those sockets (2 s at most).
   */
  #closeAfterHandshakes(): void {
    if (this.#stopped || this.#pending !== 0 || this.#engine.hub.pending !== 0) return;
    const wait = this.#handshakes;
    if (wait !== null && Date.now() < wait.deadline && this.#engine.openSockets() > wait.sockets) {
      setTimeout(() => this.#closeAfterHandshakes(), HANDSHAKE_POLL_MS);
      return;
    }
    this.#closeEverything();
  }

  /** Right after `ending` WebSockets were sent their close frame: what the socket count must fall to. */
  #closeHandshakes(ending: number): { sockets: number; deadline: number } {
    const open = this.#engine.openSockets();
    const blind = open === Number.POSITIVE_INFINITY;
    return { sockets: blind ? 0 : open - ending, deadline: Date.now() + (blind ? HANDSHAKE_WAIT_BLIND_MS : HANDSHAKE_WAIT_MS) };
  }

  /** Deno's name for a graceful stop. */
  shutdown(): Promise<void> {
    return this.stop(false);
  }

  /** Closes every connection (idle keep-alive ones included) and settles `finished`. */
  #closeEverything(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#engine.hub.shutdown();
    this.#bridge?.close();
    // Closing fires the abort of every open request, which settles their contexts.
    this.#engine.closeAll();
    this.#timers.clear();
    this.#observer.close();
    this.#resolveStopped();
  }

  /**
   * Swaps fetch, error and routes for new requests; in-flight requests keep the ones they
   * started with. In a worker group this thread takes `options` and every other worker
   * evaluates its entry again and takes the handlers of that evaluation (README, Workers).
   */
  reload<R extends string>(options: ReloadOptions<R>): void {
    this.reloadThisThread(options);
    // Functions can't cross threads: the other threads of a group evaluate the entry again.
    if (this.#group !== null) this.#group.reload();
    else if (workerRole() !== null) requestReloadAll();
  }

  /** @internal reload() without reaching the other threads (they are reloading themselves). */
  reloadThisThread<R extends string>(options: ReloadOptions<R>): void {
    const next = nextHandlers(this.#dispatcher.handlers, options);
    if (next.routes !== null && next.routes !== this.#dispatcher.handlers.routes) this.#engine.addRoutes(next.routes);
    // In-flight requests captured the previous object; new ones see this one.
    this.#dispatcher.handlers = next;
  }

  /** @internal serve() ran again in a worker re-evaluating its entry: take that call's handlers. */
  adoptHandlers(options: ResolvedOptions): void {
    if (options.routes !== null) this.#engine.addRoutes(options.routes);
    this.#dispatcher.handlers = { fetch: options.fetch, handler: options.handler, error: options.error, routes: options.routes };
  }

  /** Runs the handler without the network, as Bun's `server.fetch()`; routes apply too. */
  fetch(input: Request | string | URL, init?: RequestInit): Promise<Response> {
    const request =
      input instanceof NativeRequest && init === undefined ? input : new NativeRequest(typeof input === "string" ? new URL(input, this.#url) : input, init);
    return this.#dispatcher.fetch(request);
  }

  /**
   * Upgrades `request` to a WebSocket (Bun's `server.upgrade`): `data` becomes `ws.data`,
   * `headers` go on the 101. False when the request isn't a valid WebSocket upgrade (or was
   * already answered); the handler then answers it as usual.
   */
  upgrade<T = undefined>(request: Request, options?: { data?: T; headers?: HeadersInit }): boolean {
    const hub = this.#engine.hub;
    if (this.#options.websocket === null) {
      throw uwserveError(
        TypeError,
        "UWSERVE_ERR_NO_WEBSOCKET_HANDLER",
        "uwserve: server.upgrade() needs a `websocket` option in serve() ({ open, message, close, ... })",
      );
    }
    const ctx = this.#contextOf(request, "server.upgrade() takes the request this server is handling (the one fetch or a route handler received)");
    if (options !== undefined && (typeof options !== "object" || options === null)) {
      throw uwserveError(TypeError, "UWSERVE_ERR_INVALID_OPTION", "uwserve: server.upgrade(req, options): options must be { data?, headers? }");
    }
    const handshake = ctx.handshake;
    if (handshake !== null && !handshake.valid) ctx.refusedUpgrade = handshake.versionOk ? 400 : 426;
    if (handshake === null || !handshake.valid || ctx.aborted || ctx.responded || ctx.finished || this.#stopping !== null) return false;
    const socket = new ServerWebSocket<unknown>(hub, options?.data, null);
    // Bun answers with the first subprotocol the client offered.
    performUpgrade(ctx, hub, socket, options?.headers, offeredProtocols(handshake)[0] ?? "");
    return true;
  }

  /** Sends `data` to every subscriber of `topic`: bytes, -1 (queued under backpressure) or 0 (nobody / dropped). */
  publish(topic: string, data: WebSocketData, compress = false): number {
    return this.#engine.hub.publish(topic, data, compress);
  }

  subscriberCount(topic: string): number {
    return this.#engine.hub.subscriberCount(topic);
  }

  /** uwserve: messages dropped because a subscriber was over `backpressureLimit`, for `topic` or in all. */
  droppedMessages(topic?: string): number {
    return this.#engine.hub.publisher.dropped(topic);
  }

  /**
   * Closes the keep-alive connections waiting for their next request now (Bun's); returns how
   * many. In-flight requests and WebSockets are untouched. The node engine only: the uWS core
   * has no handle on a connection between requests (a coded error there).
   */
  closeIdleConnections(): number {
    return this.#engine.closeIdleConnections();
  }

  requestIP(request: Request): SocketAddress | null {
    const ctx = requestContextOf(request) as RequestContext | undefined;
    if (ctx === undefined || ctx.aborted || ctx.finished || this.#options.unix !== null) return null;
    return this.#engine.remoteAddress(ctx.res);
  }

  /** Aborts `request` if it hasn't completed `seconds` from now (0 disables). One timer for all. */
  timeout(request: Request, seconds: number): void {
    if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0) {
      throw uwserveError(TypeError, "UWSERVE_ERR_INVALID_OPTION", "uwserve: timeout(req, seconds) needs a number of seconds >= 0");
    }
    this.#timers.setDeadline(this.#contextOf(request, "timeout() takes a request this server is handling"), seconds);
  }

  #contextOf(request: Request, misuse: string): RequestContext {
    const ctx = requestContextOf(request) as RequestContext | undefined;
    if (ctx === undefined) throw uwserveError(TypeError, "UWSERVE_ERR_NOT_A_SERVER_REQUEST", `uwserve: ${misuse}`);
    return ctx;
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
    if (this.#group !== null) this.#group.setRef(ref);
    else if (!this.#stopped) this.#engine.setRef(ref);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop(true);
  }
  [Symbol.dispose](): void {
    void this.stop(true);
  }

  // ---- what requests see of the server -------------------------------------------------

  #makeHost(engineName: EngineName): DispatchHost {
    const options = this.#options;
    const timers = this.#timers;
    // Arrow functions and getters over this server's private state: the pipeline and each
    // request's context reach it only through this object.
    return {
      publicServer: this,
      development: options.development,
      maxHeaderSize: options.maxHeaderSize,
      maxRequestBodySize: options.maxRequestBodySize,
      compression: options.compression,
      unixPath: options.unix?.path ?? null,
      watchesAllUploads: timers.watchesAllUploads,
      coreIdleTimer: engineName === "uws",
      stopping: false,
      hub: null,
      requestStarted: () => {
        this.#pending++;
        if (this.#slot >= 0) Atomics.store(this.#counters!, this.#slot + REQUESTS_SLOT, this.#pending);
      },
      requestFinished: (ctx) => {
        this.#pending--;
        if (this.#slot >= 0) Atomics.store(this.#counters!, this.#slot + REQUESTS_SLOT, this.#pending);
        timers.forget(ctx);
        if (this.#stopping !== null) this.#closeWhenIdle();
      },
      watchUpload: (ctx) => timers.watchUpload(ctx),
      refuse: (exchange, status, body) => this.#engine.refuse(exchange, status, body),
      remoteAddress: (exchange) => this.#engine.remoteAddress(exchange),
      protocolVersion: (exchange) => this.#engine.protocolVersion(exchange),
      observer: null,
      webSocketHub: () => this.#engine.hub,
    };
  }
}

/** How long a graceful stop waits for WebSocket close handshakes at most (uWS gives them ~2 s too). */
const HANDSHAKE_WAIT_MS = 2000;
/** Without the addon nothing counts the sockets: a graceful stop gives the handshakes this long. */
const HANDSHAKE_WAIT_BLIND_MS = 100;
const HANDSHAKE_POLL_MS = 5;
