// node:http serving the six scenarios: the baseline most Node servers (and @hono/node-server) sit on.
import { createServer } from "node:http";
import { HELLO, DATA, TEXT_TYPE, JSON_TYPE, BYTES_TYPE, ONE_MIB, STREAM_CHUNK, STREAM_CHUNK_COUNT } from "../_data.mjs";

// setHeader + end(body) rather than writeHead(): end() then knows the whole body and sends
// Content-Length, as every other peer does; writeHead() first would commit to chunked encoding.
function send(res, type, body) {
  res.setHeader("content-type", type);
  res.end(body);
}

const server = createServer((req, res) => {
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
});

async function helloLater(res) {
  await Promise.resolve();
  send(res, TEXT_TYPE, HELLO);
}

server.listen(Number(process.env.PORT ?? 3000), "127.0.0.1", () => {
  console.log(`ready ${server.address().port}`);
});
