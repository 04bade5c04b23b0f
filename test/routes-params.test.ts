// req.params: percent-decoded once, invalid UTF-8 → U+FFFD, bad escapes kept, "+" kept, "%2F" decoded without splitting segments.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serve, Response, type Server } from "../dist/index.js";
import { get, rawRoute } from "./helpers/routes.js";
import { withTimeout } from "./helpers/server.js";

let server: Server;
beforeAll(() => {
  server = serve({
    port: 0,
    hostname: "127.0.0.1",
    routes: {
      "/p/:value": (req) => Response.json({ route: "/p/:value", params: req.params, keys: Object.keys(req.params) }),
      "/p/:a/:b": (req) => Response.json({ route: "/p/:a/:b", params: req.params, keys: Object.keys(req.params) }),
      "/m/:a/:b/:c": (req) => Response.json({ route: "/m/:a/:b/:c", params: req.params, keys: Object.keys(req.params) }),
      "/orgs/:orgId/repos/:repo_id/issues/:n1": (req) => Response.json({ route: "issues", params: req.params, keys: Object.keys(req.params) }),
      "/users/:id/posts": (req) => Response.json({ route: "/users/:id/posts", params: req.params, keys: Object.keys(req.params) }),
      "/methods/:id": {
        GET: (req) => Response.json({ route: "GET /methods/:id", params: req.params, keys: Object.keys(req.params) }),
        POST: async (req) => Response.json({ route: "POST /methods/:id", params: req.params, body: await req.text() }),
      },
    },
    fetch: (req) => Response.json({ route: "fetch", pathname: new URL(req.url).pathname }),
  });
});
afterAll(async () => {
  await withTimeout(server.stop(true), 5000, "server stop");
});

interface Answer {
  route: string;
  params?: Record<string, string>;
  keys?: string[];
  pathname?: string;
  body?: string;
}

/** Sends `target` byte for byte (no client-side re-encoding) and parses the JSON answer. */
async function answer(target: string, method = "GET", body?: string): Promise<Answer> {
  const res = await rawRoute(server.port, target, { method, body });
  if (res.status !== 200) throw new Error(`${method} ${target} → ${res.status} ${JSON.stringify(res.body)}`);
  return JSON.parse(Buffer.from(res.body, "latin1").toString("utf8")) as Answer;
}

/** The decoded value of `/p/<raw>`. */
async function decoded(raw: string): Promise<string | undefined> {
  const a = await answer(`/p/${raw}`);
  expect(a.route).toBe("/p/:value");
  return a.params?.value;
}

describe("percent-decoding", () => {
  it.each([
    ["abc", "abc"],
    ["%20", " "],
    ["a%20b%20c", "a b c"],
    ["%C3%A9", "é"],
    ["caf%C3%A9", "café"],
    ["%c3%a9", "é"],
    ["%E6%97%A5%E6%9C%AC%E8%AA%9E", "日本語"],
    ["%F0%9F%8E%89", "🎉"],
    ["%25", "%"],
    ["%2520", "%20"],
    ["%3F", "?"],
    ["%23", "#"],
    ["%00", "\u0000"],
    ["a%3Bb%3Dc", "a;b=c"],
    ["a;b=c", "a;b=c"],
    ["user@host:8080", "user@host:8080"],
    ["~!$&'()*,=", "~!$&'()*,="],
    ["file.tar.gz", "file.tar.gz"],
  ])("%s → %j", async (raw, want) => {
    expect(await decoded(raw)).toBe(want);
  });

  it("decodes exactly once: %252F is %2F, not /", async () => {
    expect(await decoded("%252F")).toBe("%2F");
  });

  it("a long value", async () => {
    const value = "x".repeat(2000) + "%C3%A9";
    expect(await decoded(value)).toBe("x".repeat(2000) + "é");
  });

  it("the query string is not part of the last parameter", async () => {
    expect(await decoded("abc?x=1&value=zzz")).toBe("abc");
    expect(await decoded("a%3Fb?c")).toBe("a?b");
  });

  it("the same decoding through fetch() (which percent-encodes Unicode itself)", async () => {
    const res = await get(server, `/p/${encodeURIComponent("日本 語/é+🎉")}`);
    expect(JSON.parse(res.body).params).toEqual({ value: "日本 語/é+🎉" });
    const raw = await get(server, "/p/東京");
    expect(JSON.parse(raw.body).params).toEqual({ value: "東京" });
  });
});

describe("invalid UTF-8 becomes U+FFFD", () => {
  it.each([
    ["%FF", "\uFFFD"],
    ["a%FFb", "a\uFFFDb"],
    ["%C3", "\uFFFD"],
    ["x%C3", "x\uFFFD"],
    ["%80", "\uFFFD"],
  ])("%s → %j", async (raw, want) => {
    expect(await decoded(raw)).toBe(want);
  });

  it("an encoded surrogate (%ED%A0%80) is replacement characters only", async () => {
    expect(await decoded("%ED%A0%80")).toMatch(/^\uFFFD+$/);
  });

  it("an overlong encoding of / (%C0%AF) never decodes to /", async () => {
    const value = await decoded("%C0%AF");
    expect(value).not.toContain("/");
    expect(value).toMatch(/^\uFFFD+$/);
  });
});

