/**
 * The Exchange contract (core/exchange.ts) over node:http's IncomingMessage and ServerResponse,
 * so the context, the writer and static routes drive either engine with the same code.
 *
 * uWS writes a response head as it is given and adds Content-Length on end(); node:http frames
 * a body from the head it is handed. So the head is collected here and handed over once, with
 * the length when the body is known (end, tryEnd), or without one for a chunked body (write).
 * node:http buffers whatever the socket doesn't take, so every offer is taken whole: tryEnd and
 * write report backpressure (false) and `drain` calls onWritable, as uWS's writable event does.
 */
import type { OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { Http2ServerResponse } from "node:http2";
import type { NodeRequest, NodeResponse } from "./servers.js";
import type { Chunk, Exchange } from "../../core/exchange.js";

const EMPTY = new Uint8Array(0);

/**
 * Bytes a chunked response may buffer before write() reports backpressure. node:http says
 * `false` at the socket's 16 KiB mark; honoured there, a streamed body waits for `drain` after
 * every 16 KiB chunk and goes out one syscall per chunk (0.30× node:http's throughput on the
 * 64 × 16 KiB bench). Node corks a tick's writes into one writev, so a larger mark sends a
 * stream in few syscalls (0.67× at 1 MiB, 0.58× at 256 KiB), for at most this much memory
 * per response with a client that doesn't read; about what the kernel buffers for it anyway.
 */
const WRITE_HIGH_WATER_MARK = 1024 * 1024;

/** What node:http takes: a string (UTF-8) or bytes; never an ArrayBuffer. */
function toNode(chunk: Chunk | undefined): string | Uint8Array {
  if (chunk === undefined) return EMPTY;
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  return chunk;
}

function sizeOf(data: string | Uint8Array): number {
  return typeof data === "string" ? Buffer.byteLength(data, "utf8") : data.byteLength;
}

/** Connection-specific header fields, which HTTP/2 forbids. */
const H2_FORBIDDEN = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);

/** Any character outside ASCII. */
const NON_ASCII = /[^\x00-\x7f]/;

function latin1(value: string | Uint8Array): string {
  return typeof value === "string" ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("latin1");
}

const EXCHANGE = Symbol("uwserve.exchange");

function onResponseDrain(this: NodeResponse): void {
  (this as unknown as Record<symbol, NodeExchange>)[EXCHANGE]!.drained();
}

function onResponseClose(this: NodeResponse): void {
  (this as unknown as Record<symbol, NodeExchange>)[EXCHANGE]!.closed();
}

export class NodeExchange implements Exchange {
  readonly req: NodeRequest;
  readonly res: NodeResponse;
  /** An HTTP/2 stream: no reason phrase, no connection-specific headers. */
  readonly #h2: boolean;
  #status: number;
  #reason: string | undefined;
  /** Flat [name, value, …], handed to writeHead once. */
  #headers: string[];
  #headSent: boolean;
  /**
   * A header value or reason phrase has Latin-1 characters: string bodies then go as bytes.
   * node:http joins a string body to the head and encodes both as UTF-8, which is the same
   * bytes for an ASCII head (one write instead of two) but two bytes per Latin-1 character.
   */
  #latin1Head: boolean;
  #ended: boolean;
  #offset: number;
  #aborted: (() => void) | null;
  #writable: ((offset: number) => boolean) | null;
  /** Inside cork() (or the engine's request callback): the last write waits for the cork's end. */
  #corks: number;
  /** The final bytes of an end() made while corked. */
  #endPending: string | Uint8Array | null;

  constructor(req: NodeRequest, res: NodeResponse) {
    this.req = req;
    this.res = res;
    this.#h2 = req.httpVersionMajor === 2;
    this.#status = 200;
    this.#reason = undefined;
    this.#headers = [];
    this.#headSent = false;
    this.#latin1Head = false;
    this.#ended = false;
    this.#offset = 0;
    this.#aborted = null;
    this.#writable = null;
    this.#corks = 0;
    this.#endPending = null;
  }

  writeStatus(status: string | Uint8Array): this {
    const line = latin1(status);
    if (typeof status !== "string") this.#latin1Head = true;
    this.#status = Number(line.slice(0, 3));
    this.#reason = line.length > 4 ? line.slice(4) : undefined;
    return this;
  }

