// The scenarios: request to send, connections to load them with, and the response every server must give.
import { request } from "node:http";
import { request as secureRequest } from "node:https";
import { connect as connectH2 } from "node:http2";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import {
  HELLO, JSON_TEXT, JSON26_TEXT, ECHO_BODY, ONE_MIB, STREAM_CHUNK, STREAM_CHUNK_COUNT,
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

// `peers`: the only servers that run the scenario (the runner shows "–" and `absent` for the others).
// `routes: true`: served from a `routes` table (bench/_routes.mjs), so only the peers that have one
// (raw uWS, uwserve, Bun) run it. The runner starts the servers of a `tls` scenario with BENCH_TLS=1
// (HTTPS on its self-signed certificate) and those of a `compression` one with BENCH_COMPRESSION=1;
// `headers` go with every request (wrk -H); `sized`: the response must carry Content-Length; `encoded`: the response must carry a Content-Encoding
// (gzip or br) and decode to `expect`; `pair`: a scenario measured alongside, for a ratio.
const ROUTING = { routes: true, peers: ["raw-uws", "uwserve", "bun"], absent: "no routes table" };
// https-hello: the servers that speak TLS themselves (hono-node and the *-global peers add nothing here).
const TLS_PEERS = { peers: ["raw-uws", "uwserve", "node-http", "bun", "deno"], absent: "not a TLS peer" };
// json26 / json-gzip: uwserve and Deno compress automatically when turned on; raw uWS gzips
// with the same zlib call and level as uwserve (the ceiling). Bun has no HTTP compression.
const GZIP_PEERS = { peers: ["raw-uws", "uwserve", "deno"], absent: "not a compression peer" };
// h2c-hello / h2-hello: HTTP/2 (h2load), served by uwserve's node engine with `http2: true` and by a
// raw node:http2 server (node-http.mjs with BENCH_H2=1, so "× node:http" is × node:http2 there).
const H2_PEERS = { peers: ["uwserve-node", "node-http", "deno"], absent: "not an HTTP/2 peer" };
// HTTP/2 load: 10 connections × 10 concurrent streams, 100 requests in flight as with HTTP/1.1's
// 50 connections (h2load -c10 -m10): the multiplexing a browser or a gRPC-style client does.
const H2_CONNECTIONS = 10;
const H2_STREAMS = 10;
// file-1mib: raw uWS sends the bytes from memory (the ceiling), the others read the file per request.
const FILE_PEERS = { peers: ["raw-uws", "uwserve", "node-http", "bun"], absent: "not a file peer" };

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
  { name: "static", path: "/static", ...ROUTING, connections: SMALL, type: TEXT, expect: Buffer.from(HELLO) },
  { name: "param", path: "/users/42", ...ROUTING, connections: SMALL, type: TEXT, expect: Buffer.from("User 42") },
  // GET /r49/42 hits the last of 50 declared routes; the decoys answer other text, so a router
  // that picked the wrong one fails the check.
  { name: "routes50", path: "/r49/42", ...ROUTING, connections: SMALL, type: TEXT, expect: Buffer.from("User 42") },
  // Over TLS on keep-alive connections: the per-request cost of TLS records, not handshakes.
  { name: "https-hello", path: "/hello", tls: true, ...TLS_PEERS, connections: SMALL, type: TEXT, expect: Buffer.from(HELLO) },
  // The same ~2.6 KB JSON plain (server without compression, no Accept-Encoding) and compressed
  // (compression turned on, Accept-Encoding: gzip, br): json-gzip ÷ json26 is the cost of compressing.
  { name: "json26", path: "/json26", ...GZIP_PEERS, connections: SMALL, type: JSON_CT, expect: Buffer.from(JSON26_TEXT) },
  {
    name: "json-gzip", path: "/json26", compression: true, encoded: true, pair: "json26", headers: { "accept-encoding": "gzip, br" },
    ...GZIP_PEERS, connections: SMALL, type: JSON_CT, expect: Buffer.from(JSON26_TEXT),
  },
  // The same with gzip alone: with "gzip, br" Deno picks br (uwserve gzip, on a tie), so this is
  // the like-for-like gzip comparison. No target; the report shows each server's share.
  {
    name: "json-gzip-only", path: "/json26", compression: true, encoded: true, pair: "json26", headers: { "accept-encoding": "gzip" },
    ...GZIP_PEERS, connections: SMALL, type: JSON_CT, expect: Buffer.from(JSON26_TEXT),
  },
  // HTTP/2 with prior knowledge (h2c) and over TLS with ALPN (h2).
  { name: "h2c-hello", path: "/hello", h2: true, streams: H2_STREAMS, ...H2_PEERS, connections: H2_CONNECTIONS, type: TEXT, expect: Buffer.from(HELLO) },
  { name: "h2-hello", path: "/hello", h2: true, tls: true, streams: H2_STREAMS, ...H2_PEERS, connections: H2_CONNECTIONS, type: TEXT, expect: Buffer.from(HELLO) },
  // A 1 MiB file the runner writes at startup (ONE_MIB's bytes) read from disk per request.
  { name: "file-1mib", path: "/file", sized: true, ...FILE_PEERS, connections: LARGE, type: BYTES_CT, expect: Buffer.from(ONE_MIB) },
];

