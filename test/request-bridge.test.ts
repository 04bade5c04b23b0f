// The handler's Request: a real web Request built from what uWS received (url, method, headers, body, signal, clone, forwarding).
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Server } from "../dist/index.js";
import { httpRequest, RawConnection, sleep } from "./helpers/client.js";
import { rawRequest, start, waitFor, withTimeout } from "./helpers/server.js";

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => withTimeout(s.stop(true), 5000, "server stop")));
  vi.restoreAllMocks();
});

/** Starts a server whose handler records (and may answer from) each request. */
function serveWith(fetch: (req: Request, server: Server) => Response | Promise<Response>): Server {
  const server = start({ fetch });
  servers.push(server);
  return server;
}

/** A server that answers each request with JSON computed by `inspect(req)`. */
function inspector(inspect: (req: Request) => unknown): Server {
  return serveWith(async (req) => Response.json(await inspect(req)));
}

const url = (server: Server, path = "/") => `http://127.0.0.1:${server.port}${path}`;

/** Body of a raw response (after the head), for Content-Length framed answers. */
function rawBody(response: string): string {
  return response.slice(response.indexOf("\r\n\r\n") + 4);
}

describe("identity", () => {
  it("req instanceof Request, with Request's toStringTag", async () => {
    const server = inspector((req) => ({
      instance: req instanceof Request,
      tag: Object.prototype.toString.call(req),
      hasText: typeof req.text === "function",
    }));
    expect(await (await fetch(url(server))).json()).toEqual({ instance: true, tag: "[object Request]", hasText: true });
  });

  it("console.log / util.inspect of a request does not throw", async () => {
    const { inspect } = await import("node:util");
    const server = inspector((req) => ({ text: inspect(req).includes("GET") }));
    expect(await (await fetch(url(server))).json()).toEqual({ text: true });
  });

  it("undici-only members (cache, mode, credentials, redirect…) answer as a real Request's do", async () => {
    const server = inspector((req) => ({
      cache: req.cache,
      credentials: req.credentials,
      redirect: req.redirect,
      referrer: req.referrer,
      keepalive: req.keepalive,
    }));
    const real = new Request("http://x/");
    expect(await (await fetch(url(server))).json()).toEqual({
      cache: real.cache,
      credentials: real.credentials,
      redirect: real.redirect,
      referrer: real.referrer,
      keepalive: real.keepalive,
    });
  });
});

