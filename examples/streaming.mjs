// Streaming responses: Server-Sent Events from a timer, and a large body produced on demand with backpressure.
import { serve, Response } from "uwserve";

const server = serve({
  port: 0,
  fetch(req) {
    const { pathname } = new URL(req.url);
    if (pathname === "/events") return events();
    if (pathname === "/big") return big(64 * 1024 * 1024);
    return new Response(`Try: curl -N ${server.url}events   or   curl -o /dev/null ${server.url}big\n`);
  },
});
console.log(`Listening on ${server.url}`);

/** One SSE message a second until the client disconnects; `cancel` stops the timer. */
function events() {
  const encoder = new TextEncoder();
  let timer;
  const body = new ReadableStream({
    start(controller) {
      let id = 0;
      timer = setInterval(() => {
        id++;
        controller.enqueue(encoder.encode(`id: ${id}\ndata: ${JSON.stringify({ time: new Date().toISOString() })}\n\n`));
      }, 1000);
    },
    cancel() {
      clearInterval(timer);
      console.log("SSE client went away");
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
}

/** `pull` is only called when the client can take more, so a slow reader never grows memory. */
function big(total) {
  const chunk = new Uint8Array(64 * 1024).fill(120); // "xxxx…"
  let sent = 0;
  const body = new ReadableStream({
    pull(controller) {
      controller.enqueue(chunk.subarray(0, Math.min(chunk.length, total - sent)));
      sent += chunk.length;
      if (sent >= total) controller.close();
    },
  });
  return new Response(body, { headers: { "content-type": "application/octet-stream" } });
}
