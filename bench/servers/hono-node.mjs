// @hono/node-server with a plain fetch function (no Hono router): web-standard handlers on node:http.
import { serve } from "@hono/node-server";
import { createFetch } from "./_fetch.mjs";

let handler;
serve(
  { fetch: (req) => handler(req), port: Number(process.env.PORT ?? 3000), hostname: "127.0.0.1" },
  (info) => console.log(`ready ${info.port}`),
);
// Bound after serve(): it replaces globalThis.Response with its light Response (the default
// `overrideGlobalObjects: true`), which is what a user's `new Response()` gets under hono.
handler = createFetch(globalThis.Response);
