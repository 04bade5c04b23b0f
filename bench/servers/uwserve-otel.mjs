// uwserve.mjs's server with telemetry on: the OpenTelemetry SDK registered as an app registers
// it (W3C propagation, async context, a tracer provider with a batch processor, a meter
// provider with a reader), exporting to nowhere, so the cell measures what uwserve and the SDK
// spend per request, not an exporter's network. The cost per request is this cell against
// `uwserve` in the same run (README, Observability). BENCH_OTEL splits the cost:
//   both (default)  tracer and meter providers, telemetry on
//   traces, metrics only that provider (the other signal stays the API's no-op), telemetry on
//   api             no provider at all (the API's no-ops), telemetry on: uwserve's own work
//   sdk-only        both providers, telemetry off: what the SDK's presence costs by itself
//   unsampled       both providers, the tracer's sampler drops every span (AlwaysOffSampler)
import { context, metrics, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { AlwaysOffSampler, BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";

const nowhere = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => {} };
class Unread extends MetricReader {
  async onShutdown() {}
  async onForceFlush() {}
}
const variant = process.env.BENCH_OTEL ?? "both";
if (!["both", "traces", "metrics", "api", "sdk-only", "unsampled"].includes(variant)) throw new Error(`BENCH_OTEL=${variant}?`);
if (variant !== "api") {
  const sampler = variant === "unsampled" ? { sampler: new AlwaysOffSampler() } : {};
  if (variant !== "metrics") trace.setGlobalTracerProvider(new BasicTracerProvider({ ...sampler, spanProcessors: [new BatchSpanProcessor(nowhere)] }));
  if (variant !== "traces") metrics.setGlobalMeterProvider(new MeterProvider({ readers: [new Unread()] }));
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
}
process.env.UWSERVE_OTEL = variant === "sdk-only" ? "0" : "1";
await import("./uwserve.mjs");
