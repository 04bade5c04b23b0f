// Raw uWebSockets.js serving every scenario: the ceiling every other peer is compared with.
// BENCH_TLS=1 (https-hello): an SSLApp on the runner's certificate files. BENCH_COMPRESSION=1
// (json-gzip): /json26 gzipped per request with the zlib call and level uwserve uses.
import { gzipSync } from "node:zlib";
import { uWS, listen, writeChunks, readBody } from "./_uws.mjs";
import { ensureTls } from "./_assets.mjs";
import { HELLO, DATA, DATA26, TEXT_TYPE, JSON_TYPE, BYTES_TYPE, ONE_MIB, STREAM_CHUNK, STREAM_CHUNK_COUNT } from "../_data.mjs";
import { routesFor } from "../_routes.mjs";

const tls = process.env.BENCH_TLS === "1" ? ensureTls() : null;
const app = tls ? uWS.SSLApp({ key_file_name: tls.keyFile, cert_file_name: tls.certFile }) : uWS.App();
const compress = process.env.BENCH_COMPRESSION === "1";

app.get("/hello", (res) => {
  res.writeHeader("content-type", TEXT_TYPE).end(HELLO);
});

app.get("/json", (res) => {
  // Serialised per request, like Response.json() does in the web-standard peers.
  res.writeHeader("content-type", JSON_TYPE).end(JSON.stringify(DATA));
});

app.post("/echo", (res) => {
  readBody(res, (body) => res.cork(() => res.writeHeader("content-type", JSON_TYPE).end(body)));
});

app.get("/async", async (res) => {
  let aborted = false;
  res.onAborted(() => (aborted = true));
  await Promise.resolve();
  if (!aborted) res.cork(() => res.writeHeader("content-type", TEXT_TYPE).end(HELLO));
});

app.get("/1mib", (res) => {
  res.writeHeader("content-type", BYTES_TYPE).end(ONE_MIB);
});

app.get("/json26", (res, req) => {
  const text = JSON.stringify(DATA26);
  // The request's accept-encoding is read only when compressing, as uwserve without `compression` never looks.
  if (compress && req.getHeader("accept-encoding").includes("gzip")) {
    res.writeHeader("content-type", JSON_TYPE).writeHeader("vary", "Accept-Encoding").writeHeader("content-encoding", "gzip")
      .end(gzipSync(text, { level: 6 }));
  } else {
    res.writeHeader("content-type", JSON_TYPE).end(text);
  }
});

// file-1mib's ceiling: the file's bytes (the runner writes ONE_MIB to it) sent from memory.
app.get("/file", (res) => {
  res.writeHeader("content-type", BYTES_TYPE).end(ONE_MIB);
});

app.get("/stream", (res) => {
  res.writeStatus("200 OK").writeHeader("content-type", BYTES_TYPE);
  let sent = 0;
  writeChunks(res, () => (sent++ < STREAM_CHUNK_COUNT ? STREAM_CHUNK : undefined));
});

// The routing scenario's table (BENCH_SCENARIO), the same patterns in the same order as uwserve
// and Bun register, with the content-type uwserve's Response sends for a string body.
for (const { path, kind, text } of routesFor(process.env.BENCH_SCENARIO)) {
  if (kind === "param") {
    app.get(path, (res, req) => {
      res.writeHeader("content-type", TEXT_TYPE).end(text + req.getParameter(0));
    });
  } else {
    app.get(path, (res) => {
      res.writeHeader("content-type", TEXT_TYPE).end(text);
    });
  }
}

app.any("/*", (res) => {
  res.writeStatus("404 Not Found").end("Not Found");
});

listen(app);
