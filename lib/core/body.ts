/**
 * A request body as it arrives from uWS `onData`: chunks are copied (uWS neuters the
 * ArrayBuffer when the callback returns, H4) and queued until the handler asks for them,
 * either whole (`text()`, `json()`, … without any stream machinery) or as a ReadableStream.
 * While nobody reads and the queue is over its high-water mark, the socket is paused.
 */

/** How many unread bytes may queue before the socket is paused. */
const HIGH_WATER_MARK = 256 * 1024;

export interface BodyFlowControl {
  pause(): void;
  resume(): void;
}

export class RequestBody {
  #chunks: Buffer[];
  #queued: number;
  #received: number;
  #ended: boolean;
  #error: Error | null;
  #paused: boolean;
  #flow: BodyFlowControl;
  /** Wakes whoever waits for more data (a whole-body read or a stream pull). */
  #wake: (() => void) | null;
  #taken: boolean;
  /** The response is done: further chunks are counted and dropped. */
  #discarding: boolean;
  /** The stream from stream() has been pulled at least once. */
  #pulled: boolean;
  /** Read whole instead of through the stream handed out earlier (see readAllInsteadOfStream). */
  #bypassed: boolean;
  /** A pending whole-body read. */
  #whole: { resolve(body: Buffer): void; reject(error: Error): void } | null;

  constructor(flow: BodyFlowControl) {
    this.#chunks = [];
    this.#queued = 0;
    this.#received = 0;
    this.#ended = false;
    this.#error = null;
    this.#paused = false;
    this.#flow = flow;
    this.#wake = null;
    this.#taken = false;
    this.#discarding = false;
    this.#pulled = false;
    this.#bypassed = false;
    this.#whole = null;
  }

  /** Bytes received from the network so far. */
  get received(): number {
    return this.#received;
  }
  get ended(): boolean {
    return this.#ended;
  }
  /** True once a reader took the body (whole read or stream). */
  get taken(): boolean {
    return this.#taken;
  }

  /** Takes a uWS chunk, which is only valid during the call. */
  push(chunk: ArrayBuffer | Uint8Array, isLast: boolean): void {
    if (this.#discarding) {
      this.#received += chunk.byteLength;
      if (isLast) this.#ended = true;
      return;
    }
    if (this.#ended || this.#error) return;
    const length = chunk.byteLength;
    if (length > 0) {
      // uWS lends an ArrayBuffer for the call only: copy it. A Uint8Array (node:http's Buffer) is ours.
      let copy: Buffer;
      if (chunk instanceof ArrayBuffer) {
        copy = Buffer.allocUnsafe(length);
        copy.set(new Uint8Array(chunk));
      } else {
        copy = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      }
      this.#chunks.push(copy);
      this.#queued += length;
      this.#received += length;
    }
    if (isLast) this.#ended = true;
    if (!this.#ended && this.#queued >= HIGH_WATER_MARK && !this.#paused && this.#whole === null) {
      this.#paused = true;
      this.#flow.pause();
    }
    this.#notify();
  }

  /** Ends the body with an error (client gone, too large): readers reject. */
  fail(error: Error): void {
    if (this.#ended || this.#error) return;
    this.#error = error;
    this.#chunks = [];
    this.#queued = 0;
    this.#notify();
  }

  /** Drops whatever is queued and keeps the socket flowing (the response is done). */
  discard(): void {
    this.#discarding = true;
    this.#chunks = [];
    this.#queued = 0;
    this.#taken = true;
    this.#resumeIfPaused();
  }

  #notify(): void {
    const whole = this.#whole;
    if (whole !== null) {
      if (this.#error) {
        this.#whole = null;
        whole.reject(this.#error);
      } else if (this.#ended) {
        this.#whole = null;
        whole.resolve(this.#drain());
      }
      return;
    }
    const wake = this.#wake;
    if (wake !== null) {
      this.#wake = null;
      wake();
    }
  }

  #resumeIfPaused(): void {
    if (this.#paused) {
      this.#paused = false;
      this.#flow.resume();
    }
  }

  #waitForData(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  #take(): void {
    if (this.#taken) throw new TypeError("Body is unusable: Body has already been read");
    this.#taken = true;
  }

  /** Reads the whole body into one Buffer (settled straight from `push`, no polling loop). */
  readAll(): Promise<Buffer> {
    this.#take();
    return this.#readWhole();
  }

  /**
   * For a body already handed out as stream() (to undici, which needs one to copy the request)
   * that nobody has pulled yet: reads it whole instead, without stream machinery, or returns
   * null when the stream was already pulled. The caller cancels that stream, which then
   * reads nothing and keeps the data.
   */
  readAllInsteadOfStream(): Promise<Buffer> | null {
    if (this.#pulled || this.#bypassed) return null;
    this.#bypassed = true;
    return this.#readWhole();
  }

  #readWhole(): Promise<Buffer> {
    // A whole read wants everything: never throttle while it waits.
    this.#resumeIfPaused();
    if (this.#error) return Promise.reject(this.#error);
    if (this.#ended) return Promise.resolve(this.#drain());
    return new Promise<Buffer>((resolve, reject) => {
      this.#whole = { resolve, reject };
    });
  }

  #drain(): Buffer {
    const chunks = this.#chunks;
    this.#chunks = [];
    this.#queued = 0;
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  }

  /** The body as a byte ReadableStream whose pulls drive the socket's pause/resume. */
  stream(): ReadableStream<Uint8Array> {
    this.#take();
    return new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          this.#pulled = true;
          if (this.#bypassed) throw new TypeError("Body is unusable: Body has already been read");
          for (;;) {
            if (this.#error) throw this.#error;
            if (this.#chunks.length > 0) {
              const chunk = this.#chunks.shift()!;
              this.#queued -= chunk.length;
              if (this.#queued < HIGH_WATER_MARK) this.#resumeIfPaused();
              controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
              return;
            }
            if (this.#ended) {
              controller.close();
              return;
            }
            this.#resumeIfPaused();
            await this.#waitForData();
          }
        },
        cancel: () => {
          if (!this.#bypassed) this.discard();
        },
      },
      { highWaterMark: 0 },
    );
  }
}