describe("url", () => {
  it("is absolute, built from the Host header", async () => {
    const server = inspector((req) => req.url);
    expect(await (await fetch(url(server, "/path/x?y=1"))).json()).toBe(`http://127.0.0.1:${server.port}/path/x?y=1`);
  });

  it("uses whatever valid Host the client sent", async () => {
    const server = inspector((req) => req.url);
    const res = await httpRequest(server.port, { path: "/p", headers: { host: "example.test:8080" } });
    expect(JSON.parse(res.body.toString())).toBe("http://example.test:8080/p");
  });

  it("falls back to the listening address when Host is invalid", async () => {
    const server = inspector((req) => req.url);
    const response = await rawRequest(server.port, "GET /where HTTP/1.1\r\nHost: bad host/evil\r\nConnection: close\r\n\r\n");
    expect(response).toMatch(/^HTTP\/1\.1 200/);
    expect(JSON.parse(rawBody(response))).toBe(`http://127.0.0.1:${server.port}/where`);
  });

  it("falls back to the listening address when Host is missing", async () => {
    const server = inspector((req) => req.url);
    const response = await rawRequest(server.port, "GET /nohost HTTP/1.1\r\nConnection: close\r\n\r\n");
    if (/^HTTP\/1\.1 200/.test(response)) {
      expect(JSON.parse(rawBody(response))).toBe(`http://127.0.0.1:${server.port}/nohost`);
    } else {
      // Refusing a Host-less HTTP/1.1 request with 400 is also correct (RFC 9112 §3.2).
      expect(response).toMatch(/^HTTP\/1\.1 400/);
    }
  });

  it("an absolute-looking path can't change the host", async () => {
    const server = inspector((req) => new URL(req.url).host);
    const response = await rawRequest(server.port, "GET //evil.test/x HTTP/1.1\r\nHost: good.test\r\nConnection: close\r\n\r\n");
    expect(JSON.parse(rawBody(response))).toBe("good.test");
  });

  it("dot segments are normalised (/a/../b → /b), also percent-encoded ones", async () => {
    const server = inspector((req) => new URL(req.url).pathname);
    for (const [target, expected] of [
      ["/a/../b", "/b"],
      ["/a/./b/../c", "/a/c"],
      ["/a/%2e%2e/b", "/b"],
      ["/../../etc/passwd", "/etc/passwd"],
    ]) {
      const response = await rawRequest(server.port, `GET ${target} HTTP/1.1\r\nHost: x.test\r\nConnection: close\r\n\r\n`);
      expect(JSON.parse(rawBody(response)), target).toBe(expected);
    }
  });

  it("req.url's pathname equals new URL(req.url).pathname (already normalised)", async () => {
    const server = inspector((req) => req.url);
    const response = await rawRequest(server.port, "GET /a/../b?q=1 HTTP/1.1\r\nHost: x.test\r\nConnection: close\r\n\r\n");
    expect(JSON.parse(rawBody(response))).toBe("http://x.test/b?q=1");
  });

  it("the query string is kept as sent", async () => {
    const server = inspector((req) => {
      const u = new URL(req.url);
      return { search: u.search, all: u.searchParams.getAll("a"), b: u.searchParams.get("b") };
    });
    const res = await fetch(url(server, "/q?a=1&a=2&b=x%20y&c"));
    expect(await res.json()).toEqual({ search: "?a=1&a=2&b=x%20y&c", all: ["1", "2"], b: "x y" });
  });

  it("non-ASCII and percent-encoded paths come through percent-encoded", async () => {
    const server = inspector((req) => new URL(req.url).pathname);
    const res = await fetch(url(server, "/caf%C3%A9/%20x"));
    expect(await res.json()).toBe("/caf%C3%A9/%20x");
  });
});

