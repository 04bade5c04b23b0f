/**
 * Writes what a handler returned onto a uWS Exchange: status line, validated headers and
 * the body, with fast paths for string/bytes bodies (no stream machinery) and streamed bodies
 * batched under cork with uWS backpressure. Framing follows H5: uWS writes Content-Length for
 * `end()`, so a user's Content-Length is never written twice; HEAD and 204/304 get no body.
 */
import { open, type FileHandle } from "node:fs/promises";
import { NativeResponse } from "./_globals.js";
import { isValidHeaderName, isValidHeaderValue, forEachHeaderInit } from "./_headers.js";
import { readNativeResponse } from "./_undici.js";
import { readAhead } from "./_read_ahead.js";
import { statusLine } from "./_status.js";
import { coreByteString, coreText } from "../engines/uws/core-bytes.js";
import type { RequestContext } from "./context.js";
import { uwserveError } from "../errors.js";
import { FILE_CHUNK_BYTES, fileParts, isMissingFileError, UwsFile } from "../transport/file.js";
import { fastResponseParts, isAsyncIterableBody, type FastResponseParts } from "./response.js";
import { requestHeader } from "./request.js";
import { compressAsync, compressStream, compressSync, LARGE_BODY_BYTES as COMPRESS_OFF_LOOP_BYTES, negotiateEncoding, shouldCompress, varyWithAcceptEncoding, type Encoding } from "../transport/compression.js";
import { constants as zlibConstants } from "node:zlib";
import type { Exchange } from "./exchange.js";

