/**
 * The `Server`: one uWS app listening on one address, the request bridge (uWS callback →
 * lazy Request → handler → writer), the request-time error policy, and the server's life
 * (graceful and forced stop, reload, ref/unref, per-request timeouts).
 */
import { NativeRequest } from "./_globals.js";
import { developmentErrorPage, PRODUCTION_ERROR_BODY } from "./_error_page.js";
import { scanHead } from "./_head.js";
import { RequestContext, type ContextOwner } from "./context.js";
import { uwserveError } from "./errors.js";
import { tryLoadNative } from "./native.js";
import { requestContextOf, ServerRequest } from "./request.js";
import { UwsResponse } from "./response.js";
import type {
  Addr,
  DenoHandler,
  ErrorHandler,
  FetchHandler,
  NetAddr,
  ReloadOptions,
  ServeHandlerInfo,
  ServerLike,
  SocketAddress,
} from "./types.js";
import { uws, type HttpRequest, type HttpResponse, type TemplatedApp, type us_listen_socket } from "./uws.js";
import { badResponseError, writeResponse } from "./writer.js";
import { networkInterfaces } from "node:os";

/** Everything `serve()` resolved and validated. */
export interface ResolvedOptions {
  style: "bun" | "deno";
  fetch: FetchHandler | null;
  handler: DenoHandler | null;
  error: ErrorHandler | null;
  port: number;
  hostname: string;
  reusePort: boolean;
  maxRequestBodySize: number;
  maxHeaderSize: number;
  development: boolean;
  id: string;
  onListen: ((addr: NetAddr) => void) | null;
  signal: AbortSignal | null;
}

/** The handlers a request is dispatched with; swapped whole by reload(), kept by in-flight requests. */
interface Handlers {
  fetch: FetchHandler | null;
  handler: DenoHandler | null;
  error: ErrorHandler | null;
}

