// Bad route tables: serve() and reload() throw UWSERVE_ERR_BAD_ROUTE naming the key, before listening, and a failed reload changes nothing.
import { describe, expect, it } from "vitest";
import { serve, Response } from "../dist/index.js";
import { freePort, portIsFree } from "./helpers/client.js";
import { get, textOf } from "./helpers/routes.js";
import { thrown, trackServers } from "./helpers/server.js";

const track = trackServers();

const handler = () => new Response("x");
const streamResponse = () =>
  new Response(
    new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("chunk"));
        controller.close();
      },
    }),
  );

interface BadCase {
  name: string;
  /** The option name the table goes in (`routes`, or the older `static`). */
  option?: "routes" | "static";
  table: () => Record<string, unknown>;
  /** Strings the message must contain (the offending key, and the method key where one is at fault). */
  mentions: string[];
  /** The error must be a TypeError (a value of the wrong type). */
  typeError?: boolean;
}

const BAD: BadCase[] = [
  { name: "a pattern without a leading slash", table: () => ({ "users/:id": handler }), mentions: ["users/:id"] },
  { name: "a relative wildcard", table: () => ({ "api/*": handler }), mentions: ["api/*"] },
  { name: "an empty pattern", table: () => ({ "": handler }), mentions: [] },
  { name: "an unnamed parameter", table: () => ({ "/users/:": handler }), mentions: ["/users/:"] },
  { name: "an unnamed parameter in the middle", table: () => ({ "/users/:/posts": handler }), mentions: ["/users/:/posts"] },
  { name: "a duplicate parameter name", table: () => ({ "/a/:id/b/:id": handler }), mentions: ["/a/:id/b/:id"] },
  { name: "a * that is not the last segment", table: () => ({ "/a/*/b": handler }), mentions: ["/a/*/b"] },
  { name: "a leading * followed by more", table: () => ({ "/*/x": handler }), mentions: ["/*/x"] },
  { name: "a number as the value", table: () => ({ "/n": 42 }), mentions: ["/n"], typeError: true },
  { name: "a string as the value", table: () => ({ "/s": "hello" }), mentions: ["/s"], typeError: true },
  { name: "null as the value", table: () => ({ "/null": null }), mentions: ["/null"], typeError: true },
  { name: "true as the value", table: () => ({ "/t": true }), mentions: ["/t"], typeError: true },
  { name: "an unknown method key (GETT)", table: () => ({ "/m": { GETT: handler } }), mentions: ["/m", "GETT"] },
  { name: "a lower-case method key (get)", table: () => ({ "/lower": { get: handler } }), mentions: ["/lower", "get"] },
  { name: "a method value of the wrong type", table: () => ({ "/mv": { GET: 42 } }), mentions: ["/mv", "GET"], typeError: true },
  { name: "a static Response with a ReadableStream body", table: () => ({ "/stream": streamResponse() }), mentions: ["/stream"], typeError: true },
  { name: "a ReadableStream Response as a method value", table: () => ({ "/mstream": { GET: streamResponse() } }), mentions: ["/mstream"], typeError: true },
  { name: "a ReadableStream Response under `static`", option: "static", table: () => ({ "/sstream": streamResponse() }), mentions: ["/sstream"], typeError: true },
  { name: "a bad pattern under `static`", option: "static", table: () => ({ "nope": new Response("x") }), mentions: ["nope"] },
];

function expectBadRoute(err: Error & { code?: string }, bad: BadCase): void {
  expect(err).toBeInstanceOf(Error);
  expect(err.code, err.message).toBe("UWSERVE_ERR_BAD_ROUTE");
  for (const mention of bad.mentions) expect(err.message).toContain(mention);
  if (bad.typeError) expect(err).toBeInstanceOf(TypeError);
}

describe("serve() refuses a bad table", () => {
  it.each(BAD.map((bad) => [bad.name, bad] as const))("%s", (_name, bad) => {
    const err = thrown(() => track(serve({ port: 0, hostname: "127.0.0.1", [bad.option ?? "routes"]: bad.table(), fetch: handler } as never)));
    expectBadRoute(err, bad);
  });

  it("also without fetch", () => {
    const err = thrown(() => track(serve({ port: 0, hostname: "127.0.0.1", routes: { "/a/:id/b/:id": handler } } as never)));
    expect(err.code).toBe("UWSERVE_ERR_BAD_ROUTE");
  });

  it("names the bad key among good ones", () => {
    const err = thrown(() =>
      track(serve({ port: 0, hostname: "127.0.0.1", routes: { "/good": new Response("g"), "/also/:good": handler, "/bad/*/x": handler } } as never)),
    );
    expect(err.code).toBe("UWSERVE_ERR_BAD_ROUTE");
    expect(err.message).toContain("/bad/*/x");
    expect(err.message).not.toContain("/also/:good");
  });

  it("throws before listening: the port stays free", async () => {
    const port = await freePort();
    const err = thrown(() => track(serve({ port, hostname: "0.0.0.0", routes: { "/users/:": handler } } as never)));
    expect(err.code).toBe("UWSERVE_ERR_BAD_ROUTE");
    expect(await portIsFree(port)).toBe(true);
  });
});

