/**
 * Automatic response compression, by Deno's rules: gzip or br chosen from the request's
 * Accept-Encoding q-values, only for Content-Types mime-db marks `compressible` (exactly the
 * list Deno checks: an unknown `text/fake` is not compressed), bodies of 64 bytes or more, never when the response already has
 * Content-Encoding, Content-Range or `Cache-Control: no-transform`.
 *
 * Small bodies are compressed synchronously: gzip by the native addon, which keeps one deflate
 * stream per thread and resets it (10.8 µs for a 2.5 KB JSON, against 14 µs for zlib.gzipSync,
 * which sets up a new stream each call); bodies of LARGE_BODY_BYTES or more on zlib's thread
 * pool, so a big body never blocks the event loop; streams chunk by chunk through a zlib stream.
 */
import { createRequire } from "node:module";
import { tryLoadNative } from "./native.js";
import { constants as zlibConstants, brotliCompress, brotliCompressSync, createBrotliCompress, createGzip, gzip, gzipSync, type BrotliCompress, type BrotliOptions, type Gzip, type ZlibOptions } from "node:zlib";

export type Encoding = "gzip" | "br";

/** Deno's threshold: smaller bodies aren't worth the header bytes and the CPU. */
export const MIN_COMPRESS_BYTES = 64;
/** From this size on, compress off the event loop (zlib's thread pool). */
export const LARGE_BODY_BYTES = 64 * 1024;

/** gzip at zlib's default level 6. */
const GZIP_OPTIONS: ZlibOptions = { level: 6 };
/**
 * Brotli at quality 4: Node's default (11) takes milliseconds for a few KB; 4 is in the range
 * servers use for on-the-fly compression and still beats gzip's ratio.
 */
function brotliOptions(sizeHint: number): BrotliOptions {
  return {
    params: {
      [zlibConstants.BROTLI_PARAM_QUALITY]: 4,
      [zlibConstants.BROTLI_PARAM_MODE]: zlibConstants.BROTLI_MODE_TEXT,
      ...(sizeHint > 0 ? { [zlibConstants.BROTLI_PARAM_SIZE_HINT]: sizeHint } : {}),
    },
  };
}

/**
 * The encoding to use for `acceptEncoding`, or null for none. The highest q-value wins; `*`
 * stands for codings not named; `identity` rated above both (or `q=0` for both) means none.
 * On a tie between br and gzip, gzip: it costs about half as much CPU on Node, and on the small
 * bodies most APIs send brotli saves only a few percent more.
 */
export function negotiateEncoding(acceptEncoding: string): Encoding | null {
  if (acceptEncoding === "") return null;
  let br = -1;
  let gzipQ = -1;
  let identity = -1;
  let star = -1;
  for (const part of acceptEncoding.split(",")) {
    const [rawName, ...params] = part.split(";");
    const name = rawName!.trim().toLowerCase();
    if (name === "") continue;
    let q = 1;
    for (const param of params) {
      const [key, value] = param.split("=");
      if (key?.trim().toLowerCase() === "q") {
        const parsed = Number(value?.trim());
        q = Number.isFinite(parsed) ? Math.min(Math.max(parsed, 0), 1) : 0;
      }
    }
    if (name === "br") br = Math.max(br, q);
    else if (name === "gzip" || name === "x-gzip") gzipQ = Math.max(gzipQ, q);
    else if (name === "identity") identity = Math.max(identity, q);
    else if (name === "*") star = Math.max(star, q);
  }
  if (br < 0) br = star < 0 ? 0 : star;
  if (gzipQ < 0) gzipQ = star < 0 ? 0 : star;
  const best = Math.max(br, gzipQ);
  if (best <= 0) return null;
  // A client that rates identity (by name, or through "*") above both would rather have the
  // body as is; an identity it doesn't mention is acceptable but not preferred.
  if (identity < 0) identity = star;
  if (identity > best) return null;
  return gzipQ >= br ? "gzip" : "br";
}

/** What the writer knows of a response when deciding. */
export interface CompressionCandidate {
  status: number;
  contentType: string | null;
  contentEncoding: string | null;
  contentRange: string | null;
  cacheControl: string | null;
  /** Body length, or -1 for a stream of unknown length. */
  length: number;
}

/** Whether Deno's rules allow compressing this response at all (the request side is negotiateEncoding). */
export function shouldCompress(response: CompressionCandidate): boolean {
  const { status, contentType, length } = response;
  if (status < 200 || status === 204 || status === 206 || status === 304) return false;
  if (length >= 0 && length < MIN_COMPRESS_BYTES) return false;
  if (response.contentEncoding !== null || response.contentRange !== null) return false;
  if (response.cacheControl !== null && /(?:^|,)\s*no-transform\s*(?:,|$)/i.test(response.cacheControl)) return false;
  if (contentType === null) return false;
  return isCompressibleType(contentType);
}

const typeCache = new Map<string, boolean>();

/** mime-db's entries, loaded on the first compression decision (a 200 KB JSON, cached by require). */
let mimeDb: Record<string, { compressible?: boolean }> | null = null;

/**
 * mime-db's `compressible` flag for a Content-Type's essence (type/subtype, lower case, no
 * parameters), as Deno decides: types mime-db doesn't mark (or doesn't know) are not compressed.
 */
export function isCompressibleType(contentType: string): boolean {
  let known = typeCache.get(contentType);
  if (known === undefined) {
    mimeDb ??= createRequire(import.meta.url)("mime-db") as Record<string, { compressible?: boolean }>;
    const semicolon = contentType.indexOf(";");
    const essence = (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
    known = mimeDb[essence]?.compressible === true;
    // Content-Types repeat; the cache is bounded anyway.
    if (typeCache.size < 1000) typeCache.set(contentType, known);
  }
  return known;
}

/** `Vary` with Accept-Encoding added (kept as is when it already names it or is `*`). */
export function varyWithAcceptEncoding(vary: string | null): string {
  if (vary === null || vary.trim() === "") return "Accept-Encoding";
  const names = vary.split(",").map((name) => name.trim().toLowerCase());
  if (names.includes("*") || names.includes("accept-encoding")) return vary;
  return `${vary}, Accept-Encoding`;
}

const native = tryLoadNative();

export function compressSync(encoding: Encoding, body: Uint8Array): Buffer {
  if (encoding === "gzip") return native !== null ? native.gzipSync(body, GZIP_OPTIONS.level!) : gzipSync(body, GZIP_OPTIONS);
  return brotliCompressSync(body, brotliOptions(body.byteLength));
}

export function compressAsync(encoding: Encoding, body: Uint8Array): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, result: Buffer) => (err ? reject(err) : resolve(result));
    if (encoding === "gzip") gzip(body, GZIP_OPTIONS, done);
    else brotliCompress(body, brotliOptions(body.byteLength), done);
  });
}

/** A zlib stream for a streamed body (the writer flushes it after every source chunk). */
export function compressStream(encoding: Encoding): Gzip | BrotliCompress {
  return encoding === "gzip" ? createGzip(GZIP_OPTIONS) : createBrotliCompress(brotliOptions(0));
}
