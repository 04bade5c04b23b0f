// uwserve with its own fast Response: `import { serve, Response }`, Bun-style fetch handler.
import { serve, Response } from "../../dist/index.js";
import { createFetch } from "./_fetch.mjs";

const server = serve({
  port: Number(process.env.PORT ?? 3000),
  hostname: "127.0.0.1",
  fetch: createFetch(Response),
});
console.log(`ready ${server.port}`);
