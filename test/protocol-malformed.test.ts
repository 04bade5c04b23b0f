/**
 * Malformed and unusual requests straight off the wire: the uWS core answers 4xx/505 and
 * closes, or the request reaches the handler with a safe `req.url` — never a crash, a hang
 * past the idle timeout, or a response that belongs to another request.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Server } from "../dist/index.js";
import { parseResponses, rawExchange, start, withTimeout } from "./helpers/server.js";
import { CORE_BUILD, HTTP_PARSER, NEWER_CORE, ON_NODE_ENGINE } from "./helpers/core.js";

let server: Server | null = null;
afterEach(async () => {
  await server?.stop(true);
  server = null;
});

/** A server that echoes what it saw as `METHOD URL` and counts handler calls. */
function echoServer(): { server: Server; calls: () => number } {
  let calls = 0;
  server = start({
    fetch(req: Request) {
      calls++;
      return new Response(`${req.method} ${req.url}`);
    },
  });
  return { server, calls: () => calls };
}

/** A fresh connection still gets a normal answer: the process and the listener are fine. */
async function expectHealthy(port: number): Promise<void> {
  const res = await withTimeout(fetch(`http://127.0.0.1:${port}/health`), 5000, "a fresh request after bad input");
  expect(res.status).toBe(200);
  await res.arrayBuffer();
}

describe("malformed request lines", () => {
  // The core accepts only `METHOD SP origin-form SP HTTP/1.1 CRLF`; anything else is answered
  // with its canned 505 page (even when the version is not the problem) and the connection closes.
  const lines: Record<string, string> = {
    "garbage": "GARBAGE\r\n\r\n",
    "missing target": "GET HTTP/1.1\r\nHost: x\r\n\r\n",
    "two spaces": "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
    "tabs as separators": "GET\t/\tHTTP/1.1\r\nHost: x\r\n\r\n",
    "absolute-form target": "GET http://evil.example/ HTTP/1.1\r\nHost: x\r\n\r\n",
    "asterisk-form target": "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    "unknown version": "GET / HTTP/1.2\r\nHost: x\r\n\r\n",
    "HTTP/2 preface": "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    // RFC 9112 §2.2 says a server SHOULD ignore empty lines before the request line; uWS doesn't.
    "leading CRLF": "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "lone LF line endings": "GET / HTTP/1.1\nHost: x\n\n",
    "binary noise": "\x00\x01\x02\xff\xfe\r\n\r\n",
  };
  // The newer core (Node 22+ binaries) doesn't answer these: it waits for more, and the idle
  // timeout ends the connection (tested below). The Node 20 core answers 505 and closes.
  const unansweredByNewerCore = new Set(["garbage", "leading CRLF"]);
  // The node engine (llhttp) answers 400 and closes, and serves the forms RFC 9112 allows
  // (absolute-form, asterisk-form, empty lines before the request line) and, leniently, two spaces.
  const servedByNode = new Set(["two spaces", "absolute-form target", "asterisk-form target", "leading CRLF"]);
  for (const [name, payload] of Object.entries(lines)) {
    if (ON_NODE_ENGINE) {
      const served = servedByNode.has(name);
      it(`${name} → ${served ? "served" : "400 and close"} (${HTTP_PARSER})`, async () => {
        const { server, calls } = echoServer();
        const out = await rawExchange(server.port, Buffer.from(payload, "latin1"), { idleMs: 2000 });
        if (served) {
          expect(parseResponses(out.data).responses[0]?.status).toBe(200);
          expect(calls()).toBe(1);
        } else {
          expect(out.data).toMatch(/^HTTP\/1\.1 400 /);
          expect(out.closed).toBe(true);
          expect(calls()).toBe(0);
        }
        await expectHealthy(server.port);
      });
      continue;
    }
    const unanswered = NEWER_CORE && unansweredByNewerCore.has(name);
    it(`${name} → ${unanswered ? "no answer" : "505 and close"} (${CORE_BUILD}), handler not called`, async () => {
      const { server, calls } = echoServer();
      const out = await rawExchange(server.port, Buffer.from(payload, "latin1"), { idleMs: 2000 });
      if (unanswered) {
        expect(out.data).toBe("");
      } else {
        expect(out.data).toMatch(/^HTTP\/1\.1 505 /);
        expect(out.closed).toBe(true);
      }
      expect(calls()).toBe(0);
      await expectHealthy(server.port);
    });
  }

  it.runIf(ON_NODE_ENGINE)("HTTP/1.0 is served by the node engine: no chunked encoding, closed after the response", async () => {
    const { server, calls } = echoServer();
    const out = await rawExchange(server.port, "GET /old HTTP/1.0\r\nHost: x\r\n\r\n", { idleMs: 2000 });
    const [res] = parseResponses(out.data).responses;
    expect(res?.status).toBe(200);
    expect(res?.body).toBe("GET http://x/old");
    expect(out.data).not.toMatch(/transfer-encoding/i);
    expect(out.closed).toBe(true);
    expect(calls()).toBe(1);
  });

  it.runIf(!ON_NODE_ENGINE)("HTTP/1.0 → 505 from the core (uWS speaks HTTP/1.1 only, hazard H9) and close", async () => {
    const { server, calls } = echoServer();
    const out = await rawExchange(server.port, "GET / HTTP/1.0\r\nHost: x\r\n\r\n", { idleMs: 2000 });
    expect(out.data).toMatch(/^HTTP\/1\.1 505 HTTP Version Not Supported\r\n/);
    expect(out.closed).toBe(true);
    expect(calls()).toBe(0);
  });

  it("a request line ending in CRLF with LF-only header lines is not executed", async () => {
    const { server, calls } = echoServer();
    const out = await rawExchange(server.port, "GET / HTTP/1.1\r\nHost: x\n\n", { idleMs: 500, end: true });
    // Whatever the core does with it (an error or waiting for a proper CRLFCRLF), no handler runs.
    expect(out.data === "" || /^HTTP\/1\.1 [45]\d\d /.test(out.data)).toBe(true);
    expect(calls()).toBe(0);
    await expectHealthy(server.port);
  });
});

