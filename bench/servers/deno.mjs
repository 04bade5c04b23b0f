// Deno.serve (run with `deno run --allow-net --allow-env --allow-read`), over TLS when BENCH_TLS=1
// (https-hello; the runner makes the certificate) and with Deno 2.9's `automaticCompression: true`
// when BENCH_COMPRESSION=1 (json-gzip: off by default since 2.9).
import { createFetch } from "./_fetch.mjs";

const tls = Deno.env.get("BENCH_TLS") === "1"
  ? { cert: Deno.readTextFileSync(Deno.env.get("BENCH_TLS_CERT")), key: Deno.readTextFileSync(Deno.env.get("BENCH_TLS_KEY")) }
  : {};

Deno.serve(
  {
    port: Number(Deno.env.get("PORT") ?? 3000),
    hostname: "127.0.0.1",
    ...tls,
    ...(Deno.env.get("BENCH_COMPRESSION") === "1" ? { automaticCompression: true } : {}),
    onListen: ({ port }) => console.log(`ready ${port}`),
  },
  createFetch(Response),
);