describe("reload() refuses a bad table and changes nothing", () => {
  it.each(BAD.map((bad) => [bad.name, bad] as const))("%s", async (_name, bad) => {
    const server = track(
      serve({ port: 0, hostname: "127.0.0.1", routes: { "/ok": new Response("old ok"), "/p/:id": (req) => new Response(`old ${req.params.id}`) } }),
    );
    const err = thrown(() => server.reload({ [bad.option ?? "routes"]: bad.table() } as never));
    expectBadRoute(err, bad);
    expect(await textOf(server, "/ok")).toBe("old ok");
    expect(await textOf(server, "/p/1")).toBe("old 1");
  });

  it("a table with good and bad keys is not applied in part, and fetch/error are not swapped either", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        routes: {
          "/ok": new Response("old ok"),
          "/boom": () => {
            throw new Error("boom");
          },
        },
        fetch: () => new Response("old fetch"),
        error: () => new Response("old error", { status: 500 }),
      }),
    );
    const err = thrown(() =>
      server.reload({
        routes: { "/ok": new Response("new ok"), "/added": new Response("added"), "/x/:": handler },
        fetch: () => new Response("new fetch"),
        error: () => new Response("new error", { status: 500 }),
      } as never),
    );
    expect(err.code).toBe("UWSERVE_ERR_BAD_ROUTE");
    expect(err.message).toContain("/x/:");
    expect(await textOf(server, "/ok")).toBe("old ok");
    expect(await textOf(server, "/added")).toBe("old fetch");
    expect(await textOf(server, "/elsewhere")).toBe("old fetch");
    expect(await get(server, "/boom")).toMatchObject({ status: 500, body: "old error" });
  });

  it("a later good reload still works", async () => {
    const server = track(serve({ port: 0, hostname: "127.0.0.1", routes: { "/v": new Response("1") } }));
    thrown(() => server.reload({ routes: { "/v": 1 } } as never));
    server.reload({ routes: { "/v": new Response("2") } });
    expect(await textOf(server, "/v")).toBe("2");
  });
});

describe("tables that look odd but are valid", () => {
  it("`false` disables a route: it falls through as if absent", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        routes: { "/off": false, "/users/:id": false, "/on": new Response("on") },
        fetch: (req) => new Response(`fetch ${new URL(req.url).pathname}`),
      }),
    );
    expect(await textOf(server, "/off")).toBe("fetch /off");
    expect(await textOf(server, "/users/1")).toBe("fetch /users/1");
    expect(await textOf(server, "/on")).toBe("on");
  });

  it("`false` without fetch is a 404, and a disabled route yields to a wildcard", async () => {
    const server = track(serve({ port: 0, hostname: "127.0.0.1", routes: { "/api/off": false, "/api/*": new Response("api wildcard") } }));
    expect(await textOf(server, "/api/off")).toBe("api wildcard");
    server.reload({ routes: { "/api/off": false } });
    expect((await get(server, "/api/off")).status).toBe(404);
  });

  it("the root route, a catch-all, every method key, and an empty table", async () => {
    const all = Object.fromEntries(["GET", "HEAD", "OPTIONS", "DELETE", "PATCH", "POST", "PUT"].map((m) => [m, handler]));
    const server = track(serve({ port: 0, hostname: "127.0.0.1", routes: { "/": new Response("root"), "/*": new Response("any"), "/all": all } }));
    expect(await textOf(server, "/")).toBe("root");
    expect(await textOf(server, "/x")).toBe("any");
    expect(await textOf(server, "/all", { method: "PATCH" })).toBe("x");
    const empty = track(serve({ port: 0, hostname: "127.0.0.1", routes: {}, fetch: () => new Response("fetch only") }));
    expect(await textOf(empty, "/anything")).toBe("fetch only");
  });
});
