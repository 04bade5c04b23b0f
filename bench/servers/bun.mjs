// Bun.serve (run with `bun`): the reference implementation uwserve mirrors, with the routing
// scenario's `routes` table when the runner starts it for one (BENCH_SCENARIO), TLS when
// BENCH_TLS=1 (https-hello), and `new Response(Bun.file(path))` on /file (file-1mib).
import { createFetch, createRoutes } from "./_fetch.mjs";
import { ensureTls, benchFile } from "./_assets.mjs";
import { routesFor } from "../_routes.mjs";

const table = routesFor(process.env.BENCH_SCENARIO);
const tls = process.env.BENCH_TLS === "1" ? ensureTls() : null;
let path = null;
const server = Bun.serve({
  port: Number(process.env.PORT ?? 3000),
  hostname: "127.0.0.1",
  ...(table.length ? { routes: createRoutes(Response, table) } : {}),
  ...(tls ? { tls: { key: Bun.file(tls.keyFile), cert: Bun.file(tls.certFile) } } : {}),
  fetch: createFetch(Response, { file: () => Bun.file((path ??= benchFile())) }),
});
console.log(`ready ${server.port}`);
