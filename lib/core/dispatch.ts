/**
 * The request pipeline both engines share: after an engine has read a request (method, path,
 * headers, the matched route), this checks it, answers static routes, 404 and 405, builds the
 * request's context and Request, calls the handler, and writes what it returns, with the
 * request-time error policy (`error` hook, development page, 500). `server.fetch()` runs the
 * same routing and error policy without the network.
 */
import type { HeadScan } from "./_head.js";
import { RequestContext, type ContextOwner } from "./context.js";
import { createServerRequest, NO_PARAMS } from "./request.js";
import { compileRoutes, matchRoute, type Route, type RouteTable, type RouteTarget } from "./router.js";
import { UwsResponse } from "./response.js";
import type { StaticRoute } from "./static-route.js";
import type { DenoHandler, ErrorHandler, FetchHandler, ServeHandlerInfo, ServerLike, SocketAddress, UnixAddr } from "../types.js";
import { performUpgrade, type Handshake } from "../websocket/upgrade.js";
import type { WebSocketHub } from "../websocket/websocket-hub.js";
import { badResponseError, writeResponse } from "./writer.js";
import { endPlain, internalErrorResponse, isSendable, METHOD_NOT_ALLOWED_BODY, NOT_FOUND_BODY, refusedUpgradeResponse } from "./own-responses.js";
import type { Exchange } from "./exchange.js";
import { isPromiseLike } from "./_promise.js";
import type { RequestObserver } from "../observability/observer.js";

/** The handlers a request is dispatched with; swapped whole by reload(), kept by in-flight requests. */
export interface Handlers {
  fetch: FetchHandler | null;
  handler: DenoHandler | null;
  error: ErrorHandler | null;
  routes: RouteTable | null;
}

/** What the pipeline needs from the server and its engine. */
export interface DispatchHost extends ContextOwner {
  /** A graceful stop is under way (set by the server). */
  stopping: boolean;
  /** WebSockets and pub/sub: the engine's hub (null until the engine exists). */
  hub: WebSocketHub | null;
  /** Deno's upgradeWebSocket(): the engine's hub. */
  webSocketHub(): WebSocketHub;
  /** `this` and the second argument of handlers (the public Server). */
  readonly publicServer: ServerLike;
  readonly development: boolean;
  readonly maxHeaderSize: number;
  /** Set for a unix socket listener (Deno's remoteAddr names it). */
  readonly unixPath: string | null;
  /** Watch every upload's idle time (else only those the engine can't time itself). */
  watchesAllUploads: boolean;
  /** Counts a request that reached its handler (requestFinished uncounts it). */
  requestStarted(): void;
  /** Answers a request refused before its handler runs, then closes the connection. */
  refuse(exchange: Exchange, status: string, body: string): void;
  remoteAddress(exchange: Exchange): SocketAddress;
  /** The request's HTTP version ("1.1", "1.0", "2"). */
  protocolVersion(exchange: Exchange): string;
  /** Telemetry, the access log and the diagnostics channel (set once the server exists). */
  observer: RequestObserver | null;
}

export class Dispatcher {
  handlers: Handlers;
  readonly #host: DispatchHost;

  constructor(host: DispatchHost, handlers: Handlers) {
    this.#host = host;
    this.handlers = handlers;
  }

  /** A request now would be watched: engines then keep a static route's headers too. */
  watching(): boolean {
    return this.#host.observer!.watching();
  }