describe("method", () => {
  it("each standard method reaches the handler", async () => {
    const server = inspector((req) => req.method);
    for (const method of ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]) {
      const res = await fetch(url(server), { method, body: method === "GET" ? undefined : "" });
      expect(await res.json()).toBe(method);
    }
  });

  it("lower-case standard methods are normalised to upper case", async () => {
    const server = inspector((req) => req.method);
    const response = await rawRequest(server.port, "post / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    if (/^HTTP\/1\.1 200/.test(response)) expect(JSON.parse(rawBody(response))).toBe("POST");
  });

  it("extension methods keep their case", async () => {
    const server = inspector((req) => req.method);
    const res = await httpRequest(server.port, { method: "PURGE" });
    expect(JSON.parse(res.body.toString())).toBe("PURGE");
  });

  it("TRACE reaches the handler (undici refuses to construct it)", async () => {
    const server = inspector((req) => ({ method: req.method, url: req.url, accept: req.headers.get("x-probe") }));
    const response = await rawRequest(server.port, "TRACE /t HTTP/1.1\r\nHost: x.test\r\nX-Probe: yes\r\nConnection: close\r\n\r\n");
    expect(response).toMatch(/^HTTP\/1\.1 200/);
    expect(JSON.parse(rawBody(response))).toEqual({ method: "TRACE", url: "http://x.test/t", accept: "yes" });
  });

  it("HEAD reaches the handler and gets no body", async () => {
    const seen: string[] = [];
    const server = serveWith((req) => {
      seen.push(req.method);
      return new Response("body");
    });
    const res = await httpRequest(server.port, { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(0);
    expect(seen).toEqual(["HEAD"]);
  });
});

describe("headers", () => {
  it("get/has are case-insensitive and missing ones are null/false", async () => {
    const server = inspector((req) => ({
      get: req.headers.get("X-Custom"),
      getLower: req.headers.get("x-custom"),
      has: req.headers.has("X-CUSTOM"),
      missing: req.headers.get("x-missing"),
      hasMissing: req.headers.has("x-missing"),
      instance: req.headers instanceof Headers,
    }));
    const res = await fetch(url(server), { headers: { "X-Custom": "value 1" } });
    expect(await res.json()).toEqual({ get: "value 1", getLower: "value 1", has: true, missing: null, hasMissing: false, instance: true });
  });

  it("iteration gives lower-case names, sorted, with repeated headers combined", async () => {
    const server = inspector((req) => ({
      entries: [...req.headers].filter(([name]) => name.startsWith("x-")),
      keys: [...req.headers.keys()].filter((n) => n.startsWith("x-")),
      forEach: (() => {
        const out: string[] = [];
        req.headers.forEach((value, name) => name.startsWith("x-") && out.push(`${name}=${value}`));
        return out;
      })(),
    }));
    const response = await rawRequest(
      server.port,
      "GET / HTTP/1.1\r\nHost: x\r\nX-B: 2\r\nX-Multi: one\r\nX-A: 1\r\nX-Multi: two\r\nConnection: close\r\n\r\n",
    );
    expect(JSON.parse(rawBody(response))).toEqual({
      entries: [
        ["x-a", "1"],
        ["x-b", "2"],
        ["x-multi", "one, two"],
      ],
      keys: ["x-a", "x-b", "x-multi"],
      forEach: ["x-a=1", "x-b=2", "x-multi=one, two"],
    });
  });

  it("a repeated header read with get() is combined with ', '", async () => {
    const server = inspector((req) => req.headers.get("x-multi"));
    const res = await httpRequest(server.port, { headers: { "x-multi": ["a", "b", "c"] } });
    expect(JSON.parse(res.body.toString())).toBe("a, b, c");
  });

  it("Cookie and other headers keep their exact values", async () => {
    const server = inspector((req) => ({ cookie: req.headers.get("cookie"), ua: req.headers.get("user-agent") }));
    const res = await httpRequest(server.port, { headers: { cookie: "a=1; b=2", "user-agent": "test/1.0 (x; y)" } });
    expect(JSON.parse(res.body.toString())).toEqual({ cookie: "a=1; b=2", ua: "test/1.0 (x; y)" });
  });

  it("non-ASCII (latin1) header bytes are read as a ByteString, not UTF-8", async () => {
    const codes = (value: string | null) => [...(value ?? "")].map((c) => c.charCodeAt(0));
    const server = inspector((req) => ({
      get: codes(req.headers.get("x-latin")),
      iterated: codes([...req.headers].find(([name]) => name === "x-latin")?.[1] ?? null),
      utf8: codes(req.headers.get("x-utf8")),
    }));
    // (The uWS parser trims bytes >= 0x80 at either end of a value as if they were whitespace, a
    // signed-char quirk of the core; the bytes tested here sit between ASCII ones.)
    const response = await rawRequest(server.port, [
      "GET / HTTP/1.1\r\nHost: x\r\nX-Latin: ",
      Buffer.from([0x41, 0xe9, 0xff, 0x42]),
      "\r\nX-Utf8: a",
      Buffer.from("éb", "utf8"),
      "\r\nConnection: close\r\n\r\n",
    ]);
    expect(JSON.parse(rawBody(response))).toEqual({
      get: [0x41, 0xe9, 0xff, 0x42],
      iterated: [0x41, 0xe9, 0xff, 0x42],
      // UTF-8 bytes stay bytes: é is two latin1 characters, as undici and Node's http show it.
      utf8: [0x61, 0xc3, 0xa9, 0x62],
    });
  });

  it("headers can be copied into a new Headers and a new Request", async () => {
    const server = inspector((req) => {
      const copy = new Headers(req.headers);
      const again = new Request("http://x/", { headers: req.headers });
      return [copy.get("x-h"), again.headers.get("x-h")];
    });
    const res = await fetch(url(server), { headers: { "x-h": "v" } });
    expect(await res.json()).toEqual(["v", "v"]);
  });

  it("headers mutations from the handler are visible on the same request", async () => {
    const server = inspector((req) => {
      try {
        req.headers.set("x-added", "1");
        return req.headers.get("x-added");
      } catch (err) {
        // A guarded ("request") header list may refuse; that is a real Request's behaviour too.
        return (err as Error).name;
      }
    });
    expect(await (await fetch(url(server))).json()).toBe("1");
  });
});

describe("new Request(req), clone(), fetch(req)", () => {
  it("new Request(req) copies method, url, headers and body", async () => {
    const server = inspector(async (req) => {
      const copy = new Request(req);
      return { method: copy.method, url: copy.url, h: copy.headers.get("x-h"), body: await copy.text() };
    });
    const res = await fetch(url(server, "/copy"), { method: "POST", headers: { "x-h": "1" }, body: "payload" });
    expect(await res.json()).toEqual({ method: "POST", url: url(server, "/copy"), h: "1", body: "payload" });
  });

  it("after the body was read: bodyUsed, and new Request(req) is a TypeError as for any used Request", async () => {
    const server = inspector(async (req) => {
      const text = await req.text();
      let copyError = "";
      try {
        new Request(req);
      } catch (err) {
        copyError = (err as Error).constructor.name;
      }
      return { text, used: req.bodyUsed, copyError };
    });
    const res = await fetch(url(server, "/used"), { method: "POST", body: "once" });
    expect(await res.json()).toEqual({ text: "once", used: true, copyError: "TypeError" });
  });

  it("new Request(url, req) takes req as init", async () => {
    const server = inspector(async (req) => {
      const copy = new Request("http://other.test/x", req);
      return { method: copy.method, url: copy.url, body: await copy.text() };
    });
    const res = await fetch(url(server), { method: "PUT", body: "init body" });
    expect(await res.json()).toEqual({ method: "PUT", url: "http://other.test/x", body: "init body" });
  });

  it("req.clone() gives two readable bodies", async () => {
    const server = inspector(async (req) => {
      const copy = req.clone();
      const [a, b] = await Promise.all([req.text(), copy.text()]);
      return { a, b, cloneIsRequest: copy instanceof Request, url: copy.url === req.url };
    });
    const res = await fetch(url(server), { method: "POST", body: "twice" });
    expect(await res.json()).toEqual({ a: "twice", b: "twice", cloneIsRequest: true, url: true });
  });

  it("clone() of a body-less GET works", async () => {
    const server = inspector((req) => ({ method: req.clone().method, body: req.clone().body }));
    expect(await (await fetch(url(server))).json()).toEqual({ method: "GET", body: null });
  });

  it("await fetch(req) forwards to the server Host names (a second uwserve server)", async () => {
    const upstream = serveWith(async (req) =>
      Response.json({ at: "upstream", method: req.method, path: new URL(req.url).pathname, h: req.headers.get("x-h"), body: await req.text() }),
    );
    const proxy = serveWith((req) => fetch(req));
    const upstreamHost = `127.0.0.1:${upstream.port}`;
    const res = await httpRequest(proxy.port, { method: "POST", path: "/fwd", headers: { host: upstreamHost, "x-h": "kept", "content-type": "text/plain" }, body: "forwarded body" });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body.toString())).toEqual({ at: "upstream", method: "POST", path: "/fwd", h: "kept", body: "forwarded body" });
  });

  it("fetch(new Request(otherUrl, req)) forwards method, headers and body", async () => {
    const upstream = serveWith(async (req) => new Response(`${req.method} ${req.headers.get("x-h")} ${await req.text()}`));
    const proxy = serveWith((req) => fetch(new Request(`http://127.0.0.1:${upstream.port}/x`, req)));
    const res = await fetch(url(proxy), { method: "PATCH", headers: { "x-h": "h" }, body: "b" });
    expect(await res.text()).toBe("PATCH h b");
  });

  it("fetch(req.url.replace(...), req) forwards too", async () => {
    const upstream = serveWith(async (req) => new Response(`${new URL(req.url).pathname}:${await req.text()}`));
    const proxy = serveWith((req) => fetch(req.url.replace(`:${proxy.port}`, `:${upstream.port}`), req));
    const res = await fetch(url(proxy, "/replaced"), { method: "POST", body: "data" });
    expect(await res.text()).toBe("/replaced:data");
  });

  it("forwarding a GET (no body) works", async () => {
    const upstream = serveWith((req) => new Response(`got ${req.method} ${new URL(req.url).search}`));
    const proxy = serveWith((req) => fetch(`http://127.0.0.1:${upstream.port}/`, req));
    expect(await (await fetch(url(proxy, "/?q=1"))).text()).toBe("got GET ");
  });
});

