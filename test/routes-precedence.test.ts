// Route precedence: exact > parameter > wildcard > catch-all whatever the key order; queries ignored; matching on the normalized path.
import { describe, expect, it } from "vitest";
import { serve, Response, type Server } from "../dist/index.js";
import { get, rawRoute } from "./helpers/routes.js";
import { trackServers, withTimeout } from "./helpers/server.js";

const track = trackServers();

type Level = "exact" | "param" | "wildcard" | "catchAll";

const PATTERNS: Record<Level, string> = {
  exact: "/api/users/me",
  param: "/api/users/:id",
  wildcard: "/api/*",
  catchAll: "/*",
};

const HANDLERS: Record<Level, (req: Request & { params: Record<string, string> }) => Response> = {
  exact: () => new Response("exact"),
  param: (req) => new Response(`param:${req.params.id}`),
  wildcard: () => new Response("wildcard"),
  catchAll: () => new Response("catch-all"),
};

/** What a table holding `levels` (and a fetch answering "fetch") must answer for `path`. */
function expected(path: string, levels: ReadonlySet<Level>): string {
  const pathname = new URL(path, "http://x").pathname;
  const segments = pathname.split("/").slice(1);
  if (levels.has("exact") && pathname === "/api/users/me") return "exact";
  if (levels.has("param") && segments.length === 3 && segments[0] === "api" && segments[1] === "users" && segments[2] !== "") return `param:${segments[2]}`;
  if (levels.has("wildcard") && pathname.startsWith("/api/")) return "wildcard";
  if (levels.has("catchAll")) return "catch-all";
  return "fetch";
}

/** Requests whose answer the contract fixes (no trailing-slash or bare-prefix cases). */
const PATHS = [
  "/api/users/me",
  "/api/users/42",
  "/api/users/someone-else",
  "/api/users/42/posts",
  "/api/users",
  "/api/posts",
  "/api/a/b/c/d",
  "/other/page",
  "/",
  // Query strings never affect matching.
  "/api/users/me?id=7",
  "/api/users/me?next=/api/users/42",
  "/api/users/42?id=7&x=/api/users/me",
  "/other?/api/users/me",
];

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [items.slice()];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

function serveLevels(order: readonly Level[], withFetch = true): Server {
  const routes: Record<string, unknown> = {};
  for (const level of order) routes[PATTERNS[level]] = HANDLERS[level];
  return serve({
    port: 0,
    hostname: "127.0.0.1",
    routes,
    ...(withFetch ? { fetch: () => new Response("fetch") } : {}),
  } as never);
}

async function answers(server: Server, paths: readonly string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const path of paths) out[path] = (await get(server, path)).body;
  return out;
}

describe("the four levels, keys declared in every order", () => {
  const all: Level[] = ["exact", "param", "wildcard", "catchAll"];
  const orders = permutations(all);

  it("there are 24 orders", () => {
    expect(orders).toHaveLength(24);
  });

  it.each(orders.map((order) => [order.join(" → "), order] as const))("%s", async (_name, order) => {
    const server = track(serveLevels(order));
    const want = Object.fromEntries(PATHS.map((p) => [p, expected(p, new Set(all))]));
    expect(await answers(server, PATHS)).toEqual(want);
    await withTimeout(server.stop(true), 5000, "server stop");
  });
});

describe("every subset of the levels (declared in order and reversed): each request falls to the next level", () => {
  const all: Level[] = ["exact", "param", "wildcard", "catchAll"];
  const subsets: Level[][] = [];
  for (let mask = 1; mask < 16; mask++) subsets.push(all.filter((_, i) => mask & (1 << i)));

  it.each(subsets.map((subset) => [subset.join("+"), subset] as const))("%s", async (_name, subset) => {
    for (const order of [subset, subset.slice().reverse()]) {
      const server = track(serveLevels(order));
      const want = Object.fromEntries(PATHS.map((p) => [p, expected(p, new Set(subset))]));
      expect(await answers(server, PATHS), `declared as ${order.join(", ")}`).toEqual(want);
      await withTimeout(server.stop(true), 5000, "server stop");
    }
  });

  it("without fetch, what no level matches is a 404", async () => {
    const server = track(serveLevels(["param", "exact"], false));
    expect((await get(server, "/api/users/me")).body).toBe("exact");
    expect((await get(server, "/api/users/1")).body).toBe("param:1");
    expect((await get(server, "/api/posts")).status).toBe(404);
    expect((await get(server, "/")).status).toBe(404);
  });
});

