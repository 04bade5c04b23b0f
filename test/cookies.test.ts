/**
 * Bun's `req.cookies` (a CookieMap): read from the request's Cookie headers; set() and delete()
 * become Set-Cookie headers on the response the handler returns, beside the response's own.
 */
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { CookieMap, Response as UwsResponse, type Server } from "../dist/index.js";
import { httpRequest } from "./helpers/client.js";
import { start } from "./helpers/server.js";

let server: Server | null = null;
afterEach(async () => {
  await server?.stop(true);
  server = null;
});

describe("CookieMap", () => {
  it("reads a Cookie header, an object or pairs; Map-like members", () => {
    const map = new CookieMap("a=1; b=two%20words; quoted=\"x y\"; a=ignored; broken");
    expect(map.get("a")).toBe("1");
    expect(map.get("b")).toBe("two words");
    expect(map.get("quoted")).toBe("x y");
    expect(map.get("missing")).toBeNull();
    expect(map.has("b")).toBe(true);
    expect(map.size).toBe(3);
    expect([...map]).toEqual([["a", "1"], ["b", "two words"], ["quoted", "x y"]]);
    expect([...map.keys()]).toEqual(["a", "b", "quoted"]);
    expect(map.toJSON()).toEqual({ a: "1", b: "two words", quoted: "x y" });
    expect(new CookieMap({ s: "abc" }).get("s")).toBe("abc");
    expect(new CookieMap([["t", "dark"]]).get("t")).toBe("dark");
    expect(Object.prototype.toString.call(map)).toBe("[object CookieMap]");
  });

  it("set() and delete() record Set-Cookie values (Path=/ and SameSite=Lax by default)", () => {
    const map = new CookieMap("old=1");
    map.set("theme", "dark mode");
    map.set({ name: "session", value: "abc", httpOnly: true, secure: true, maxAge: 3600, domain: "example.test", path: "/app", sameSite: "strict", partitioned: true });
    map.set("when", "x", { expires: new Date(Date.UTC(2030, 0, 2, 3, 4, 5)) });
    map.delete("old");
    expect(map.get("theme")).toBe("dark mode");
    expect(map.has("old")).toBe(false);
    expect(map.toSetCookieHeaders()).toEqual([
      "theme=dark%20mode; Path=/; SameSite=Lax",
      "session=abc; Domain=example.test; Path=/app; Max-Age=3600; Secure; HttpOnly; Partitioned; SameSite=Strict",
      "when=x; Path=/; Expires=Wed, 02 Jan 2030 03:04:05 GMT; SameSite=Lax",
      "old=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; SameSite=Lax",
    ]);
  });

  it("refuses names that aren't tokens and attributes that would break the header", () => {
    const map = new CookieMap();
    for (const name of ["", "a b", "a;b", "a=b", "\u00e9"]) expect(() => map.set(name, "v")).toThrow(TypeError);
    expect(() => map.set("ok", "v", { path: "/a; Secure" })).toThrow(TypeError);
    expect(() => map.set("ok", "v", { sameSite: "sideways" as never })).toThrow(TypeError);
    expect(() => map.set("ok", "v", { expires: "not a date" })).toThrow(TypeError);
    // A value is percent-encoded: it can't break out of the header.
    map.set("ok", "a; Secure\r\nx: y");
    expect(map.toSetCookieHeaders()).toEqual(["ok=a%3B%20Secure%0D%0Ax%3A%20y; Path=/; SameSite=Lax"]);
  });
});

describe.each([
  ["uwserve's Response", UwsResponse],
  ["the global Response", globalThis.Response],
])("req.cookies on a server (%s)", (_label, R) => {
  it("a route reads the Cookie header; set() and delete() go out as Set-Cookie beside the response's own", async () => {
    let seen: Record<string, string> = {};
    server = start({
      routes: {
        "/login": (req: Request & { cookies: CookieMap }) => {
          seen = req.cookies.toJSON();
          req.cookies.set("session", "s1", { httpOnly: true });
          req.cookies.delete("old");
          return new R("ok", { headers: { "set-cookie": "own=1" } });
        },
      },
    });
    const res = await httpRequest(server.port, { path: "/login", headers: { cookie: "old=x; theme=dark" } });
    expect(res.status).toBe(200);
    expect(seen).toEqual({ old: "x", theme: "dark" });
    expect(res.headers["set-cookie"]).toEqual([
      "own=1",
      "session=s1; Path=/; HttpOnly; SameSite=Lax",
      "old=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; SameSite=Lax",
    ]);
  });

  it("from a fetch handler too, after an await; reading alone adds no Set-Cookie", async () => {
    server = start({
      async fetch(req: Request & { cookies: CookieMap }) {
        const url = new URL(req.url);
        await new Promise((r) => setTimeout(r, 5));
        if (url.pathname === "/read") return new R(req.cookies.get("a") ?? "none");
        req.cookies.set("visits", String(Number(req.cookies.get("visits") ?? "0") + 1));
        return new R("counted");
      },
    });
    const read = await httpRequest(server.port, { path: "/read", headers: { cookie: "a=1" } });
    expect(read.body.toString()).toBe("1");
    expect(read.headers["set-cookie"]).toBeUndefined();
    const counted = await httpRequest(server.port, { path: "/count", headers: { cookie: "visits=41" } });
    expect(counted.headers["set-cookie"]).toEqual(["visits=42; Path=/; SameSite=Lax"]);
  });
});

describe("req.cookies with curl's cookie jar", () => {
  it.runIf(hasCurl())("a cookie set by one request comes back on the next", async () => {
    server = start({
      routes: {
        "/set": (req: Request & { cookies: CookieMap }) => {
          req.cookies.set("user", "ada");
          return new UwsResponse("set");
        },
        "/who": (req: Request & { cookies: CookieMap }) => new UwsResponse(`user=${req.cookies.get("user")}`),
      },
    });
    const jar = `${process.env.TMPDIR ?? "/tmp"}/uwserve-cookies-${process.pid}.txt`;
    const base = `http://127.0.0.1:${server.port}`;
    // Asynchronously: the server runs in this process.
    const curl = promisify(execFile);
    await curl("curl", ["-s", "-c", jar, `${base}/set`]);
    expect((await curl("curl", ["-s", "-b", jar, `${base}/who`], { encoding: "utf8" })).stdout).toBe("user=ada");
  });
});

function hasCurl(): boolean {
  try {
    execFileSync("curl", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