describe("bad header syntax", () => {
  // The Node 20 core never answers these: it keeps waiting for a well-formed header block, so
  // the connection ends when the client gives up or at the core's idle timeout (~10 s, H10).
  // The newer core (Node 22+ binaries) answers 400 and closes at once, except for a bare CR.
  const heads: Record<string, string> = {
    "a header line without a colon": "GET / HTTP/1.1\r\nHost: x\r\nBadHeader\r\n\r\n",
    "a space inside the name": "GET / HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n",
    "a space before the colon": "GET / HTTP/1.1\r\nHost: x\r\nX-V : v\r\n\r\n",
    "obs-fold continuation": "GET / HTTP/1.1\r\nHost: x\r\nX-V: a\r\n b\r\n\r\n",
    "a NUL in a value": "GET / HTTP/1.1\r\nHost: x\r\nX-V: a\0b\r\n\r\n",
    "a bare CR in a value": "GET / HTTP/1.1\r\nHost: x\r\nX-V: a\rb\r\n\r\n",
    "no header lines at all": "GET / HTTP/1.1\r\n\r\n",
  };
  for (const [name, payload] of Object.entries(heads)) {
    it(`${name}: never executed, and not followed by a pipelined request`, async () => {
      const { server, calls } = echoServer();
      const smuggled = "GET /second HTTP/1.1\r\nHost: x\r\n\r\n";
      const out = await rawExchange(server.port, payload + smuggled, { idleMs: 500, end: true });
      expect(out.data === "" || /^HTTP\/1\.1 4\d\d /.test(out.data)).toBe(true);
      expect(out.data).not.toContain("/second");
      expect(calls()).toBe(0);
      await expectHealthy(server.port);
    });
  }

  if (NEWER_CORE || ON_NODE_ENGINE) {
    it(`${HTTP_PARSER} answers 400 and closes at once`, async () => {
      const { server, calls } = echoServer();
      for (const [name, payload] of Object.entries(heads)) {
        if (name === "a bare CR in a value" && !ON_NODE_ENGINE) continue;
        const out = await rawExchange(server.port, payload, { idleMs: 2000 });
        expect(out.data, name).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
        expect(out.closed, name).toBe(true);
      }
      expect(calls()).toBe(0);
    });
  }

  // The node engine answers every one of them (above).
  it.runIf(!ON_NODE_ENGINE)(`a connection the core doesn't answer is closed by the idle timeout, not held forever (${CORE_BUILD})`, async () => {
    const { server, calls } = echoServer();
    const started = Date.now();
    const unanswered = NEWER_CORE
      ? [heads["a bare CR in a value"]!, "GARBAGE\r\n\r\n", "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"]
      : [heads["a header line without a colon"]!, heads["a NUL in a value"]!, heads["no header lines at all"]!];
    const results = await Promise.all(unanswered.map((payload) => rawExchange(server.port, payload, { idleMs: 20_000, deadlineMs: 20_000 })));
    for (const out of results) {
      expect(out.closed).toBe(true);
      expect(out.data).toBe("");
    }
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(calls()).toBe(0);
  }, 25_000);
});

