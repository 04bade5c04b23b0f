/**
 * uwserve's Response and the global (undici) one, built the same way, must be
 * indistinguishable: every member a handler can read, and the bytes a client receives.
 * One table of body kinds; each row is built with both classes and compared.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Response as UwsResponse, type Server } from "../dist/index.js";
import { rawRequest, start } from "./helpers/server.js";

type Make = (R: typeof globalThis.Response) => Response;

function formData(): FormData {
  const form = new FormData();
  form.append("field", "value");
  form.append("file", new Blob(["contents"], { type: "text/plain" }), "a.txt");
  return form;
}

const ROWS: Array<[string, Make]> = [
  ["a string", (R) => new R("hello")],
  ["no body", (R) => new R()],
  ["null", (R) => new R(null)],
  ["an empty string", (R) => new R("")],
  ["a Uint8Array", (R) => new R(new Uint8Array([1, 2, 3]))],
  ["an ArrayBuffer", (R) => new R(new Uint8Array([4, 5]).buffer)],
  ["a DataView", (R) => new R(new DataView(new Uint8Array([6, 7, 8]).buffer))],
  ["a typed Blob", (R) => new R(new Blob(["png?"], { type: "image/png" }))],
  ["an untyped Blob", (R) => new R(new Blob(["bytes"]))],
  ["URLSearchParams", (R) => new R(new URLSearchParams("a=1&b=two words"))],
  ["FormData", (R) => new R(formData())],
  ["a ReadableStream", (R) => new R(new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode("streamed")); c.close(); } }))],
  ["init: status, statusText, mixed-case headers", (R) => new R("x", { status: 201, statusText: "Made", headers: { "X-B": "2", "x-a": "1", "Content-Type": "text/html" } })],
  ["init: headers as pairs with a repeated name", (R) => new R("y", { headers: [["set-cookie", "a=1"], ["Set-Cookie", "b=2"], ["x-list", "1"], ["X-List", "2"]] })],
  ["204 without a body", (R) => new R(null, { status: 204 })],
  ["a Latin-1 header value", (R) => new R("z", { headers: { "x-name": "\u00e1" } })],
  ["Response.json", (R) => R.json({ a: 1, b: [true, null] })],
  ["Response.json with init", (R) => R.json([1, 2], { status: 202, headers: { "x-y": "z" } })],
  ["Response.json with its own Content-Type", (R) => R.json({}, { headers: { "content-type": "application/vnd.api+json" } })],
  ["Response.redirect 301", (R) => R.redirect("http://example.test/a?b=1", 301)],
  ["Response.redirect default", (R) => R.redirect("https://example.test/")],
];

/** A multipart boundary undici picks at random: the same placeholder in both. */
const unboundary = (text: string): string => text.replace(/-{4}formdata-undici-\d+/g, "----formdata-undici-N");

async function members(response: Response): Promise<Record<string, unknown>> {
  const before = {
    status: response.status,
    statusText: response.statusText,
    ok: response.ok,
    type: response.type,
    url: response.url,
    redirected: response.redirected,
    bodyUsed: response.bodyUsed,
    hasBody: response.body !== null,
    headers: [...response.headers].map(([name, value]) => [name, unboundary(value)]),
    setCookie: response.headers.getSetCookie(),
    tag: Object.prototype.toString.call(response),
    isResponse: response instanceof globalThis.Response,
  };
  const text = unboundary(await response.text());
  return { ...before, text, bodyUsedAfter: response.bodyUsed };
}

describe("uwserve's Response and the global one, member by member", () => {
  for (const [name, make] of ROWS) {
    it(name, async () => {
      expect(await members(make(UwsResponse))).toEqual(await members(make(globalThis.Response)));
    });
  }

  it("Response.error()", () => {
    const [u, g] = [UwsResponse.error(), globalThis.Response.error()];
    for (const key of ["status", "statusText", "ok", "type", "url", "redirected", "bodyUsed"] as const) expect(u[key], key).toEqual(g[key]);
    expect([...u.headers]).toEqual([...g.headers]);
    expect(u.body).toBe(g.body);
  });
});

/** One raw HTTP/1.1 exchange; the response head and body as sent, the Date header left out. */
async function wire(port: number, path: string): Promise<string> {
  const raw = await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  return unboundary(raw.replace(/^date: .*\r\n/gim, ""));
}

/**
 * The head as a client reads it: the status line, then each field name with its values combined
 * (Set-Cookie kept apart), in name order. undici stores a repeated name combined ("1, 2"),
 * so the global Response sends it on one line where uwserve's sends the lines as given (as
 * Deno does); a client reads the same fields either way (RFC 9110 §5.3).
 */
function asRead(raw: string): { statusLine: string; fields: string[]; body: string } {
  const end = raw.indexOf("\r\n\r\n");
  const [statusLine, ...lines] = raw.slice(0, end).split("\r\n");
  const values = new Map<string, string[]>();
  const cookies: string[] = [];
  for (const line of lines) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "set-cookie") cookies.push(value);
    else values.set(name, [...(values.get(name) ?? []), value]);
  }
  const fields = [...values].map(([name, list]) => `${name}: ${list.join(", ")}`);
  for (const cookie of cookies) fields.push(`set-cookie: ${cookie}`);
  return { statusLine: statusLine!, fields: fields.sort(), body: raw.slice(end + 4) };
}

/** The status line, the header lines exactly as sent (in name order) and the body. */
function sortedLines(raw: string): { statusLine: string; lines: string[]; body: string } {
  const end = raw.indexOf("\r\n\r\n");
  const [statusLine, ...lines] = raw.slice(0, end).split("\r\n");
  return { statusLine: statusLine!, lines: lines.sort(), body: raw.slice(end + 4) };
}

describe("uwserve's Response and the global one, byte for byte on the wire", () => {
  let server: Server;
  beforeAll(() => {
    server = start({
      fetch(req: Request) {
        const url = new URL(req.url);
        const row = ROWS[Number(url.searchParams.get("row"))]!;
        return row[1](url.searchParams.get("class") === "uwserve" ? UwsResponse : globalThis.Response);
      },
    });
  });
  afterAll(async () => {
    await server.stop(true);
  });

  ROWS.forEach(([name], index) => {
    it(name, async () => {
      const [u, g] = await Promise.all([wire(server.port, `/?row=${index}&class=uwserve`), wire(server.port, `/?row=${index}&class=global`)]);
      expect(asRead(u)).toEqual(asRead(g));
      // Line for line, byte for byte, but for the line layout of a repeated name (see asRead).
      // The order of the lines may differ: undici 7 lists Content-Type before the init's headers.
      if (!/repeated name/.test(name)) expect(sortedLines(u)).toEqual(sortedLines(g));
    });
  });
});
