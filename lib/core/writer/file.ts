/**
 * Blob bodies: file() Blobs streamed from disk (with ranges, 206/416, a 404 for a missing
 * file), large Blobs streamed with their known length, small ones read whole.
 */
import { open, type FileHandle } from "node:fs/promises";
import type { RequestContext } from "../context.js";
import { FILE_CHUNK_BYTES, fileParts, isMissingFileError, UwsFile } from "../../transport/file.js";
import { endBytes, sendWithTryEnd } from "./bytes.js";
import { compressedChunks, encodingFor, markEncoded } from "./compress.js";
import { mustClose, NO_BODY_STATUS, TEXT_PLAIN, writeHead, type Head } from "./head.js";
import { writeStream } from "./stream.js";

export async function writeBlob(ctx: RequestContext, head: Head, blob: Blob): Promise<void> {
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
