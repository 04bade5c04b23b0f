// Bun.serve (run with `bun`): the reference implementation uwserve mirrors, with the routing
// scenario's `routes` table when the runner starts it for one (BENCH_SCENARIO).
import { createFetch, createRoutes } from "./_fetch.mjs";
import { routesFor } from "../_routes.mjs";

const table = routesFor(process.env.BENCH_SCENARIO);
const server = Bun.serve({
  port: Number(process.env.PORT ?? 3000),
  hostname: "127.0.0.1",
  ...(table.length ? { routes: createRoutes(Response, table) } : {}),
  fetch: createFetch(Response),
});
console.log(`ready ${server.port}`);
