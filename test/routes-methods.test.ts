// Per-method route objects: 405 with Allow, fall-through to fetch, HEAD answered by GET, OPTIONS never implicit, static Responses as method values.
import { describe, expect, it, vi } from "vitest";
import { serve, Response, type Server } from "../dist/index.js";
import { httpRequest, RawConnection } from "./helpers/client.js";
import { get, rawRoute } from "./helpers/routes.js";
import { parseResponses, rawExchange, trackServers } from "./helpers/server.js";

const track = trackServers();

/** The Allow header as a sorted list of methods. */
function allowOf(value: string | null | undefined): string[] {
  expect(value, "Allow header").toBeTypeOf("string");
  return value!
    .split(",")
    .map((m) => m.trim())
    .filter(Boolean)
    .sort();
}

function serveMethods(routes: Record<string, unknown>, fetch?: (req: Request) => Response): Server {
  return track(serve({ port: 0, hostname: "127.0.0.1", routes, ...(fetch ? { fetch } : {}) } as never));
}

describe("a method the object does not define, without fetch: 405 with Allow", () => {
  it("GET + POST: PUT, DELETE, PATCH, OPTIONS are 405; Allow lists GET, HEAD, POST", async () => {
    const server = serveMethods({
      "/posts": { GET: () => new Response("list"), POST: () => new Response("created", { status: 201 }) },
    });
    for (const method of ["PUT", "DELETE", "PATCH", "OPTIONS"]) {
      const res = await httpRequest(server.port, { method, path: "/posts" });
      expect(res.status, method).toBe(405);
      expect(allowOf(res.headers.allow), method).toEqual(["GET", "HEAD", "POST"]);
    }
    expect((await get(server, "/posts")).body).toBe("list");
    expect(await get(server, "/posts", { method: "POST" })).toMatchObject({ status: 201, body: "created" });
  });

  it("an unknown method (PROPFIND) is 405 too", async () => {
    const server = serveMethods({ "/dav": { GET: () => new Response("get") } });
    const res = await rawRoute(server.port, "/dav", { method: "PROPFIND" });
    expect(res.status).toBe(405);
    expect(allowOf(res.header("allow"))).toEqual(["GET", "HEAD"]);
  });

  it("Allow holds exactly the defined methods (no HEAD without GET)", async () => {
    const server = serveMethods({
      "/post-only": { POST: () => new Response("p") },
      "/head-only": { HEAD: () => new Response(null, { headers: { "X-Head": "1" } }) },
      "/all": {
        GET: () => new Response("g"),
        HEAD: () => new Response(null),
        OPTIONS: () => new Response(null, { status: 204 }),
        DELETE: () => new Response("d"),
        PATCH: () => new Response("pa"),
        POST: () => new Response("po"),
        PUT: () => new Response("pu"),
      },
      "/delete-put": { DELETE: () => new Response("d"), PUT: () => new Response("u") },
    });
    expect(allowOf((await httpRequest(server.port, { path: "/post-only" })).headers.allow)).toEqual(["POST"]);
    expect(allowOf((await httpRequest(server.port, { path: "/head-only", method: "POST" })).headers.allow)).toEqual(["HEAD"]);
    expect(allowOf((await httpRequest(server.port, { path: "/delete-put" })).headers.allow)).toEqual(["DELETE", "PUT"]);
    const odd = await rawRoute(server.port, "/all", { method: "PROPFIND" });
    expect(odd.status).toBe(405);
    expect(allowOf(odd.header("allow"))).toEqual(["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]);
  });

  it("a GET on a POST-only route is 405, and HEAD is 405 with no body", async () => {
    const server = serveMethods({ "/post-only": { POST: () => new Response("p") } });
    expect((await get(server, "/post-only")).status).toBe(405);
    const head = await rawRoute(server.port, "/post-only", { method: "HEAD" });
    expect(head.status).toBe(405);
    expect(allowOf(head.header("allow"))).toEqual(["POST"]);
    expect(head.afterHead).toBe("");
  });

  it("on a parameter route as well", async () => {
    const server = serveMethods({ "/items/:id": { DELETE: (req: Request & { params: { id: string } }) => new Response(`deleted ${req.params.id}`) } });
    const res = await httpRequest(server.port, { path: "/items/3" });
    expect(res.status).toBe(405);
    expect(allowOf(res.headers.allow)).toEqual(["DELETE"]);
    expect((await get(server, "/items/3", { method: "DELETE" })).body).toBe("deleted 3");
  });

  it("the server keeps answering on the same keep-alive connection after a 405", async () => {
    const server = serveMethods({ "/posts": { GET: () => new Response("list") } });
    const conn = await RawConnection.open(server.port);
    try {
      const first = await conn.request("DELETE /posts HTTP/1.1\r\nHost: x\r\n\r\n");
      expect(first).toMatch(/^HTTP\/1\.1 405/);
      const second = await conn.request("GET /posts HTTP/1.1\r\nHost: x\r\n\r\n");
      expect(second).toMatch(/^HTTP\/1\.1 200/);
      expect(second.endsWith("\r\n\r\nlist")).toBe(true);
    } finally {
      conn.destroy();
    }
  });
});

describe("a method the object does not define, with fetch: fetch answers", () => {
  it("PUT on a GET-only route reaches fetch with the request", async () => {
    const fallback = vi.fn((req: Request) => new Response(`fetch ${req.method} ${new URL(req.url).pathname}`, { status: 418 }));
    const server = serveMethods({ "/posts": { GET: () => new Response("list") } }, fallback);
    const res = await get(server, "/posts", { method: "PUT", body: "x" });
    expect(res).toMatchObject({ status: 418, body: "fetch PUT /posts" });
    expect(res.headers.get("allow")).toBeNull();
    expect(fallback).toHaveBeenCalledTimes(1);
    expect((await get(server, "/posts")).body).toBe("list");
    expect(fallback).toHaveBeenCalledTimes(1);
  });

  it("OPTIONS without an OPTIONS handler goes to fetch", async () => {
    const server = serveMethods({ "/posts": { GET: () => new Response("list"), POST: () => new Response("p") } }, (req) => new Response(`fetch ${req.method}`));
    expect((await get(server, "/posts", { method: "OPTIONS" })).body).toBe("fetch OPTIONS");
  });

  it("fetch can read the body of a fallen-through request", async () => {
    const server = serveMethods({ "/posts": { GET: () => new Response("list") } }, async (req) => new Response(`got ${await req.text()}`));
    expect((await get(server, "/posts", { method: "POST", body: "payload" })).body).toBe("got payload");
  });
});

describe("HEAD", () => {
  it("HEAD on a route with GET but no HEAD: GET's headers and Content-Length, no body", async () => {
    const getHandler = vi.fn(() => new Response("twelve bytes", { headers: { "X-Kind": "list", "Content-Type": "text/x-list" } }));
    const server = serveMethods({ "/posts": { GET: getHandler } });
    const head = await rawRoute(server.port, "/posts", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.header("x-kind")).toBe("list");
    expect(head.header("content-type")).toBe("text/x-list");
    expect(head.header("content-length")).toBe("12");
    expect(head.afterHead).toBe("");
    expect(getHandler).toHaveBeenCalledTimes(1);
  });

  it("the GET handler sees the request; its status passes through", async () => {
    const seen: string[] = [];
    const server = serveMethods({
      "/things/:id": {
        GET: (req: Request & { params: { id: string } }) => {
          seen.push(`${req.method} ${req.params.id}`);
          return new Response("gone", { status: 410 });
        },
      },
    });
    const head = await rawRoute(server.port, "/things/9", { method: "HEAD" });
    expect(head.status).toBe(410);
    expect(head.header("content-length")).toBe("4");
    expect(head.afterHead).toBe("");
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatch(/^(GET|HEAD) 9$/);
  });

  it("an explicit HEAD handler wins over GET", async () => {
    const getHandler = vi.fn(() => new Response("from get"));
    const server = serveMethods({
      "/posts": {
        GET: getHandler,
        HEAD: () => new Response(null, { headers: { "X-From": "head" } }),
      },
    });
    const head = await rawRoute(server.port, "/posts", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.header("x-from")).toBe("head");
    expect(head.afterHead).toBe("");
    expect(getHandler).not.toHaveBeenCalled();
  });

  it("HEAD on a function route calls the function and drops the body", async () => {
    const server = serveMethods({ "/fn": (req: Request) => new Response(`method ${req.method}`) });
    const head = await rawRoute(server.port, "/fn", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.afterHead).toBe("");
    expect(Number(head.header("content-length"))).toBe("method HEAD".length);
  });

  it("HEAD then GET on one keep-alive connection stay framed", async () => {
    const server = serveMethods({ "/posts": { GET: () => new Response("body!") } });
    const conn = await RawConnection.open(server.port);
    try {
      conn.socket.write("HEAD /posts HTTP/1.1\r\nHost: x\r\n\r\n");
      // The HEAD answer carries Content-Length: 5 but no body: read up to the blank line by hand.
      const deadline = Date.now() + 5000;
      let headText = "";
      const chunks: string[] = [];
      conn.socket.removeAllListeners("data");
      conn.socket.on("data", (d: string) => chunks.push(d));
      while (!(headText = chunks.join("")).includes("\r\n\r\n")) {
        if (Date.now() > deadline) throw new Error(`no HEAD answer; got ${JSON.stringify(headText)}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(headText).toMatch(/^HTTP\/1\.1 200/);
      expect(headText).toMatch(/\r\ncontent-length: 5\r\n/i);
      chunks.length = 0;
      conn.socket.write("GET /posts HTTP/1.1\r\nHost: x\r\n\r\n");
      while (!chunks.join("").endsWith("body!")) {
        if (Date.now() > deadline) throw new Error(`no GET answer; got ${JSON.stringify(chunks.join(""))}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      // Nothing of the HEAD response's body leaked in front of the GET response.
      expect(chunks.join("")).toMatch(/^HTTP\/1\.1 200/);
    } finally {
      conn.destroy();
    }
  });
});

describe("HEAD answers from the router's own 404/405 carry no body", () => {
  it("HEAD on an unmatched path without fetch: 404, headers only", async () => {
    const server = serveMethods({ "/posts": { GET: () => new Response("list") } });
    const head = await rawRoute(server.port, "/nope", { method: "HEAD" });
    expect(head.status).toBe(404);
    expect(head.afterHead).toBe("");
  });

  it("a HEAD 405 or 404 does not corrupt the next response on the same keep-alive connection", async () => {
    const server = serveMethods({ "/post-only": { POST: () => new Response("p") } });
    for (const target of ["/post-only", "/nope"]) {
      const exchange = await rawExchange(
        server.port,
        [`HEAD ${target} HTTP/1.1\r\nHost: x\r\n\r\n`, "GET /post-only HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"],
        { gapMs: 50, idleMs: 1000 },
      );
      const { responses, rest } = parseResponses(exchange.data, new Set([0]));
      expect(responses.map((r) => r.status), `HEAD ${target} then GET; got ${JSON.stringify(exchange.data)}`).toEqual([target === "/nope" ? 404 : 405, 405]);
      expect(rest).toBe("");
    }
  });
});

describe("OPTIONS is never answered implicitly", () => {
  it("without fetch: 405 (even with GET and POST defined)", async () => {
    const server = serveMethods({ "/posts": { GET: () => new Response("list") } });
    const res = await httpRequest(server.port, { method: "OPTIONS", path: "/posts" });
    expect(res.status).toBe(405);
    expect(allowOf(res.headers.allow)).toEqual(["GET", "HEAD"]);
    expect(res.headers["access-control-allow-methods"]).toBeUndefined();
  });

  it("an OPTIONS handler answers (CORS preflight)", async () => {
    const server = serveMethods({
      "/api": {
        GET: () => new Response("data"),
        OPTIONS: () => new Response(null, { status: 204, headers: { "Access-Control-Allow-Methods": "GET, OPTIONS", "Access-Control-Allow-Origin": "*" } }),
      },
    });
    const res = await httpRequest(server.port, { method: "OPTIONS", path: "/api", headers: { Origin: "http://a.example", "Access-Control-Request-Method": "GET" } });
    expect(res.status).toBe(204);
    expect(res.headers["access-control-allow-methods"]).toBe("GET, OPTIONS");
    expect(res.headers["access-control-allow-origin"]).toBe("*");
  });
});

describe("static Responses as method values", () => {
  it("GET a static Response, POST a handler; the static one is served every time", async () => {
    const post = vi.fn(async (req: Request) => new Response(`posted ${await req.text()}`, { status: 201 }));
    const server = serveMethods({
      "/health": {
        GET: new Response("static get", { headers: { "X-Static": "yes" } }),
        POST: post,
      },
    });
    for (let i = 0; i < 3; i++) {
      const res = await get(server, "/health");
      expect(res).toMatchObject({ status: 200, body: "static get" });
      expect(res.headers.get("x-static")).toBe("yes");
    }
    expect(await get(server, "/health", { method: "POST", body: "hi" })).toMatchObject({ status: 201, body: "posted hi" });
    expect(post).toHaveBeenCalledTimes(1);
  });

  it("HEAD falls back to a static GET: headers only", async () => {
    const server = serveMethods({ "/health": { GET: new Response("static get", { headers: { "X-Static": "yes" } }) } });
    const head = await rawRoute(server.port, "/health", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.header("x-static")).toBe("yes");
    expect(head.header("content-length")).toBe("10");
    expect(head.afterHead).toBe("");
  });

  it("a static 204 for DELETE and Response.json for PUT", async () => {
    const server = serveMethods({
      "/thing": {
        DELETE: new Response(null, { status: 204 }),
        PUT: Response.json({ ok: true }, { status: 202 }),
      },
    });
    const del = await get(server, "/thing", { method: "DELETE" });
    expect([del.status, del.body]).toEqual([204, ""]);
    const put = await get(server, "/thing", { method: "PUT", body: "{}" });
    expect(put.status).toBe(202);
    expect(put.headers.get("content-type")).toMatch(/^application\/json/);
    expect(JSON.parse(put.body)).toEqual({ ok: true });
    expect((await httpRequest(server.port, { path: "/thing" })).status).toBe(405);
  });
});

describe("method objects and other routes together", () => {
  it("each route's methods are its own", async () => {
    const server = serveMethods({
      "/a": { GET: () => new Response("a get") },
      "/b": { POST: () => new Response("b post") },
      "/c": () => new Response("c any"),
    });
    expect((await get(server, "/a")).body).toBe("a get");
    expect((await get(server, "/a", { method: "POST" })).status).toBe(405);
    expect((await get(server, "/b", { method: "POST" })).body).toBe("b post");
    expect((await get(server, "/b")).status).toBe(405);
    expect((await get(server, "/c", { method: "DELETE" })).body).toBe("c any");
  });
});

describe("server.fetch() applies the same method rules", () => {
  it("405 with Allow without fetch, HEAD via GET, fall-through with fetch", async () => {
    const without = serveMethods({ "/posts": { GET: () => new Response("list"), POST: () => new Response("p") } });
    const denied = await without.fetch(new Request(new URL("/posts", without.url), { method: "DELETE" }));
    expect(denied.status).toBe(405);
    expect(allowOf(denied.headers.get("allow"))).toEqual(["GET", "HEAD", "POST"]);
    const head = await without.fetch(new Request(new URL("/posts", without.url), { method: "HEAD" }));
    expect(head.status).toBe(200);

    const withFetch = serveMethods({ "/posts": { GET: () => new Response("list") } }, (req) => new Response(`fetch ${req.method}`));
    const fell = await withFetch.fetch(new Request(new URL("/posts", withFetch.url), { method: "PUT", body: "x" }));
    expect(await fell.text()).toBe("fetch PUT");
  });
});
