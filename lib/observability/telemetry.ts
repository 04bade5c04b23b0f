/**
 * OpenTelemetry through `@opentelemetry/api` (an optional peer): whatever tracer and meter
 * providers the application registered, none when it registered none (the API's no-ops).
 * The names and attributes follow the stable HTTP semantic conventions; WebSocket instruments
 * are uwserve's own (`uwserve.websocket.*`), as the conventions define none.
 */
import { createRequire } from "node:module";
import type * as Api from "@opentelemetry/api";
import { loadPeer } from "../peer.js";

type OtelApi = typeof Api;

/** The instrumentation scope: "uwserve" at this package's version. */
const SCOPE_VERSION = (createRequire(import.meta.url)("../../package.json") as { version: string }).version;

/** The stable conventions' advice for http.server.request.duration (seconds). */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/** The methods the conventions know; any other is "_OTHER" (and its span is named "HTTP"). */
const KNOWN_METHODS = new Set(["CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"]);

export function conventionMethod(method: string): string {
  return KNOWN_METHODS.has(method) ? method : "_OTHER";
}

/** Header lookup in uwserve's flat [name, value, …] list (names lower case): W3C trace context. */
const RAW_HEADERS_GETTER: Api.TextMapGetter<readonly string[]> = {
  get(carrier, key) {
    for (let i = 0; i < carrier.length; i += 2) if (carrier[i] === key) return carrier[i + 1];
    return undefined;
  },
  keys(carrier) {
    const keys: string[] = [];
    for (let i = 0; i < carrier.length; i += 2) keys.push(carrier[i]!);
    return keys;
  },
};

export interface HttpInstruments {
  readonly duration: Api.Histogram;
  readonly requestSize: Api.Histogram;
  readonly responseSize: Api.Histogram;
}

/** Requests in flight with one method and scheme: http.server.active_requests reads `count`. */
export interface ActiveRequests {
  readonly attributes: Api.Attributes;
  count: number;
}

export interface WebSocketInstruments {
  readonly connections: Api.UpDownCounter;
  readonly received: Api.Counter;
  readonly sent: Api.Counter;
  readonly deliveries: Api.Counter;
  readonly drops: Api.Counter;
}

/**
 * Requests in flight in this thread, by method and scheme, over all its servers (the metric has
 * no per-server attribute). An observable instrument reads them when metrics are collected:
 * a +1 and a -1 record per request, each hashing its attributes, would cost more than the
 * request's other measurements together.
 */
const ACTIVE = new Map<string, ActiveRequests>();
/** Meter providers that already have the observable instrument reading ACTIVE. */
const OBSERVED_PROVIDERS = new WeakSet<Api.MeterProvider>();

/** One server's tracer and instruments. */
export class Telemetry {
  readonly api: OtelApi;
  readonly tracer: Api.Tracer;
  #meterProvider: Api.MeterProvider | null;
  #http: HttpInstruments | null;
  #webSocket: WebSocketInstruments | null;

  constructor() {
    this.api = loadPeer<OtelApi>("@opentelemetry/api", "telemetry");
    // A ProxyTracer: it follows a provider registered later.
    this.tracer = this.api.trace.getTracer("uwserve", SCOPE_VERSION);
    this.#meterProvider = null;
    this.#http = null;
    this.#webSocket = null;
  }

  activeRequests(method: string, scheme: string): ActiveRequests {
    const key = scheme === "https" ? method + " s" : method;
    let entry = ACTIVE.get(key);
    if (entry === undefined) {
      entry = { attributes: { "http.request.method": method, "url.scheme": scheme }, count: 0 };
      ACTIVE.set(key, entry);
    }
    return entry;
  }

  /** The W3C (or registered) trace context of the request headers, as the span's parent. */
  extract(rawHeaders: readonly string[]): Api.Context {
    return this.api.propagation.extract(this.api.ROOT_CONTEXT, rawHeaders, RAW_HEADERS_GETTER);
  }

  get http(): HttpInstruments {
    this.#followMeterProvider();
    return this.#http!;
  }

  get webSocket(): WebSocketInstruments {
    this.#followMeterProvider();
    return this.#webSocket!;
  }

  /**
   * The metrics API has no proxy provider: a meter taken before the app registers its
   * provider stays a no-op. So the instruments are (re)made whenever the global provider
   * changed (a pointer comparison per use).
   */
  #followMeterProvider(): void {
    const provider = this.api.metrics.getMeterProvider();
    if (provider === this.#meterProvider) return;
    this.#meterProvider = provider;
    const meter = provider.getMeter("uwserve", SCOPE_VERSION);
    this.#http = {
      duration: meter.createHistogram("http.server.request.duration", {
        unit: "s",
        description: "Duration of HTTP server requests.",
        advice: { explicitBucketBoundaries: DURATION_BUCKETS },
      }),
      requestSize: meter.createHistogram("http.server.request.body.size", { unit: "By", description: "Size of HTTP server request bodies." }),
      responseSize: meter.createHistogram("http.server.response.body.size", { unit: "By", description: "Size of HTTP server response bodies." }),
    };
    if (!OBSERVED_PROVIDERS.has(provider)) {
      OBSERVED_PROVIDERS.add(provider);
      meter
        .createObservableUpDownCounter("http.server.active_requests", { unit: "{request}", description: "Number of active HTTP server requests." })
        .addCallback((result) => {
          for (const entry of ACTIVE.values()) result.observe(entry.count, entry.attributes);
        });
    }
    this.#webSocket = {
      connections: meter.createUpDownCounter("uwserve.websocket.connections", { unit: "{connection}", description: "Open WebSocket connections." }),
      received: meter.createCounter("uwserve.websocket.messages.received", { unit: "{message}", description: "WebSocket messages received." }),
      sent: meter.createCounter("uwserve.websocket.messages.sent", { unit: "{message}", description: "WebSocket messages sent with send()." }),
      deliveries: meter.createCounter("uwserve.websocket.publish.deliveries", {
        unit: "{message}",
        description: "Published messages handed to subscribers of this thread (one per subscriber).",
      }),
      drops: meter.createCounter("uwserve.websocket.drops", { unit: "{message}", description: "WebSocket messages dropped for backpressure." }),
    };
  }
}
