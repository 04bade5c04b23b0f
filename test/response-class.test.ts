// uwserve's own Response class: the standard constructor, members and statics, checked against the global (undici) Response.
import { describe, expect, it } from "vitest";
import { Response as UwsResponse } from "../dist/index.js";
import { DIST_GLOBAL_URL, DIST_INDEX_URL, runNode } from "./helpers/client.js";

const NativeResponse = globalThis.Response;

/** Runs `fn` expecting a throw; returns the error. */
async function rejection(fn: () => unknown): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a throw");
}

describe("identity", () => {
  it("instanceof globalThis.Response, with Response's toStringTag", () => {
    const res = new UwsResponse("x");
    expect(res).toBeInstanceOf(globalThis.Response);
    expect(res).toBeInstanceOf(UwsResponse);
    expect(Object.prototype.toString.call(res)).toBe("[object Response]");
  });

  it("importing uwserve leaves globalThis.Response untouched", () => {
    expect(globalThis.Response).not.toBe(UwsResponse);
    expect(Object.getPrototypeOf(new globalThis.Response("x"))).toBe(globalThis.Response.prototype);
  });

  it("every Response passes instanceof uwserve's Response (so fetch() results do after uwserve/global)", () => {
    expect(new globalThis.Response("x")).toBeInstanceOf(UwsResponse);
    expect(globalThis.Response.error()).toBeInstanceOf(UwsResponse);
    expect({ status: 200, headers: {} }).not.toBeInstanceOf(UwsResponse);
    expect(new Request("http://x/")).not.toBeInstanceOf(UwsResponse);
  });

  it("statics exist like the global's", () => {
    for (const name of ["json", "redirect", "error"] as const) expect(typeof UwsResponse[name]).toBe("function");
  });

  it("util.inspect shows a readable Response", async () => {
    const { inspect } = await import("node:util");
    expect(inspect(new UwsResponse("x", { status: 201 }))).toContain("201");
  });
});

describe("members", () => {
  it("status, statusText, ok, type, url, redirected", () => {
    const res = new UwsResponse("x", { status: 201, statusText: "Made" });
    const ref = new NativeResponse("x", { status: 201, statusText: "Made" });
    for (const key of ["status", "statusText", "ok", "type", "url", "redirected"] as const) {
      expect(res[key], key).toEqual(ref[key]);
    }
    expect(new UwsResponse("x", { status: 404 }).ok).toBe(false);
    expect(new UwsResponse("x", { status: 299 }).ok).toBe(true);
    expect(new UwsResponse().status).toBe(200);
    expect(new UwsResponse().statusText).toBe("");
  });

  it("headers: a real Headers, with the default content-type for each body kind", () => {
    const cases: Array<[BodyInit | null, string | null]> = [
      ["text", "text/plain;charset=UTF-8"],
      [null, null],
      [new Uint8Array([1]), null],
      [new Blob(["b"], { type: "image/png" }), "image/png"],
      [new URLSearchParams("a=1"), "application/x-www-form-urlencoded;charset=UTF-8"],
    ];
    for (const [body, type] of cases) {
      const res = new UwsResponse(body);
      expect(res.headers).toBeInstanceOf(Headers);
      expect(res.headers.get("content-type")?.toLowerCase() ?? null, String(body)).toBe(type?.toLowerCase() ?? null);
    }
  });

  it("headers from a record, pairs or a Headers; Set-Cookie kept separate", () => {
    const fromRecord = new UwsResponse("x", { headers: { "X-A": "1" } });
    const fromPairs = new UwsResponse("x", { headers: [["x-a", "1"], ["set-cookie", "a=1"], ["set-cookie", "b=2"]] });
    const fromHeaders = new UwsResponse("x", { headers: new Headers({ "x-a": "1" }) });
    expect(fromRecord.headers.get("x-a")).toBe("1");
    expect(fromPairs.headers.getSetCookie()).toEqual(["a=1", "b=2"]);
    expect(fromHeaders.headers.get("x-a")).toBe("1");
  });

  it("headers mutations stick to the same object", () => {
    const res = new UwsResponse("x");
    res.headers.set("x-b", "2");
    expect(res.headers.get("x-b")).toBe("2");
    expect(res.headers).toBe(res.headers);
  });

  it("a user content-type wins over the default", () => {
    expect(new UwsResponse("x", { headers: { "content-type": "text/html" } }).headers.get("content-type")).toBe("text/html");
  });

  it("body is a ReadableStream of the bytes, or null", async () => {
    expect(new UwsResponse(null).body).toBeNull();
    expect(new UwsResponse().body).toBeNull();
    const res = new UwsResponse("streamed");
    expect(res.body).toBeInstanceOf(ReadableStream);
    const reader = res.body!.getReader();
    const parts: Uint8Array[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
    }
    expect(Buffer.concat(parts).toString()).toBe("streamed");
    expect(res.bodyUsed).toBe(true);
  });
});

