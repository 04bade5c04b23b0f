/**
 * Streamed bodies (ReadableStream, async iterables): read as the transport takes them, small
 * ready chunks joined into one write, chunked unless a Content-Length was given.
 */
import type { RequestContext } from "../context.js";
import { endBytes, endHead, sendWithTryEnd } from "./bytes.js";
import { mustClose, NO_BODY_STATUS, writeHead, type Head } from "./head.js";

/**
 * Small streamed chunks that are ready together are joined into writes of up to this size
 * (fewer syscalls); a chunk this large or larger is written as it is. Measured with the
 * 64 × 16 KiB bench: joining into bigger writes (64 KiB … 2 MiB) costs more CPU per response
 * than it saves, because the join is a copy and uWS copies whatever the kernel doesn't take.
 */
const STREAM_BATCH_BYTES = 16 * 1024;

export function toChunk(value: unknown): Uint8Array {
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
export async function writeStream(
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
      } else {
        ctx.bodyBytes += data.byteLength;
        if (!res.write(data)) waitWritable();
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