const TEXT_PLAIN = "text/plain;charset=utf-8";
const FORM_URLENCODED = "application/x-www-form-urlencoded;charset=UTF-8";
/** RFC 9110 reason-phrase: HTAB, SP, VCHAR, obs-text. */
const REASON_PHRASE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** Statuses whose responses never carry a body or Content-Length (H5, uWebSockets #1370). */
export const NO_BODY_STATUS: ReadonlySet<number> = new Set([204, 304]);
/**
 * Small streamed chunks that are ready together are joined into writes of up to this size
 * (fewer syscalls); a chunk this large or larger is written as it is. Measured with the
 * 64 × 16 KiB bench: joining into bigger writes (64 KiB … 2 MiB) costs more CPU per response
 * than it saves, because the join is a copy and uWS copies whatever the kernel doesn't take.
 */
const STREAM_BATCH_BYTES = 16 * 1024;

/** The response head as the writer sends it. */
interface Head {
  status: number;
  statusText: string;
  /** Flat [name, value, name, value…]; names lower-cased and validated, values validated. */
  headers: string[];
  contentType: boolean;
  /** Value of a user Content-Length header, or -1. */
  contentLength: number;
  /** The user asked for `Connection: close`. */
  close: boolean;
}

/** Whether the connection must close after this response: a protocol error, a stopping server, or the user asked. */
function mustClose(ctx: RequestContext, head: Head): boolean {
  return ctx.closeConnection || ctx.owner.stopping || head.close;
}

/** Thrown for handler results that can't be sent; the caller turns it into a 500. */
export function badResponseError(value: unknown): TypeError {
  const what =
    value === undefined
      ? "undefined (did the handler forget to return a Response?)"
      : value === null
        ? "null"
        : typeof value === "object"
          ? `an object that is not a Response (${(value as object).constructor?.name ?? "Object"})`
          : `a ${typeof value}`;
  return uwserveError(TypeError, "UWSERVE_ERR_BAD_RESPONSE", `uwserve: the handler returned ${what}; expected a Response`);
}

/** Builds the head from a header source, dropping hop-by-hop headers uWS manages itself. */
function collectHead(status: number, statusText: string, init: unknown): Head {
  const head: Head = { status, statusText, headers: [], contentType: false, contentLength: -1, close: false };
  // A module-level visitor instead of a closure per response (the hot path allocates little).
  collecting = head;
  try {
    forEachHeaderInit(init, collectHeader);
  } finally {
    collecting = null;
  }
  return head;
}

let collecting: Head | null = null;
function collectHeader(name: string, value: string): void {
  addHeader(collecting!, name, value);
}

function addHeader(head: Head, name: string, value: string): void {
  if (!isValidHeaderName(name)) throw new TypeError(`Invalid header name: ${JSON.stringify(name)}`);
  if (!isValidHeaderValue(value)) throw new TypeError(`Invalid value for header ${JSON.stringify(name)}`);
  addCheckedHeader(head, name.toLowerCase(), value);
}

/** A uwserve Response's flat list, validated and lower-cased when it was constructed. */
function collectListHead(status: number, statusText: string, list: readonly string[] | null): Head {
  const head: Head = { status, statusText, headers: [], contentType: false, contentLength: -1, close: false };
  if (list !== null) for (let i = 0; i < list.length; i += 2) addCheckedHeader(head, list[i]!, list[i + 1]!);
  return head;
}

/** The head of a uwserve Response: its Headers once read (authoritative), else its checked list. */
function fastHead(fast: FastResponseParts): Head {
  return fast.headers !== null
    ? collectHead(fast.status, fast.statusText, fast.headers)
    : collectListHead(fast.status, fast.statusText, fast.headerList);
}

/** Headers that undici already validated and lower-cased (a native Response's list). */
function collectCheckedHead(status: number, statusText: string, pairs: Array<[string, string]>): Head {
  const head: Head = { status, statusText, headers: [], contentType: false, contentLength: -1, close: false };
  for (let i = 0; i < pairs.length; i++) addCheckedHeader(head, pairs[i]![0], pairs[i]![1]);
  return head;
}

/** `lower` is a valid lower-case name and `value` a valid value. */
function addCheckedHeader(head: Head, lower: string, value: string): void {
  switch (lower) {
    case "content-type":
      head.contentType = true;
      break;
    case "content-length": {
      const n = Number(value);
      if (Number.isSafeInteger(n) && n >= 0) head.contentLength = n;
      return;
    }
    // uWS frames the body and writes Date itself (H5, H7); never send a second one.
    case "transfer-encoding":
    case "date":
    case "keep-alive":
      return;
    case "connection":
      if (/\bclose\b/i.test(value)) head.close = true;
      return;
  }
  head.headers.push(lower, value);
}

function writeHead(ctx: RequestContext, head: Head, defaultType: string | null): void {
  const res = ctx.res;
  // uWS writes "200 OK" itself when no status was written: one native call fewer per request.
  if (head.status !== 200 || head.statusText !== "") {
    res.writeStatus(coreByteString(statusLine(head.status, head.statusText)));
  }
  const headers = head.headers;
  for (let i = 0; i < headers.length; i += 2) {
    res.writeHeader(headers[i]!, coreByteString(headers[i + 1]!));
  }
  if (!head.contentType && defaultType !== null) res.writeHeader("content-type", defaultType);
}

/** Bodies at least this large are sent with tryEnd, so they are finished only once the kernel has them. */
const LARGE_BODY_BYTES = 64 * 1024;

/**
 * Ends a HEAD response that reports `length`. uWS's `endWithoutBody(length)` leaves the response
 * pending until `length` body bytes are written, which never happens: the core then refuses the
 * connection's next request as async pipelining (H8) and closes it. Write Content-Length
 * ourselves and end without a reported length, which completes the response.
 */
export function endHead(res: Exchange, length: number, close: boolean): void {
  if (length === 0) {
    res.endWithoutBody(0, close);
    return;
  }
  res.writeHeader("content-length", String(length));
  // Without a reported length uWS can't also close for us; the header tells the client to.
  if (close) res.writeHeader("connection", "close");
  res.endWithoutBody();
}

/**
 * Ends a response whose body is in memory and settles the context. Must run corked.
 * Large bodies go through `tryEnd` + `onWritable` instead of `end()`: uWS then never keeps a
 * second copy, and the request counts as finished only when every byte reached the socket,
 * so a graceful stop can't cut a response still being flushed.
 */
function endWithBytes(ctx: RequestContext, head: Head, body: string | Uint8Array | ArrayBuffer | null, defaultType: string | null): void {
  const res = ctx.res;
  const close = mustClose(ctx, head);
  ctx.releaseBody();
  writeHead(ctx, head, body === null ? null : defaultType);
  ctx.responded = true;
  if (NO_BODY_STATUS.has(head.status)) {
    res.endWithoutBody();
  } else if (ctx.isHead) {
    const length =
      body === null ? (head.contentLength >= 0 ? head.contentLength : 0) : typeof body === "string" ? Buffer.byteLength(body) : body.byteLength;
    endHead(res, length, close);
  } else if (body !== null && (typeof body === "string" ? body.length : body.byteLength) >= LARGE_BODY_BYTES) {
    const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body instanceof ArrayBuffer ? new Uint8Array(body) : body;
    if (!sendWithTryEnd(ctx, bytes, bytes.byteLength, () => ctx.finish())) return;
  } else if (close) {
    res.end(typeof body === "string" ? coreText(body) : (body ?? ""), true);
  } else {
    res.end(typeof body === "string" ? coreText(body) : (body ?? undefined));
  }
  ctx.finish();
}

/**
 * endWithBytes, corked: directly inside the uWS callback, else through `cork()` (H3). With
 * compression on, a compressible body is compressed first: small ones at once, large ones on
 * zlib's thread pool (then the returned promise settles when it is sent).
 */
function endBytes(ctx: RequestContext, head: Head, body: string | Uint8Array | ArrayBuffer | null, defaultType: string | null): void | Promise<void> {
  if (body !== null && ctx.owner.compression) {
    const length = typeof body === "string" ? Buffer.byteLength(body) : body.byteLength;
    const encoding = encodingFor(ctx, head, length, defaultType);
    if (encoding !== null) {
      markEncoded(head, encoding, defaultType);
      const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body instanceof ArrayBuffer ? new Uint8Array(body) : body;
      if (length < COMPRESS_OFF_LOOP_BYTES) {
        sendBytes(ctx, head, compressSync(encoding, bytes), null);
        return;
      }
      return compressAsync(encoding, bytes).then((compressed) => {
        if (!ctx.aborted) sendBytes(ctx, head, compressed, null);
      });
    }
  }
  sendBytes(ctx, head, body, defaultType);
}

function sendBytes(ctx: RequestContext, head: Head, body: string | Uint8Array | ArrayBuffer | null, defaultType: string | null): void {
  if (ctx.corked) endWithBytes(ctx, head, body, defaultType);
  else ctx.res.cork(() => endWithBytes(ctx, head, body, defaultType));
}

// ---- Compression ------------------------------------------------------------------------

/** The encoding for this response when compression is on and Deno's rules allow it, else null. */
function encodingFor(ctx: RequestContext, head: Head, length: number, defaultType: string | null): Encoding | null {
  if (!ctx.owner.compression || ctx.isHead || ctx.request === null) return null;
  const accept = requestHeader(ctx.request, "accept-encoding");
  if (accept === "") return null;
  const encoding = negotiateEncoding(accept);
  if (encoding === null) return null;
  const headers = head.headers;
  let contentType = head.contentType ? null : defaultType;
  let contentEncoding: string | null = null;
  let contentRange: string | null = null;
  let cacheControl: string | null = null;
  for (let i = 0; i < headers.length; i += 2) {
    switch (headers[i]) {
      case "content-type":
        contentType = headers[i + 1]!;
        break;
      case "content-encoding":
        contentEncoding = headers[i + 1]!;
        break;
      case "content-range":
        contentRange = headers[i + 1]!;
        break;
      case "cache-control":
        cacheControl = cacheControl === null ? headers[i + 1]! : `${cacheControl}, ${headers[i + 1]}`;
        break;
    }
  }
  return shouldCompress({ status: head.status, contentType, contentEncoding, contentRange, cacheControl, length }) ? encoding : null;
}

/** Content-Encoding and Vary on the head; the length is the compressed one (or chunked). */
function markEncoded(head: Head, encoding: Encoding, defaultType: string | null): void {
  const headers = head.headers;
  let varyAt = -1;
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === "vary") varyAt = i;
  if (varyAt >= 0) headers[varyAt + 1] = varyWithAcceptEncoding(headers[varyAt + 1]!);
  else headers.push("vary", "Accept-Encoding");
  headers.push("content-encoding", encoding);
  if (!head.contentType && defaultType !== null) {
    headers.push("content-type", defaultType);
    head.contentType = true;
  }
  head.contentLength = -1;
}

