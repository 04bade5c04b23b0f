// file(): every member of the lazy Blob, read straight from disk, with no server involved.
import { mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { file, UwsFile } from "../dist/index.js";

let dir: string;
const TEXT = "héllo, wörld\n";
const BINARY = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7 + (i >> 8)) & 0xff));

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "uwserve-file-blob-"));
  writeFileSync(join(dir, "hello.txt"), TEXT);
  writeFileSync(join(dir, "data.bin"), BINARY);
  writeFileSync(join(dir, "data.json"), JSON.stringify({ a: [1, 2, { b: "c" }] }));
  writeFileSync(join(dir, "empty.txt"), "");
  writeFileSync(join(dir, "bom.txt"), "\ufeffbom");
  mkdirSync(join(dir, "sub"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const p = (name: string) => join(dir, name);

async function readAll(stream: ReadableStream<Uint8Array>): Promise<{ bytes: Buffer; chunks: number }> {
  const parts: Uint8Array[] = [];
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) parts.push(chunk);
  return { bytes: Buffer.concat(parts), chunks: parts.length };
}

describe("file(): a lazy Blob", () => {
  it("is a Blob, and creating one does no I/O (a missing path doesn't throw)", () => {
    const f = file(p("does-not-exist.txt"));
    expect(f).toBeInstanceOf(Blob);
    expect(f).toBeInstanceOf(UwsFile);
    expect(f.name).toBe(p("does-not-exist.txt"));
    expect(f.type).toBe("text/plain;charset=utf-8");
  });

  it("size is the file's byte length, read on every access; 0 for a missing file", () => {
    const f = file(p("grows.txt"));
    expect(f.size).toBe(0);
    writeFileSync(p("grows.txt"), "12345");
    expect(f.size).toBe(5);
    writeFileSync(p("grows.txt"), "1234567");
    expect(f.size).toBe(7);
    expect(file(p("hello.txt")).size).toBe(Buffer.byteLength(TEXT));
  });

  it("type comes from the extension, with charset=utf-8 for text as Bun spells it", () => {
    const cases: Record<string, string> = {
      "a.html": "text/html;charset=utf-8",
      "a.txt": "text/plain;charset=utf-8",
      "a.css": "text/css;charset=utf-8",
      "a.js": "text/javascript;charset=utf-8",
      "a.mjs": "text/javascript;charset=utf-8",
      "a.json": "application/json;charset=utf-8",
      "a.svg": "image/svg+xml",
      "a.png": "image/png",
      "a.JPG": "image/jpeg",
      "a.wasm": "application/wasm",
      "a.xml": "application/xml",
      "a.mp4": "video/mp4",
      "a.mp3": "audio/mpeg",
      "a.pdf": "application/pdf",
      "dir.d/noext": "application/octet-stream",
      "a.unknownext": "application/octet-stream",
    };
    for (const [name, type] of Object.entries(cases)) expect([name, file(name).type]).toEqual([name, type]);
  });

  it("options.type overrides the guess (lower-cased like Blob; invalid characters give \"\")", () => {
    expect(file(p("hello.txt"), { type: "Application/X-Custom" }).type).toBe("application/x-custom");
    expect(file(p("hello.txt"), { type: "bad\ntype" }).type).toBe("");
  });

  it("accepts a file: URL and reports its path as name", async () => {
    const f = file(pathToFileURL(p("hello.txt")));
    expect(f.name).toBe(p("hello.txt"));
    expect(await f.text()).toBe(TEXT);
  });

  it("lastModified is the file's mtime in ms; 0 when missing", () => {
    utimesSync(p("hello.txt"), new Date(1_700_000_000_000), new Date(1_700_000_123_456));
    expect(file(p("hello.txt")).lastModified).toBe(1_700_000_123_456);
    expect(file(p("nope")).lastModified).toBe(0);
  });

  it("text(), bytes(), arrayBuffer() and json() read the file", async () => {
    expect(await file(p("hello.txt")).text()).toBe(TEXT);
    const bytes = await file(p("data.bin")).bytes();
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(bytes).equals(BINARY)).toBe(true);
    const ab = await file(p("data.bin")).arrayBuffer();
    expect(ab).toBeInstanceOf(ArrayBuffer);
    expect(Buffer.from(ab).equals(BINARY)).toBe(true);
    expect(await file(p("data.json")).json()).toEqual({ a: [1, 2, { b: "c" }] });
    expect(await file(p("empty.txt")).text()).toBe("");
    // Blob.text() decodes as UTF-8 and drops a BOM.
    expect(await file(p("bom.txt")).text()).toBe("bom");
  });

  it("stream() reads the file in chunks", async () => {
    const { bytes, chunks } = await readAll(file(p("data.bin")).stream());
    expect(bytes.equals(BINARY)).toBe(true);
    expect(chunks).toBeGreaterThan(1);
    expect((await readAll(file(p("empty.txt")).stream())).bytes.length).toBe(0);
  });

  it("stream() opens nothing until read: an unread stream of a missing file never errors", async () => {
    const stream = file(p("missing-stream")).stream();
    await new Promise((r) => setTimeout(r, 20));
    await expect(readAll(stream)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("exists(): true for a file, false for a missing path or a directory", async () => {
    expect(await file(p("hello.txt")).exists()).toBe(true);
    expect(await file(p("empty.txt")).exists()).toBe(true);
    expect(await file(p("nope.txt")).exists()).toBe(false);
    expect(await file(p("nope/deeper.txt")).exists()).toBe(false);
    expect(await file(p("sub")).exists()).toBe(false);
  });

  it("reads of a missing file reject with ENOENT", async () => {
    const f = file(p("missing.txt"));
    for (const read of [() => f.text(), () => f.bytes(), () => f.arrayBuffer(), () => f.json()]) {
      await expect(read()).rejects.toMatchObject({ code: "ENOENT", syscall: "open", path: p("missing.txt") });
    }
  });
});

describe("file().slice()", () => {
  const hello = () => file(p("data.bin"));

  it("is a lazy file Blob over part of the file, with Blob.slice()'s index rules", async () => {
    const cases: Array<[number | undefined, number | undefined]> = [
      [undefined, undefined],
      [0, 10],
      [1000, 70_000],
      [299_990, undefined],
      [299_990, 400_000],
      [400_000, undefined],
      [-10, undefined],
      [-70_000, -5],
      [10, 5],
      [-5, 10],
      [0, -299_999],
      [5.9, 20.2],
    ];
    for (const [start, end] of cases) {
      const slice = hello().slice(start, end);
      const expected = BINARY.subarray(start ?? 0, end);
      expect(slice).toBeInstanceOf(UwsFile);
      expect([start, end, slice.size]).toEqual([start, end, expected.length]);
      expect(Buffer.from(await slice.bytes()).equals(expected)).toBe(true);
      expect((await readAll(slice.stream())).bytes.equals(expected)).toBe(true);
    }
  });

  it("a slice of a slice selects within its parent", async () => {
    const outer = hello().slice(100, 1100);
    const expected = BINARY.subarray(100, 1100);
    for (const [a, b] of [
      [10, 20],
      [900, 5000],
      [-10, undefined],
      [5000, undefined],
      [undefined, -990],
    ] as Array<[number | undefined, number | undefined]>) {
      const inner = outer.slice(a, b);
      const want = expected.subarray(a ?? 0, b);
      expect([a, b, inner.size]).toEqual([a, b, want.length]);
      expect(Buffer.from(await inner.bytes()).equals(want)).toBe(true);
    }
  });

  it("keeps the file's type unless one is given, and its name", () => {
    const f = file(p("hello.txt"));
    expect(f.slice(1, 3).type).toBe("text/plain;charset=utf-8");
    expect(f.slice(1, 3, "Text/X-Part").type).toBe("text/x-part");
    expect(f.slice(1, 3).name).toBe(p("hello.txt"));
  });

  it("reads the bytes at read time and clamps to the file's size then", async () => {
    writeFileSync(p("changing.txt"), "0123456789");
    const slice = file(p("changing.txt")).slice(4, 8);
    writeFileSync(p("changing.txt"), "abcdef");
    expect(slice.size).toBe(2);
    expect(await slice.text()).toBe("ef");
  });

  it("slices need no file until read (non-negative offsets don't stat)", async () => {
    const slice = file(p("later.txt")).slice(2, 5);
    expect(slice.size).toBe(0);
    writeFileSync(p("later.txt"), "abcdefgh");
    expect(await slice.text()).toBe("cde");
  });
});

describe("file() with undici's Response and Blob consumers", () => {
  it("new Response(file) reads it through stream(), lazily", async () => {
    const res = new Response(file(p("data.bin")));
    expect(res.headers.get("content-type")).toBe("application/octet-stream");
    expect(Buffer.from(await res.arrayBuffer()).equals(BINARY)).toBe(true);
    expect(await new Response(file(p("hello.txt")).slice(1, 5)).text()).toBe("éll");
  });

  it("a Response over a missing file is created fine and fails only when read", async () => {
    const res = new Response(file(p("missing.bin")));
    await expect(res.text()).rejects.toThrow();
  });

  it("statSync-backed size matches the real file", () => {
    expect(file(p("data.bin")).size).toBe(statSync(p("data.bin")).size);
  });
});