describe("body readers", () => {
  const bodies: Array<[string, () => BodyInit | null]> = [
    ["string", () => "héllo"],
    ["Uint8Array", () => new Uint8Array([104, 105])],
    ["ArrayBuffer", () => new Uint8Array([104, 105]).buffer],
    ["DataView", () => new DataView(new Uint8Array([0, 104, 105]).buffer, 1)],
    ["Blob", () => new Blob(["blob"])],
    ["URLSearchParams", () => new URLSearchParams({ a: "b c" })],
    ["ReadableStream", () => new Blob(["stream"]).stream()],
    ["null", () => null],
  ];
  for (const [name, make] of bodies) {
    it(`text() / arrayBuffer() / bytes() / blob() match the global Response for ${name}`, async () => {
      const read = async (R: typeof Response) => {
        const text = await new R(make()).text();
        const ab = await new R(make()).arrayBuffer();
        const bytes = await new R(make()).bytes();
        const blob = await new R(make()).blob();
        return {
          text,
          ab: [...new Uint8Array(ab)],
          abIsArrayBuffer: ab instanceof ArrayBuffer,
          bytes: [...bytes],
          bytesIsUint8Array: bytes instanceof Uint8Array,
          blobSize: blob.size,
          blobType: blob.type.toLowerCase(),
        };
      };
      expect(await read(UwsResponse)).toEqual(await read(NativeResponse));
    });
  }

  it("json()", async () => {
    expect(await new UwsResponse('{"a":[1,2]}').json()).toEqual({ a: [1, 2] });
    expect(await rejection(() => new UwsResponse("{bad").json())).toBeInstanceOf(SyntaxError);
  });

  it("formData() for urlencoded and multipart bodies", async () => {
    const urlencoded = await new UwsResponse(new URLSearchParams("a=1&a=2")).formData();
    expect(urlencoded.getAll("a")).toEqual(["1", "2"]);
    const form = new FormData();
    form.append("f", "v");
    form.append("file", new Blob(["data"]), "d.bin");
    const parsed = await new UwsResponse(form).formData();
    expect(parsed.get("f")).toBe("v");
    expect(await (parsed.get("file") as File).text()).toBe("data");
  });

  it("bytes() and arrayBuffer() hand out copies, not the Response's own bytes", async () => {
    const source = new Uint8Array([1, 2, 3]);
    const res = new UwsResponse(source);
    const bytes = await res.bytes();
    bytes[0] = 99;
    expect(source[0]).toBe(1);
  });

  it("bodyUsed flips on a read, and a second read is a TypeError", async () => {
    for (const make of [() => "s", () => new Uint8Array([1]), () => new Blob(["b"]), () => new Blob(["r"]).stream()]) {
      const res = new UwsResponse(make());
      expect(res.bodyUsed).toBe(false);
      await res.text();
      expect(res.bodyUsed).toBe(true);
      expect(await rejection(() => res.text())).toBeInstanceOf(TypeError);
      expect(await rejection(() => res.arrayBuffer())).toBeInstanceOf(TypeError);
    }
  });

  it("a null body can be read many times (nothing to use up)", async () => {
    const res = new UwsResponse(null);
    expect(await res.text()).toBe("");
    expect(await res.text()).toBe("");
    expect(res.bodyUsed).toBe(false);
  });

  it("reading body then text() is a TypeError", async () => {
    const res = new UwsResponse("x");
    await res.body!.getReader().read();
    expect(await rejection(() => res.text())).toBeInstanceOf(TypeError);
  });
});

