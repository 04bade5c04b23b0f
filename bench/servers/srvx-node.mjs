// srvx's Node adapter (node:http under a fetch API), written the way srvx documents its fast path:
// its own FastResponse instead of the global Response. A peer of uwserve's node engine.
import { serve, FastResponse } from "srvx/node";
import { createFetch } from "./_fetch.mjs";

const server = serve({ fetch: createFetch(FastResponse), port: Number(process.env.PORT ?? 3000), hostname: "127.0.0.1", silent: true });
await server.ready();
console.log(`ready ${new URL(server.url).port}`);
