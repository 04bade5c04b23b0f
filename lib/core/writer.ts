/**
 * Writes what a handler returned onto the request's Exchange (either engine): status line,
 * validated headers and the body, with fast paths for string/bytes bodies (no stream
 * machinery) and streamed bodies batched under cork with backpressure. Framing follows H5: the
 * engine writes Content-Length for `end()`, so a user's Content-Length is never written twice;
 * HEAD and 204/304 get no body. This module picks the path per body kind; writer/ holds them:
 * head, bytes, stream, file (Blobs and file()), compress, static-parts.
 */
import { NativeResponse } from "./_globals.js";
import { readNativeResponse } from "./_undici.js";
import { readAhead } from "./_read_ahead.js";
import type { RequestContext } from "./context.js";
import type { CookieMap } from "./cookies.js";
import { uwserveError } from "../errors.js";
import { fastResponseParts, isAsyncIterableBody, takeFastBody } from "./response.js";
import { endBytes } from "./writer/bytes.js";
import { writeMaybeCompressedStream } from "./writer/compress.js";
import { writeBlob } from "./writer/file.js";
import { badResponseError, collectCheckedHead, collectHead, fastHead, FORM_URLENCODED, REASON_PHRASE, TEXT_PLAIN, type Head } from "./writer/head.js";

export { badResponseError, NO_BODY_STATUS, TEXT_PLAIN } from "./writer/head.js";
export { endHead } from "./writer/bytes.js";
export { staticParts, type StaticParts } from "./writer/static-parts.js";

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
    // fastHead reads the shared parts: before takeFastBody, which reads nothing more.
    const head = fastHead(fast);
    const body = fast.body;
    if (!takeFastBody(response as object)) throw bodyUsedError();
    if (ctx.cookies !== null) addCookies(ctx.cookies, head);
    return writeBody(ctx, head, body);
  }
  const nativeLike = fast?.real ?? response;
  if (nativeLike instanceof NativeResponse) {
    if (nativeLike.type === "error" || nativeLike.status === 0) {
      // A network error has nothing to send: the error path answers (the `error` hook, or a
      // 500), as Bun does; the connection is not dropped.
      throw uwserveError(TypeError, "UWSERVE_ERR_BAD_RESPONSE", "uwserve: the handler returned Response.error(), a network error, which has no status or body to send");
    }
    if (nativeLike.bodyUsed || nativeLike.body?.locked === true) throw bodyUsedError();
    const parts = readNativeResponse(nativeLike);
    // undici reads `source` bodies without their stream: disturb it, so `bodyUsed` reads true
    // and a second send of this Response is refused like the first read's.
    if (parts.source !== undefined) nativeLike.body?.cancel().catch(() => {});
    const head = collectCheckedHead(parts.status, parts.statusText, parts.headers);
    if (ctx.cookies !== null) addCookies(ctx.cookies, head);
    return writeUndiciBody(ctx, head, parts);
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
    if (ctx.cookies !== null) addCookies(ctx.cookies, head);
    return writeBody(ctx, head, response.body ?? null);
  }
  throw badResponseError(response);
}

/** The Set-Cookie headers that apply `req.cookies` changes, after the response's own (Bun's routes do this). */
function addCookies(cookies: CookieMap, head: Head): void {
  for (const value of cookies.toSetCookieHeaders()) head.headers.push("set-cookie", value);
}

/** A Response whose body was already sent or read: the error path answers (Bun's rule). */
function bodyUsedError(): TypeError {
  return uwserveError(
    TypeError,
    "UWSERVE_ERR_BODY_USED",
    "uwserve: the handler returned a Response whose body was already used (sent to an earlier request, or read); " +
      "return a new Response per request, `response.clone()` it, or put it in `routes` as a static response",
  );
}

/** The body of a Response undici made: its source when it has one, else its stream. */
function writeUndiciBody(ctx: RequestContext, head: Head, parts: ReturnType<typeof readNativeResponse>): void | Promise<void> {
  const source = parts.source;
  if (source !== undefined) {
    // A Blob is sent with its known length rather than through undici's stream (chunked).
    if (source instanceof Blob) return writeBlob(ctx, head, source);
    return endBytes(ctx, head, source, null);
  }
  if (parts.fromSource) return writeReadAhead(ctx, head, parts.stream!);
  return writeBody(ctx, head, parts.stream);
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
    // Framed as the global Response's FormData is (its length when undici knows it).
    return writeUndiciBody(ctx, head, readNativeResponse(encoded));
  }
  if (body instanceof ReadableStream) {
    return writeMaybeCompressedStream(ctx, head, body, null);
  }
  if (isAsyncIterableBody(body)) {
    return writeMaybeCompressedStream(ctx, head, null, body);
  }
  throw badResponseError(body);
}
