// uwserve with its own fast Response: `import { serve, Response }`, Bun-style fetch handler, plus the
// routing scenario's `routes` table when the runner starts it for one (BENCH_SCENARIO), TLS when
// BENCH_TLS=1 (https-hello), HTTP/2 when BENCH_H2=1 (h2c-hello, h2-hello), automatic compression when BENCH_COMPRESSION=1 (json-gzip), and
// `new Response(file(path))` on /file (file-1mib).
import { readFileSync } from "node:fs";
import { serve, Response, file } from "../../dist/index.js";
import { createFetch, createRoutes } from "./_fetch.mjs";
import { ensureTls, benchFile } from "./_assets.mjs";
import { routesFor } from "../_routes.mjs";

const table = routesFor(process.env.BENCH_SCENARIO);
const tls = process.env.BENCH_TLS === "1" ? ensureTls() : null;
let path = null;
const server = serve({
  port: Number(process.env.PORT ?? 3000),
  hostname: "127.0.0.1",
  // No `routes`, `tls` or `compression` key at all unless the scenario needs it: the other
  // scenarios measure exactly what they did before.
  ...(table.length ? { routes: createRoutes(Response, table) } : {}),
  ...(tls ? { tls: { key: readFileSync(tls.keyFile), cert: readFileSync(tls.certFile) } } : {}),
  ...(process.env.BENCH_COMPRESSION === "1" ? { compression: true } : {}),
  // h2c-hello / h2-hello (BENCH_H2=1): HTTP/2, which the node engine serves.
  ...(process.env.BENCH_H2 === "1" ? { http2: true } : {}),
  fetch: createFetch(Response, { file: () => file((path ??= benchFile())) }),
});
console.log(`ready ${server.port}`);
