// Every routing example of reference/bun-serve.md, run as written except for `port: 0`, the import line, and an in-memory stand-in for Bun's sql/sqlite/Bun.file.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { serve, Response, type RouteRequest, type Server } from "../dist/index.js";
import { httpRequest } from "./helpers/client.js";
import { get, rawRoute, textOf } from "./helpers/routes.js";
import { fetchFrom, trackServers, withTimeout } from "./helpers/server.js";

const track = trackServers();

/** Bun's `sql` in the async examples: a query that takes a little while. */
function sqlVersion(): Promise<Array<{ version: string }>> {
  return new Promise((resolve) => setTimeout(() => resolve([{ version: "PostgreSQL 17.0" }]), 5));
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "uwserve-routes-"));
  // Not a real icon: any bytes that are not valid UTF-8 prove the body is sent byte for byte.
  await writeFile(join(dir, "favicon.ico"), Buffer.from([0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x10, 0x10, 0xff, 0xfe, 0x80]));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("Bun.serve() — the first example (static, dynamic, per-method, wildcard, redirect, file)", () => {
  let server: Server;
  const fallback = vi.fn();
  beforeAll(async () => {
    const icon = await readFile(join(dir, "favicon.ico"));
    server = serve({
      port: 0,
      hostname: "127.0.0.1",
      routes: {
        // Static routes
        "/api/status": new Response("OK"),

        // Dynamic routes
        "/users/:id": (req) => {
          return new Response(`Hello User ${req.params.id}!`);
        },

        // Per-HTTP method handlers
        "/api/posts": {
          GET: () => new Response("List posts"),
          POST: async (req) => {
            const body = await req.json();
            return Response.json({ created: true, ...body });
          },
        },

        // Wildcard route for all routes that start with "/api/" and aren't otherwise matched
        "/api/*": Response.json({ message: "Not found" }, { status: 404 }),

        // Redirect from /blog/hello to /blog/hello/world
        "/blog/hello": Response.redirect("/blog/hello/world"),

        // Serve a file by buffering it in memory
        "/favicon.ico": new Response(new Uint8Array(icon), {
          headers: {
            "Content-Type": "image/x-icon",
          },
        }),
      },

      // (optional) fallback for unmatched routes:
      fetch(req) {
        fallback(new URL(req.url).pathname);
        return new Response("Not Found", { status: 404 });
      },
    });
  });
  afterAll(async () => {
    await withTimeout(server.stop(true), 5000, "server stop");
  });

  it("static route: /api/status answers OK, every time (the static body is not used up)", async () => {
    for (let i = 0; i < 3; i++) {
      const res = await get(server, "/api/status");
      expect(res.status).toBe(200);
      expect(res.body).toBe("OK");
    }
  });

  it("dynamic route: /users/:id", async () => {
    expect(await textOf(server, "/users/42")).toBe("Hello User 42!");
    expect(await textOf(server, "/users/alice")).toBe("Hello User alice!");
  });

  it("per-method handlers: GET and POST /api/posts", async () => {
    expect(await textOf(server, "/api/posts")).toBe("List posts");
    const res = await get(server, "/api/posts", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ title: "Hello" }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(JSON.parse(res.body)).toEqual({ created: true, title: "Hello" });
  });

  it("wildcard: unmatched /api/ paths get the static 404 JSON, exact /api routes still win", async () => {
    const res = await get(server, "/api/nope");
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(JSON.parse(res.body)).toEqual({ message: "Not found" });
    expect(JSON.parse((await get(server, "/api/deeper/still/nope")).body)).toEqual({ message: "Not found" });
    expect(await textOf(server, "/api/status")).toBe("OK");
  });

  it("redirect: /blog/hello → 302 with Location /blog/hello/world", async () => {
    const res = await get(server, "/blog/hello");
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("/blog/hello/world");
  });

  it("a file buffered in memory: bytes and Content-Type as given", async () => {
    const res = await httpRequest(server.port, { path: "/favicon.ico" });
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("image/x-icon");
    expect(res.body.equals(await readFile(join(dir, "favicon.ico")))).toBe(true);
    expect(res.headers["content-length"]).toBe(String(res.body.length));
  });

  it("unmatched paths go to fetch", async () => {
    fallback.mockClear();
    const res = await get(server, "/somewhere/else");
    expect(res.status).toBe(404);
    expect(res.body).toBe("Not Found");
    expect(fallback).toHaveBeenCalledWith("/somewhere/else");
  });

  it("routes never call fetch for a matched path", async () => {
    fallback.mockClear();
    await get(server, "/api/status");
    await get(server, "/users/1");
    await get(server, "/api/posts");
    await get(server, "/api/x");
    expect(fallback).not.toHaveBeenCalled();
  });
});

