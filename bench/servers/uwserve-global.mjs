// uwserve with the global (undici) Response: same handlers as uwserve.mjs, no Response import.
import { serve } from "../../dist/index.js";
import { createFetch } from "./_fetch.mjs";

const server = serve({
  port: Number(process.env.PORT ?? 3000),
  hostname: "127.0.0.1",
  fetch: createFetch(globalThis.Response),
});
console.log(`ready ${server.port}`);
