-- wrk script used by bench/run.mjs: an optional request body from the environment, and a
-- done() hook that prints the summary and latency percentiles as one JSON line.
-- Without WRK_BODY the requests are plain GETs. By hand, for the echo scenario:
--   WRK_BODY="$(node -e 'import("./bench/_data.mjs").then((m) => process.stdout.write(m.ECHO_BODY))')" \
--     wrk -t1 -c50 -d3s -s bench/wrk.lua http://127.0.0.1:3000/echo

-- WRK_CLOSE=1: `Connection: close` on every request, so a new connection each time
-- (workers-distribution.mjs's churn load).
if os.getenv("WRK_CLOSE") == "1" then
  wrk.headers["Connection"] = "close"
end

local body = os.getenv("WRK_BODY")
if body ~= nil and body ~= "" then
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

-- Latencies are in microseconds. errors.status counts responses with a status above 399.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'LOAD_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end