  /**
   * Runs one request an engine has read, synchronously inside the engine's callback: the
   * matched route (null: none), its target for this method and decoded parameters, the
   * scanned head, and the origin for Request URLs without a Host. Positional, so the hot path
   * allocates no argument object.
   */
  dispatch(
    res: Exchange,
    handlers: Handlers,
    method: string,
    path: string,
    query: string,
    head: Readonly<HeadScan>,
    route: Route | null,
    target: RouteTarget | null,
    params: Record<string, string>,
    handshake: Handshake | null,
    fallbackOrigin: string,
  ): void {
    const host = this.#host;
    const { rawHeaders, headerBytes, hosts, contentLength, conflictingLength, chunked } = head;
    const stopping = host.stopping;

    if (headerBytes > host.maxHeaderSize) {
      host.refuse(res, "431 Request Header Fields Too Large", "Request Header Fields Too Large");
      return;
    }
    if (hosts > 1) {
      // RFC 9112 §3.2: more than one Host is a 400; picking one would let two parties disagree.
      host.refuse(res, "400 Bad Request", "Bad Request: more than one Host header");
      return;
    }
    let declaredLength = 0;
    if (contentLength !== "") {
      declaredLength = /^\d{1,16}$/.test(contentLength) ? Number(contentLength) : -1;
      if (declaredLength < 0 || conflictingLength) {
        host.refuse(res, "400 Bad Request", "Bad Request: invalid Content-Length");
        return;
      }
      if (declaredLength > host.maxRequestBodySize) {
        // Refuse before reading a byte; closing lets the client stop sending (H21).
        host.refuse(res, "413 Payload Too Large", "Payload Too Large");
        return;
      }
    }
    const isHead = method === "HEAD";
    // Watched requests (telemetry, access log, channel) all go through a context below.
    const observer = host.observer!;
    const watched = observer.watching();
    if (!watched) {
      if (target !== null && target.kind === "static" && target.route.ready === null) {
        // Static: no Request, no context, no handler call; the bytes were prepared at serve().
        (target as { route: StaticRoute }).route.write(res, isHead, stopping);
        return;
      }
      if (route !== null && target === null && !hasFallback(handlers)) {
        res.writeStatus("405 Method Not Allowed").writeHeader("allow", route.allow);
        endPlain(res, "Method Not Allowed", isHead, stopping);
        return;
      }
      if (route === null && !hasFallback(handlers)) {
        res.writeStatus("404 Not Found");
        endPlain(res, "Not Found", isHead, stopping);
        return;
      }
    }

    const ctx = new RequestContext(res, host, isHead);
    ctx.handshake = handshake;
    res.onAborted(ctx.onAborted);
    const hasBody = (declaredLength > 0 || chunked) && !isHead && method !== "GET";
    const body = hasBody ? ctx.acceptBody() : null;
    if (body !== null && host.watchesAllUploads) host.watchUpload(ctx);

    const request = createServerRequest(method, path, query, rawHeaders, head.host, fallbackOrigin, body, ctx, params);
    ctx.request = request;
    host.requestStarted();

    let result: unknown;
    try {
      if (watched) {
        const seen = { method, path, query, route: route?.pattern ?? null, rawHeaders, host: head.host, remote: "", protocol: host.protocolVersion(res) };
        const observation = observer.begin(request as unknown as Request, seen, res);
        ctx.observation = observation;
        result = observation.run(() => this.#call(handlers, route, target, request as unknown as Request, ctx));
      } else {
        result = this.#call(handlers, route, target, request as unknown as Request, ctx);
      }
    } catch (err) {
      this.fail(ctx, handlers, err);
      ctx.corked = false;
      return;
    }
    if (isPromiseLike(result)) {
      ctx.corked = false;
      result.then(
        (response) => this.#respond(ctx, handlers, response),
        (err) => this.fail(ctx, handlers, err),
      );
      return;
    }
    this.#respond(ctx, handlers, result);
    ctx.corked = false;
  }

  /** The handler's answer: the route's handler, a static route's Response, the fallback, 404 or 405. */
  #call(handlers: Handlers, route: Route | null, target: RouteTarget | null, request: Request, ctx: RequestContext): unknown {
    const host = this.#host;
    if (target !== null) {
      if (target.kind === "handler") return target.handler.call(host.publicServer, request, host.publicServer);
      const ready = target.route.ready;
      return ready === null ? target.route.response() : ready.then(() => target.route.response());
    }
    if (hasFallback(handlers)) return this.#callHandler(handlers, request, ctx);
    // Only a watched request gets here without a handler (the others were answered above):
    // the same bytes as endPlain's (no content-type).
    return route !== null
      ? new UwsResponse(METHOD_NOT_ALLOWED_BODY, { status: 405, headers: { allow: route.allow } })
      : new UwsResponse(NOT_FOUND_BODY, { status: 404 });
  }