describe("deeper trees", () => {
  it("a static segment that leads nowhere falls back to a parameter at the same depth", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        routes: {
          "/a/b/d": () => new Response("a/b/d"),
          "/a/:x/c": (req) => new Response(`a/:x/c x=${req.params.x}`),
        },
        fetch: () => new Response("fetch"),
      }),
    );
    expect((await get(server, "/a/b/d")).body).toBe("a/b/d");
    expect((await get(server, "/a/b/c")).body).toBe("a/:x/c x=b");
    expect((await get(server, "/a/z/c")).body).toBe("a/:x/c x=z");
    expect((await get(server, "/a/b/e")).body).toBe("fetch");
  });

  it("a longer parameter pattern wins over a wildcard of a shorter prefix; the wildcard takes the rest", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        routes: {
          "/files/*": () => new Response("files/*"),
          "/files/:dir/:name": (req) => new Response(`dir=${req.params.dir} name=${req.params.name}`),
          "/files/readme": () => new Response("readme"),
        },
      }),
    );
    expect((await get(server, "/files/readme")).body).toBe("readme");
    expect((await get(server, "/files/docs/intro.md")).body).toBe("dir=docs name=intro.md");
    expect((await get(server, "/files/other")).body).toBe("files/*");
    expect((await get(server, "/files/a/b/c")).body).toBe("files/*");
  });
});

describe("trailing slashes and bare prefixes (documented, not fixed by the contract)", () => {
  it("answer with one of the route answers, fetch, or a 404 — never crash", async () => {
    const all: Level[] = ["exact", "param", "wildcard", "catchAll"];
    const possible = new Set(["exact", "param:me", "param:42", "param:", "wildcard", "catch-all", "fetch"]);
    const observed: Record<string, string> = {};
    for (const withCatchAll of [true, false]) {
      const levels = withCatchAll ? all : all.slice(0, 3);
      const server = track(serveLevels(levels, withCatchAll));
      for (const path of ["/api/users/me/", "/api/users/42/", "/api/users/", "/api/", "/api", "//api/users/me", "/api//users/me"]) {
        const res = await get(server, path);
        expect([200, 404], `${path} status`).toContain(res.status);
        if (res.status === 200) expect(possible, `${path} → ${res.body}`).toContain(res.body);
        observed[`${withCatchAll ? "with /* + fetch" : "without /* or fetch"} ${path}`] = res.status === 200 ? res.body : `${res.status}`;
      }
      // The server still answers normally afterwards.
      expect((await get(server, "/api/users/me")).body).toBe("exact");
      await withTimeout(server.stop(true), 5000, "server stop");
    }
    console.info(`routes-precedence: trailing-slash behaviour ${JSON.stringify(observed)}`);
  });
});

describe("matching uses the normalized path (raw request targets, no client-side normalization)", () => {
  /** The table under attack: a public /w/* area, a private /admin area, fetch for the rest. */
  function serveGuarded(): Server {
    const label = (name: string) => (req: Request) => new Response(`${name} ${new URL(req.url).pathname}`);
    return serve({
      port: 0,
      hostname: "127.0.0.1",
      routes: {
        "/w/*": label("w"),
        "/w/:page": label("w-page"),
        "/admin": label("admin-exact"),
        "/admin/*": label("admin"),
      },
      fetch: label("fetch"),
    });
  }

  /** The answer for a raw target: the route the WHATWG-normalized pathname selects, plus that pathname. */
  function model(target: string): string {
    const pathname = new URL(`http://h${target}`).pathname;
    const segments = pathname.split("/").slice(1);
    if (pathname.startsWith("/w/") && segments.length === 2 && segments[1] !== "") return `w-page ${pathname}`;
    if (pathname.startsWith("/w/")) return `w ${pathname}`;
    if (pathname === "/admin") return `admin-exact ${pathname}`;
    if (pathname.startsWith("/admin/")) return `admin ${pathname}`;
    return `fetch ${pathname}`;
  }

  const TARGETS = [
    "/w/../admin/x",
    "/w/%2e%2e/admin/x",
    "/w/%2E%2E/admin/x",
    "/w/.%2e/admin/x",
    "/w/%2e./admin/x",
    "/w/x/../../admin/x",
    "/w/../../../admin/x",
    "/w/./../admin",
    "/w/../admin",
    "/w/..",
    "/w/../secret",
    "/w/./x/y",
    "/w/%2e/x/y",
    "/w/x/./y",
    "/w/page?next=/../admin",
    // An encoded slash is data, not a separator: these stay single segments.
    "/w/..%2Fadmin",
    "/admin%2Fx",
  ];

  it.each(TARGETS)("GET %s", async (target) => {
    const server = track(serveGuarded());
    const res = await rawRoute(server.port, target);
    expect(res.status).toBe(200);
    expect(res.body).toBe(model(target));
    // The security property on its own: nothing that normalizes outside /w/ reaches a /w/ route.
    if (!new URL(`http://h${target}`).pathname.startsWith("/w/")) expect(res.body).not.toMatch(/^w/);
  });

  it("backslashes are separators in the normalized path: /w/..\\admin\\x never reaches /w/*", async () => {
    const server = track(serveGuarded());
    const res = await rawRoute(server.port, "/w/..\\admin\\x");
    // uWS may refuse the target (400); if it is served, it must be routed by its normalized path.
    if (res.status !== 400) {
      expect(res.status).toBe(200);
      expect(res.body).toBe(model("/w/..\\admin\\x"));
      expect(res.body).toBe("admin /admin/x");
    }
  });

  it("the same through fetch(): the client resolves dot segments before sending", async () => {
    const server = track(serveGuarded());
    expect((await get(server, "/w/../admin/x")).body).toBe("admin /admin/x");
    expect((await get(server, "/w/%2e%2e/admin")).body).toBe("admin-exact /admin");
  });
});

