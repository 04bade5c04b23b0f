// Raw uWebSockets.js that also builds a global (undici) Response per request: the ceiling for uwserve-global.
//
// Each handler constructs the Response a web-standard handler would return, reads its status and
// content-type back, then writes the same bytes raw-uws.mjs writes. That isolates the cost of
// undici's constructor (WebIDL conversion, Headers, body extraction; hazard H15) from whatever
// a server does to get the body out of it. The stream route does read the body through the
// Response, since there is no other way to get a stream's bytes.
import { uWS, listen, writeChunks, readBody } from "./_uws.mjs";
import { HELLO, DATA, JSON_TEXT, JSON_TYPE, BYTES_TYPE, ONE_MIB, STREAM_CHUNK, STREAM_CHUNK_COUNT } from "../_data.mjs";

const app = uWS.App();

/** Takes a uWS response and a global Response, writes its status line and content-type. */
function head(res, response) {
  res.writeStatus(response.status === 200 ? "200 OK" : String(response.status));
  const type = response.headers.get("content-type");
  if (type !== null) res.writeHeader("content-type", type);
  return res;
}

app.get("/hello", (res) => {
  head(res, new Response(HELLO)).end(HELLO);
});

app.get("/json", (res) => {
  // Response.json() has already serialised DATA once; write the same text rather than twice.
  head(res, Response.json(DATA)).end(JSON_TEXT);
});

app.post("/echo", (res) => {
  readBody(res, (bytes) => {
    // Mirrors `new Response(await req.text(), { headers })`.
    const text = bytes.toString();
    const response = new Response(text, { headers: { "content-type": JSON_TYPE } });
    res.cork(() => head(res, response).end(text));
  });
});

app.get("/async", async (res) => {
  let aborted = false;
  res.onAborted(() => (aborted = true));
  await Promise.resolve();
  const response = new Response(HELLO);
  if (!aborted) res.cork(() => head(res, response).end(HELLO));
});

app.get("/1mib", (res) => {
  head(res, new Response(ONE_MIB, { headers: { "content-type": BYTES_TYPE } })).end(ONE_MIB);
});

app.get("/stream", (res) => {
  let sent = 0;
  const body = new ReadableStream({
    pull(controller) {
      controller.enqueue(STREAM_CHUNK);
      if (++sent === STREAM_CHUNK_COUNT) controller.close();
    },
  });
  const response = new Response(body, { headers: { "content-type": BYTES_TYPE } });
  head(res, response);
  const reader = response.body.getReader();
  writeChunks(res, () => reader.read().then((r) => (r.done ? undefined : r.value)));
});

app.any("/*", (res) => {
  res.writeStatus("404 Not Found").end("Not Found");
});

listen(app);
