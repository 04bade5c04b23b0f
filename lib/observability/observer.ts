/**
 * What a server observes of its requests: the diagnostics channel, OpenTelemetry (`telemetry`)
 * and the access log (`accessLog`). The pipeline asks `watching()` once per request (false
 * unless one of them is on: then nothing below runs); a watched request gets an Observation
 * that runs its handler in the trace context and reports its end once.
 */
import type { RequestContext } from "../core/context.js";
import type { Exchange } from "../core/exchange.js";
import type { ServerLike } from "../types.js";
import { AccessLog, type ResolvedAccessLog } from "./access-log.js";
import { requestChannel, requestsObserved, type RequestChannelMessage } from "./channels.js";
import { Telemetry } from "./telemetry.js";
import { header, RequestSpan } from "./request-span.js";
import { WebSocketObserver } from "./ws-observer.js";

/** What a watched request is, copied synchronously while the engine's request is valid. */
export interface ObservedRequest {
  method: string;
  path: string;
  query: string;
  /** The matched `routes` pattern, else null. */
  route: string | null;
  /** Flat [name, value, …], names lower case. */
  rawHeaders: readonly string[];
  /** The Host header ("" when none). */
  host: string;
  /** The client's address, once looked up ("" for a unix socket, or when nothing reports it). */
  remote: string;
  /** "1.1", "1.0", "2". */
  protocol: string;
}

export class RequestObserver {
  readonly telemetry: Telemetry | null;
  readonly accessLog: AccessLog | null;
  readonly webSockets: WebSocketObserver;
  readonly #always: boolean;
  /** The client's address ("" on a unix socket): the engine's lookup. */
  readonly #clientAddress: (exchange: Exchange) => string;
  readonly #server: ServerLike;
  readonly #engine: "uws" | "node";
  /** The engine's ("https" under TLS); set once the engine exists. */
  scheme: "http" | "https";

  constructor(
    options: { telemetry: boolean; accessLog: ResolvedAccessLog | null },
    server: ServerLike,
    engine: "uws" | "node",
    clientAddress: (exchange: Exchange) => string,
  ) {
    this.telemetry = options.telemetry ? new Telemetry() : null;
    this.accessLog = options.accessLog !== null ? new AccessLog(options.accessLog) : null;
    this.#always = this.telemetry !== null || this.accessLog !== null;
    this.#clientAddress = clientAddress;
    this.#server = server;
    this.#engine = engine;
    this.scheme = "http";
    this.webSockets = new WebSocketObserver(server, this.telemetry);
  }

  /** Whether this request is observed at all (false: the pipeline takes its fast paths). */
  watching(): boolean {
    return this.#always || requestsObserved();
  }

  /** Starts watching a request; `exchange` only while the engine's callback runs. */
  begin(request: Request, seen: ObservedRequest, exchange: Exchange): Observation {
    const observation = new Observation(this, request, seen);
    // The uWS core's address lookup costs about 1 µs: only for the access log and a span
    // that records (not for an unsampled one, nor for the diagnostics channel).
    if (this.accessLog !== null || observation.recording) {
      seen.remote = this.#clientAddress(exchange);
      observation.clientAddress(seen.remote);
    }
    return observation;
  }

  get server(): ServerLike {
    return this.#server;
  }
  get engine(): "uws" | "node" {
    return this.#engine;
  }

  close(): void {
    this.accessLog?.close();
  }
}

/** One watched request, from its handler's call to the end of its response. */
export class Observation {
  readonly #observer: RequestObserver;
  readonly #seen: ObservedRequest;
  readonly #start: number;
  readonly #message: RequestChannelMessage | null;
  readonly #span: RequestSpan | null;
  #error: unknown;
  #failed: boolean;
  #ended: boolean;

  constructor(observer: RequestObserver, request: Request, seen: ObservedRequest) {
    this.#observer = observer;
    this.#seen = seen;
    this.#start = performance.now();
    this.#error = undefined;
    this.#failed = false;
    this.#ended = false;
    this.#message = requestsObserved()
      ? { request, server: observer.server, engine: observer.engine, route: seen.route, status: 0, requestBodySize: 0, responseBodySize: 0, aborted: false, duration: 0 }
      : null;
    this.#span = observer.telemetry !== null ? new RequestSpan(observer.telemetry, seen, observer.scheme) : null;
  }

  /** The span records (sampled, with an SDK registered). */
  get recording(): boolean {
    return this.#span !== null && this.#span.span.isRecording();
  }

  clientAddress(address: string): void {
    if (address !== "") this.#span?.span.setAttribute("client.address", address);
  }

  /** Runs the handler with the request's span active and the channel's stores entered. */
  run<T>(fn: () => T): T {
    const message = this.#message;
    const inStores = message !== null ? () => requestChannel.start.runStores(message, fn) : fn;
    const span = this.#span;
    return span !== null ? this.#observer.telemetry!.api.context.with(span.context, inStores) : inStores();
  }

  /** The handler threw or rejected, or the body failed: reported once (the first error). */
  failed(err: unknown): void {
    if (this.#failed || this.#ended) return;
    this.#failed = true;
    this.#error = err;
    this.#span?.failed(err);
    const message = this.#message;
    if (message !== null) {
      message.error = err;
      requestChannel.error.publish(message);
    }
  }

  /** The response is fully handed to the socket, or the client left: the request is over. */
  finished(ctx: RequestContext): void {
    if (this.#ended) return;
    this.#ended = true;
    const duration = performance.now() - this.#start;
    const status = ctx.status;
    const aborted = ctx.aborted;
    const requestBytes = ctx.body?.received ?? 0;
    const responseBytes = ctx.bodyBytes;
    const seen = this.#seen;
    this.#observer.accessLog?.add({
      remote: seen.remote,
      method: seen.method,
      path: seen.path,
      query: seen.query,
      protocol: seen.protocol,
      status,
      bytes: responseBytes,
      route: seen.route,
      duration,
      userAgent: header(seen.rawHeaders, "user-agent"),
    });
    this.#span?.finished(status, aborted, duration / 1000, requestBytes, responseBytes, this.#error);
    const message = this.#message;
    if (message !== null) {
      message.status = status;
      message.requestBodySize = requestBytes;
      message.responseBodySize = responseBytes;
      message.aborted = aborted;
      message.duration = duration;
      requestChannel.end.publish(message);
    }
  }
}