describe("bad escapes never throw: kept as is", () => {
  it.each([
    ["%", "%"],
    ["100%", "100%"],
    ["%zz", "%zz"],
    ["%2", "%2"],
    ["%G0", "%G0"],
  ])("%s → %j", async (raw, want) => {
    expect(await decoded(raw)).toBe(want);
  });

  it("the server still answers normally after bad escapes", async () => {
    expect(await decoded("ok")).toBe("ok");
  });
});

describe("+ is not a space in a path", () => {
  it.each([
    ["+", "+"],
    ["a+b", "a+b"],
    ["%2B", "+"],
    ["a%2Bb+c", "a+b+c"],
  ])("%s → %j", async (raw, want) => {
    expect(await decoded(raw)).toBe(want);
  });
});

describe("an encoded slash is data, not a separator", () => {
  it("/p/a%2Fb matches /p/:value with value a/b (not /p/:a/:b)", async () => {
    expect(await answer("/p/a%2Fb")).toEqual({ route: "/p/:value", params: { value: "a/b" }, keys: ["value"] });
    expect(await answer("/p/a%2fb")).toEqual({ route: "/p/:value", params: { value: "a/b" }, keys: ["value"] });
  });

  it("/p/a/b matches /p/:a/:b", async () => {
    expect(await answer("/p/a/b")).toEqual({ route: "/p/:a/:b", params: { a: "a", b: "b" }, keys: ["a", "b"] });
  });

  it("/users/1%2Fposts is one segment: it does not reach /users/:id/posts", async () => {
    const a = await answer("/users/1%2Fposts");
    expect(a.route).toBe("fetch");
    expect(a.pathname).toBe("/users/1%2Fposts");
    expect(await answer("/users/1%2F2/posts")).toEqual({ route: "/users/:id/posts", params: { id: "1/2" }, keys: ["id"] });
  });
});

describe("several parameters", () => {
  it("every parameter decoded independently, keys in pattern order", async () => {
    expect(await answer("/m/1/two%20words/%C3%A9")).toEqual({ route: "/m/:a/:b/:c", params: { a: "1", b: "two words", c: "é" }, keys: ["a", "b", "c"] });
    expect(await answer("/m/%FF/%/%2F")).toEqual({ route: "/m/:a/:b/:c", params: { a: "\uFFFD", b: "%", c: "/" }, keys: ["a", "b", "c"] });
  });

  it("names with capitals, underscores and digits, between static segments", async () => {
    expect(await answer("/orgs/oven-sh/repos/bun/issues/42")).toEqual({
      route: "issues",
      params: { orgId: "oven-sh", repo_id: "bun", n1: "42" },
      keys: ["orgId", "repo_id", "n1"],
    });
  });

  it("a parameter followed by a static segment", async () => {
    expect(await answer("/users/%C3%A9/posts")).toEqual({ route: "/users/:id/posts", params: { id: "é" }, keys: ["id"] });
  });

  it("the same value in two requests at once is not shared between them", async () => {
    const [a, b] = await Promise.all([answer("/m/1/2/3"), answer("/m/4/5/6")]);
    expect(a.params).toEqual({ a: "1", b: "2", c: "3" });
    expect(b.params).toEqual({ a: "4", b: "5", c: "6" });
  });
});

describe("params in per-method handlers and server.fetch()", () => {
  it("GET and POST handlers of a method object get decoded params", async () => {
    expect(await answer("/methods/caf%C3%A9")).toEqual({ route: "GET /methods/:id", params: { id: "café" }, keys: ["id"] });
    expect(await answer("/methods/a%2Fb", "POST", "hello")).toEqual({ route: "POST /methods/:id", params: { id: "a/b" }, body: "hello" });
  });

  it("server.fetch() decodes params the same way", async () => {
    const res = await server.fetch("/m/%C3%A9/%FF/%25");
    expect(await res.json()).toEqual({ route: "/m/:a/:b/:c", params: { a: "é", b: "\uFFFD", c: "%" }, keys: ["a", "b", "c"] });
  });
});

describe("percent-encoded patterns", () => {
  it("an exact pattern written percent-encoded matches what clients send for it", async () => {
    const local = serve({
      port: 0,
      hostname: "127.0.0.1",
      routes: { "/caf%C3%A9/:item": (req) => Response.json(req.params), "/a%20b": new Response("space") },
      fetch: () => new Response("fetch"),
    });
    try {
      expect(JSON.parse((await get(local, "/café/cr%C3%A8me")).body)).toEqual({ item: "crème" });
      expect((await get(local, "/a b")).body).toBe("space");
      expect((await get(local, "/a%20b")).body).toBe("space");
    } finally {
      await withTimeout(local.stop(true), 5000, "server stop");
    }
  });
});