describe("body readers", () => {
  it("text()", async () => {
    const server = inspector((req) => req.text());
    const res = await fetch(url(server), { method: "POST", body: "héllo wörld" });
    expect(await res.json()).toBe("héllo wörld");
  });

  it("json()", async () => {
    const server = inspector((req) => req.json());
    const res = await fetch(url(server), { method: "POST", body: JSON.stringify({ a: [1, 2], b: "c" }) });
    expect(await res.json()).toEqual({ a: [1, 2], b: "c" });
  });

  it("json() with invalid JSON rejects (handler sees a SyntaxError)", async () => {
    const server = inspector(async (req) => {
      try {
        await req.json();
        return "parsed";
      } catch (err) {
        return (err as Error).name;
      }
    });
    const res = await fetch(url(server), { method: "POST", body: "{nope" });
    expect(await res.json()).toBe("SyntaxError");
  });

  it("arrayBuffer() and bytes() give exact bytes", async () => {
    const payload = randomBytes(70_000);
    const server = inspector(async (req) => {
      const copy = req.clone();
      const ab = await req.arrayBuffer();
      const bytes = await copy.bytes();
      return {
        abIs: ab instanceof ArrayBuffer,
        abLen: ab.byteLength,
        abHash: createHash("sha256").update(new Uint8Array(ab)).digest("hex"),
        bytesIs: bytes instanceof Uint8Array,
        bytesHash: createHash("sha256").update(bytes).digest("hex"),
      };
    });
    const res = await fetch(url(server), { method: "POST", body: payload });
    const hash = createHash("sha256").update(payload).digest("hex");
    expect(await res.json()).toEqual({ abIs: true, abLen: payload.length, abHash: hash, bytesIs: true, bytesHash: hash });
  });

  it("bytes() directly", async () => {
    const server = inspector(async (req) => [...(await req.bytes())]);
    const res = await fetch(url(server), { method: "POST", body: new Uint8Array([0, 1, 255]) });
    expect(await res.json()).toEqual([0, 1, 255]);
  });

  it("blob() keeps the content type", async () => {
    const server = inspector(async (req) => {
      const blob = await req.blob();
      return { type: blob.type, size: blob.size, text: await blob.text() };
    });
    const res = await fetch(url(server), { method: "POST", body: "blobby", headers: { "content-type": "application/x-test" } });
    expect(await res.json()).toEqual({ type: "application/x-test", size: 6, text: "blobby" });
  });

  it("formData() parses urlencoded bodies", async () => {
    const server = inspector(async (req) => {
      const form = await req.formData();
      return { a: form.getAll("a"), b: form.get("b") };
    });
    const res = await fetch(url(server), { method: "POST", body: new URLSearchParams([["a", "1"], ["a", "2"], ["b", "x y&z"]]) });
    expect(await res.json()).toEqual({ a: ["1", "2"], b: "x y&z" });
  });

  it("formData() parses multipart bodies with fields and files", async () => {
    const server = inspector(async (req) => {
      const form = await req.formData();
      const file = form.get("file") as File;
      return { field: form.get("field"), name: file.name, type: file.type, content: await file.text() };
    });
    const form = new FormData();
    form.append("field", "value");
    form.append("file", new Blob(["file content"], { type: "text/x-thing" }), "a.txt");
    const res = await fetch(url(server), { method: "POST", body: form });
    expect(await res.json()).toEqual({ field: "value", name: "a.txt", type: "text/x-thing", content: "file content" });
  });

  it("an empty POST reads as empty everywhere", async () => {
    const server = inspector(async (req) => ({ text: await req.clone().text(), bytes: (await req.arrayBuffer()).byteLength }));
    const res = await fetch(url(server), { method: "POST", body: "" });
    expect(await res.json()).toEqual({ text: "", bytes: 0 });
  });

  it("a chunked upload is read whole", async () => {
    const server = inspector((req) => req.text());
    const response = await rawRequest(
      server.port,
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    );
    expect(JSON.parse(rawBody(response))).toBe("hello world");
  });

  it("bodyUsed is false before and true after a read; a second read is a TypeError", async () => {
    const server = inspector(async (req) => {
      const before = req.bodyUsed;
      await req.text();
      const after = req.bodyUsed;
      let second = "none";
      try {
        await req.text();
      } catch (err) {
        second = (err as Error).name;
      }
      return { before, after, second };
    });
    const res = await fetch(url(server), { method: "POST", body: "x" });
    expect(await res.json()).toEqual({ before: false, after: true, second: "TypeError" });
  });

  it("bodyUsed becomes true once the stream is read", async () => {
    const server = inspector(async (req) => {
      const reader = req.body!.getReader();
      while (!(await reader.read()).done);
      return req.bodyUsed;
    });
    const res = await fetch(url(server), { method: "POST", body: "x" });
    expect(await res.json()).toBe(true);
  });

  it("body is null for GET and HEAD, a ReadableStream for POST", async () => {
    const server = inspector((req) => ({ isNull: req.body === null, isStream: req.body instanceof ReadableStream }));
    expect(await (await fetch(url(server))).json()).toEqual({ isNull: true, isStream: false });
    expect(await (await fetch(url(server), { method: "POST", body: "x" })).json()).toEqual({ isNull: false, isStream: true });
  });

  it("a GET with a body is ignored without a crash, and the connection stays usable", async () => {
    const server = inspector(async (req) => ({ body: req.body, text: await req.text() }));
    const conn = await RawConnection.open(server.port);
    try {
      const first = await conn.request("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
      expect(first).toMatch(/^HTTP\/1\.1 200/);
      expect(JSON.parse(rawBody(first))).toEqual({ body: null, text: "" });
      const second = await conn.request("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      expect(second).toMatch(/^HTTP\/1\.1 200/);
    } finally {
      conn.destroy();
    }
  });

  it("an unread body does not stall the connection for the next request", async () => {
    const server = serveWith(() => new Response("ignored your body"));
    const conn = await RawConnection.open(server.port);
    try {
      const big = "x".repeat(300_000);
      const first = await conn.request(`POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ${big.length}\r\n\r\n${big}`);
      expect(first).toMatch(/ignored your body$/);
      const second = await conn.request("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      expect(second).toMatch(/ignored your body$/);
    } finally {
      conn.destroy();
    }
  });
});

describe("body stream", () => {
  it("read manually with a reader: chunks are Uint8Arrays that add up", async () => {
    const server = inspector(async (req) => {
      const reader = req.body!.getReader();
      let bytes = 0;
      let allUint8 = true;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        allUint8 &&= value instanceof Uint8Array;
        bytes += value.byteLength;
      }
      return { bytes, allUint8 };
    });
    const res = await fetch(url(server), { method: "POST", body: "y".repeat(100_000) });
    expect(await res.json()).toEqual({ bytes: 100_000, allUint8: true });
  });

  it("a 20 MB upload read slowly completes with the right byte count and sha256 (backpressure)", { timeout: 60_000 }, async () => {
    const size = 20 * 1024 * 1024;
    const payload = randomBytes(size);
    const expected = createHash("sha256").update(payload).digest("hex");
    const server = inspector(async (req) => {
      const hash = createHash("sha256");
      const reader = req.body!.getReader();
      let bytes = 0;
      let reads = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        hash.update(value);
        bytes += value.byteLength;
        // Slow consumer: pause every few reads so the socket must be paused under it.
        reads++;
        await sleep(3);
      }
      return { bytes, sha256: hash.digest("hex"), severalReads: reads > 10 };
    });
    // node:http so the upload is written with its own backpressure, and we see it progress.
    const result = await withTimeout(
      new Promise<{ status: number; body: string; uploadFinishedEarly: boolean }>((resolve, reject) => {
        const req = http.request({ host: "127.0.0.1", port: server.port, method: "POST", path: "/", agent: false, headers: { "content-length": size } }, (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (body += c));
          res.on("end", () => resolve({ status: res.statusCode!, body, uploadFinishedEarly: false }));
        });
        req.on("error", reject);
        // Write in 1 MiB pieces honouring the socket's backpressure.
        let offset = 0;
        const pump = (): void => {
          while (offset < size) {
            const piece = payload.subarray(offset, offset + 1024 * 1024);
            offset += piece.length;
            if (!req.write(piece)) {
              req.once("drain", pump);
              return;
            }
          }
          req.end();
        };
        pump();
      }),
      50_000,
      "the 20 MB upload",
    );
    expect(result.status).toBe(200);
    expect(JSON.parse(result.body)).toEqual({ bytes: size, sha256: expected, severalReads: true });
  });

  it("a paused reader holds the upload back instead of buffering it all", { timeout: 30_000 }, async () => {
    const size = 16 * 1024 * 1024;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let firstChunk = false;
    const server = inspector(async (req) => {
      const reader = req.body!.getReader();
      const first = await reader.read();
      firstChunk = true;
      await held;
      let bytes = first.value?.byteLength ?? 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        bytes += value.byteLength;
      }
      return bytes;
    });
    let written = 0;
    const done = new Promise<string>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port: server.port, method: "POST", path: "/", agent: false, headers: { "content-length": size } }, (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve(body));
      });
      req.on("error", reject);
      const piece = Buffer.alloc(64 * 1024, 1);
      const pump = (): void => {
        while (written < size) {
          written += piece.length;
          if (!req.write(piece)) {
            req.once("drain", pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
    await waitFor(() => firstChunk, 10_000, "the first chunk");
    await sleep(500);
    // The server paused the socket: far less than everything could be written (kernel buffers only).
    expect(written).toBeLessThan(size);
    release();
    expect(Number(await withTimeout(done, 20_000, "the rest of the upload"))).toBe(size);
  });
});

