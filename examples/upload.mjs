// Streaming uploads: reads req.body chunk by chunk as it arrives and answers how many bytes came in.
import { serve, Response } from "uwserve";

const server = serve({
  port: 0,
  maxRequestBodySize: 1024 * 1024 * 1024, // 1 GiB; larger uploads get 413
  async fetch(req) {
    if (req.method !== "POST" && req.method !== "PUT") {
      return new Response(`POST a body, e.g.: curl -T some-big-file ${server.url}\n`);
    }
    const started = performance.now();
    let bytes = 0;
    let chunks = 0;
    // Nothing is buffered: each chunk is counted and dropped.
    for await (const chunk of req.body ?? []) {
      bytes += chunk.byteLength;
      chunks++;
    }
    const ms = Math.round(performance.now() - started);
    return Response.json({ bytes, chunks, ms });
  },
});

console.log(`Listening on ${server.url}`);
