/**
 * One HTTP request/response exchange as the engine-independent code drives it (the context,
 * the writer, static routes). It is the part of uWS's HttpResponse uwserve uses, with uWS's
 * meaning: the uws engine passes its HttpResponse as it is (no wrapper on the fast path), and
 * the node engine implements the same contract over node:http (engines/node/exchange.ts).
 */
export type Chunk = string | Uint8Array | ArrayBuffer;

export interface Exchange {
  /** "200 OK"; a Buffer carries a Latin-1 reason phrase byte for byte. */
  writeStatus(status: string | Uint8Array): Exchange;
  /** Adds a header; a Buffer value is a ByteString's bytes (one byte per character). */
  writeHeader(name: string, value: string | Uint8Array): Exchange;
  /** Ends with `body` (Content-Length from its size); `closeConnection` closes after it. */
  end(body?: Chunk, closeConnection?: boolean): Exchange;
  /** Ends without a body: `length` is reported as Content-Length only by uWS; uwserve writes the header itself. */
  endWithoutBody(length?: number, closeConnection?: boolean): Exchange;
  /**
   * Offers (part of) a body of `total` bytes. [ok, done]: ok is false when the transport is
   * backpressured (offer the rest again from onWritable), done once `total` bytes were taken.
   * The chunk is lent: once taken (ok, or onWritable called) the caller may reuse its memory.
   */
  tryEnd(chunk: Chunk, total: number): [boolean, boolean];
  /** Writes a chunk of a chunked body; false under backpressure. The chunk is given: the transport may keep it until sent. */
  write(chunk: Chunk): boolean;
  /** Body bytes taken so far. */
  getWriteOffset(): number;
  /** Called with the write offset when the transport can take more; return false to be called again. */
  onWritable(handler: (offset: number) => boolean): Exchange;
  /** The client went away before the response ended. Never called after end. */
  onAborted(handler: () => void): Exchange;
  /** Request body chunks: an ArrayBuffer is lent for the call only (uWS); a Uint8Array is the receiver's to keep. */
  onData(handler: (chunk: ArrayBuffer | Uint8Array, isLast: boolean) => void): Exchange;
  /** Stops and restarts reading the request body. */
  pause(): void;
  resume(): void;
  /** Cuts the connection now (onAborted follows). */
  close(): Exchange;
  /** Runs `write` so that what it writes goes out together. */
  cork(write: () => void): Exchange;
}