describe("signal", () => {
  it("aborts when the client hangs up", async () => {
    let resolveAborted!: (reason: unknown) => void;
    const aborted = new Promise<unknown>((r) => (resolveAborted = r));
    const server = serveWith((req) => {
      req.signal.addEventListener("abort", () => resolveAborted(req.signal.reason));
      return new Promise(() => {});
    });
    const controller = new AbortController();
    const client = fetch(url(server), { signal: controller.signal }).catch(() => "aborted");
    await waitFor(() => server.pendingRequests === 1, 5000, "the request");
    controller.abort();
    await client;
    const reason = await withTimeout(aborted, 5000, "req.signal abort");
    expect(reason).toBeDefined();
  });

  it("a signal first read after the hang-up is already aborted", async () => {
    let resolveRead!: (v: boolean) => void;
    const read = new Promise<boolean>((r) => (resolveRead = r));
    const server = serveWith(async (req, srv) => {
      await waitFor(() => srv.pendingRequests === 0 || req.signal.aborted, 5000, "the hang-up").catch(() => {});
      resolveRead(req.signal.aborted);
      return new Response("late");
    });
    const controller = new AbortController();
    const client = fetch(url(server), { signal: controller.signal }).catch(() => "aborted");
    await waitFor(() => server.pendingRequests === 1, 5000, "the request");
    controller.abort();
    await client;
    expect(await withTimeout(read, 6000, "the handler")).toBe(true);
  });

  it("does not abort after a successful response", async () => {
    let saved: Request | null = null;
    const server = serveWith((req) => {
      saved = req;
      void req.signal;
      return new Response("ok");
    });
    await (await fetch(url(server))).text();
    await sleep(50);
    expect(saved!.signal.aborted).toBe(false);
  });

  it("a pending body read rejects when the client hangs up mid-upload", async () => {
    let resolveOutcome!: (v: string) => void;
    const outcome = new Promise<string>((r) => (resolveOutcome = r));
    const server = serveWith(async (req) => {
      try {
        await req.text();
        resolveOutcome("read");
      } catch (err) {
        resolveOutcome(`rejected ${(err as Error).name}`);
      }
      return new Response("x");
    });
    const conn = await RawConnection.open(server.port);
    conn.socket.write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly some");
    await waitFor(() => server.pendingRequests === 1, 5000, "the upload");
    conn.destroy();
    expect(await withTimeout(outcome, 5000, "req.text() to settle")).toMatch(/^rejected/);
  });
});