/**
 * A streamed body through a zlib stream: each source chunk is compressed and flushed at once
 * (a sync flush), so a slow stream (events, progress) isn't held back waiting for more input;
 * the source is read only as fast as the client takes the output (writeStream pulls).
 */
async function* compressedChunks(encoding: Encoding, next: () => Promise<IteratorResult<unknown>>, cancel: (reason: string) => void): AsyncGenerator<Uint8Array> {
  const zlib = compressStream(encoding);
  const output: Buffer[] = [];
  let failure: unknown = null;
  zlib.on("data", (chunk: Buffer) => output.push(chunk));
  zlib.on("error", (err) => (failure = err));
  const flushKind = encoding === "gzip" ? zlibConstants.Z_SYNC_FLUSH : zlibConstants.BROTLI_OPERATION_FLUSH;
  let finished = false;
  try {
    for (;;) {
      const result = await next();
      if (result.done) break;
      const chunk = toChunk(result.value);
      if (chunk.byteLength === 0) continue;
      zlib.write(chunk);
      await new Promise<void>((resolve) => zlib.flush(flushKind, () => resolve()));
      if (failure !== null) throw failure;
      if (output.length > 0) yield output.length === 1 ? output.pop()! : Buffer.concat(output.splice(0));
    }
    await new Promise<void>((resolve, reject) => {
      zlib.once("end", resolve);
      zlib.once("error", reject);
      zlib.end();
      zlib.resume();
    });
    finished = true;
    if (output.length > 0) yield Buffer.concat(output.splice(0));
  } finally {
    if (!finished) {
      // The client left (or the source failed): stop the source and free zlib's memory.
      cancel("response body no longer sent");
      zlib.destroy();
    }
  }
}

