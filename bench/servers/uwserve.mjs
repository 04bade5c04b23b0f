// uwserve with its own fast Response: `import { serve, Response }`, Bun-style fetch handler, plus the
// routing scenario's `routes` table when the runner starts it for one (BENCH_SCENARIO).
import { serve, Response } from "../../dist/index.js";
import { createFetch, createRoutes } from "./_fetch.mjs";
import { routesFor } from "../_routes.mjs";

const table = routesFor(process.env.BENCH_SCENARIO);
const server = serve({
  port: Number(process.env.PORT ?? 3000),
  hostname: "127.0.0.1",
  // No `routes` key at all for the fetch-only scenarios: they measure exactly what they did before.
  ...(table.length ? { routes: createRoutes(Response, table) } : {}),
  fetch: createFetch(Response),
});
console.log(`ready ${server.port}`);
