// Bun.serve (run with `bun`): the reference implementation uwserve mirrors.
import { createFetch } from "./_fetch.mjs";

const server = Bun.serve({
  port: Number(process.env.PORT ?? 3000),
  hostname: "127.0.0.1",
  fetch: createFetch(Response),
});
console.log(`ready ${server.port}`);
