// Bytes, not guesses: every string uwserve hands the uWS core arrives as UTF-8 (bodies, chunks,
// static routes, WebSocket text, topics, close reasons) and every header value as a ByteString,
// on every binary. The ABI 137+ binaries (Node 24, 25) copy one-byte JS strings as Latin-1 and
// the older ones encode all strings as UTF-8; these tests pin the bytes on the wire, so each
// binary is held to the same answer.
import { describe, expect, it } from "vitest";
import { Response as UwsResponse } from "../dist/index.js";
import { httpRequest } from "./helpers/client.js";
import { start, trackServers } from "./helpers/server.js";
import { connectWs, serveWs } from "./helpers/ws.js";

const track = trackServers();

/** One-byte (Latin-1 range), two-byte (BMP) and astral (surrogate pair) text. */
const LATIN1 = "h\u00e9llo w\u00f6rld \u00ff";
const BMP = "\u20ac \u03bb \u4e2d";
const ASTRAL = "\u{1F600} \u{1D11E}";
/** A Latin-1-range string V8 stores as two-byte (a slice of a two-byte string). */
const TWO_BYTE_LATIN1 = `${"\u00e9\u00e1"}\u20ac`.slice(0, 2);

const CLASSES = [
  ["uwserve Response", UwsResponse as unknown as typeof Response],
  ["global Response", globalThis.Response],
] as const;

describe.each(CLASSES)("bodies as UTF-8 (%s)", (_name, R) => {
  for (const [label, text] of [["Latin-1 range", LATIN1], ["BMP", BMP], ["astral", ASTRAL], ["two-byte stored", TWO_BYTE_LATIN1]] as const) {
    it(`a ${label} string body: UTF-8 bytes and their Content-Length`, async () => {
      const server = track(start({ fetch: () => new R(text) }));
      const res = await httpRequest(server.port);
      expect(res.body.equals(Buffer.from(text, "utf8"))).toBe(true);
      expect(res.headers["content-length"]).toBe(String(Buffer.byteLength(text)));
      expect(res.headers["content-type"]).toMatch(/^text\/plain;charset=utf-8$/i);
    });
  }

  it("Response.json with non-ASCII text", async () => {
    const server = track(start({ fetch: () => (R as typeof Response).json({ name: LATIN1, emoji: ASTRAL }) }));
    const res = await httpRequest(server.port);
    expect(JSON.parse(res.body.toString("utf8"))).toEqual({ name: LATIN1, emoji: ASTRAL });
    expect(res.headers["content-length"]).toBe(String(res.body.byteLength));
  });

  it("a HEAD request reports the UTF-8 length", async () => {
    const server = track(start({ fetch: () => new R(LATIN1) }));
    const res = await httpRequest(server.port, { method: "HEAD" });
    expect(res.headers["content-length"]).toBe(String(Buffer.byteLength(LATIN1)));
  });
});

describe("streamed and static bodies", () => {
  it("string chunks of a stream go out as UTF-8", async () => {
    const server = track(
      start({
        fetch: () =>
          new UwsResponse(
            new ReadableStream({
              start(c) {
                c.enqueue(LATIN1);
                c.enqueue(ASTRAL);
                c.close();
              },
            }) as unknown as BodyInit,
          ),
      }),
    );
    const res = await httpRequest(server.port);
    expect(res.body.toString("utf8")).toBe(LATIN1 + ASTRAL);
  });

  it("a static route's text body is UTF-8 (both Response classes)", async () => {
    const server = track(start({ routes: { "/u": new UwsResponse(LATIN1), "/g": new globalThis.Response(LATIN1 + ASTRAL) } }));
    expect((await httpRequest(server.port, { path: "/u" })).body.toString("utf8")).toBe(LATIN1);
    expect((await httpRequest(server.port, { path: "/g" })).body.toString("utf8")).toBe(LATIN1 + ASTRAL);
  });
});

