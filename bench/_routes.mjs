// Route tables for the routing scenarios (static, param, routes50), shared by every peer that has a
// routes table (raw uWS, uwserve, Bun) so they register the same patterns in the same order.
//
// A route is { path, kind, text }: "static" and "exact" answer `text`, "param" answers `text + :id`.
// "static" is a Response built once at startup (`routes: { "/static": new Response(…) }`); "exact"
// and "param" are handlers called per request.
import { HELLO } from "./_data.mjs";

export const STATIC_ROUTE = { path: "/static", kind: "static", text: HELLO };
export const USER_ROUTE = { path: "/users/:id", kind: "param", text: "User " };

// 49 decoys, every fourth an exact route, then the target declared last: a router that tries
// routes in declaration order pays for all 49 before it matches GET /r49/42.
export const ROUTES50 = [
  ...Array.from({ length: 49 }, (_, i) =>
    i % 4 === 3
      ? { path: `/r${i}/list`, kind: "exact", text: `r${i} list` }
      : { path: `/r${i}/:id`, kind: "param", text: `r${i} ` }),
  { path: "/r49/:id", kind: "param", text: "User " },
];

const TABLES = { static: [STATIC_ROUTE], param: [USER_ROUTE], routes50: ROUTES50 };

/**
 * Takes a scenario name (the runner passes it to each server as BENCH_SCENARIO), returns the
 * routes to register: that scenario's table, none for the fetch-only scenarios (so they run with
 * no `routes` option at all), or every table when unset (a server started by hand).
 */
export function routesFor(scenario) {
  if (!scenario) return [STATIC_ROUTE, USER_ROUTE, ...ROUTES50];
  return TABLES[scenario] ?? [];
}