/** writeStream, through a compressor when the response qualifies. */
function writeMaybeCompressedStream(
  ctx: RequestContext,
  head: Head,
  stream: ReadableStream<unknown> | null,
  iterable: AsyncIterable<unknown> | null,
): Promise<void> {
  const encoding = encodingFor(ctx, head, head.contentLength, null);
  if (encoding === null) return writeStream(ctx, head, stream, iterable);
  markEncoded(head, encoding, null);
  const reader = stream !== null ? stream.getReader() : null;
  const iterator = iterable !== null ? iterable[Symbol.asyncIterator]() : null;
  const next = (): Promise<IteratorResult<unknown>> => (reader !== null ? (reader.read() as Promise<IteratorResult<unknown>>) : iterator!.next());
  const cancel = (reason: string): void => {
    if (reader !== null) reader.cancel(reason).catch(() => {});
    else void Promise.resolve(iterator!.return?.()).catch(() => {});
  };
  return writeStream(ctx, head, null, compressedChunks(encoding, next, cancel));
}

/**
 * Sends `data` as (part of) a body of `total` bytes with tryEnd. Returns true when uWS took it
 * all; otherwise the rest is offered again from onWritable (uWS's own pattern) and `drained`
 * runs once it has been taken.
 */
function sendWithTryEnd(ctx: RequestContext, data: Uint8Array, total: number, drained: () => void): boolean {
  const res = ctx.res;
  const start = res.getWriteOffset();
  const [ok, done] = res.tryEnd(data, total);
  if (ok || done) return true;
  res.onWritable((offset) => {
    if (ctx.aborted) return true;
    const [ok2, done2] = res.tryEnd(data.subarray(offset - start), total);
    if (ok2 || done2) drained();
    return ok2;
  });
  return false;
}

/**
 * Sends `response`. Returns nothing when it was written synchronously, or a promise for bodies
 * that must be read or streamed first. Throws (synchronously or through the promise) only
 * before anything was written, so the caller can still answer 500.
 */
export function writeResponse(ctx: RequestContext, response: unknown): void | Promise<void> {
  if (ctx.aborted || ctx.responded) {
    // The client is gone, or a response (a 413, a timeout) already went out.
    cancelUnsent(response);
    return;
  }
  const fast = typeof response === "object" && response !== null ? fastResponseParts(response) : undefined;
  if (fast !== undefined && fast.real === null) {
    return writeBody(ctx, fastHead(fast), fast.body);
  }
  const nativeLike = fast?.real ?? response;
  if (nativeLike instanceof NativeResponse) {
    if (nativeLike.type === "error") {
      // Response.error() is a network error: the client sees the connection drop, as in Deno.
      ctx.abortConnection("Response.error() returned");
      return;
    }
    const parts = readNativeResponse(nativeLike);
    const head = collectCheckedHead(parts.status, parts.statusText, parts.headers);
    const source = parts.source;
    if (source !== undefined) {
      // A Blob is sent with its known length rather than through undici's stream (chunked).
      if (source instanceof Blob) return writeBlob(ctx, head, source);
      return endBytes(ctx, head, source, null);
    }
    if (parts.fromSource) return writeReadAhead(ctx, head, parts.stream!);
    return writeBody(ctx, head, parts.stream);
  }
  if (isResponseLike(response)) {
    // A Response from another realm or a ponyfill (H18): use its public members only. Nothing
    // validated its status line, which uWS copies verbatim (H6).
    const statusText = response.statusText ?? "";
    if (!Number.isInteger(response.status) || response.status < 200 || response.status > 599) {
      throw uwserveError(TypeError, "UWSERVE_ERR_BAD_RESPONSE", `uwserve: the handler's response has an invalid status ${response.status}; expected 200 to 599`);
    }
    if (typeof statusText !== "string" || !REASON_PHRASE.test(statusText)) {
      throw uwserveError(TypeError, "UWSERVE_ERR_BAD_RESPONSE", "uwserve: the handler's response has an invalid statusText (control characters such as CR/LF are not allowed)");
    }
    const head = collectHead(response.status, statusText, response.headers);
    return writeBody(ctx, head, response.body ?? null);
  }
  throw badResponseError(response);
}

/** A body undici made from a whole source (undici 7+): its length if it is ready, else streamed. */
async function writeReadAhead(ctx: RequestContext, head: Head, stream: ReadableStream<Uint8Array>): Promise<void> {
  const result = await readAhead(stream);
  if (result.whole !== null) {
    if (ctx.aborted) return;
    return endBytes(ctx, head, result.whole, null);
  }
  return writeMaybeCompressedStream(ctx, head, null, result.rest);
}

interface ResponseLike {
  status: number;
  statusText?: string;
  headers: unknown;
  body?: unknown;
}

function isResponseLike(value: unknown): value is ResponseLike {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as ResponseLike).status === "number" &&
    typeof (value as ResponseLike).headers === "object" &&
    "body" in value
  );
}

/** Cancels the body of a response that will never be sent (client gone). */
function cancelUnsent(response: unknown): void {
  try {
    const fast = typeof response === "object" && response !== null ? fastResponseParts(response) : undefined;
    const body = fast ? (fast.real ? fast.real.body : fast.body) : (response as Response | null)?.body;
    if (body instanceof ReadableStream && !body.locked) body.cancel("client disconnected").catch(() => {});
    else if (isAsyncIterableBody(body)) {
      const iterator = (body as AsyncIterable<unknown>)[Symbol.asyncIterator]();
      void iterator.return?.();
    }
  } catch {
    // Nothing to clean up.
  }
}