describe("clone()", () => {
  it("gives an independent Response with the same status, headers and body", async () => {
    const res = new UwsResponse("cloned", { status: 202, headers: { "x-c": "1" } });
    const copy = res.clone();
    expect(copy).toBeInstanceOf(globalThis.Response);
    expect(copy.status).toBe(202);
    expect(copy.headers.get("x-c")).toBe("1");
    expect(await copy.text()).toBe("cloned");
    expect(await res.text()).toBe("cloned");
  });

  it("headers of a clone are independent", () => {
    const res = new UwsResponse("x", { headers: { "x-c": "1" } });
    void res.headers;
    const copy = res.clone();
    copy.headers.set("x-c", "2");
    expect(res.headers.get("x-c")).toBe("1");
  });

  it("clones stream bodies too", async () => {
    const res = new UwsResponse(new Blob(["tee"]).stream());
    const copy = res.clone();
    expect(await Promise.all([res.text(), copy.text()])).toEqual(["tee", "tee"]);
  });

  it("clone() of a used body is a TypeError", async () => {
    const res = new UwsResponse("x");
    await res.text();
    expect(() => res.clone()).toThrow(TypeError);
  });
});

describe("statics", () => {
  it("json(): body, content-type and init", async () => {
    const res = UwsResponse.json({ a: 1 }, { status: 201, headers: { "x-j": "1" } });
    expect(res).toBeInstanceOf(globalThis.Response);
    expect(res.status).toBe(201);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(res.headers.get("x-j")).toBe("1");
    expect(await res.json()).toEqual({ a: 1 });
  });

  it("json() keeps a user content-type and never shares headers between responses", () => {
    expect(UwsResponse.json(1, { headers: { "content-type": "application/vnd.x+json" } }).headers.get("content-type")).toBe("application/vnd.x+json");
    const a = UwsResponse.json(1);
    a.headers.set("x-mutated", "1");
    expect(UwsResponse.json(2).headers.get("x-mutated")).toBeNull();
  });

  it("json() of something not serialisable is a TypeError", () => {
    expect(() => UwsResponse.json(undefined)).toThrow(TypeError);
    expect(() => UwsResponse.json(() => {})).toThrow(TypeError);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => UwsResponse.json(cyclic)).toThrow(TypeError);
  });

  it("redirect(): status and Location, default 302, invalid status RangeError", () => {
    const res = UwsResponse.redirect("https://example.test/x", 301);
    expect(res.status).toBe(301);
    expect(res.headers.get("location")).toBe("https://example.test/x");
    expect(res.body).toBeNull();
    expect(UwsResponse.redirect("https://example.test/").status).toBe(302);
    for (const status of [303, 307, 308]) expect(UwsResponse.redirect("https://e.test/", status).status).toBe(status);
    expect(() => UwsResponse.redirect("https://e.test/", 200)).toThrow(RangeError);
  });

  it("redirect() takes a URL object and normalises absolute URLs", () => {
    expect(UwsResponse.redirect(new URL("HTTPS://Example.test/a b"), 307).headers.get("location")).toBe("https://example.test/a%20b");
  });

  it("redirect() keeps relative URLs (Bun behaviour) and refuses CR/LF", () => {
    expect(UwsResponse.redirect("/relative").headers.get("location")).toBe("/relative");
    expect(() => UwsResponse.redirect("/x\r\nInjected: 1")).toThrow(TypeError);
  });

  it("error(): type error, status 0", () => {
    const res = UwsResponse.error();
    expect(res.type).toBe("error");
    expect(res.status).toBe(0);
    expect(res).toBeInstanceOf(globalThis.Response);
  });
});

describe("constructor validation", () => {
  it("status outside 200..599 is a RangeError, like the global", () => {
    for (const status of [0, 100, 199, 600, 1000]) {
      expect(() => new UwsResponse("x", { status }), String(status)).toThrow(RangeError);
      expect(() => new NativeResponse("x", { status })).toThrow(RangeError);
    }
  });

  it("a null-body status (204, 205, 304) with a body is a TypeError, without one it is fine", () => {
    for (const status of [204, 205, 304]) {
      expect(() => new UwsResponse("x", { status }), String(status)).toThrow(TypeError);
      expect(() => new NativeResponse("x", { status })).toThrow(TypeError);
      expect(new UwsResponse(null, { status }).status).toBe(status);
    }
  });

  it("a statusText with CR/LF is a TypeError", () => {
    expect(() => new UwsResponse("x", { statusText: "OK\r\nX: y" })).toThrow(TypeError);
  });

  it("invalid header names or values are TypeErrors", () => {
    expect(() => new UwsResponse("x", { headers: { "bad name": "v" } })).toThrow(TypeError);
    expect(() => new UwsResponse("x", { headers: { "x-v": "a\r\nb" } })).toThrow(TypeError);
    expect(() => new UwsResponse("x", { headers: [["only-one"]] as never })).toThrow(TypeError);
  });

  it("a non-object init is a TypeError", () => {
    expect(() => new UwsResponse("x", 5 as never)).toThrow(TypeError);
  });

  it("other body values become strings, as WebIDL converts them", async () => {
    expect(await new UwsResponse(42 as never).text()).toBe("42");
    expect(await new UwsResponse({ toString: () => "obj" } as never).text()).toBe("obj");
  });
});