describe("the Host header", () => {
  const invalid: Record<string, string> = {
    "a space in it": "Host: a b\r\n",
    "an unclosed IPv6 bracket": "Host: [::1\r\n",
    "empty": "Host:\r\n",
    "a path in it": "Host: evil.example/x\r\n",
    "a userinfo in it": "Host: user@evil.example\r\n",
    "a bad port": "Host: x:99999999\r\n",
  };
  for (const [name, header] of Object.entries(invalid)) {
    it(`${name}: req.url falls back to the listening address`, async () => {
      const { server, calls } = echoServer();
      const out = await rawExchange(server.port, `GET /p?q=1 HTTP/1.1\r\n${header}\r\n`, { idleMs: 300 });
      const { responses } = parseResponses(out.data);
      expect(responses).toHaveLength(1);
      expect(responses[0]!.status).toBe(200);
      expect(responses[0]!.body).toBe(`GET http://127.0.0.1:${server.port}/p?q=1`);
      expect(calls()).toBe(1);
    });
  }

  it("a valid Host builds req.url, with dot segments resolved", async () => {
    const { server } = echoServer();
    const out = await rawExchange(server.port, "GET /a/../../b/./c HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");
    expect(parseResponses(out.data).responses[0]!.body).toBe("GET http://example.com:8080/b/c");
  });

  it("a missing Host (with other headers) → 400 and close (RFC 9112 §3.2)", async () => {
    const { server, calls } = echoServer();
    const out = await rawExchange(server.port, "GET /p HTTP/1.1\r\nAccept: */*\r\n\r\n", { idleMs: 2000 });
    expect(out.data).toMatch(/^HTTP\/1\.1 400 /);
    expect(out.closed).toBe(true);
    expect(calls()).toBe(0);
  });

  it("two Host headers → 400 and close (RFC 9112 §3.2), never one of them picked", async () => {
    const { server, calls } = echoServer();
    const out = await rawExchange(server.port, "GET /p HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n", { idleMs: 2000 });
    expect(out.data).toMatch(/^HTTP\/1\.1 400 /);
    expect(out.closed).toBe(true);
    expect(calls()).toBe(0);
  });
});

