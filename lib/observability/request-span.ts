/**
 * One request's OpenTelemetry side: its SERVER span (started before the handler, in the
 * caller's trace, active while the handler runs) and its http.server.* measurements, made when
 * the response is over. Attribute objects are built whole, in one shape, and only what the end
 * adds is set on the span then: the SDK's attribute handling is most of the cost.
 */
import type * as Api from "@opentelemetry/api";
import type { ActiveRequests, Telemetry } from "./telemetry.js";
import { conventionMethod } from "./telemetry.js";
import type { ObservedRequest } from "./observer.js";

export class RequestSpan {
  readonly span: Api.Span;
  /** The parent context with this span set: what the handler runs in. */
  readonly context: Api.Context;
  readonly #telemetry: Telemetry;
  readonly #method: string;
  readonly #scheme: string;
  readonly #route: string | null;
  readonly #protocol: string;
  readonly #active: ActiveRequests;

  constructor(telemetry: Telemetry, source: ObservedRequest, scheme: "http" | "https") {
    const method = conventionMethod(source.method);
    const host = splitHost(source.host, scheme === "https" ? 443 : 80);
    const route = source.route;
    const name = method === "_OTHER" ? "HTTP" : route !== null ? `${method} ${route}` : method;
    // Undefined values are left out by the SDK.
    const attributes: Api.Attributes = {
      "http.request.method": method,
      "http.request.method_original": method === "_OTHER" ? source.method : undefined,
      "url.scheme": scheme,
      "url.path": source.path,
      "url.query": source.query !== "" ? source.query : undefined,
      "http.route": route ?? undefined,
      "network.protocol.version": source.protocol,
      "server.address": host !== null ? host.address : undefined,
      "server.port": host !== null ? host.port : undefined,
      "user_agent.original": header(source.rawHeaders, "user-agent"),
    };
    const parent = telemetry.extract(source.rawHeaders);
    this.span = telemetry.tracer.startSpan(name, { kind: telemetry.api.SpanKind.SERVER, attributes }, parent);
    this.context = telemetry.api.trace.setSpan(parent, this.span);
    this.#telemetry = telemetry;
    this.#method = method;
    this.#scheme = scheme;
    this.#route = route;
    this.#protocol = source.protocol;
    this.#active = telemetry.activeRequests(method, scheme);
    this.#active.count++;
  }

  failed(err: unknown): void {
    this.span.recordException(err instanceof Error ? err : String(err));
  }

  /**
   * The response is over: `status` 0 when none was sent. error.type is "aborted" for a client
   * that left before the response was complete, else the status of a 5xx (a 4xx is the
   * client's error, not the server's).
   */
  finished(status: number, aborted: boolean, seconds: number, requestBytes: number, responseBytes: number, error: unknown): void {
    this.#active.count--;
    const errorType = aborted ? "aborted" : status >= 500 ? String(status) : undefined;
    const span = this.span;
    if (status !== 0) span.setAttribute("http.response.status_code", status);
    if (errorType !== undefined) {
      span.setAttribute("error.type", errorType);
      const message = aborted ? "client disconnected" : error instanceof Error ? error.message : undefined;
      span.setStatus({ code: this.#telemetry.api.SpanStatusCode.ERROR, message });
    }
    span.end();
    const http = this.#telemetry.http;
    const attributes: Api.Attributes = { "http.request.method": this.#method, "url.scheme": this.#scheme, "network.protocol.version": this.#protocol };
    if (this.#route !== null) attributes["http.route"] = this.#route;
    if (status !== 0) attributes["http.response.status_code"] = status;
    if (errorType !== undefined) attributes["error.type"] = errorType;
    http.duration.record(seconds, attributes);
    http.requestSize.record(requestBytes, attributes);
    http.responseSize.record(responseBytes, attributes);
  }
}

/** The first value of `name` (lower case) in a flat header list. */
export function header(rawHeaders: readonly string[], name: string): string | undefined {
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i] === name) return rawHeaders[i + 1];
  return undefined;
}

/** "example.com:8080" → address and port; "[::1]:3000" → "::1"; no port: the scheme's; "": null. */
export function splitHost(host: string, defaultPort: number): { address: string; port: number } | null {
  if (host === "") return null;
  const close = host.startsWith("[") ? host.indexOf("]") : -1;
  const colon = host.indexOf(":", close === -1 ? 0 : close);
  const address = close !== -1 ? host.slice(1, close) : colon === -1 ? host : host.slice(0, colon);
  const port = colon === -1 ? defaultPort : Number(host.slice(colon + 1));
  return { address, port: Number.isInteger(port) && port > 0 && port < 65536 ? port : defaultPort };
}
