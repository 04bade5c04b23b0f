// The scenarios: request to send, connections to load them with, and the response every server must give.
import { request } from "node:http";
import {
  HELLO, JSON_TEXT, ECHO_BODY, ONE_MIB, STREAM_CHUNK, STREAM_CHUNK_COUNT,
} from "./_data.mjs";

// Connections per scenario (wrk -t1 -cN). Small bodies: 50 keeps ~50 requests in flight, enough
// that the server never waits on the network while a single client thread still keeps up; more
// (100–256) measured no faster on 2 cores and only stretched p99 with queueing. 1 MiB bodies:
// 10 connections already keep 10 MiB in flight, which saturates loopback copying; more adds
// queueing and memory (and raw uWS's chunked writes slowed down, not up, at 25–50).
const SMALL = 50;
const LARGE = 10;

const TEXT = /^text\/plain/i;
const JSON_CT = /^application\/json/i;
const BYTES_CT = /^application\/octet-stream/i;

// `routes: true`: served from a `routes` table (bench/_routes.mjs), so only the peers that have one
// (raw uWS, uwserve, Bun) run it; the runner shows "–" for the others.
export const SCENARIOS = [
  { name: "hello", path: "/hello", connections: SMALL, type: TEXT, expect: Buffer.from(HELLO) },
  { name: "json", path: "/json", connections: SMALL, type: JSON_CT, expect: Buffer.from(JSON_TEXT) },
  { name: "echo", path: "/echo", method: "POST", body: ECHO_BODY, connections: SMALL, type: JSON_CT, expect: Buffer.from(ECHO_BODY) },
  { name: "async", path: "/async", connections: SMALL, type: TEXT, expect: Buffer.from(HELLO) },
  { name: "1mib", path: "/1mib", connections: LARGE, type: BYTES_CT, expect: Buffer.from(ONE_MIB) },
  {
    name: "stream", path: "/stream", connections: LARGE, type: BYTES_CT, chunked: true,
    expect: Buffer.concat(Array.from({ length: STREAM_CHUNK_COUNT }, () => STREAM_CHUNK)),
  },
  { name: "static", path: "/static", routes: true, connections: SMALL, type: TEXT, expect: Buffer.from(HELLO) },
  { name: "param", path: "/users/42", routes: true, connections: SMALL, type: TEXT, expect: Buffer.from("User 42") },
  // GET /r49/42 hits the last of 50 declared routes; the decoys answer other text, so a router
  // that picked the wrong one fails the check.
  { name: "routes50", path: "/r49/42", routes: true, connections: SMALL, type: TEXT, expect: Buffer.from("User 42") },
];

/** Takes a port and a scenario, sends its request once, and throws a descriptive Error unless
 * the status, Content-Type, framing and body are exactly what every server must send. */
export function verify(port, scenario, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const body = scenario.body === undefined ? undefined : Buffer.from(scenario.body);
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path: scenario.path,
        method: scenario.method ?? "GET",
        agent: false,
        headers: body ? { "content-type": "application/json", "content-length": body.length } : {},
        timeout: timeoutMs,
      },
      (res) => {
        const chunks = [];
        res.on("data", (chunk) => chunks.push(chunk));
        res.on("error", reject);
        res.on("end", () => {
          const got = Buffer.concat(chunks);
          const problems = [];
          if (res.statusCode !== 200) problems.push(`status ${res.statusCode}, expected 200`);
          const type = res.headers["content-type"] ?? "(none)";
          if (!scenario.type.test(type)) problems.push(`content-type "${type}", expected ${scenario.type}`);
          if (scenario.chunked && res.headers["transfer-encoding"] !== "chunked") {
            problems.push(`transfer-encoding "${res.headers["transfer-encoding"] ?? "(none)"}", expected chunked`);
          }
          if (!got.equals(scenario.expect)) {
            problems.push(`body of ${got.length} bytes differs from the expected ${scenario.expect.length} bytes` +
              (got.length < 200 ? `: ${JSON.stringify(got.toString())}` : ""));
          }
          if (problems.length) reject(new Error(`${scenario.method ?? "GET"} ${scenario.path}: ${problems.join("; ")}`));
          else resolve();
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${scenario.path}: no response within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}