/** Writes a head plus any BodyInit. */
function writeBody(ctx: RequestContext, head: Head, body: unknown): void | Promise<void> {
  if (body === null || body === undefined || typeof body === "string" || body instanceof Uint8Array || body instanceof ArrayBuffer) {
    const bytes = (body ?? null) as string | Uint8Array | ArrayBuffer | null;
    // Only a string body has a default Content-Type (Fetch: text/plain;charset=UTF-8).
    return endBytes(ctx, head, bytes, typeof bytes === "string" ? TEXT_PLAIN : null);
  }
  if (ArrayBuffer.isView(body)) {
    const view = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    return endBytes(ctx, head, view, null);
  }
  if (body instanceof URLSearchParams) {
    const text = body.toString();
    return endBytes(ctx, head, text, FORM_URLENCODED);
  }
  if (body instanceof Blob) {
    return writeBlob(ctx, head, body);
  }
  if (body instanceof FormData) {
    // undici serialises multipart (and picks the boundary): reuse it.
    const encoded = new NativeResponse(body);
    const type = encoded.headers.get("content-type");
    if (!head.contentType && type) {
      head.headers.push("content-type", type);
      head.contentType = true;
    }
    return writeStream(ctx, head, encoded.body!, null);
  }
  if (body instanceof ReadableStream) {
    return writeMaybeCompressedStream(ctx, head, body, null);
  }
  if (isAsyncIterableBody(body)) {
    return writeMaybeCompressedStream(ctx, head, null, body);
  }
  throw badResponseError(body);
}

async function writeBlob(ctx: RequestContext, head: Head, blob: Blob): Promise<void> {
  if (blob instanceof UwsFile) return writeFile(ctx, head, blob);
  if (blob.size >= LARGE_BLOB_BYTES) {
    const encoding = ctx.owner.compression ? encodingFor(ctx, head, blob.size, head.contentType ? null : blob.type || null) : null;
    if (encoding === null) return writeLargeBlob(ctx, head, blob);
    markEncoded(head, encoding, blob.type || null);
    const reader = blob.stream().getReader();
    return writeStream(ctx, head, null, compressedChunks(encoding, () => reader.read(), (reason) => void reader.cancel(reason).catch(() => {})));
  }
  if (!head.contentType && blob.type) {
    head.headers.push("content-type", blob.type);
    head.contentType = true;
  }
  const bytes = new Uint8Array(await blob.arrayBuffer());
  if (ctx.aborted) return;
  return endBytes(ctx, head, bytes, null);
}

// ---------------------------------------------------------------------------------------------
// File bodies: file() Blobs streamed from disk, and large Blobs (fs.openAsBlob) streamed.
// ---------------------------------------------------------------------------------------------

/**
 * Other Blobs at least this large are streamed with their known length instead of read whole
 * first: a file-backed Blob from `fs.openAsBlob()` then never sits in memory, and a large
 * in-memory one isn't copied whole once more.
 */
const LARGE_BLOB_BYTES = 1024 * 1024;

function writeLargeBlob(ctx: RequestContext, head: Head, blob: Blob): Promise<void> {
  if (!head.contentType && blob.type) {
    head.headers.push("content-type", blob.type);
    head.contentType = true;
  }
  head.contentLength = blob.size;
  return writeStream(ctx, head, blob.stream(), null);
}

function hasHeader(head: Head, lower: string): boolean {
  for (let i = 0; i < head.headers.length; i += 2) if (head.headers[i] === lower) return true;
  return false;
}

/**
 * The answer for a file() body with no file at its path: a plain 404. None of the user's
 * headers: they were meant for the file (its type, caching), not for an error.
 */
function endMissingFile(ctx: RequestContext, userHead: Head): void {
  const head: Head = { status: 404, statusText: "", headers: [], contentType: false, contentLength: -1, close: userHead.close };
  endBytes(ctx, head, "Not Found", TEXT_PLAIN);
}

/**
 * Sends a file() Blob (or a slice of one): opens and fstats the file, then streams exactly the
 * selected bytes with Content-Length, FILE_CHUNK_BYTES at a time through one reused buffer,
 * reading the next chunk only once uWS took the last (tryEnd + onWritable), so a slow client
 * never makes the server hold more than one chunk. Nothing at the path (or a directory) → 404.
 *
 * A slice that doesn't cover the whole file turns a 200 into 206 with
 * `Content-Range: bytes first-last/size` (Bun's "automatically sets the Content-Range"); an
 * empty slice of a non-empty file becomes 416 with the unsatisfied-range Content-Range
 * (RFC 9110 §14.4). A user's own status other
 * than 200, or their own Content-Range, is sent as it is.
 */