  writeHeader(name: string, value: string | Uint8Array): this {
    // RFC 9113 §8.2.2: connection-specific fields are malformed in HTTP/2 (names come lower case).
    if (this.#h2 && H2_FORBIDDEN.has(name)) return this;
    if (typeof value !== "string" || NON_ASCII.test(value)) this.#latin1Head = true;
    this.#headers.push(name, latin1(value));
    return this;
  }

  #sendHead(length: number, close: boolean): void {
    if (this.#headSent) return;
    this.#headSent = true;
    if (length >= 0) this.#headers.push("content-length", String(length));
    if (this.#h2) {
      (this.res as Http2ServerResponse).writeHead(this.#status, this.#headers as unknown as OutgoingHttpHeaders);
      return;
    }
    const res = this.res as ServerResponse;
    if (close) res.shouldKeepAlive = false;
    res.writeHead(this.#status, this.#reason, this.#headers);
  }

  /** `chunk` as node:http should get it: bytes for a string when the head has Latin-1 in it. */
  #data(chunk: Chunk | undefined): string | Uint8Array {
    const data = toNode(chunk);
    return typeof data === "string" && this.#latin1Head ? Buffer.from(data, "utf8") : data;
  }

  end(body?: Chunk, closeConnection = false): this {
    if (this.#ended) return this;
    this.#ended = true;
    const data = this.#data(body);
    const length = sizeOf(data);
    // After write() the head is out (chunked): the length and the close flag no longer apply.
    this.#sendHead(length, closeConnection);
    this.#offset += length;
    this.#endWith(data, length);
    return this;
  }

  #endWith(data: string | Uint8Array, size: number): void {
    if (this.#corks > 0) this.#endPending = size === 0 ? EMPTY : data;
    else if (size === 0) this.res.end();
    else this.res.end(data);
  }

  endWithoutBody(length?: number, closeConnection = false): this {
    if (this.#ended) return this;
    this.#ended = true;
    this.#sendHead(length ?? -1, closeConnection);
    this.#endWith(EMPTY, 0);
    return this;
  }

  tryEnd(chunk: Chunk, total: number): [boolean, boolean] {
    if (this.#ended) return [true, true];
    this.#sendHead(total, false);
    const data = this.#data(chunk);
    const size = sizeOf(data);
    this.#offset += size;
    if (this.#offset >= total) {
      this.#ended = true;
      this.#endWith(data, size);
      return [true, true];
    }
    if (size === 0) return [true, false];
    // node:http's own verdict: tryEnd's chunk is only lent (the file writer reuses its buffer
    // once a chunk is taken), and `drain` comes only when Node holds none of it any more.
    return [(this.res as ServerResponse).write(data), false];
  }

  write(chunk: Chunk): boolean {
    this.#sendHead(-1, false);
    const data = this.#data(chunk);
    const size = sizeOf(data);
    this.#offset += size;
    if (size === 0) return true;
    return this.#write(data);
  }

  /** Writes chunked body bytes (the caller's to give away); false only past WRITE_HIGH_WATER_MARK. */
  #write(data: string | Uint8Array): boolean {
    const res = this.res as ServerResponse;
    return res.write(data) || res.writableLength < WRITE_HIGH_WATER_MARK;
  }

  getWriteOffset(): number {
    return this.#offset;
  }

  onWritable(handler: (offset: number) => boolean): this {
    if (this.#writable === null) this.#listen("drain");
    this.#writable = handler;
    return this;
  }

  /** The response's `drain`: offer the handler the transport again (it re-registers if it must wait). */
  drained(): void {
    const handler = this.#writable;
    this.#writable = null;
    if (handler === null || this.#ended) return;
    if (!handler(this.#offset) && this.#writable === null) {
      this.#writable = handler;
      this.#listen("drain");
    }
  }

  /**
   * The handler is kept; the response's `close` is listened to only by watchAbort(), once the
   * engine's request callback returns with the response still open (a handler that answers
   * at once, the common case, adds and removes no listener). A hangup can't be seen before.
   */
  onAborted(handler: () => void): this {
    this.#aborted = handler;
    return this;
  }

  /** Called when the request callback returns: from here on a hangup aborts the request. */
  watchAbort(): void {
    if (this.#aborted !== null && !this.#ended) this.#listen("close");
  }

  /** The connection became a WebSocket's: nothing more is written or watched here. */
  handOver(): void {
    this.#ended = true;
  }

  /** The response's `close`: node:http emits it after every response; uWS calls onAborted only before end. */
  closed(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#aborted?.();
  }

  /** One shared listener per event finds this exchange on the response: no closure per request. */
  #listen(event: "drain" | "close"): void {
    (this.res as unknown as Record<symbol, NodeExchange>)[EXCHANGE] = this;
    this.res.once(event, event === "drain" ? onResponseDrain : onResponseClose);
  }

  onData(handler: (chunk: ArrayBuffer | Uint8Array, isLast: boolean) => void): this {
    this.req.on("data", (chunk: Buffer) => handler(chunk, false));
    this.req.once("end", () => handler(EMPTY, true));
    return this;
  }

  pause(): void {
    this.req.pause();
  }

  resume(): void {
    this.req.resume();
  }

  close(): this {
    this.res.destroy();
    return this;
  }

  /**
   * As uWS does, the response's last bytes leave when the cork ends, after the writer counted
   * the request finished: node:http's end() writes to the socket at once, and a client could
   * read the response and send its next request to another worker before this thread's
   * request count fell (the group's pendingRequests would count a request already answered).
   */
  cork(write: () => void): this {
    this.hold();
    try {
      write();
    } finally {
      this.release();
    }
    return this;
  }

  /** Starts a corked section (the engine's request callback is one, as in uWS). */
  hold(): void {
    this.#corks++;
  }

  /** Ends a corked section: the outermost sends an end() made inside it. */
  release(): void {
    if (--this.#corks > 0 || this.#endPending === null) return;
    const data = this.#endPending;
    this.#endPending = null;
    if (data.length === 0) this.res.end();
    else this.res.end(data);
  }
}