describe("methods", () => {
  /** Answers with the method and whether the request could be inspected normally. */
  function methodServer(): Server {
    server = start({
      fetch(req: Request) {
        return new Response(`${req.method} ${new URL(req.url).pathname} ${req.headers.get("x-test")}`, {
          headers: { "x-method": req.method },
        });
      },
    });
    return server;
  }

  for (const method of ["TRACE", "PURGE", "PROPFIND", "MKCALENDAR", "X-CUSTOM"]) {
    // llhttp knows a fixed list of methods: others are a 400 on the node engine.
    if (ON_NODE_ENGINE && method === "X-CUSTOM") {
      it(`${method} → 400 and close (${HTTP_PARSER}: not a method it knows)`, async () => {
        const s = methodServer();
        const out = await rawExchange(s.port, `${method} /m HTTP/1.1\r\nHost: x\r\n\r\n`, { idleMs: 2000 });
        expect(out.data).toMatch(/^HTTP\/1\.1 400 /);
        expect(out.closed).toBe(true);
      });
      continue;
    }
    it(`${method} reaches the handler and is answered`, async () => {
      const s = methodServer();
      const out = await rawExchange(s.port, `${method} /m HTTP/1.1\r\nHost: x\r\nX-Test: yes\r\n\r\n`);
      const [res] = parseResponses(out.data).responses;
      expect(res?.status).toBe(200);
      expect(res?.body).toBe(`${method} /m yes`);
      expect(res?.header("x-method")).toBe(method);
    });
  }

  // node:http hands CONNECT to its tunnel event, never to a request handler: the node engine
  // closes such connections.
  it.runIf(ON_NODE_ENGINE)(`CONNECT is not served (${HTTP_PARSER}): the connection closes`, async () => {
    const s = methodServer();
    for (const line of ["CONNECT /tunnel HTTP/1.1\r\nHost: x\r\n\r\n", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"]) {
      const out = await rawExchange(s.port, line, { idleMs: 2000 });
      expect(out.data === "" || /^HTTP\/1\.1 [45]\d\d /.test(out.data)).toBe(true);
      expect(out.closed).toBe(true);
    }
    await expectHealthy(s.port);
  });

  it.runIf(!ON_NODE_ENGINE)("CONNECT with an origin-form target reaches the handler", async () => {
    const s = methodServer();
    const out = await rawExchange(s.port, "CONNECT /tunnel HTTP/1.1\r\nHost: x\r\nX-Test: c\r\n\r\n");
    const [res] = parseResponses(out.data).responses;
    expect(res?.status).toBe(200);
    expect(res?.body).toBe("CONNECT /tunnel c");
  });

  it.runIf(!ON_NODE_ENGINE)("CONNECT with an authority-form target (host:port) → 505 from the core", async () => {
    const s = methodServer();
    const out = await rawExchange(s.port, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", { idleMs: 2000 });
    expect(out.data).toMatch(/^HTTP\/1\.1 505 /);
    expect(out.closed).toBe(true);
  });

  it.runIf(ON_NODE_ENGINE)(`methods in lower case → 400 and close (${HTTP_PARSER}: methods are case-sensitive)`, async () => {
    const s = methodServer();
    const out = await rawExchange(s.port, "get /a HTTP/1.1\r\nHost: x\r\n\r\n", { idleMs: 2000 });
    expect(out.data).toMatch(/^HTTP\/1\.1 400 /);
    expect(out.closed).toBe(true);
  });

  it.runIf(!ON_NODE_ENGINE)("standard methods sent in lower case are normalised; custom ones keep their case", async () => {
    const s = methodServer();
    const out = await rawExchange(s.port, "get /a HTTP/1.1\r\nHost: x\r\n\r\npurge /b HTTP/1.1\r\nHost: x\r\n\r\n");
    const { responses } = parseResponses(out.data);
    expect(responses.map((r) => r.body)).toEqual(["GET /a null", "purge /b null"]);
  });
});

describe("bodies where none is expected", () => {
  it("GET with a Content-Length body: handled, body ignored, the next request parsed after it", async () => {
    let calls = 0;
    server = start({
      async fetch(req: Request) {
        calls++;
        return new Response(`${new URL(req.url).pathname} [${await req.text()}] ${req.body === null}`);
      },
    });
    const body = "GET /evil HTTP/1.1\r\nHost: x\r\n\r\n";
    // Two writes, so the first (async) handler has answered before the second request arrives (H8).
    const out = await rawExchange(
      server.port,
      [`GET /one HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`, "GET /two HTTP/1.1\r\nHost: x\r\n\r\n"],
      { gapMs: 100 },
    );
    const { responses } = parseResponses(out.data);
    // The body bytes look like a request but are the first request's body: never executed.
    expect(responses.map((r) => r.body)).toEqual(["/one [] true", "/two [] true"]);
    expect(calls).toBe(2);
  });

  it("GET with a chunked body: handled, body ignored, the next request parsed after it", async () => {
    const { server, calls } = echoServer();
    const out = await rawExchange(
      server.port,
      "GET /one HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    const { responses } = parseResponses(out.data);
    expect(responses.map((r) => r.body)).toEqual(["GET http://x/one", "GET http://x/two"]);
    expect(calls()).toBe(2);
  });

  it("HEAD with a body: headers only, and the connection stays usable", async () => {
    const { server, calls } = echoServer();
    const out = await rawExchange(
      server.port,
      "HEAD /h HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /after HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    const { responses, rest } = parseResponses(out.data, new Set([0]));
    expect(responses).toHaveLength(2);
    expect(responses[0]!.status).toBe(200);
    expect(responses[0]!.header("content-length")).toBe(String("HEAD http://x/h".length));
    expect(responses[1]!.body).toBe("GET http://x/after");
    expect(rest).toBe("");
    expect(calls()).toBe(2);
  });
});

describe("non-ASCII header bytes", () => {
  function headerServer(): Server {
    server = start({
      fetch(req: Request) {
        const lazy = req.headers.get("x-v");
        // Building a real Headers (and a real Request) must not throw or lose the value.
        const copied = new Headers(req.headers).get("x-v");
        const cloned = req.clone().headers.get("x-v");
        const codes = [...(lazy ?? "")].map((c) => c.charCodeAt(0));
        return Response.json({ codes, same: lazy === copied && lazy === cloned });
      },
    });
    return server;
  }

  async function send(value: Buffer): Promise<{ codes: number[]; same: boolean }> {
    const head = Buffer.concat([Buffer.from("GET / HTTP/1.1\r\nHost: x\r\nX-V: "), value, Buffer.from("\r\n\r\n")]);
    const out = await rawExchange(server!.port, head);
    const [res] = parseResponses(out.data).responses;
    expect(res?.status).toBe(200);
    return JSON.parse(res!.body);
  }

  it("a latin1 byte arrives as that latin1 character (a ByteString, as Node/Deno/undici)", async () => {
    headerServer();
    const result = await send(Buffer.from([0x5b, 0x63, 0x61, 0x66, 0xe9, 0x5d])); // "[caf\xe9]"
    expect(result.codes).toEqual([0x5b, 0x63, 0x61, 0x66, 0xe9, 0x5d]);
    expect(result.same).toBe(true);
  });

  it("UTF-8 bytes arrive one character per byte, identical in lazy, copied and cloned headers", async () => {
    headerServer();
    const bytes = Buffer.from("[café ☃]", "utf8");
    const result = await send(bytes);
    expect(result.codes).toEqual([...bytes]);
    expect(result.same).toBe(true);
  });

  it("bytes 0x80-0xFF of every kind don't crash the server and arrive unchanged", async () => {
    headerServer();
    const all = Buffer.from([0x3c, ...Array.from({ length: 128 }, (_, i) => 0x80 + i), 0x3e]);
    const result = await send(all);
    expect(result.codes).toEqual([...all]);
    await expectHealthy(server!.port);
  });

  // KNOWN CORE LIMITATION (README): this uWS build trims header values as if every byte >= 0x80
  // were whitespace (a signed-char comparison), so non-ASCII bytes at the start or end of a value
  // are lost before uwserve sees it. Interior bytes survive (tests above).
  it.runIf(ON_NODE_ENGINE)("non-ASCII bytes at the edges of a value arrive unchanged (node engine)", async () => {
    headerServer();
    for (const value of [Buffer.from("café", "utf8"), Buffer.from("☃abc", "utf8"), Buffer.from([0xe9])]) {
      expect((await send(value)).codes).toEqual([...value]);
    }
    await expectHealthy(server!.port);
  });

  it.runIf(!ON_NODE_ENGINE)("non-ASCII bytes at the edges of a value are trimmed by the core (documented limitation)", async () => {
    headerServer();
    expect((await send(Buffer.from("café", "utf8"))).codes).toEqual([...Buffer.from("caf")]);
    expect((await send(Buffer.from("☃abc", "utf8"))).codes).toEqual([...Buffer.from("abc")]);
    expect((await send(Buffer.from([0xe9]))).codes).toEqual([]);
    await expectHealthy(server!.port);
  });
});