async function writeFile(ctx: RequestContext, head: Head, file: UwsFile): Promise<void> {
  const { path, start: from, end: to } = fileParts(file);
  let handle: FileHandle;
  try {
    handle = await open(path, "r");
  } catch (err) {
    if (ctx.aborted || ctx.responded) return;
    if (isMissingFileError(err)) return endMissingFile(ctx, head);
    throw err;
  }
  try {
    const stats = await handle.stat();
    if (ctx.aborted || ctx.responded) return;
    if (stats.isDirectory()) return endMissingFile(ctx, head);
    if (!head.contentType && file.type) {
      head.headers.push("content-type", file.type);
      head.contentType = true;
    }
    if (!stats.isFile()) {
      // A pipe or a device has no size to announce: stream it to EOF, chunked.
      head.contentLength = -1;
      return await writeStream(ctx, head, file.stream(), null);
    }
    const size = stats.size;
    const start = Math.min(from, size);
    const end = Math.max(start, Math.min(to, size));
    const length = end - start;
    if ((start > 0 || end < size) && head.status === 200) {
      head.status = length === 0 ? 416 : 206;
      head.statusText = "";
    }
    if (!hasHeader(head, "content-range")) {
      if (head.status === 206 && length > 0) head.headers.push("content-range", `bytes ${start}-${end - 1}/${size}`);
      else if (head.status === 416) head.headers.push("content-range", `bytes */${size}`);
    }
    // uWS writes Content-Length itself (H5); a user's value can't describe these bytes better.
    head.contentLength = length;
    if (ctx.isHead || length === 0 || NO_BODY_STATUS.has(head.status)) {
      endBytes(ctx, head, null, null);
      return;
    }
    const encoding = ctx.owner.compression ? encodingFor(ctx, head, length, null) : null;
    if (encoding !== null) {
      // Compressed, the length is unknown up front: chunked, read as the client takes it.
      markEncoded(head, encoding, null);
      const chunks = readFileRange(handle, start, length);
      return await writeStream(ctx, head, null, compressedChunks(encoding, () => chunks.next(), () => void chunks.return(undefined)));
    }
    await sendFileRange(ctx, head, handle, path, start, length);
  } finally {
    await handle.close().catch(() => {});
  }
}

/** `length` bytes of `handle` from `start`, in FILE_CHUNK_BYTES reads (each a fresh buffer: zlib may hold it). */
async function* readFileRange(handle: FileHandle, start: number, length: number): AsyncGenerator<Uint8Array> {
  let position = start;
  const end = start + length;
  while (position < end) {
    const buffer = Buffer.allocUnsafe(Math.min(FILE_CHUNK_BYTES, end - position));
    const { bytesRead } = await handle.read(buffer, 0, buffer.byteLength, position);
    if (bytesRead === 0) return; // shrank: the compressed (chunked) body just ends sooner
    position += bytesRead;
    yield buffer.subarray(0, bytesRead);
  }
}

/** Streams `length` bytes of `handle` from `start`; see writeFile. */
async function sendFileRange(ctx: RequestContext, head: Head, handle: FileHandle, path: string, start: number, length: number): Promise<void> {
  const res = ctx.res;
  // uWS copies whatever the kernel doesn't take (or we offer it again from onWritable), so
  // once a chunk is taken the buffer is free for the next read.
  const buffer = Buffer.allocUnsafeSlow(Math.min(FILE_CHUNK_BYTES, length));
  let position = start;
  let remaining = length;
  let headWritten = false;
  let wake: (() => void) | null = null;
  const wakeWriter = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  // The client left while we wait for onWritable: wake the loop so it sees `aborted` and stops.
  ctx.cancelStream = wakeWriter;
  try {
    while (remaining > 0) {
      const want = Math.min(buffer.byteLength, remaining);
      const { bytesRead } = await handle.read(buffer, 0, want, position);
      if (ctx.aborted) return;
      if (bytesRead === 0) {
        throw new RangeError(`uwserve: the file ${path} ended ${remaining} bytes short of the ${length} bytes its Content-Length promised (it shrank while being sent)`);
      }
      position += bytesRead;
      remaining -= bytesRead;
      const data = buffer.subarray(0, bytesRead);
      const drained = new Promise<void>((resolve) => {
        wake = resolve;
      });
      let taken = true;
      res.cork(() => {
        if (!headWritten) {
          headWritten = true;
          ctx.responded = true;
          ctx.releaseBody();
          writeHead(ctx, head, null);
          // tryEnd takes no close flag: announce the close in the head (see writeStream's flush).
          if (mustClose(ctx, head)) res.writeHeader("connection", "close");
        }
        taken = sendWithTryEnd(ctx, data, length, wakeWriter);
      });
      if (!taken) {
        await drained;
        if (ctx.aborted) return;
      }
    }
    ctx.cancelStream = null;
    ctx.finish();
  } catch (err) {
    ctx.cancelStream = null;
    if (ctx.aborted) return;
    if (!headWritten) throw err;
    // Content-Length is out and can't be met: cut the connection so the client sees it fail.
    ctx.abortConnection("file body failed");
    throw Object.assign(err instanceof Error ? err : new Error(String(err)), { afterHeaders: true });
  }
}

