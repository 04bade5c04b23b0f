// Deno style: serve(handler) and serve(options, handler) — Deno.serve code with only the import changed.
import { serve } from "uwserve";

// A bare handler listens on Deno's default port, 8000, and logs where. `info` carries the client's address.
serve((req, info) => {
  return new Response(`Hello ${info.remoteAddr.hostname}, you asked for ${new URL(req.url).pathname}\n`);
});

// Options first, handler second; onListen replaces the default "Listening on" log line.
const controller = new AbortController();
const second = serve(
  {
    port: 0,
    hostname: "127.0.0.1",
    signal: controller.signal, // aborting it stops this server
    onListen({ hostname, port }) {
      console.log(`Second server on http://${hostname}:${port}/ (GET /stop stops it)`);
    },
  },
  (req) => {
    if (new URL(req.url).pathname === "/stop") {
      setTimeout(() => controller.abort(), 0);
      return new Response("Stopping\n");
    }
    return Response.json({ method: req.method, url: req.url });
  },
);

await second.finished;
console.log("Second server stopped; the first keeps running (Ctrl-C to quit)");
