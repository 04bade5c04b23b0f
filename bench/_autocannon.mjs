// Child-process wrapper around autocannon's programmatic API, printing wrk.lua's JSON shape (fallback load generator).
import autocannon from "autocannon";

const { url, connections, seconds, method, body } = JSON.parse(process.argv[2]);
const result = await autocannon({
  url,
  connections,
  duration: seconds,
  method: method ?? "GET",
  body,
  headers: body ? { "content-type": "application/json" } : undefined,
});

// autocannon reports latency in milliseconds; wrk.lua in microseconds.
const ms = (v) => Math.round((v ?? 0) * 1000);
console.log("LOAD_JSON " + JSON.stringify({
  requests: result.requests.total,
  duration_us: Math.round(result.duration * 1e6),
  bytes: result.throughput.total,
  errors: { connect: 0, read: result.errors - result.timeouts, write: 0, status: result.non2xx, timeout: result.timeouts },
  latency_us: { mean: ms(result.latency.mean), p50: ms(result.latency.p50), p90: ms(result.latency.p90), p99: ms(result.latency.p99), max: ms(result.latency.max) },
}));
