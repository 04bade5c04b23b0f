/**
 * Reading ahead in a body undici made from a whole source (a string, bytes, a Blob…) where
 * undici 7+ keeps the source private and shows only a stream: to learn the body's length, and
 * so send it as its source would have been sent (Content-Length, one write).
 */

/** How much of a source-made body is read ahead to learn its length. */
const READ_AHEAD_BYTES = 64 * 1024;
/**
 * Loop turns the read-ahead waits at most for a next chunk. Node 24's Blob reader hands out
 * each part of an in-memory Blob one turn after the other (Node 20's within one).
 */
const READ_AHEAD_TURNS = 4;
const NOT_READY = Symbol("not ready");

/** Resolves at the end of this loop turn; one setImmediate shared by every waiter of the turn. */
let turnEnd: Promise<typeof NOT_READY> | null = null;
function endOfTurn(): Promise<typeof NOT_READY> {
  return (turnEnd ??= new Promise((resolve) =>
    setImmediate(() => {
      turnEnd = null;
      resolve(NOT_READY);
    }),
  ));
}

function toBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  throw new TypeError("uwserve: a response body stream yielded something other than bytes");
}

export type ReadAhead = { whole: Uint8Array; rest: null } | { whole: null; rest: AsyncGenerator<Uint8Array> };

/**
 * The first chunk is awaited, as streaming would; after it, chunks that come within a few loop
 * turns are read ahead (a network body or an async iterable is a byte stream too, and must
 * flow as it comes). A body that ends within READ_AHEAD_BYTES (or in one chunk, as a string's
 * does) comes back whole; otherwise what was read and then the rest, as a generator that
 * cancels the stream if it is not run to its end.
 */
export async function readAhead(stream: ReadableStream<Uint8Array>): Promise<ReadAhead> {
  const reader = stream.getReader();
  const first = await reader.read();
  if (first.done) return { whole: new Uint8Array(0), rest: null };
  const chunks: Uint8Array[] = [toBytes(first.value)];
  let bytes = chunks[0]!.byteLength;
  let pending: Promise<ReadableStreamReadResult<Uint8Array>> | null = reader.read();
  let turns = READ_AHEAD_TURNS;
  while (turns > 0) {
    const next = await Promise.race([pending!, endOfTurn()]);
    if (next === NOT_READY) {
      turns--;
      continue;
    }
    pending = null;
    if (next.done) return { whole: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, bytes), rest: null };
    const chunk = toBytes(next.value);
    chunks.push(chunk);
    bytes += chunk.byteLength;
    if (bytes > READ_AHEAD_BYTES) break;
    pending = reader.read();
  }
  async function* rest(): AsyncGenerator<Uint8Array> {
    let done = false;
    try {
      yield* chunks;
      for (;;) {
        const next = await (pending ?? reader.read());
        pending = null;
        if (next.done) break;
        yield next.value;
      }
      done = true;
    } finally {
      if (!done) reader.cancel("response body no longer sent").catch(() => {});
    }
  }
  return { whole: null, rest: rest() };
}
