// The writer: every body kind, status and headers, framing (Content-Length, chunked, HEAD, 204), and what must never reach the wire.
import { createHash } from "node:crypto";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Response as UwsResponse, type Server } from "../dist/index.js";
import { headerNames, httpRequest, RawConnection } from "./helpers/client.js";
import { rawRequest, start, waitFor, withTimeout } from "./helpers/server.js";

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => withTimeout(s.stop(true), 5000, "server stop")));
  vi.restoreAllMocks();
});

function serveWith(fetch: (req: Request, server: Server) => unknown, extra: Record<string, unknown> = {}): Server {
  const server = start({ fetch, ...extra });
  servers.push(server);
  return server;
}

const url = (server: Server, path = "/") => `http://127.0.0.1:${server.port}${path}`;
const get = (server: Server, path = "/", init?: RequestInit) => withTimeout(fetch(url(server, path), init), 5000, `fetch ${path}`);

/** Header lines of a raw response head, lower-cased names. */
function headLines(raw: string): string[] {
  return raw.slice(0, raw.indexOf("\r\n\r\n")).split("\r\n").slice(1);
}
function rawBody(raw: string): string {
  return raw.slice(raw.indexOf("\r\n\r\n") + 4);
}

const CLASSES = [
  ["uwserve Response", UwsResponse],
  ["global Response", globalThis.Response],
] as const;

