// Raw uWebSockets.js serving every scenario: the ceiling every other peer is compared with.
import { uWS, listen, writeChunks, readBody } from "./_uws.mjs";
import { HELLO, DATA, TEXT_TYPE, STRING_TYPE, JSON_TYPE, BYTES_TYPE, ONE_MIB, STREAM_CHUNK, STREAM_CHUNK_COUNT } from "../_data.mjs";
import { routesFor } from "../_routes.mjs";

const app = uWS.App();

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
      res.writeHeader("content-type", STRING_TYPE).end(text + req.getParameter(0));
    });
  } else {
    app.get(path, (res) => {
      res.writeHeader("content-type", STRING_TYPE).end(text);
    });
  }
}

app.any("/*", (res) => {
  res.writeStatus("404 Not Found").end("Not Found");
});

listen(app);