describe("Routing — handlers get a Request with params", () => {
  it("req is a Request, params are a plain object, the second argument is the server", async () => {
    let seen: { isRequest: boolean; params: unknown; sameServer: boolean; method: string; url: string } | undefined;
    const server: Server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        routes: {
          "/users/:id": (req, srv) => {
            seen = { isRequest: req instanceof Request, params: { ...req.params }, sameServer: srv === server, method: req.method, url: req.url };
            return new Response("ok");
          },
        },
      }),
    );
    expect(await textOf(server, "/users/7?tab=1")).toBe("ok");
    expect(seen).toEqual({ isRequest: true, params: { id: "7" }, sameServer: true, method: "GET", url: `http://127.0.0.1:${server.port}/users/7?tab=1` });
  });

  it("an exact route's handler gets req.params = {}", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        routes: { "/users/me": (req) => Response.json({ params: req.params, type: typeof req.params }) },
      }),
    );
    expect(JSON.parse(await textOf(server, "/users/me"))).toEqual({ params: {}, type: "object" });
  });

  it("routes without fetch: an unmatched path is a 404", async () => {
    const server = track(serve({ port: 0, hostname: "127.0.0.1", routes: { "/a": new Response("a") } }));
    expect((await get(server, "/b")).status).toBe(404);
    expect(await textOf(server, "/a")).toBe("a");
  });

  it("a global (undici) Response works as a static route too", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        routes: { "/g": new globalThis.Response("global", { status: 201, headers: { "X-From": "undici" } }) },
      }),
    );
    for (let i = 0; i < 2; i++) {
      const res = await get(server, "/g");
      expect([res.status, res.body, res.headers.get("x-from")]).toEqual([201, "global", "undici"]);
    }
  });

  it("server.fetch() goes through routes too (static, param, method object, fetch fallback)", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        routes: {
          "/static": new Response("static"),
          "/users/:id": (req) => new Response(`user ${req.params.id}`),
          "/posts": { POST: () => new Response("created", { status: 201 }) },
        },
        fetch: () => new Response("fallback"),
      }),
    );
    expect(await (await server.fetch("/static")).text()).toBe("static");
    expect(await (await server.fetch("/users/%C3%A9")).text()).toBe("user é");
    expect(await (await server.fetch(new Request(new URL("/users/9", server.url)))).text()).toBe("user 9");
    const created = await server.fetch(new Request(new URL("/posts", server.url), { method: "POST" }));
    expect([created.status, await created.text()]).toEqual([201, "created"]);
    expect(await (await server.fetch("/elsewhere")).text()).toBe("fallback");
  });
});

describe("Async/await and Promise in routes (a timer stands in for Bun's sql)", () => {
  it("async/await in routes", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        routes: {
          "/api/version": async () => {
            const [version] = await sqlVersion();
            return Response.json(version);
          },
        },
      }),
    );
    expect(JSON.parse(await textOf(server, "/api/version"))).toEqual({ version: "PostgreSQL 17.0" });
  });

  it("Promise in routes (setTimeout 100 ms)", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        routes: {
          "/api/version": () => {
            return new Promise<Response>((resolve) => {
              setTimeout(async () => {
                const [version] = await sqlVersion();
                resolve(Response.json(version));
              }, 100);
            });
          },
        },
      }),
    );
    const started = performance.now();
    expect(JSON.parse(await textOf(server, "/api/version"))).toEqual({ version: "PostgreSQL 17.0" });
    expect(performance.now() - started).toBeGreaterThanOrEqual(90);
  });
});

describe("Type-safe route parameters", () => {
  it("params parsed from the pattern, with and without an explicit RouteRequest type (BunRequest in Bun)", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        routes: {
          // TypeScript knows the shape of params when passed as a string literal
          "/orgs/:orgId/repos/:repoId": (req) => {
            const { orgId, repoId } = req.params;
            return Response.json({ orgId, repoId });
          },

          "/orgs/:orgId/repos/:repoId/settings": (
            // optional: you can explicitly pass a type to RouteRequest:
            req: RouteRequest<"/orgs/:orgId/repos/:repoId/settings">,
          ) => {
            const { orgId, repoId } = req.params;
            return Response.json({ orgId, repoId, settings: true });
          },
        },
      }),
    );
    expect(JSON.parse(await textOf(server, "/orgs/oven/repos/bun"))).toEqual({ orgId: "oven", repoId: "bun" });
    expect(JSON.parse(await textOf(server, "/orgs/oven/repos/bun/settings"))).toEqual({ orgId: "oven", repoId: "bun", settings: true });
  });

  it("percent-encoded values are decoded, Unicode kept, invalid UTF-8 → U+FFFD", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        routes: { "/orgs/:orgId/repos/:repoId": (req) => Response.json(req.params) },
      }),
    );
    expect(JSON.parse(await textOf(server, "/orgs/my%20org/repos/caf%C3%A9"))).toEqual({ orgId: "my org", repoId: "café" });
    expect(JSON.parse(await textOf(server, "/orgs/%FF/repos/x"))).toEqual({ orgId: "\uFFFD", repoId: "x" });
  });
});