for (const [label, R] of CLASSES) {
  describe(`body kinds (${label})`, () => {
    it("bytes (Uint8Array, ArrayBuffer) → no default content-type (only strings get text/plain)", async () => {
      const server = serveWith((req) => new R(new URL(req.url).pathname === "/ab" ? new Uint8Array([65, 66]).buffer : new Uint8Array([65, 66])));
      for (const path of ["/u8", "/ab"]) {
        const res = await get(server, path);
        expect(res.headers.get("content-type"), path).toBeNull();
        expect(await res.text()).toBe("AB");
      }
    });

    it("null → empty body, Content-Length 0, no content-type", async () => {
      const server = serveWith(() => new R(null));
      const res = await httpRequest(server.port);
      expect(res.status).toBe(200);
      expect(res.body.length).toBe(0);
      expect(res.headers["content-length"]).toBe("0");
      expect(res.headers["content-type"]).toBeUndefined();
    });

    it("string → text/plain;charset=UTF-8 by default (both classes, as undici and Deno) with its byte length", async () => {
      const server = serveWith(() => new R("héllo"));
      const res = await httpRequest(server.port);
      expect(res.body.toString()).toBe("héllo");
      // undici's own Response writes "UTF-8" (its header, sent as is); uwserve's writes "utf-8".
      expect(res.headers["content-type"]).toBe("text/plain;charset=UTF-8");
      expect(res.headers["content-length"]).toBe(String(Buffer.byteLength("héllo")));
    });

    it("a string with its own content-type keeps it", async () => {
      const server = serveWith(() => new R("<p>x</p>", { headers: { "Content-Type": "text/html" } }));
      const res = await httpRequest(server.port);
      expect(res.headers["content-type"]).toBe("text/html");
      expect(headerNames(res.rawHeaders).filter((n) => n === "content-type")).toHaveLength(1);
    });

    it("ArrayBuffer", async () => {
      const server = serveWith(() => new R(new Uint8Array([1, 2, 3, 250]).buffer));
      const res = await httpRequest(server.port);
      expect([...res.body]).toEqual([1, 2, 3, 250]);
      expect(res.headers["content-length"]).toBe("4");
    });

    it("Uint8Array (a view into a larger buffer sends only the view)", async () => {
      const server = serveWith(() => new R(new Uint8Array([9, 9, 1, 2, 9]).subarray(2, 4)));
      const res = await httpRequest(server.port);
      expect([...res.body]).toEqual([1, 2]);
    });

    it("DataView and other typed arrays", async () => {
      const server = serveWith((req) =>
        new URL(req.url).pathname === "/dv"
          ? new R(new DataView(new Uint8Array([5, 6, 7, 8]).buffer, 1, 2))
          : new R(new Uint16Array([0x0201, 0x0403])),
      );
      expect([...(await httpRequest(server.port, { path: "/dv" })).body]).toEqual([6, 7]);
      expect([...(await httpRequest(server.port, { path: "/u16" })).body]).toEqual([1, 2, 3, 4]);
    });

    it("Blob, with its type as content-type", async () => {
      const server = serveWith(() => new R(new Blob(["blob ", "body"], { type: "application/x-blob" })));
      const res = await httpRequest(server.port);
      expect(res.body.toString()).toBe("blob body");
      expect(res.headers["content-type"]).toBe("application/x-blob");
      expect(res.headers["content-length"]).toBe("9");
    });

    it("FormData → multipart that fetch parses back", async () => {
      const server = serveWith(() => {
        const form = new FormData();
        form.append("a", "1");
        form.append("a", "2");
        form.append("file", new Blob(["contents"], { type: "text/x-c" }), "f.txt");
        return new R(form);
      });
      const res = await get(server);
      expect(res.headers.get("content-type")).toMatch(/^multipart\/form-data; boundary=/);
      const form = await res.formData();
      expect(form.getAll("a")).toEqual(["1", "2"]);
      const file = form.get("file") as File;
      expect(file.name).toBe("f.txt");
      expect(await file.text()).toBe("contents");
    });

    it("URLSearchParams → application/x-www-form-urlencoded", async () => {
      const server = serveWith(() => new R(new URLSearchParams({ a: "1", b: "x y" })));
      const res = await httpRequest(server.port);
      expect(res.body.toString()).toBe("a=1&b=x+y");
      expect(res.headers["content-type"]).toBe("application/x-www-form-urlencoded;charset=UTF-8");
    });

    it("ReadableStream → chunked", async () => {
      const server = serveWith(
        () =>
          new R(
            new ReadableStream({
              async start(controller) {
                controller.enqueue(new TextEncoder().encode("one "));
                await new Promise((r) => setTimeout(r, 10));
                controller.enqueue(new TextEncoder().encode("two"));
                controller.close();
              },
            }),
          ),
      );
      const res = await httpRequest(server.port);
      expect(res.body.toString()).toBe("one two");
      expect(res.headers["transfer-encoding"]).toBe("chunked");
      expect(res.headers["content-length"]).toBeUndefined();
    });

    it("an empty ReadableStream", async () => {
      const server = serveWith(() => new R(new ReadableStream({ start: (c) => c.close() })));
      const res = await httpRequest(server.port);
      expect(res.status).toBe(200);
      expect(res.body.length).toBe(0);
    });

    it("custom status and statusText", async () => {
      const server = serveWith(() => new R("teapot", { status: 418, statusText: "Short And Stout" }));
      const res = await httpRequest(server.port);
      expect(res.status).toBe(418);
      expect(res.statusMessage).toBe("Short And Stout");
    });

    it("a status without statusText gets the standard reason phrase", async () => {
      const server = serveWith(() => new R("gone", { status: 410 }));
      const res = await httpRequest(server.port);
      expect(res.status).toBe(410);
      expect(res.statusMessage).toBe("Gone");
    });

    it("repeated Set-Cookie headers stay separate", async () => {
      const server = serveWith(() => {
        const headers = new Headers();
        headers.append("Set-Cookie", "a=1; Path=/");
        headers.append("Set-Cookie", "b=2; Expires=Wed, 21 Oct 2015 07:28:00 GMT");
        headers.append("X-Other", "x");
        return new R("cookies", { headers });
      });
      const res = await httpRequest(server.port);
      const cookies: string[] = [];
      for (let i = 0; i < res.rawHeaders.length; i += 2) {
        if (res.rawHeaders[i]!.toLowerCase() === "set-cookie") cookies.push(res.rawHeaders[i + 1]!);
      }
      expect(cookies).toEqual(["a=1; Path=/", "b=2; Expires=Wed, 21 Oct 2015 07:28:00 GMT"]);
    });

    it("Set-Cookie as an array of pairs in init stays separate", async () => {
      const server = serveWith(() =>
        new R("x", {
          headers: [
            ["set-cookie", "a=1"],
            ["set-cookie", "b=2"],
          ],
        }),
      );
      const res = await httpRequest(server.port);
      expect(res.headers["set-cookie"]).toEqual(["a=1", "b=2"]);
    });

    it("HEAD gets the headers and the right Content-Length, no body", async () => {
      const server = serveWith(() => new R("twelve bytes", { headers: { "x-h": "1" } }));
      const raw = await rawRequest(server.port, "HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      expect(raw).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(headLines(raw).map((l) => l.toLowerCase())).toEqual(
        // (Lines are compared lower-cased.)
        expect.arrayContaining(["x-h: 1", "content-length: 12", "content-type: text/plain;charset=utf-8"]),
      );
      expect(rawBody(raw)).toBe("");
    });

    it("HEAD with a stream body answers at once without a body", async () => {
      let cancelled = false;
      const server = serveWith(
        () =>
          new R(
            new ReadableStream({
              pull(c) {
                c.enqueue(new Uint8Array(10));
              },
              cancel() {
                cancelled = true;
              },
            }),
          ),
      );
      const raw = await rawRequest(server.port, "HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      expect(raw).toMatch(/^HTTP\/1\.1 200/);
      expect(rawBody(raw)).toBe("");
      await waitFor(() => cancelled, 2000, "the unsent stream to be cancelled");
    });

    it("204 has no Content-Length and no body", async () => {
      const server = serveWith(() => new R(null, { status: 204 }));
      const conn = await RawConnection.open(server.port);
      try {
        const raw = await conn.request("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        expect(raw).toMatch(/^HTTP\/1\.1 204/);
        expect(headLines(raw).some((l) => /^content-length:/i.test(l))).toBe(false);
        expect(headLines(raw).some((l) => /^transfer-encoding:/i.test(l))).toBe(false);
        // Nothing after the head: the next response on the connection starts right away.
        const next = await conn.request("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        expect(next).toMatch(/^HTTP\/1\.1 204/);
      } finally {
        conn.destroy();
      }
    });

    it("304 has no body", async () => {
      const server = serveWith(() => new R(null, { status: 304, headers: { etag: '"x"' } }));
      const conn = await RawConnection.open(server.port);
      try {
        const raw = await conn.request("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        expect(raw).toMatch(/^HTTP\/1\.1 304/);
        expect(headLines(raw).some((l) => /^content-length:/i.test(l))).toBe(false);
        expect(await conn.request("GET / HTTP/1.1\r\nHost: x\r\n\r\n")).toMatch(/^HTTP\/1\.1 304/);
      } finally {
        conn.destroy();
      }
    });

    it("a user Content-Length is not duplicated", async () => {
      const server = serveWith(() => new R("hello", { headers: { "Content-Length": "5" } }));
      const raw = await rawRequest(server.port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      expect(headLines(raw).filter((l) => /^content-length:/i.test(l))).toEqual([expect.stringMatching(/^content-length: 5$/i)]);
      expect(rawBody(raw)).toBe("hello");
    });

    it("a stream with a user Content-Length is sent without chunked encoding", async () => {
      const server = serveWith(
        () =>
          new R(
            new ReadableStream({
              start(c) {
                c.enqueue(new TextEncoder().encode("abc"));
                c.enqueue(new TextEncoder().encode("def"));
                c.close();
              },
            }),
            { headers: { "content-length": "6" } },
          ),
      );
      const raw = await rawRequest(server.port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      const lines = headLines(raw).map((l) => l.toLowerCase());
      expect(lines.filter((l) => l.startsWith("content-length:"))).toEqual(["content-length: 6"]);
      expect(lines.some((l) => l.startsWith("transfer-encoding"))).toBe(false);
      expect(rawBody(raw)).toBe("abcdef");
    });

    it("64 × 16 KiB stream chunks arrive intact", async () => {
      const chunks = Array.from({ length: 64 }, (_, i) => new Uint8Array(16 * 1024).fill(i));
      const expected = createHash("sha256");
      for (const c of chunks) expected.update(c);
      const server = serveWith(() => {
        let i = 0;
        return new R(
          new ReadableStream({
            pull(controller) {
              if (i < chunks.length) controller.enqueue(chunks[i++]);
              else controller.close();
            },
          }),
        );
      });
      const res = await get(server);
      const body = new Uint8Array(await res.arrayBuffer());
      expect(body.length).toBe(64 * 16 * 1024);
      expect(createHash("sha256").update(body).digest("hex")).toBe(expected.digest("hex"));
      for (let i = 0; i < 64; i++) expect(body[i * 16 * 1024]).toBe(i);
    });
  });
}

describe("async iterables (Bun style)", () => {
  it("an async generator body is streamed", async () => {
    const server = serveWith(
      () =>
        new UwsResponse(
          (async function* () {
            yield "a";
            await new Promise((r) => setTimeout(r, 5));
            yield new TextEncoder().encode("b");
            yield Buffer.from("c");
          })() as never,
        ),
    );
    const res = await httpRequest(server.port);
    expect(res.body.toString()).toBe("abc");
    expect(res.headers["transfer-encoding"]).toBe("chunked");
  });

  it("a generator that throws after the head cuts the connection (client sees an error)", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const server = serveWith(
      () =>
        new UwsResponse(
          (async function* () {
            yield "partial";
            await new Promise((r) => setTimeout(r, 5));
            throw new Error("generator failed");
          })() as never,
        ),
    );
    await expect(get(server).then((r) => r.text())).rejects.toThrow();
  });
});

describe("statics", () => {
  for (const [label, R] of CLASSES) {
    it(`Response.json (${label})`, async () => {
      const server = serveWith(() => R.json({ a: [1, "two"] }, { status: 201, headers: { "x-j": "1" } }));
      const res = await httpRequest(server.port);
      expect(res.status).toBe(201);
      expect(res.headers["content-type"]).toBe("application/json");
      expect(res.headers["x-j"]).toBe("1");
      expect(JSON.parse(res.body.toString())).toEqual({ a: [1, "two"] });
    });

    for (const status of [301, 302, 307]) {
      it(`Response.redirect absolute ${status} (${label})`, async () => {
        const server = serveWith(() => R.redirect("https://example.test/elsewhere?x=1", status));
        const res = await httpRequest(server.port);
        expect(res.status).toBe(status);
        expect(res.headers.location).toBe("https://example.test/elsewhere?x=1");
        expect(res.body.length).toBe(0);
      });
    }

    it(`Response.redirect defaults to 302 (${label})`, async () => {
      const server = serveWith(() => R.redirect("http://example.test/"));
      const res = await httpRequest(server.port);
      expect(res.status).toBe(302);
    });

    it(`Response.error() goes to the error path: a 500 without an error hook (${label})`, async () => {
      const logged = vi.spyOn(console, "error").mockImplementation(() => {});
      const server = serveWith(() => R.error());
      const res = await get(server);
      expect(res.status).toBe(500);
      await res.arrayBuffer();
      expect(String(logged.mock.calls[0]?.[0])).toMatch(/Response\.error\(\)/);
      await waitFor(() => server.pendingRequests === 0, 2000, "the request to be counted done");
      // The server keeps serving.
      server.reload({ fetch: () => new R("fine") });
      expect(await (await get(server)).text()).toBe("fine");
    });
  }

  it("uwserve's Response.redirect keeps a relative URL (Bun behaviour)", async () => {
    const server = serveWith(() => UwsResponse.redirect("/blog/hello/world", 307));
    const res = await httpRequest(server.port);
    expect(res.status).toBe(307);
    expect(res.headers.location).toBe("/blog/hello/world");
  });

  it("fetch follows a relative redirect to the same server", async () => {
    const server = serveWith((req) =>
      new URL(req.url).pathname === "/from" ? UwsResponse.redirect("/to", 301) : new UwsResponse(`at ${new URL(req.url).pathname}`),
    );
    const res = await get(server, "/from");
    expect(await res.text()).toBe("at /to");
    expect(res.redirected).toBe(true);
  });
});

describe("what must never reach the wire", () => {
  it("a header value with CR/LF → 500, not a split response (Response-like object)", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const server = serveWith(() => ({ status: 200, headers: { "x-bad": "a\r\nInjected: yes" }, body: "x" }));
    const raw = await rawRequest(server.port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect(raw).toMatch(/^HTTP\/1\.1 500/);
    expect(raw.toLowerCase()).not.toContain("injected");
    expect((raw.match(/HTTP\/1\.1/g) ?? []).length).toBe(1);
  });

  it("a header value with a lone LF or NUL → 500", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    for (const value of ["a\nInjected: yes", "a\0b"]) {
      const server = serveWith(() => ({ status: 200, headers: [["x-bad", value]], body: "x" }));
      const raw = await rawRequest(server.port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      expect(raw, JSON.stringify(value)).toMatch(/^HTTP\/1\.1 500/);
      expect(raw.toLowerCase()).not.toContain("injected");
    }
  });

  it("an invalid header name → 500", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const server = serveWith(() => ({ status: 200, headers: { "bad name:": "v" }, body: "x" }));
    const raw = await rawRequest(server.port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect(raw).toMatch(/^HTTP\/1\.1 500/);
  });

  it("a statusText with CR/LF → 500, not a split response (Response-like object)", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const server = serveWith(() => ({ status: 200, statusText: "OK\r\nInjected: yes", headers: {}, body: "x" }));
    const raw = await rawRequest(server.port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect(raw).toMatch(/^HTTP\/1\.1 500/);
    expect(raw.toLowerCase()).not.toContain("injected");
  });

  it("an out-of-range status on a Response-like object → 500", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    for (const status of [99, 1000, 20.5]) {
      const server = serveWith(() => ({ status, headers: {}, body: "x" }));
      const raw = await rawRequest(server.port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      expect(raw, String(status)).toMatch(/^HTTP\/1\.1 500/);
    }
  });

  it("init headers are copied at construction: later changes to the caller's object are not sent", async () => {
    const init: Record<string, string> = { "x-kept": "1" };
    const response = new UwsResponse("body", { headers: init });
    init["x-kept"] = "changed";
    init["x-injected"] = "a\r\nSet-Cookie: evil=1";
    const server = serveWith(() => response);
    const res = await httpRequest(server.port);
    expect(res.status).toBe(200);
    expect(res.headers["x-kept"]).toBe("1");
    expect(res.headers["x-injected"]).toBeUndefined();
    expect(res.headers["set-cookie"]).toBeUndefined();
  });

  it("a user Transfer-Encoding or Date header is not sent twice", async () => {
    const server = serveWith(() => new UwsResponse("x", { headers: { "transfer-encoding": "chunked", date: "Thu, 01 Jan 1970 00:00:00 GMT" } }));
    const raw = await rawRequest(server.port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const lines = headLines(raw).map((l) => l.toLowerCase());
    expect(lines.filter((l) => l.startsWith("date:")).length).toBeLessThanOrEqual(1);
    expect(lines.filter((l) => l.startsWith("transfer-encoding:"))).toEqual([]);
    expect(rawBody(raw)).toBe("x");
  });
});

describe("other Response shapes", () => {
  it("new globalThis.Response(...) works with every common init", async () => {
    const server = serveWith(() => new globalThis.Response("global", { status: 202, headers: { "x-g": "1" } }));
    const res = await httpRequest(server.port);
    expect(res.status).toBe(202);
    expect(res.headers["x-g"]).toBe("1");
    expect(res.body.toString()).toBe("global");
  });

  it("a global Response whose body was built from a stream", async () => {
    const server = serveWith(() => new globalThis.Response(new Blob(["from blob"]).stream()));
    expect(await (await get(server)).text()).toBe("from blob");
  });

  it("a Response from fetch() can be returned as is (proxying)", async () => {
    const upstream = serveWith(() => new UwsResponse("upstream body", { headers: { "x-up": "1" } }));
    const proxy = serveWith(() => fetch(url(upstream)));
    const res = await httpRequest(proxy.port);
    expect(res.body.toString()).toBe("upstream body");
    expect(res.headers["x-up"]).toBe("1");
  });

  it("a Response-like plain object { status, headers, body } works", async () => {
    const server = serveWith(() => ({ status: 201, headers: { "x-like": "yes", "content-type": "text/x" }, body: "like" }));
    const res = await httpRequest(server.port);
    expect(res.status).toBe(201);
    expect(res.headers["x-like"]).toBe("yes");
    expect(res.body.toString()).toBe("like");
  });

  it("a Response-like object with a Headers instance and a stream body", async () => {
    const server = serveWith(() => ({
      status: 200,
      statusText: "Fine",
      headers: new Headers([["x-h", "1"]]),
      body: new Blob(["streamed like"]).stream(),
    }));
    const res = await httpRequest(server.port);
    expect(res.statusMessage).toBe("Fine");
    expect(res.body.toString()).toBe("streamed like");
  });

  it("a Response whose headers were mutated after construction sends the mutations", async () => {
    const server = serveWith(() => {
      const res = new UwsResponse("m");
      res.headers.set("x-late", "added");
      res.headers.append("set-cookie", "s=1");
      return res;
    });
    const res = await httpRequest(server.port);
    expect(res.headers["x-late"]).toBe("added");
    expect(res.headers["set-cookie"]).toEqual(["s=1"]);
  });

  it("a Promise<Response> and an async handler work alike", async () => {
    const server = serveWith((req) =>
      new URL(req.url).pathname === "/p"
        ? new Promise((resolve) => setTimeout(() => resolve(new UwsResponse("promised")), 5))
        : (async () => new UwsResponse("async"))(),
    );
    expect(await (await get(server, "/p")).text()).toBe("promised");
    expect(await (await get(server, "/a")).text()).toBe("async");
  });
});

describe("streams and the client", () => {
  it("a stream's cancel runs when the client hangs up", async () => {
    let cancelled: unknown = "not yet";
    const server = serveWith(() => {
      let timer: NodeJS.Timeout;
      return new UwsResponse(
        new ReadableStream({
          start(controller) {
            timer = setInterval(() => controller.enqueue(new TextEncoder().encode("tick\n")), 5);
          },
          cancel(reason) {
            clearInterval(timer);
            cancelled = reason;
          },
        }),
      );
    });
    const controller = new AbortController();
    const res = await get(server, "/", { signal: controller.signal });
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    await waitFor(() => cancelled !== "not yet", 5000, "the stream's cancel");
    await waitFor(() => server.pendingRequests === 0, 2000, "pendingRequests 0");
  });

  it("a large string body (1 MiB) arrives whole with the right Content-Length", async () => {
    const big = "z".repeat(1024 * 1024);
    const server = serveWith(() => new UwsResponse(big));
    const res = await httpRequest(server.port);
    expect(res.headers["content-length"]).toBe(String(big.length));
    expect(res.body.length).toBe(big.length);
  });

  it("keep-alive: several responses of different kinds on one connection", async () => {
    const server = serveWith((req) => {
      switch (new URL(req.url).pathname) {
        case "/s":
          return new UwsResponse("string");
        case "/stream":
          return new UwsResponse(new Blob(["stream"]).stream());
        default:
          return new UwsResponse(null, { status: 204 });
      }
    });
    const conn = await RawConnection.open(server.port);
    try {
      expect(await conn.request("GET /s HTTP/1.1\r\nHost: x\r\n\r\n")).toMatch(/\r\n\r\nstring$/);
      expect(await conn.request("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")).toMatch(/stream/);
      expect(await conn.request("GET /none HTTP/1.1\r\nHost: x\r\n\r\n")).toMatch(/^HTTP\/1\.1 204/);
      expect(await conn.request("GET /s HTTP/1.1\r\nHost: x\r\n\r\n")).toMatch(/\r\n\r\nstring$/);
    } finally {
      conn.destroy();
    }
  });
});
