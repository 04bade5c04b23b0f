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
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Chunk, Exchange } from "../../core/exchange.js";

const EMPTY = new Uint8Array(0);

/**
 * Bytes for node:http. Never a string: node:http joins a string body to the head and encodes
 * both as UTF-8, which would turn a Latin-1 header value (a ByteString) into two bytes.
 */
function toBytes(chunk: Chunk | undefined): Uint8Array {
  if (chunk === undefined) return EMPTY;
  if (typeof chunk === "string") return Buffer.from(chunk, "utf8");
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  return chunk;
}

function latin1(value: string | Uint8Array): string {
  return typeof value === "string" ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("latin1");
}

export class NodeExchange implements Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  #status: number;
  #reason: string | undefined;
  /** Flat [name, value, …], handed to writeHead once. */
  #headers: string[];
  #headSent: boolean;
  #ended: boolean;
  #offset: number;
  #aborted: (() => void) | null;
  #writable: ((offset: number) => boolean) | null;

  constructor(req: IncomingMessage, res: ServerResponse) {
    this.req = req;
    this.res = res;
    this.#status = 200;
    this.#reason = undefined;
    this.#headers = [];
    this.#headSent = false;
    this.#ended = false;
    this.#offset = 0;
    this.#aborted = null;
    this.#writable = null;
  }

  /** True once the response was ended (handed whole to node:http). */
  get ended(): boolean {
    return this.#ended;
  }

  writeStatus(status: string | Uint8Array): this {
    const line = latin1(status);
    this.#status = Number(line.slice(0, 3));
    this.#reason = line.length > 4 ? line.slice(4) : undefined;
    return this;
  }

  writeHeader(name: string, value: string | Uint8Array): this {
    this.#headers.push(name, latin1(value));
    return this;
  }

  #sendHead(length: number, close: boolean): void {
    if (this.#headSent) return;
    this.#headSent = true;
    if (length >= 0) this.#headers.push("content-length", String(length));
    if (close) this.res.shouldKeepAlive = false;
    this.res.writeHead(this.#status, this.#reason, this.#headers);
  }

  end(body?: Chunk, closeConnection = false): this {
    if (this.#ended) return this;
    this.#ended = true;
    const data = toBytes(body);
    const length = data.byteLength;
    if (this.#headSent) {
      this.res.end(length === 0 ? undefined : data);
      return this;
    }
    this.#sendHead(length, closeConnection);
    this.#offset = length;
    this.res.end(length === 0 ? undefined : data);
    return this;
  }

  endWithoutBody(length?: number, closeConnection = false): this {
    if (this.#ended) return this;
    this.#ended = true;
    this.#sendHead(length ?? -1, closeConnection);
    this.res.end();
    return this;
  }

  tryEnd(chunk: Chunk, total: number): [boolean, boolean] {
    if (this.#ended) return [true, true];
    this.#sendHead(total, false);
    const data = toBytes(chunk);
    this.#offset += data.byteLength;
    if (this.#offset >= total) {
      this.#ended = true;
      this.res.end(data.byteLength === 0 ? undefined : data);
      return [true, true];
    }
    if (data.byteLength === 0) return [true, false];
    return [this.res.write(data), false];
  }

  write(chunk: Chunk): boolean {
    this.#sendHead(-1, false);
    const data = toBytes(chunk);
    this.#offset += data.byteLength;
    if (data.byteLength === 0) return true;
    return this.res.write(data);
  }

  getWriteOffset(): number {
    return this.#offset;
  }

  onWritable(handler: (offset: number) => boolean): this {
    if (this.#writable === null) this.res.once("drain", this.#onDrain);
    this.#writable = handler;
    return this;
  }

  readonly #onDrain = (): void => {
    const handler = this.#writable;
    this.#writable = null;
    if (handler === null || this.#ended) return;
    if (!handler(this.#offset) && this.#writable === null) {
      this.#writable = handler;
      this.res.once("drain", this.#onDrain);
    }
  };

  onAborted(handler: () => void): this {
    if (this.#aborted === null) this.res.once("close", this.#onClose);
    this.#aborted = handler;
    return this;
  }

  readonly #onClose = (): void => {
    // node:http emits close after every response; uWS calls onAborted only before end.
    if (this.#ended) return;
    this.#ended = true;
    this.#aborted?.();
  };

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

  cork(write: () => void): this {
    write();
    return this;
  }
}
