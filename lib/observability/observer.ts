/**
 * What a server observes of its requests: the diagnostics channel, OpenTelemetry (`telemetry`)
 * and the access log (`accessLog`). The pipeline asks `watching()` once per request (false
 * unless one of them is on: then nothing below runs); a watched request gets an Observation
 * that runs its handler in the trace context and reports its end once.
 */
import type * as Api from "@opentelemetry/api";
import type { RequestContext } from "../core/context.js";
import type { ServerLike } from "../types.js";
import { AccessLog, type ResolvedAccessLog } from "./access-log.js";
import { requestChannel, requestsObserved, type RequestChannelMessage } from "./channels.js";
import { conventionMethod, Telemetry } from "./telemetry.js";
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
  /** The client's address ("" for a unix socket). */
  remote: string;
  /** "1.1", "1.0", "2". */
  protocol: string;
}

export class RequestObserver {
  readonly telemetry: Telemetry | null;
  readonly accessLog: AccessLog | null;
  readonly webSockets: WebSocketObserver;
  readonly #always: boolean;
  readonly #server: ServerLike;
  readonly #engine: "uws" | "node";
  /** The engine's ("https" under TLS); set once the engine exists. */
  scheme: "http" | "https";

  constructor(options: { telemetry: boolean; accessLog: ResolvedAccessLog | null }, server: ServerLike, engine: "uws" | "node") {
    this.telemetry = options.telemetry ? new Telemetry() : null;
    this.accessLog = options.accessLog !== null ? new AccessLog(options.accessLog) : null;
    this.#always = this.telemetry !== null || this.accessLog !== null;
    this.#server = server;
    this.#engine = engine;
    this.scheme = "http";
    this.webSockets = new WebSocketObserver(server, this.telemetry);
  }

  /** Whether this request is observed at all (false: the pipeline takes its fast paths). */
  watching(): boolean {
    return this.#always || requestsObserved();
  }

  begin(request: Request, seen: ObservedRequest): Observation {
    return new Observation(this, request, seen);
  }

  /** Attributes of the span and of the metrics, from what came in. */
  startAttributes(seen: ObservedRequest): { span: Api.Attributes; metric: Api.Attributes; active: Api.Attributes } {
    const method = conventionMethod(seen.method);
    const { address, port } = splitHost(seen.host, this.scheme === "https" ? 443 : 80);
    const active: Api.Attributes = { "http.request.method": method, "url.scheme": this.scheme };
    const metric: Api.Attributes = { ...active, "network.protocol.version": seen.protocol };
    if (seen.route !== null) metric["http.route"] = seen.route;
    const span: Api.Attributes = { ...metric, "url.path": seen.path };
    if (method === "_OTHER") span["http.request.method_original"] = seen.method;
    if (seen.query !== "") span["url.query"] = seen.query;
    if (address !== "") {
      span["server.address"] = address;
      span["server.port"] = port;
    }
    if (seen.remote !== "") span["client.address"] = seen.remote;
    const agent = header(seen.rawHeaders, "user-agent");
    if (agent !== undefined) span["user_agent.original"] = agent;
    return { span, metric, active };
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
  readonly #span: Api.Span | null;
  readonly #context: Api.Context | null;
  readonly #metric: Api.Attributes | null;
  readonly #active: Api.Attributes | null;
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
    const telemetry = observer.telemetry;
    if (telemetry === null) {
      this.#span = this.#context = this.#metric = this.#active = null;
      return;
    }
    const attributes = observer.startAttributes(seen);
    const method = attributes.active["http.request.method"] as string;
    const name = method === "_OTHER" ? "HTTP" : seen.route !== null ? `${method} ${seen.route}` : method;
    const parent = telemetry.extract(seen.rawHeaders);
    this.#span = telemetry.startServerSpan(name, attributes.span, parent);
    this.#context = telemetry.api.trace.setSpan(parent, this.#span);
    this.#metric = attributes.metric;
    this.#active = attributes.active;
    telemetry.http.active.add(1, this.#active);
  }

  /** Runs the handler with the request's span active and the channel's stores entered. */
  run<T>(fn: () => T): T {
    const message = this.#message;
    const inStores = message !== null ? () => requestChannel.start.runStores(message, fn) : fn;
    const context = this.#context;
    return context !== null ? this.#observer.telemetry!.api.context.with(context, inStores) : inStores();
  }

  /** The handler threw or rejected, or the body failed: reported once (the first error). */
  failed(err: unknown): void {
    if (this.#failed || this.#ended) return;
    this.#failed = true;
    this.#error = err;
    if (this.#span !== null) this.#span.recordException(err instanceof Error ? err : String(err));
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
    const span = this.#span;
    if (span !== null) {
      const telemetry = this.#observer.telemetry!;
      const metric = this.#metric!;
      // error.type: "aborted" for a client that left before the response was complete, else
      // the status of a 5xx (4xx is the client's error, not the server's).
      const errorType = aborted ? "aborted" : status >= 500 ? String(status) : null;
      if (status !== 0) metric["http.response.status_code"] = status;
      if (errorType !== null) metric["error.type"] = errorType;
      span.setAttributes(metric);
      if (errorType !== null) {
        const reason = aborted ? "client disconnected" : this.#failed && this.#error instanceof Error ? this.#error.message : undefined;
        span.setStatus({ code: telemetry.api.SpanStatusCode.ERROR, message: reason });
      }
      span.end();
      const http = telemetry.http;
      http.active.add(-1, this.#active!);
      http.duration.record(duration / 1000, metric);
      http.requestSize.record(requestBytes, metric);
      http.responseSize.record(responseBytes, metric);
    }
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

/** The first value of `name` (lower case) in a flat header list. */
function header(rawHeaders: readonly string[], name: string): string | undefined {
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i] === name) return rawHeaders[i + 1];
  return undefined;
}

/** "example.com:8080" → address and port; "[::1]:3000" → "::1"; no port: the scheme's. */
export function splitHost(host: string, defaultPort: number): { address: string; port: number } {
  if (host === "") return { address: "", port: defaultPort };
  const close = host.startsWith("[") ? host.indexOf("]") : -1;
  const colon = host.indexOf(":", close === -1 ? 0 : close);
  const address = close !== -1 ? host.slice(1, close) : colon === -1 ? host : host.slice(0, colon);
  const port = colon === -1 ? defaultPort : Number(host.slice(colon + 1));
  return { address, port: Number.isInteger(port) && port > 0 && port < 65536 ? port : defaultPort };
}