describe("Static responses", () => {
  it("health checks, custom headers, redirects, JSON", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        routes: {
          // Health checks
          "/health": new Response("OK"),
          "/ready": new Response("Ready", {
            headers: {
              // Pass custom headers
              "X-Ready": "1",
            },
          }),

          // Redirects
          "/blog": Response.redirect("https://bun.sh/blog"),

          // API responses
          "/api/config": Response.json({
            version: "1.0.0",
            env: "production",
          }),
        },
      }),
    );
    expect(await textOf(server, "/health")).toBe("OK");

    const ready = await httpRequest(server.port, { path: "/ready" });
    expect(ready.status).toBe(200);
    expect(ready.headers["x-ready"]).toBe("1");
    expect(ready.headers["content-type"]).toBe("text/plain;charset=UTF-8");
    expect(ready.body.toString()).toBe("Ready");

    const blog = await get(server, "/blog");
    expect(blog.status).toBe(302);
    expect(blog.headers.get("location")).toBe("https://bun.sh/blog");

    const config = await get(server, "/api/config");
    expect(config.headers.get("content-type")).toMatch(/^application\/json/);
    expect(JSON.parse(config.body)).toEqual({ version: "1.0.0", env: "production" });
  });

  it("status, repeated Set-Cookie and other headers are sent as given, on every request", async () => {
    const headers = new Headers({ "Cache-Control": "max-age=60", "X-Custom": "yes" });
    headers.append("Set-Cookie", "a=1");
    headers.append("Set-Cookie", "b=2");
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        routes: { "/made": new Response("made", { status: 201, statusText: "Made", headers }) },
      }),
    );
    for (let i = 0; i < 3; i++) {
      const res = await httpRequest(server.port, { path: "/made" });
      expect(res.status).toBe(201);
      expect(res.headers["cache-control"]).toBe("max-age=60");
      expect(res.headers["x-custom"]).toBe("yes");
      expect(res.headers["set-cookie"]).toEqual(["a=1", "b=2"]);
      expect(res.body.toString()).toBe("made");
    }
  });

  it("HEAD on a static route: the same headers and Content-Length, no body", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        routes: { "/ready": new Response("Ready!", { headers: { "X-Ready": "1" } }) },
      }),
    );
    const head = await rawRoute(server.port, "/ready", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.header("x-ready")).toBe("1");
    expect(head.header("content-length")).toBe("6");
    expect(head.afterHead).toBe("");
  });

  it("a response buffered in memory first (a Blob from a local upstream) serves as a static route", async () => {
    const upstream = track(serve({ port: 0, hostname: "127.0.0.1", fetch: () => Response.json({ data: [1, 2, 3] }) }));
    const time = await fetchFrom(upstream, "/v1/data");
    // Buffer the response in memory first.
    const blob = await time.blob();

    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        static: {
          "/api/data": new Response(blob),
        },

        fetch(req) {
          return new Response("404!");
        },
      }),
    );
    for (let i = 0; i < 2; i++) expect(JSON.parse(await textOf(server, "/api/data"))).toEqual({ data: [1, 2, 3] });
    expect(await textOf(server, "/other")).toBe("404!");
  });

  it("`static` + server.reload({ static }) a few times (instead of every second)", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        static: {
          "/api/time": new Response("time 0"),
        },

        fetch(req) {
          return new Response("404!");
        },
      }),
    );
    expect(await textOf(server, "/api/time")).toBe("time 0");
    for (let i = 1; i <= 3; i++) {
      server.reload({
        static: {
          "/api/time": new Response(`time ${i}`),
        },

        fetch(req) {
          return new Response("404!");
        },
      });
      expect(await textOf(server, "/api/time")).toBe(`time ${i}`);
      expect(await textOf(server, "/api/time")).toBe(`time ${i}`);
    }
    expect(await textOf(server, "/other")).toBe("404!");
  });
});