function toChunk(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === "string") return Buffer.from(value, "utf8");
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  throw new TypeError(`uwserve: a response body stream yielded ${typeof value === "object" ? "an object" : `a ${typeof value}`}; expected Uint8Array or string chunks`);
}

/**
 * Streams a body. Small chunks that are already available are gathered (up to
 * STREAM_BATCH_BYTES) and written with one `write()` under cork; the gathering ends when the
 * source would wait (a `nextTick` queued
 * from the read loop runs only after the microtask queue is empty). With a user
 * Content-Length the body is sent with `tryEnd` (no chunked encoding); otherwise chunked.
 */
async function writeStream(
  ctx: RequestContext,
  head: Head,
  stream: ReadableStream<unknown> | null,
  iterable: AsyncIterable<unknown> | null,
): Promise<void> {
  const res = ctx.res;
  const reader = stream !== null ? stream.getReader() : null;
  const iterator = iterable !== null ? iterable[Symbol.asyncIterator]() : null;
  const next = (): Promise<IteratorResult<unknown>> =>
    reader !== null ? (reader.read() as Promise<IteratorResult<unknown>>) : iterator!.next();
  const cancelSource = (reason: string): void => {
    if (reader !== null) reader.cancel(reason).catch(() => {});
    else void Promise.resolve(iterator!.return?.()).catch(() => {});
  };

  if (ctx.isHead || NO_BODY_STATUS.has(head.status)) {
    cancelSource("no body is sent for this response");
    ctx.run(() => {
      ctx.releaseBody();
      writeHead(ctx, head, null);
      ctx.responded = true;
      if (head.contentLength >= 0 && !NO_BODY_STATUS.has(head.status)) {
        endHead(res, head.contentLength, mustClose(ctx, head));
      }
      else res.endWithoutBody();
    });
    ctx.finish();
    return;
  }

  const total = head.contentLength;
  let sent = 0;
  let headWritten = false;
  let batch: Uint8Array[] = [];
  let batchBytes = 0;
  let flushScheduled = false;
  let failure: unknown = null;
  /** Resolves when uWS drained its buffer (set while backpressured). */
  let writable: Promise<void> | null = null;
  let wakeWritable: (() => void) | null = null;

  ctx.cancelStream = cancelSource;

  const writeHeadOnce = (): void => {
    if (headWritten) return;
    headWritten = true;
    ctx.responded = true;
    ctx.releaseBody();
    writeHead(ctx, head, null);
  };

  const waitWritable = (): void => {
    writable = new Promise<void>((resolve) => {
      wakeWritable = resolve;
    });
    res.onWritable(() => {
      const wake = wakeWritable;
      wakeWritable = null;
      writable = null;
      wake?.();
      return true;
    });
  };

  /** Writes the gathered chunks. Known-length bodies go through tryEnd; others chunked. */
  const flush = (): void => {
    flushScheduled = false;
    if (ctx.aborted || batchBytes === 0 || failure !== null) return;
    const data = batch.length === 1 ? batch[0]! : Buffer.concat(batch, batchBytes);
    batch = [];
    batchBytes = 0;
    if (total >= 0 && sent + data.byteLength > total) {
      failure = new RangeError(`uwserve: the body stream produced more bytes than its Content-Length (${total})`);
      return;
    }
    res.cork(() => {
      if (!headWritten) {
        writeHeadOnce();
        // Once body bytes are out, this uWS build can't close for us: end(…, true) after write()
        // puts "Connection: close" inside the chunked body, and tryEnd takes no close flag. So
        // announce the close in the head; the client closes (a stopping server closes anyway).
        if (mustClose(ctx, head)) res.writeHeader("connection", "close");
      }
      if (total >= 0) {
        sendKnownLength(data);
      } else if (!res.write(data)) {
        waitWritable();
      }
    });
    sent += data.byteLength;
  };

  const sendKnownLength = (data: Uint8Array): void => {
    const pending = new Promise<void>((resolve) => {
      wakeWritable = resolve;
    });
    if (sendWithTryEnd(ctx, data, total, () => {
      const wake = wakeWritable;
      wakeWritable = null;
      writable = null;
      wake?.();
    })) {
      wakeWritable = null;
      return;
    }
    writable = pending;
  };

  // Wakes a writer waiting on backpressure when the client goes away.
  const wakeOnAbort = (): void => {
    const wake = wakeWritable;
    wakeWritable = null;
    wake?.();
  };

  try {
    for (;;) {
      const result = await next();
      if (ctx.aborted) {
        wakeOnAbort();
        return;
      }
      if (result.done) break;
      const chunk = toChunk(result.value);
      if (chunk.byteLength === 0) continue;
      batch.push(chunk);
      batchBytes += chunk.byteLength;
      if (batchBytes >= STREAM_BATCH_BYTES) {
        flush();
      } else if (!flushScheduled) {
        flushScheduled = true;
        process.nextTick(flush);
      }
      if (failure !== null) throw failure;
      if (writable !== null) {
        await writable;
        if (ctx.aborted) return;
      }
    }
    flush();
    if (failure !== null) throw failure;
    if (writable !== null) await writable;
    if (ctx.aborted) return;
    if (total >= 0) {
      if (sent !== total) {
        throw new RangeError(`uwserve: the body stream ended after ${sent} of the ${total} bytes its Content-Length promised`);
      }
      ctx.cancelStream = null;
      if (!headWritten) {
        // An empty body with Content-Length: 0.
        endBytes(ctx, head, null, null);
        return;
      }
      ctx.finish();
      return;
    }
    res.cork(() => {
      // A zero-length end closes the chunked body (or sends Content-Length: 0 if nothing was
      // written; only then can uWS also close the connection, see flush()).
      if (headWritten) {
        res.end();
        return;
      }
      writeHeadOnce();
      if (mustClose(ctx, head)) res.end(undefined, true);
      else res.end();
    });
    ctx.cancelStream = null;
    ctx.finish();
  } catch (err) {
    ctx.cancelStream = null;
    if (ctx.aborted) return;
    cancelSource(err instanceof Error ? err.message : "response body failed");
    if (!headWritten) throw err;
    // Headers already went out: all we can do is cut the connection so the client sees it fail.
    ctx.abortConnection("response body stream failed");
    throw Object.assign(err instanceof Error ? err : new Error(String(err)), { afterHeaders: true });
  }
}

