/**
 * The OpenTelemetry SDK as an application registers it, with in-memory exporters: spans as
 * they end, metrics collected on demand. Registered once per test file (the API's globals).
 */
import { context, metrics, propagation, trace, type Attributes } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { MeterProvider, MetricReader, type DataPoint, type Histogram } from "@opentelemetry/sdk-metrics";

class CollectingReader extends MetricReader {
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

export interface Otel {
  spans: InMemorySpanExporter;
  /** Every data point of metric `name` collected now. */
  points(name: string): Promise<Array<DataPoint<number | Histogram>>>;
  /** Spans ended so far whose name is `name`. */
  ended(name?: string): ReadableSpan[];
}

export function registerOtel(): Otel {
  const spans = new InMemorySpanExporter();
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const reader = new CollectingReader();
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  return {
    spans,
    async points(name) {
      const { resourceMetrics } = await reader.collect();
      const out: Array<DataPoint<number | Histogram>> = [];
      for (const scope of resourceMetrics.scopeMetrics) {
        for (const metric of scope.metrics) if (metric.descriptor.name === name) out.push(...(metric.dataPoints as Array<DataPoint<number | Histogram>>));
      }
      return out;
    },
    ended(name) {
      const all = spans.getFinishedSpans();
      return name === undefined ? all : all.filter((s) => s.name === name);
    },
  };
}

/** The data point whose attributes include `match`. */
export function pointWith<T>(points: Array<DataPoint<T>>, match: Attributes): DataPoint<T> | undefined {
  return points.find((p) => Object.entries(match).every(([k, v]) => p.attributes[k] === v));
}
