// The Bun-style fetch handler shared by every web-standard peer (uwserve, hono, Bun, Deno), and the
// routes table of the peers that have one (uwserve, Bun); only the Response class differs.
import { HELLO, DATA, DATA26, JSON_TYPE, BYTES_TYPE, ONE_MIB, STREAM_CHUNK, STREAM_CHUNK_COUNT } from "../_data.mjs";

/**
 * Takes the Response class the peer should use and, for the file-1mib scenario, `file()`: a
 * function returning the peer's file body for /file (uwserve's `file(path)`, `Bun.file(path)`),
 * called per request as a handler would; returns `fetch(req)`.
 * The handler is synchronous and only the echo/async routes return a Promise, the way a user
 * would write it: an `async fetch` would put every route (even hello) on the promise path.
 */
export function createFetch(Response, { file } = {}) {
  async function echo(req) {
    const text = await req.text();
    return new Response(text, { headers: { "content-type": JSON_TYPE } });
  }

  async function helloLater() {
    await Promise.resolve();
    return new Response(HELLO);
  }

  function stream() {
    let sent = 0;
    const body = new ReadableStream({
      // One chunk per pull, so the server's reader (and its backpressure) drives the stream.
      pull(controller) {
        controller.enqueue(STREAM_CHUNK);
        if (++sent === STREAM_CHUNK_COUNT) controller.close();
      },
    });
    return new Response(body, { headers: { "content-type": BYTES_TYPE } });
  }

  return function fetch(req) {
    // The path once, without `new URL()`: req.url is always absolute ("http://host:port/path")
    // and the bench never sends a query string.
    const url = req.url;
    switch (url.slice(url.indexOf("/", 8))) {
      case "/hello":
        return new Response(HELLO);
      case "/json":
        return Response.json(DATA);
      case "/echo":
        return echo(req);
      case "/async":
        return helloLater();
      case "/1mib":
        return new Response(ONE_MIB, { headers: { "content-type": BYTES_TYPE } });
      case "/stream":
        return stream();
      case "/json26":
        return Response.json(DATA26);
      case "/file":
        if (file) return new Response(file());
        return new Response("Not Found", { status: 404 });
      default:
        return new Response("Not Found", { status: 404 });
    }
  };
}

/**
 * Takes the Response class and a route list from bench/_routes.mjs, returns the Bun-style
 * `routes` object for it: a static route is one Response built here, once; exact and param
 * routes are handlers, a param route answering from `req.params.id`.
 */
export function createRoutes(Response, table) {
  const routes = {};
  for (const { path, kind, text } of table) {
    if (kind === "static") routes[path] = new Response(text);
    else if (kind === "param") routes[path] = (req) => new Response(text + req.params.id);
    else routes[path] = () => new Response(text);
  }
  return routes;
}