describe("Route precedence (the example)", () => {
  it("exact, then parameter, then wildcard, then the global catch-all", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        routes: {
          // Most specific first
          "/api/users/me": () => new Response("Current user"),
          "/api/users/:id": (req) => new Response(`User ${req.params.id}`),
          "/api/*": () => new Response("API catch-all"),
          "/*": () => new Response("Global catch-all"),
        },
      }),
    );
    expect(await textOf(server, "/api/users/me")).toBe("Current user");
    expect(await textOf(server, "/api/users/42")).toBe("User 42");
    expect(await textOf(server, "/api/posts")).toBe("API catch-all");
    expect(await textOf(server, "/about")).toBe("Global catch-all");
    expect(await textOf(server, "/")).toBe("Global catch-all");
  });
});

describe("Per-HTTP method routes", () => {
  it("GET, POST, PUT, DELETE on one path", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        routes: {
          "/api/posts": {
            // Different handlers per method
            GET: () => new Response("List posts"),
            POST: async (req) => {
              const post = await req.json();
              return Response.json({ id: crypto.randomUUID(), ...post });
            },
            PUT: async (req) => {
              const updates = await req.json();
              return Response.json({ updated: true, ...updates });
            },
            DELETE: () => new Response(null, { status: 204 }),
          },
        },
      }),
    );
    const json = { "content-type": "application/json" };
    expect(await textOf(server, "/api/posts")).toBe("List posts");
    const created = JSON.parse(await textOf(server, "/api/posts", { method: "POST", headers: json, body: '{"title":"t"}' }));
    expect(created).toEqual({ id: expect.stringMatching(/^[0-9a-f-]{36}$/), title: "t" });
    expect(JSON.parse(await textOf(server, "/api/posts", { method: "PUT", headers: json, body: '{"title":"u"}' }))).toEqual({ updated: true, title: "u" });
    const deleted = await get(server, "/api/posts", { method: "DELETE" });
    expect([deleted.status, deleted.body]).toEqual([204, ""]);
  });

  it("a function instead of an object handles every method", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        routes: {
          "/api/version": () => Response.json({ version: "1.0.0" }),
        },
      }),
    );

    const responses = [
      await withTimeout(fetch(new URL("/api/version", server.url)), 5000, "GET"),
      await withTimeout(fetch(new URL("/api/version", server.url), { method: "PUT" }), 5000, "PUT"),
      await withTimeout(fetch(new URL("/api/version", server.url), { method: "DELETE" }), 5000, "DELETE"),
      await withTimeout(fetch(new URL("/api/version", server.url), { method: "PATCH" }), 5000, "PATCH"),
      await withTimeout(fetch(new URL("/api/version", server.url), { method: "OPTIONS" }), 5000, "OPTIONS"),
      await withTimeout(fetch(new URL("/api/version", server.url), { method: "POST", body: "x" }), 5000, "POST"),
    ];
    for (const res of responses) {
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ version: "1.0.0" });
    }
  });
});

describe("Hot route reloading", () => {
  it("server.reload({ routes }) deploys new routes without a restart", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        routes: {
          "/api/version": () => Response.json({ version: "1.0.0" }),
        },
      }),
    );
    expect(JSON.parse(await textOf(server, "/api/version"))).toEqual({ version: "1.0.0" });

    // Deploy new routes without downtime
    server.reload({
      routes: {
        "/api/version": () => Response.json({ version: "2.0.0" }),
      },
    });
    expect(JSON.parse(await textOf(server, "/api/version"))).toEqual({ version: "2.0.0" });
  });

  it("server.reload() — hot reload handlers: static route and fetch both swapped", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        routes: {
          "/api/version": Response.json({ version: "v1" }),
        },
        fetch(req) {
          return new Response("v1");
        },
      }),
    );
    expect(JSON.parse(await textOf(server, "/api/version"))).toEqual({ version: "v1" });
    expect(await textOf(server, "/")).toBe("v1");

    // Update to new handler
    server.reload({
      routes: {
        "/api/version": Response.json({ version: "v2" }),
      },
      fetch(req) {
        return new Response("v2");
      },
    });
    expect(JSON.parse(await textOf(server, "/api/version"))).toEqual({ version: "v2" });
    expect(await textOf(server, "/")).toBe("v2");
  });
});

