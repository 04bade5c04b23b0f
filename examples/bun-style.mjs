// Bun style: serve({ fetch, error, port }) — Bun.serve code with only the import line changed.
import { serve, Response } from "uwserve";

const server = serve({
  port: 0, // any free port; server.url says which
  async fetch(req, server) {
    const url = new URL(req.url);
    switch (url.pathname) {
      case "/":
        return new Response(`Hello from ${req.method} ${url.pathname}\n`);
      case "/ip":
        return Response.json(server.requestIP(req));
      case "/echo":
        return Response.json({ method: req.method, headers: Object.fromEntries(req.headers), body: await req.text() });
      case "/fail":
        throw new Error("handler failed on purpose");
      default:
        return new Response("Not found\n", { status: 404 });
    }
  },
  // Turns a thrown or rejected handler into a response.
  error(err) {
    return new Response(`Something broke: ${err.message}\n`, { status: 500 });
  },
});

console.log(`Listening on ${server.url}`);
console.log(`Try: curl ${server.url}ip   or   curl -d hello ${server.url}echo`);