const LISTEN_EXCLUSIVE_PORT = 1;
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
  #timed: Set<RequestContext>;
  #timer: ReturnType<typeof setInterval> | null;
  #refed: boolean;
  readonly maxRequestBodySize: number;

  constructor(options: ResolvedOptions) {
    this.#options = options;
    this.#handlers = { fetch: options.fetch, handler: options.handler, error: options.error };
    this.#pending = 0;
    this.#stopping = null;
    this.#stopped = false;
    this.#timed = new Set();
    this.#timer = null;
    this.#refed = true;
    this.maxRequestBodySize = options.maxRequestBodySize;
    let resolveStopped!: () => void;
    this.#finished = new Promise<void>((resolve) => {
      resolveStopped = resolve;
    });
    this.#resolveStopped = resolveStopped;

    this.#app = uws.App();
    this.#app.any("/*", (res, req) => this.#onRequest(res, req));
    this.#listenSocket = null;
    this.#port = 0;
    this.#hostname = options.hostname;
    this.#listen();
    const displayHost = WILDCARD_HOSTS.has(this.#hostname) ? "localhost" : this.#hostname;
    const urlHost = displayHost.includes(":") && !displayHost.startsWith("[") ? `[${displayHost}]` : displayHost;
    this.#url = new URL(`http://${urlHost}:${this.#port}/`);
    this.#fallbackOrigin = `http://${urlHost}:${this.#port}`;

    if (options.signal !== null) {
      if (options.signal.aborted) void this.stop();
      else options.signal.addEventListener("abort", () => void this.stop(), { once: true });
    }
    if (options.onListen !== null) {
      options.onListen({ transport: "tcp", hostname: this.#hostname, port: this.#port });
    } else if (options.style === "deno") {
      // Deno announces where it listens unless onListen is given.
      console.log(`Listening on ${this.#url.href}`);
    }
  }

  /** Binds synchronously (uWS calls back before listen() returns), so `port` is right at once. */
  #listen(): void {
    const { hostname, port, reusePort } = this.#options;
    let socket: us_listen_socket | false = false;
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
    this.#port = uws.us_socket_local_port(socket);
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
  get pendingRequests(): number {
    return this.#pending;
  }
  /** Bun's counter of open WebSockets: always 0 until this core serves WebSockets. */
  get pendingWebSockets(): number {
    return 0;
  }
  get addr(): Addr {
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
    if (this.#listenSocket !== null) {
      uws.us_listen_socket_close(this.#listenSocket);
      this.#listenSocket = null;
    }
    if (this.#stopped) return Promise.resolve();
    if (closeActiveConnections) {
      this.#closeEverything();
      return this.#finished;
    }
    if (this.#stopping === null) {
      this.#stopping = this.#finished;
      if (this.#pending === 0) this.#closeEverything();
    }
    return this.#stopping;
  }

  /** Deno's name for a graceful stop. */
  shutdown(): Promise<void> {
    return this.stop(false);
  }

  /** Closes every socket of the app (idle keep-alive ones included) and settles `finished`. */
  #closeEverything(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    // app.close() fires onAborted for every open request, which settles their contexts.
    this.#app.close();
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#resolveStopped();
  }

  reload(options: ReloadOptions): void {
    if (typeof options !== "object" || options === null) {
      throw uwserveError(TypeError, "UWSERVE_ERR_INVALID_OPTION", "uwserve: reload() takes an options object ({ fetch, error })");
    }
    const next: Handlers = { ...this.#handlers };
    if (options.fetch !== undefined) {
      if (typeof options.fetch !== "function") throw uwserveError(TypeError, "UWSERVE_ERR_INVALID_OPTION", 'uwserve: reload option "fetch" must be a function');
      next.fetch = options.fetch;
      next.handler = null;
    }
    if (options.error !== undefined) {
      if (typeof options.error !== "function") throw uwserveError(TypeError, "UWSERVE_ERR_INVALID_OPTION", 'uwserve: reload option "error" must be a function');
      next.error = options.error;
    }
    for (const key of Object.keys(options)) {
      if (key !== "fetch" && key !== "error") {
        throw uwserveError(
          TypeError,
          key === "routes" || key === "static" || key === "websocket" ? "UWSERVE_ERR_NOT_SUPPORTED" : "UWSERVE_ERR_INVALID_OPTION",
          `uwserve: reload() cannot change "${key}" (it swaps fetch and error)`,
        );
      }
    }
    // In-flight requests captured the previous object; new ones see this one.
    this.#handlers = next;
  }

  /** Runs the handler without the network, as Bun's `server.fetch()`. */
  async fetch(input: Request | string | URL, init?: RequestInit): Promise<Response> {
    const request =
      input instanceof NativeRequest && init === undefined
        ? input
        : new NativeRequest(typeof input === "string" ? new URL(input, this.#url) : input, init);
    const handlers = this.#handlers;
    let response: unknown;
    try {
      response = await this.#callHandler(handlers, request, null);
      if (!isSendable(response)) throw badResponseError(response);
      return response as Response;
    } catch (err) {
      return this.#errorResponse(handlers, err);
    }
  }

  requestIP(request: Request): SocketAddress | null {
    const ctx = requestContextOf(request) as RequestContext | undefined;
    if (ctx === undefined || ctx.aborted || ctx.finished) return null;
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
    if (this.#timer === null) {
      this.#timer = setInterval(() => this.#expireTimeouts(), 250);
      this.#timer.unref();
    }
  }

  #expireTimeouts(): void {
    const now = Date.now();
    for (const ctx of this.#timed) {
      if (ctx.deadline !== 0 && ctx.deadline <= now) {
        this.#timed.delete(ctx);
        ctx.abortConnection("request timed out");
      }
    }
    if (this.#timed.size === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
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
    if (this.#listenSocket === null) return;
    const native = tryLoadNative();
    if (native === null) {
      process.emitWarning(
        "uwserve: ref()/unref() need the native addon, which is not built; the server keeps the process alive. Run `npm rebuild uwserve`.",
        { code: "UWSERVE_NATIVE_UNAVAILABLE" },
      );
      return;
    }
    native.setListenRef(this.#port, null, ref);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop(true);
  }
  [Symbol.dispose](): void {
    void this.stop(true);
  }

  // ---- the request bridge ---------------------------------------------------------------

  #onRequest(res: HttpResponse, req: HttpRequest): void {
    const { maxHeaderSize, maxRequestBodySize } = this.#options;
    // Copy everything now: `req` is invalid after this callback returns (H1).
    const method = req.getCaseSensitiveMethod();
    const path = req.getUrl();
    const query = req.getQuery() ?? "";
    const head = scanHead(req, method.length + path.length + query.length + 12);
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

    const isHead = method === "HEAD" || method === "head";
    const ctx = new RequestContext(res, this, isHead);
    res.onAborted(ctx.onAborted);
    const hasBody = (declaredLength > 0 || chunked) && !isHead && method !== "GET" && method !== "get";
    const body = hasBody ? ctx.acceptBody() : null;

    const request = new ServerRequest(method, path, query, rawHeaders, host, this.#fallbackOrigin, body, ctx);
    ctx.request = request;
    this.#pending++;
    const handlers = this.#handlers;

    let result: unknown;
    try {
      result = this.#callHandler(handlers, request as unknown as Request, ctx);
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
    return handlers.handler!(request, denoInfo(ctx));
  }

  #respond(ctx: RequestContext, handlers: Handlers, response: unknown): void {
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
    const page = this.#options.development && !plain ? developmentErrorPage(err) : null;
    const response = new UwsResponse(page ? page.body : PRODUCTION_ERROR_BODY, {
      status: 500,
      headers: { "content-type": page ? page.type : "text/plain;charset=utf-8" },
    });
    writeResponse(ctx, response);
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
    const page = this.#options.development ? developmentErrorPage(err) : null;
    return new UwsResponse(page ? page.body : PRODUCTION_ERROR_BODY, {
      status: 500,
      headers: { "content-type": page ? page.type : "text/plain;charset=utf-8" },
    });
  }

  /** ContextOwner: called exactly once per request. */
  requestFinished(ctx: RequestContext): void {
    this.#pending--;
    if (ctx.deadline !== 0) this.#timed.delete(ctx);
    if (this.#stopping !== null && this.#pending === 0) {
      // Not now: this runs inside the cork that wrote the last response, and closing the app
      // here would close its socket before uWS flushes that response on uncork.
      setImmediate(() => {
        if (this.#pending === 0) this.#closeEverything();
      });
    }
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

/** Decodes uWS's remote address; IPv4-mapped IPv6 addresses are reported as IPv4. */
function remoteAddress(res: HttpResponse): SocketAddress {
  let address = Buffer.from(res.getRemoteAddressAsText()).toString("latin1");
  if (address.startsWith("::ffff:") && address.includes(".")) address = address.slice(7);
  return { address, family: address.includes(":") ? "IPv6" : "IPv4", port: 0 };
}

function denoInfo(ctx: RequestContext | null): ServeHandlerInfo {
  const address = ctx !== null ? remoteAddress(ctx.res) : { address: "127.0.0.1", port: 0 };
  return {
    remoteAddr: { transport: "tcp", hostname: address.address, port: address.port },
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
