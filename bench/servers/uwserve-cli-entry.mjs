// The uwserve server of servers/uwserve.mjs as an entry for the CLI (`node dist/cli.js --workers N --port 0
// --hostname 127.0.0.1 bench/servers/uwserve-cli-entry.mjs`): the same options as a default export, which the CLI
// serves on the main thread (--workers 1) or on N worker threads sharing one port (SO_REUSEPORT). The runner reads
// the port from the CLI's "uwserve listening on http://127.0.0.1:<port>/" line. Worker threads see the runner's
// environment (BENCH_SCENARIO, BENCH_TLS, …) as the main thread does.
import { readFileSync } from "node:fs";
import { Response, file } from "../../dist/index.js";
import { createFetch, createRoutes } from "./_fetch.mjs";
import { ensureTls, benchFile } from "./_assets.mjs";
import { routesFor } from "../_routes.mjs";

const table = routesFor(process.env.BENCH_SCENARIO);
const tls = process.env.BENCH_TLS === "1" ? ensureTls() : null;
let path = null;

export default {
  ...(table.length ? { routes: createRoutes(Response, table) } : {}),
  ...(tls ? { tls: { key: readFileSync(tls.keyFile), cert: readFileSync(tls.certFile) } } : {}),
  ...(process.env.BENCH_COMPRESSION === "1" ? { compression: true } : {}),
  fetch: createFetch(Response, { file: () => file((path ??= benchFile())) }),
};
