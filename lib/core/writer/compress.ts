/**
 * Automatic compression as the writer applies it (Deno's rules, transport/compression.ts):
 * whether a response qualifies, the head it then gets, and streamed bodies through zlib.
 */
import { constants as zlibConstants } from "node:zlib";
import type { RequestContext } from "../context.js";
import { requestHeader } from "../request.js";
import { compressStream, negotiateEncoding, shouldCompress, varyWithAcceptEncoding, type Encoding } from "../../transport/compression.js";
import type { Head } from "./head.js";
import { toChunk, writeStream } from "./stream.js";


/** The encoding for this response when compression is on and Deno's rules allow it, else null. */
export function encodingFor(ctx: RequestContext, head: Head, length: number, defaultType: string | null): Encoding | null {
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
export function markEncoded(head: Head, encoding: Encoding, defaultType: string | null): void {
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
export async function* compressedChunks(encoding: Encoding, next: () => Promise<IteratorResult<unknown>>, cancel: (reason: string) => void): AsyncGenerator<Uint8Array> {
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
export function writeMaybeCompressedStream(
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
