// uwserve.mjs's fetch handler served by another build of uwserve, for a side-by-side A/B of two
// versions in one run: BENCH_REF_DIST is that build's dist/index.js (e.g. a `git worktree` of an
// older commit, built with `npx tsc`). The runner skips this server without it.
const { serve, Response } = await import(process.env.BENCH_REF_DIST);
const { createFetch } = await import("./_fetch.mjs");
const server = serve({ port: Number(process.env.PORT ?? 3000), hostname: "127.0.0.1", fetch: createFetch(Response) });
console.log(`ready ${server.port}`);