describe("interop with the global Response", () => {
  it("new globalThis.Response(fastResponse.body) reads the same bytes", async () => {
    const fast = new UwsResponse("moved across");
    const native = new globalThis.Response(fast.body);
    expect(await native.text()).toBe("moved across");
  });

  it("new globalThis.Response(stream body of a fast Response) keeps binary data", async () => {
    const fast = new UwsResponse(new Uint8Array([0, 255, 128]));
    expect([...new Uint8Array(await new globalThis.Response(fast.body).arrayBuffer())]).toEqual([0, 255, 128]);
  });

  it("undici functions that brand-check accept it on undici 6 (Response.prototype getters via the global)", async () => {
    const fast = new UwsResponse("branded", { status: 203, headers: { "x-b": "1" } });
    const get = (name: string) => Object.getOwnPropertyDescriptor(globalThis.Response.prototype, name)!.get!.call(fast);
    if (Number(process.versions.undici.split(".")[0]) >= 7) {
      // undici 7+ checks for its #private fields, which only an object undici built has: the
      // global's own members can't be borrowed for uwserve's Response (its own members answer).
      expect(() => get("status")).toThrow(TypeError);
      expect(fast.status).toBe(203);
      expect(await new globalThis.Response(fast.body, fast).text()).toBe("branded");
      return;
    }
    expect(get("status")).toBe(203);
    expect((get("headers") as Headers).get("x-b")).toBe("1");
    expect(await globalThis.Response.prototype.text.call(fast)).toBe("branded");
  });

  it("a fast Response can be used as a fetch() body source via its stream", async () => {
    const fast = new UwsResponse("payload");
    const req = new Request("http://x.test/", { method: "POST", body: fast.body, duplex: "half" } as RequestInit);
    expect(await req.text()).toBe("payload");
  });
});

describe('import "uwserve/global"', () => {
  it("installs uwserve's Response as globalThis.Response in a child process", async () => {
    const result = await runNode(
      `
const before = globalThis.Response;
await import(${JSON.stringify(DIST_GLOBAL_URL)});
const { Response: Uws } = await import(${JSON.stringify(DIST_INDEX_URL)});
const r = new Response("x", { status: 201 });
const fetched = await new Promise((resolve) => resolve(new before("native")));
console.log(JSON.stringify({
  installed: globalThis.Response === Uws,
  changed: globalThis.Response !== before,
  instance: r instanceof before && r instanceof Response,
  status: r.status,
  text: await r.text(),
  nativeStillInstance: fetched instanceof Response,
}));`,
      { ms: 10_000 },
    );
    expect(result.stderr).toBe("");
    expect(JSON.parse(result.stdout)).toEqual({ installed: true, changed: true, instance: true, status: 201, text: "x", nativeStillInstance: true });
  });

  it("without that import globalThis.Response stays the native one in a child process", async () => {
    const result = await runNode(
      `
const before = globalThis.Response;
const { Response: Uws, serve } = await import(${JSON.stringify(DIST_INDEX_URL)});
console.log(JSON.stringify({ same: globalThis.Response === before, notUws: globalThis.Response !== Uws, serve: typeof serve }));`,
      { ms: 10_000 },
    );
    expect(JSON.parse(result.stdout)).toEqual({ same: true, notUws: true, serve: "function" });
  });

  it("fetch() keeps returning native Responses that pass instanceof after the global import", async () => {
    const result = await runNode(
      `
await import(${JSON.stringify(DIST_GLOBAL_URL)});
const { serve } = await import(${JSON.stringify(DIST_INDEX_URL)});
const server = serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("served by the global") });
const res = await fetch("http://127.0.0.1:" + server.port + "/");
console.log(JSON.stringify({ instance: res instanceof Response, text: await res.text() }));
await server.stop(true);`,
      { ms: 10_000 },
    );
    expect(JSON.parse(result.stdout)).toEqual({ instance: true, text: "served by the global" });
  });
});
