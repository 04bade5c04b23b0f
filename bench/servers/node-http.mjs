// node:http serving the fetch-style scenarios: the baseline most Node servers (and @hono/node-server) sit on.
// BENCH_TLS=1 (https-hello): node:https on the runner's certificate; BENCH_H2=1 (h2c-hello, h2-hello):
// node:http2's compatibility API with the same handler (h2c, or h2 over TLS with HTTP/1.1 fallback); /file (file-1mib) streams the
// file with fs.createReadStream().pipe(res) after a stat for Content-Length.
import { createServer } from "node:http";
import { createServer as createSecureServer } from "node:https";
import { createServer as createH2Server, createSecureServer as createSecureH2Server } from "node:http2";
import { createReadStream, readFileSync, stat } from "node:fs";
import { ensureTls, benchFile } from "./_assets.mjs";
import { HELLO, DATA, DATA26, TEXT_TYPE, JSON_TYPE, BYTES_TYPE, ONE_MIB, STREAM_CHUNK, STREAM_CHUNK_COUNT } from "../_data.mjs";

// setHeader + end(body) rather than writeHead(): end() then knows the whole body and sends
// Content-Length, as every other peer does; writeHead() first would commit to chunked encoding.
function send(res, type, body) {
  res.setHeader("content-type", type);
  res.end(body);
}

let path = null;
function sendFile(res) {
  path ??= benchFile();
  stat(path, (error, stats) => {
    if (error) {
      res.statusCode = 404;
      res.end("Not Found");
      return;
    }
    res.setHeader("content-type", BYTES_TYPE);
    res.setHeader("content-length", stats.size);
    createReadStream(path).pipe(res);
  });
}

function handler(req, res) {
  switch (req.url) {
    case "/hello":
      send(res, TEXT_TYPE, HELLO);
      return;
    case "/json":
      send(res, JSON_TYPE, JSON.stringify(DATA));
      return;
    case "/echo": {
      const chunks = [];
      req.on("data", (chunk) => chunks.push(chunk));
      req.on("end", () => send(res, JSON_TYPE, Buffer.concat(chunks)));
      return;
    }
    case "/async":
      helloLater(res);
      return;
    case "/1mib":
      send(res, BYTES_TYPE, ONE_MIB);
      return;
    case "/json26":
      send(res, JSON_TYPE, JSON.stringify(DATA26));
      return;
    case "/file":
      sendFile(res);
      return;
    case "/stream":
      // No Content-Length, so node:http uses chunked encoding; one write per chunk like the others.
      // Node queues writes past the high-water mark itself, so waiting for "drain" adds nothing here.
      res.setHeader("content-type", BYTES_TYPE);
      for (let i = 0; i < STREAM_CHUNK_COUNT; i++) res.write(STREAM_CHUNK);
      res.end();
      return;
    default:
      res.statusCode = 404;
      res.end("Not Found");
  }
}

const tls = process.env.BENCH_TLS === "1" ? ensureTls() : null;
const h2 = process.env.BENCH_H2 === "1";
const secure = tls ? { key: readFileSync(tls.keyFile), cert: readFileSync(tls.certFile) } : null;
const server = h2
  ? (secure ? createSecureH2Server({ ...secure, allowHTTP1: true }, handler) : createH2Server(handler))
  : (secure ? createSecureServer(secure, handler) : createServer(handler));

async function helloLater(res) {
  await Promise.resolve();
  send(res, TEXT_TYPE, HELLO);
}

server.listen(Number(process.env.PORT ?? 3000), "127.0.0.1", () => {
  console.log(`ready ${server.address().port}`);
});