/** A Response reduced to what a static route writes on every request. */
export interface StaticParts {
  /** The status line, or null for a plain "200 OK" (uWS writes that itself). */
  statusLine: string | null;
  status: number;
  statusText: string;
  /** Flat [name, value, …] including the default Content-Type; no Content-Length (uWS writes it). */
  headers: string[];
  /** The body, or a promise for bodies that can only be read asynchronously (Blob, FormData). */
  body: Uint8Array | Promise<Uint8Array>;
}

/**
 * Serialises a Response once for a static route (Bun's "static responses"). Throws for bodies
 * that can't be sent twice, such as a ReadableStream or an async iterable.
 */
export function staticParts(response: Response): StaticParts {
  const fast = fastResponseParts(response);
  let head: Head;
  let body: unknown;
  if (fast !== undefined && fast.real === null) {
    head = fastHead(fast);
    body = fast.body;
  } else {
    const native = fast?.real ?? response;
    const parts = readNativeResponse(native);
    if (parts.source === undefined && !parts.fromSource) {
      throw new TypeError("a static route's Response must have a body that can be read once: not a stream");
    }
    head = collectCheckedHead(parts.status, parts.statusText, parts.headers);
    // Only the stream is known (undici 7+): read a copy once; undici already set its type.
    body = parts.source === undefined ? native.clone().arrayBuffer().then((ab) => new Uint8Array(ab)) : parts.source;
  }
  let bytes: Uint8Array | Promise<Uint8Array>;
  let defaultType: string | null = null;
  if (body === null) {
    bytes = new Uint8Array(0);
  } else if (body instanceof Promise) {
    bytes = body as Promise<Uint8Array>;
  } else if (typeof body === "string") {
    bytes = Buffer.from(body, "utf8");
    defaultType = TEXT_PLAIN;
  } else if (body instanceof ArrayBuffer) {
    bytes = new Uint8Array(body.slice(0));
  } else if (ArrayBuffer.isView(body)) {
    bytes = new Uint8Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
  } else if (body instanceof URLSearchParams) {
    bytes = Buffer.from(body.toString(), "utf8");
    defaultType = FORM_URLENCODED;
  } else if (body instanceof Blob || body instanceof FormData) {
    // Read once, asynchronously; the route answers as soon as the bytes are there.
    const encoded = new NativeResponse(body);
    const type = body instanceof Blob ? body.type : encoded.headers.get("content-type");
    if (type) defaultType = type;
    bytes = encoded.arrayBuffer().then((ab) => new Uint8Array(ab));
  } else {
    throw new TypeError("a static route's Response must have a body that can be read once: not a stream or an async iterable");
  }
  const headers = head.headers.slice();
  if (!head.contentType && defaultType !== null) headers.push("content-type", defaultType);
  if (head.close) headers.push("connection", "close");
  const line = head.status === 200 && head.statusText === "" ? null : statusLine(head.status, head.statusText);
  return { statusLine: line, status: head.status, statusText: head.statusText, headers, body: bytes };
}