  /** Runs the handler without the network, as Bun's `server.fetch()`; routes apply too. */
  async fetch(request: Request): Promise<Response> {
    const handlers = this.handlers;
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
        return target.handler.call(this.#host.publicServer, request, this.#host.publicServer);
      }
      if (!hasFallback(handlers)) {
        return new UwsResponse("Method Not Allowed", { status: 405, headers: { allow: matched.route.allow } });
      }
    }
    if (!hasFallback(handlers)) return new UwsResponse("Not Found", { status: 404 });
    return this.#callHandler(handlers, request, null);
  }

  #callHandler(handlers: Handlers, request: Request, ctx: RequestContext | null): unknown {
    if (handlers.fetch !== null) return handlers.fetch.call(this.#host.publicServer, request, this.#host.publicServer);
    return handlers.handler!(request, this.#denoInfo(ctx));
  }

  #respond(ctx: RequestContext, handlers: Handlers, response: unknown): void {
    // After server.upgrade() the connection is a WebSocket; what the handler returns is ignored.
    if (ctx.upgraded) return;
    const pending = ctx.pendingUpgrade;
    if (pending !== null && response === pending.response) {
      if (ctx.aborted) return;
      performUpgrade(ctx, this.#host.hub!, pending.socket.socket, undefined, pending.socket.protocol);
      return;
    }
    if (response === undefined && ctx.refusedUpgrade !== 0) response = refusedUpgradeResponse(ctx.refusedUpgrade);
    try {
      const written = writeResponse(ctx, response);
      if (written !== undefined) written.catch((err) => this.fail(ctx, handlers, err));
    } catch (err) {
      this.fail(ctx, handlers, err);
    }
  }

  /** A handler threw or rejected, or its Response couldn't be written. */
  fail(ctx: RequestContext, handlers: Handlers, err: unknown): void {
    ctx.observation?.failed(err);
    if ((err as { afterHeaders?: boolean } | null)?.afterHeaders === true) {
      // The body failed after the head went out: the writer cut the connection (the client
      // sees a truncated response). The error hook observes it; what it returns can't be sent.
      this.#observeLateError(handlers, err);
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
      result = error.call(this.#host.publicServer, err);
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
        const written = writeResponse(ctx, response);
        if (written !== undefined) {
          written.catch((e) => {
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

  /** Reports an error that came after the response head: to the error hook when there is one, else the console. */
  #observeLateError(handlers: Handlers, err: unknown): void {
    const error = handlers.error;
    if (error === null) {
      console.error("uwserve: a response body failed after its headers were sent:", err);
      return;
    }
    const report = (secondary: unknown): void => console.error("uwserve: the error hook failed on an error after the headers were sent:", secondary);
    try {
      const result = error.call(this.#host.publicServer, err);
      if (isPromiseLike(result)) result.then(undefined, report);
    } catch (secondary) {
      report(secondary);
    }
  }

  /** A 500 uwserve writes itself: a readable page in development, a plain body otherwise. */
  #sendInternalError(ctx: RequestContext, err: unknown, plain = false): void {
    if (ctx.aborted || ctx.responded) return;
    writeResponse(ctx, internalErrorResponse(err, this.#host.development && !plain));
  }

  /** For server.fetch(): the same error policy, as a Response. */
  async #errorResponse(handlers: Handlers, err: unknown): Promise<Response> {
    if (handlers.error !== null) {
      try {
        const response = await handlers.error.call(this.#host.publicServer, err);
        if (isSendable(response)) return response as Response;
      } catch (secondary) {
        console.error(secondary);
      }
    } else {
      console.error(err);
    }
    return internalErrorResponse(err, this.#host.development);
  }

  #denoInfo(ctx: RequestContext | null): ServeHandlerInfo {
    const unixPath = this.#host.unixPath;
    let remoteAddr: ServeHandlerInfo["remoteAddr"];
    if (unixPath !== null) {
      remoteAddr = { transport: "unix", path: unixPath } satisfies UnixAddr;
    } else {
      const address = ctx !== null ? this.#host.remoteAddress(ctx.res) : { address: "127.0.0.1", port: 0 };
      remoteAddr = { transport: "tcp", hostname: address.address, port: address.port };
    }
    return {
      remoteAddr,
      get completed() {
        return ctx !== null ? ctx.completed() : Promise.resolve();
      },
    };
  }
}

/** The target for `method`: the route's own, GET's for HEAD (sent without a body), or null. */
export function targetFor(route: Route, method: string): RouteTarget | null {
  if (route.all !== null) return route.all;
  const methods = route.methods!;
  return methods.get(method) ?? (method === "HEAD" ? (methods.get("GET") ?? null) : null);
}

export function hasFallback(handlers: Handlers): boolean {
  return handlers.fetch !== null || handlers.handler !== null;
}

/** What routeInJs answers for no match: one shared object, read at once by every caller. */
const NO_ROUTE: { readonly route: Route | null; readonly params: Record<string, string> } = Object.freeze({ route: null, params: NO_PARAMS });

/** The route a path matches in JS (the node engine; odd paths and reloads on the uws engine). */
export function routeInJs(routes: RouteTable | null, path: string): { readonly route: Route | null; readonly params: Record<string, string> } {
  const matched = routes !== null ? matchRoute(routes, path) : null;
  return matched === null ? NO_ROUTE : matched;
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

