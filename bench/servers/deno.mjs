// Deno.serve (run with `deno run --allow-net --allow-env --allow-read`).
import { createFetch } from "./_fetch.mjs";

Deno.serve(
  {
    port: Number(Deno.env.get("PORT") ?? 3000),
    hostname: "127.0.0.1",
    onListen: ({ port }) => console.log(`ready ${port}`),
  },
  createFetch(Response),
);