describe("one answer whichever way a path is matched", () => {
  // The C++ router answers plain paths; paths with dot segments and server.fetch() are matched
  // in JS. All three must pick the same route with the same params.
  const TABLES: Record<string, Record<string, unknown>> = {
    "with a catch-all": {
      "/api/users/me": () => new Response("exact"),
      "/api/users/:id": (req: Request & { params: object }) => new Response(`param ${JSON.stringify(req.params)}`),
      "/api/users/:id/posts/:post": (req: Request & { params: object }) => new Response(`posts ${JSON.stringify(req.params)}`),
      "/api/*": () => new Response("api wildcard"),
      "/": () => new Response("root"),
      "/*": () => new Response("catch-all"),
    },
    "without a catch-all": {
      "/api/users/me": () => new Response("exact"),
      "/api/users/:id": (req: Request & { params: object }) => new Response(`param ${JSON.stringify(req.params)}`),
      "/a/b/d": () => new Response("a/b/d"),
      "/a/:x/c": (req: Request & { params: object }) => new Response(`a/:x/c ${JSON.stringify(req.params)}`),
      "/files/*": () => new Response("files wildcard"),
    },
  };
  const PATHS = [
    "/",
    "/api/users/me",
    "/api/users/42",
    "/api/users/caf%C3%A9",
    "/api/users/a%2Fb",
    "/api/users/42/posts/7",
    "/api/users/42/posts",
    "/api/users/me/",
    "/api/users/",
    "/api/",
    "/api",
    "/api//users/me",
    "//api/users/me",
    "/a/b/c",
    "/a/b/d",
    "/a/b/e",
    "/files",
    "/files/",
    "/files/x/y",
    "/nowhere",
  ];

  it.each(Object.keys(TABLES))("%s", async (name) => {
    const server = track(
      serve({ port: 0, hostname: "127.0.0.1", routes: TABLES[name]!, fetch: (req) => new Response(`fetch ${new URL(req.url).pathname}`) } as never),
    );
    const mismatches: string[] = [];
    for (const path of PATHS) {
      const direct = await rawRoute(server.port, path);
      const viaDots = await rawRoute(server.port, `/zz/..${path}`);
      const viaFetch = await server.fetch(new Request(`http://127.0.0.1:${server.port}${path}`));
      const utf8 = (latin1: string) => Buffer.from(latin1, "latin1").toString("utf8");
      const answers = [`${direct.status} ${utf8(direct.body)}`, `${viaDots.status} ${utf8(viaDots.body)}`, `${viaFetch.status} ${await viaFetch.text()}`];
      if (new Set(answers).size !== 1) mismatches.push(`${path}: network ${answers[0]} | dot segments ${answers[1]} | server.fetch ${answers[2]}`);
    }
    expect(mismatches).toEqual([]);
  });
});

describe("dots that are not dot segments", () => {
  it("/.well-known/* and a parameter value starting with a dot", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        routes: {
          "/.well-known/*": (req) => new Response(`well-known ${new URL(req.url).pathname}`),
          "/.hidden": new Response("hidden"),
          "/users/:id": (req) => new Response(`user ${req.params.id}`),
        },
        fetch: () => new Response("fetch"),
      }),
    );
    expect((await rawRoute(server.port, "/.well-known/acme-challenge/token")).body).toBe("well-known /.well-known/acme-challenge/token");
    expect((await rawRoute(server.port, "/.hidden")).body).toBe("hidden");
    expect((await rawRoute(server.port, "/users/.bob")).body).toBe("user .bob");
    expect((await rawRoute(server.port, "/users/..bob")).body).toBe("user ..bob");
    expect((await rawRoute(server.port, "/users/bob.")).body).toBe("user bob.");
    expect((await rawRoute(server.port, "/users/...")).body).toBe("user ...");
  });
});