describe("route parameters", () => {
  it("percent-decoded parameters are UTF-8 text, and echo back as UTF-8", async () => {
    const server = track(start({ routes: { "/users/:name": (req: Request & { params: Record<string, string> }) => new UwsResponse(req.params.name) } }));
    for (const name of ["caf\u00e9", "\u20ac", "\u{1F600}"]) {
      const res = await httpRequest(server.port, { path: `/users/${encodeURIComponent(name)}` });
      expect(res.body.toString("utf8")).toBe(name);
    }
  });
});

describe.each(CLASSES)("header values as ByteStrings (%s)", (_name, R) => {
  it("U+00E1 goes out as the one byte 0xE1", async () => {
    const server = track(start({ fetch: () => new R("x", { headers: { "x-name": "\u00e1", "set-cookie": "n=\u00e9" } }) }));
    const res = await httpRequest(server.port);
    // node:http reads header bytes as latin1: one character per byte.
    expect(res.headers["x-name"]).toBe("\u00e1");
    expect(res.headers["set-cookie"]).toEqual(["n=\u00e9"]);
  });

  it("a static route's Latin-1 header value and Set-Cookie go out one byte per character", async () => {
    const server = track(start({ routes: { "/s": new R("x", { headers: { "x-name": "\u00e1", "set-cookie": "n=\u00e9" } }) } }));
    const res = await httpRequest(server.port, { path: "/s" });
    expect(res.headers["x-name"]).toBe("\u00e1");
    expect(res.headers["set-cookie"]).toEqual(["n=\u00e9"]);
  });

  it("a Latin-1-range value stored as two-byte is still one byte per character", async () => {
    const server = track(start({ fetch: () => new R("x", { headers: { "x-name": TWO_BYTE_LATIN1 } }) }));
    const res = await httpRequest(server.port);
    expect(res.headers["x-name"]).toBe(TWO_BYTE_LATIN1);
  });

  it("a value above U+00FF is refused when the headers are built (a TypeError → 500)", async () => {
    let error: unknown = null;
    const server = track(
      start({
        fetch: () => {
          try {
            return new R("x", { headers: { "x-name": "\u20ac" } });
          } catch (err) {
            error = err;
            throw err;
          }
        },
      }),
    );
    const res = await httpRequest(server.port);
    expect(res.status).toBe(500);
    expect(error).toBeInstanceOf(TypeError);
  });
});

describe("status text", () => {
  it("an obs-text reason phrase goes out one byte per character", async () => {
    const server = track(start({ fetch: () => new UwsResponse("x", { status: 299, statusText: "\u00d6kay" }) }));
    const res = await httpRequest(server.port);
    expect(res.status).toBe(299);
    expect(res.statusMessage).toBe("\u00d6kay");
  });
});

describe("WebSocket text", () => {
  // WebSockets: the uws engine only (the node engine gets them with `ws` later).
  it("send, publish, topics and close reasons carry UTF-8 on every binary", async () => {
    const server = track(
      serveWs({
        open(ws: any) {
          ws.subscribe("caf\u00e9");
        },
        message(ws: any, message: string) {
          if (message === "send") {
            ws.send(LATIN1);
            ws.sendText(ASTRAL);
          } else if (message === "topics") {
            ws.send(JSON.stringify(ws.subscriptions));
          } else if (message === "publish") {
            server.publish("caf\u00e9", `${LATIN1} ${BMP}`);
          } else if (message === "close") {
            ws.close(4000, "adi\u00f3s \u00e9");
          } else {
            ws.send(message);
          }
        },
      }),
    );
    const client = await connectWs(server);
    await client.send("send");
    expect(await client.nextText()).toBe(LATIN1);
    expect(await client.nextText()).toBe(ASTRAL);
    await client.send("topics");
    expect(JSON.parse(await client.nextText())).toEqual(["caf\u00e9"]);
    expect(server.subscriberCount("caf\u00e9")).toBe(1);
    await client.send("publish");
    expect(await client.nextText()).toBe(`${LATIN1} ${BMP}`);
    await client.send(`echo ${LATIN1}`);
    expect(await client.nextText()).toBe(`echo ${LATIN1}`);
    await client.send("close");
    const closed = await client.waitClose();
    expect(closed.code).toBe(4000);
    expect(closed.reason).toBe("adi\u00f3s \u00e9");
  });
});