describe("Error handling", () => {
  it("errors thrown in routes are caught and go to error()", async () => {
    const consoleError = vi.spyOn(console, "error").mockImplementation(() => {});
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        routes: {
          // Errors are caught automatically
          "/api/risky": () => {
            throw new Error("Something went wrong");
          },
        },
        // Global error handler
        error(error) {
          console.error(error);
          return new Response(`Internal Error: ${(error as Error).message}`, {
            status: 500,
            headers: {
              "Content-Type": "text/plain",
            },
          });
        },
      }),
    );
    const res = await get(server, "/api/risky");
    expect(res.status).toBe(500);
    expect(res.headers.get("content-type")).toBe("text/plain");
    expect(res.body).toBe("Internal Error: Something went wrong");
    expect(consoleError).toHaveBeenCalledTimes(1);
    expect((consoleError.mock.calls[0]![0] as Error).message).toBe("Something went wrong");
  });

  it("rejections of async routes and method handlers go to error() too", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        routes: {
          "/async/:id": async (req) => {
            await new Promise((r) => setTimeout(r, 1));
            throw new Error(`async ${req.params.id}`);
          },
          "/method": {
            POST: () => {
              throw new Error("method");
            },
          },
        },
        error: (error) => new Response(`caught ${(error as Error).message}`, { status: 503 }),
      }),
    );
    expect(await get(server, "/async/5")).toMatchObject({ status: 503, body: "caught async 5" });
    expect(await get(server, "/method", { method: "POST" })).toMatchObject({ status: 503, body: "caught method" });
  });

  it("without error(): a throwing route is a 500, and the server keeps serving", async () => {
    const consoleError = vi.spyOn(console, "error").mockImplementation(() => {});
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        development: false,
        routes: {
          "/boom": () => {
            throw new Error("secret detail");
          },
          "/ok": new Response("ok"),
        },
      }),
    );
    const res = await get(server, "/boom");
    expect(res.status).toBe(500);
    expect(res.body).not.toContain("secret detail");
    expect(await textOf(server, "/ok")).toBe("ok");
    // The error is reported for logging, once.
    expect(consoleError).toHaveBeenCalledTimes(1);
  });

  it("a route returning something that is not a Response is a 500 through error()", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        routes: { "/nothing": (() => undefined) as never },
        error: () => new Response("handled", { status: 500 }),
      }),
    );
    expect(await get(server, "/nothing")).toMatchObject({ status: 500, body: "handled" });
  });
});

describe("Practical example: REST API (an in-memory Map instead of bun:sqlite)", () => {
  interface Post {
    id: string;
    title: string;
    content: string;
    created_at: string;
  }

  it("list, create, get by id, unknown id", async () => {
    const db = new Map<string, Post>();
    const consoleError = vi.spyOn(console, "error").mockImplementation(() => {});

    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        routes: {
          // List posts
          "/api/posts": {
            GET: () => {
              const posts = [...db.values()];
              return Response.json(posts);
            },

            // Create post
            POST: async (req) => {
              const post: Omit<Post, "id" | "created_at"> = await req.json();
              const id = crypto.randomUUID();

              db.set(id, { id, title: post.title, content: post.content, created_at: new Date().toISOString() });

              return Response.json({ id, ...post }, { status: 201 });
            },
          },

          // Get post by ID
          "/api/posts/:id": (req) => {
            const post = db.get(req.params.id);

            if (!post) {
              return new Response("Not Found", { status: 404 });
            }

            return Response.json(post);
          },
        },

        error(error) {
          console.error(error);
          return new Response("Internal Server Error", { status: 500 });
        },
      }),
    );

    expect(JSON.parse(await textOf(server, "/api/posts"))).toEqual([]);

    const json = { "content-type": "application/json" };
    const created = await get(server, "/api/posts", { method: "POST", headers: json, body: JSON.stringify({ title: "Hello", content: "World" }) });
    expect(created.status).toBe(201);
    const { id, ...rest } = JSON.parse(created.body);
    expect(rest).toEqual({ title: "Hello", content: "World" });

    const one = await get(server, `/api/posts/${id}`);
    expect(one.status).toBe(200);
    expect(JSON.parse(one.body)).toEqual({ id, title: "Hello", content: "World", created_at: expect.any(String) });

    expect(JSON.parse(await textOf(server, "/api/posts"))).toHaveLength(1);
    expect(await get(server, "/api/posts/does-not-exist")).toMatchObject({ status: 404, body: "Not Found" });

    // A body that is not JSON makes req.json() reject: the error handler answers.
    const broken = await get(server, "/api/posts", { method: "POST", headers: json, body: "{not json" });
    expect(broken).toMatchObject({ status: 500, body: "Internal Server Error" });
    expect(consoleError).toHaveBeenCalledTimes(1);
  });
});

describe("HTML imports", () => {
  it.skip("HTML imports — Bun's bundler, not part of uwserve", () => {});
});