/**
 * Takes a port and a scenario, sends its request once (over TLS for a `tls` scenario, not
 * verifying the self-signed certificate, as wrk doesn't), and throws a descriptive Error unless the
 * status, Content-Type, framing, encoding and body are exactly what every server must send.
 * Resolves { bytes, framing, encoding, tls }: what came over the wire (body bytes as sent,
 * "length" or "chunked", the Content-Encoding or null, "TLSv1.3 <cipher>" or null).
 */
export function verify(port, scenario, timeoutMs = 10_000) {
  if (scenario.h2) return verifyH2(port, scenario, timeoutMs);
  return new Promise((resolve, reject) => {
    const body = scenario.body === undefined ? undefined : Buffer.from(scenario.body);
    const send = scenario.tls ? secureRequest : request;
    const req = send(
      {
        host: "127.0.0.1",
        port,
        path: scenario.path,
        method: scenario.method ?? "GET",
        agent: false,
        rejectUnauthorized: false,
        headers: { ...scenario.headers, ...(body ? { "content-type": "application/json", "content-length": body.length } : {}) },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks = [];
        const cipher = scenario.tls ? `${res.socket.getProtocol?.()} ${res.socket.getCipher?.()?.name}` : null;
        res.on("data", (chunk) => chunks.push(chunk));
        res.on("error", reject);
        res.on("end", () => {
          const raw = Buffer.concat(chunks);
          const problems = [];
          const encoding = res.headers["content-encoding"] ?? null;
          let got = raw;
          if (scenario.encoded) {
            if (encoding !== "gzip" && encoding !== "br") {
              problems.push(`content-encoding "${encoding ?? "(none)"}", expected gzip or br (is compression on?)`);
            } else {
              try {
                got = encoding === "gzip" ? gunzipSync(raw) : brotliDecompressSync(raw);
              } catch (error) {
                problems.push(`the ${encoding} body does not decode: ${error.message}`);
              }
            }
            if (!/accept-encoding/i.test(res.headers.vary ?? "")) problems.push(`vary "${res.headers.vary ?? "(none)"}", expected Accept-Encoding`);
          } else if (encoding !== null) {
            problems.push(`content-encoding "${encoding}" on a request without Accept-Encoding`);
          }
          if (res.statusCode !== 200) problems.push(`status ${res.statusCode}, expected 200`);
          const type = res.headers["content-type"] ?? "(none)";
          if (!scenario.type.test(type)) problems.push(`content-type "${type}", expected ${scenario.type}`);
          if (scenario.sized && res.headers["content-length"] !== String(scenario.expect.length)) {
            problems.push(`content-length "${res.headers["content-length"] ?? "(none)"}", expected ${scenario.expect.length}`);
          }
          if (scenario.chunked && res.headers["transfer-encoding"] !== "chunked") {
            problems.push(`transfer-encoding "${res.headers["transfer-encoding"] ?? "(none)"}", expected chunked`);
          }
          if (!got.equals(scenario.expect)) {
            problems.push(`body of ${got.length} bytes differs from the expected ${scenario.expect.length} bytes` +
              (got.length < 200 ? `: ${JSON.stringify(got.toString())}` : ""));
          }
          if (problems.length) reject(new Error(`${scenario.method ?? "GET"} ${scenario.path}: ${problems.join("; ")}`));
          else resolve({ bytes: raw.length, framing: res.headers["transfer-encoding"] === "chunked" ? "chunked" : "length", encoding, tls: cipher });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${scenario.path}: no response within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** verify() for an HTTP/2 scenario: one request on a node:http2 session (h2c, or h2 over TLS with ALPN). */
function verifyH2(port, scenario, timeoutMs) {
  return new Promise((resolve, reject) => {
    const scheme = scenario.tls ? "https" : "http";
    const session = connectH2(`${scheme}://127.0.0.1:${port}`, { rejectUnauthorized: false });
    const fail = (error) => {
      session.destroy();
      reject(error);
    };
    const timer = setTimeout(() => fail(new Error(`${scenario.path}: no HTTP/2 response within ${timeoutMs} ms`)), timeoutMs);
    session.on("error", fail);
    const stream = session.request({ ":path": scenario.path, ":method": scenario.method ?? "GET" });
    let headers = null;
    const chunks = [];
    stream.on("response", (h) => (headers = h));
    stream.on("data", (chunk) => chunks.push(chunk));
    stream.on("error", fail);
    stream.on("end", () => {
      clearTimeout(timer);
      const alpn = session.alpnProtocol;
      session.close();
      const body = Buffer.concat(chunks);
      const problems = [];
      if (headers?.[":status"] !== 200) problems.push(`status ${headers?.[":status"]}, expected 200`);
      const type = headers?.["content-type"] ?? "(none)";
      if (!scenario.type.test(type)) problems.push(`content-type "${type}", expected ${scenario.type}`);
      if (!body.equals(scenario.expect)) problems.push(`body of ${body.length} bytes differs from the expected ${scenario.expect.length} bytes`);
      if (scenario.tls && alpn !== "h2") problems.push(`ALPN "${alpn}", expected h2`);
      if (problems.length) reject(new Error(`HTTP/2 ${scenario.path}: ${problems.join("; ")}`));
      else resolve({ bytes: body.length, framing: "h2", encoding: null, tls: scenario.tls ? `ALPN ${alpn}` : null });
    });
    stream.end();
  });
}
