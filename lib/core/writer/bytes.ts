/**
 * Bodies already in memory: ended in one call with their length (large ones through tryEnd, so
 * they count as sent only once the transport took them), HEAD answered with the length alone,
 * and compressed first when compression is on.
 */
import type { RequestContext } from "../context.js";
import type { Exchange } from "../exchange.js";
import { coreText } from "../../engines/uws/core-bytes.js";
import { compressAsync, compressSync, LARGE_BODY_BYTES as COMPRESS_OFF_LOOP_BYTES } from "../../transport/compression.js";
import { encodingFor, markEncoded } from "./compress.js";
import { mustClose, NO_BODY_STATUS, writeHead, type Head } from "./head.js";

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
  } else {
    // Only a watched request reports its size: a string's byte length is a scan of it.
    if (body !== null && ctx.observation !== null) ctx.bodyBytes = typeof body === "string" ? Buffer.byteLength(body) : body.byteLength;
    if (close) res.end(typeof body === "string" ? coreText(body) : (body ?? ""), true);
    else res.end(typeof body === "string" ? coreText(body) : (body ?? undefined));
  }
  ctx.finish();
}

/**
 * endWithBytes, corked: directly inside the uWS callback, else through `cork()` (H3). With
 * compression on, a compressible body is compressed first: small ones at once, large ones on
 * zlib's thread pool (then the returned promise settles when it is sent).
 */
export function endBytes(ctx: RequestContext, head: Head, body: string | Uint8Array | ArrayBuffer | null, defaultType: string | null): void | Promise<void> {
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

/**
 * Sends `data` as (part of) a body of `total` bytes with tryEnd. Returns true when uWS took it
 * all; otherwise the rest is offered again from onWritable (uWS's own pattern) and `drained`
 * runs once it has been taken.
 */
export function sendWithTryEnd(ctx: RequestContext, data: Uint8Array, total: number, drained: () => void): boolean {
  const res = ctx.res;
  const start = res.getWriteOffset();
  ctx.bodyBytes += data.byteLength;
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
