/**
 * WebSocket test helpers: a `ws` client that records everything it gets (messages, pings,
 * pongs, the close code) with deadline-bound waits, a raw TCP WebSocket client that can stop
 * reading (for backpressure), and a server starter that upgrades every request.
 */
import type { IncomingMessage } from "node:http";
import net from "node:net";
import WebSocket, { type ClientOptions } from "ws";
import type { Server } from "../../dist/index.js";
import { start } from "./server.js";

/** A promise with its resolve/reject, for events the test waits on. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (reason: unknown) => void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Waits until `predicate()` holds, re-checked on every `notify()` of `signal` and every 20 ms. */
async function until(predicate: () => boolean, ms: number, what: () => string, signal: Set<() => void>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what()}`);
    await new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        signal.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, Math.min(left, 20));
      signal.add(wake);
    });
  }
}

function notify(signal: Set<() => void>): void {
  for (const wake of [...signal]) wake();
}

/** One message the client received: text as a string, binary as a Buffer. */
export interface WsMessage {
  data: string | Buffer;
  binary: boolean;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

/** A connected `ws` client that records what it receives. */
export class WsClient {
  readonly ws: WebSocket;
  /** The 101 response (its headers: Set-Cookie, Sec-WebSocket-Protocol, …). */
  readonly response: IncomingMessage;
  readonly messages: WsMessage[] = [];
  readonly pings: Buffer[] = [];
  readonly pongs: Buffer[] = [];
  readonly errors: Error[] = [];
  /** Settles when the connection is closed, whatever the reason. */
  readonly closed: Promise<CloseInfo>;
  closeInfo: CloseInfo | null = null;
  #read = 0;
  #signal = new Set<() => void>();

  constructor(ws: WebSocket, response: IncomingMessage) {
    this.ws = ws;
    this.response = response;
    const done = deferred<CloseInfo>();
    this.closed = done.promise;
    ws.on("message", (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
      this.messages.push({ data: isBinary ? buf : buf.toString("utf8"), binary: isBinary });
      notify(this.#signal);
    });
    ws.on("ping", (data: Buffer) => {
      this.pings.push(data);
      notify(this.#signal);
    });
    ws.on("pong", (data: Buffer) => {
      this.pongs.push(data);
      notify(this.#signal);
    });
    ws.on("error", (e: Error) => {
      this.errors.push(e);
      notify(this.#signal);
    });
    ws.on("close", (code: number, reason: Buffer) => {
      this.closeInfo = { code, reason: reason.toString("utf8") };
      done.resolve(this.closeInfo);
      notify(this.#signal);
    });
  }

  /** Waits until `predicate()` holds (re-checked on every event). */
  until(predicate: () => boolean, ms: number, what: string): Promise<void> {
    return until(predicate, ms, () => `${what} (client has ${this.messages.length} messages, close: ${JSON.stringify(this.closeInfo)})`, this.#signal);
  }

  /** The next message not yet returned by next()/nextText(). */
  async next(ms = 5000): Promise<WsMessage> {
    await this.until(() => this.messages.length > this.#read, ms, `message #${this.#read + 1}`);
    return this.messages[this.#read++]!;
  }

  /** The next message, which must be text. */
  async nextText(ms = 5000): Promise<string> {
    const message = await this.next(ms);
    if (message.binary) throw new Error(`expected a text message, got binary ${message.data.toString("hex")}`);
    return message.data as string;
  }

  /** The next message, which must be binary. */
  async nextBinary(ms = 5000): Promise<Buffer> {
    const message = await this.next(ms);
    if (!message.binary) throw new Error(`expected a binary message, got text ${JSON.stringify(message.data)}`);
    return message.data as Buffer;
  }

  /** Waits until at least `n` messages arrived in all. */
  async waitMessages(n: number, ms = 5000): Promise<WsMessage[]> {
    await this.until(() => this.messages.length >= n, ms, `${n} messages`);
    return this.messages;
  }

  /** Waits for the close, with a deadline. */
  async waitClose(ms = 5000): Promise<CloseInfo> {
    await this.until(() => this.closeInfo !== null, ms, "the connection to close");
    return this.closeInfo!;
  }

  /** Sends and resolves once `ws` has handed the frame to the socket. */
  send(data: string | Buffer | ArrayBuffer | Uint8Array, options: { binary?: boolean; compress?: boolean } = {}): Promise<void> {
    return new Promise((resolve, reject) => this.ws.send(data, options, (e) => (e ? reject(e) : resolve())));
  }

  close(code?: number, reason?: string): void {
    this.ws.close(code, reason);
  }

  terminate(): void {
    this.ws.terminate();
  }

  get extensions(): string {
    return this.ws.extensions;
  }

  get protocol(): string {
    return this.ws.protocol;
  }
}

export type WsTarget = Server | number;
const portOf = (target: WsTarget) => (typeof target === "number" ? target : target.port);

/** `ws://127.0.0.1:port/path`. */
export function wsUrl(target: WsTarget, path = "/"): string {
  return `ws://127.0.0.1:${portOf(target)}${path}`;
}

export interface ConnectOptions extends ClientOptions {
  protocols?: string | string[];
  /** Deadline for the handshake (default 5 s). */
  ms?: number;
}

/** Opens a `ws` client and resolves once it is open; rejects (with the status) when the server refuses. */
export function connectWs(target: WsTarget, path = "/", options: ConnectOptions = {}): Promise<WsClient> {
  const { protocols, ms = 5000, ...clientOptions } = options;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(target, path), protocols, { perMessageDeflate: false, ...clientOptions });
    let response: IncomingMessage | null = null;
    let client: WsClient | null = null;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`timed out after ${ms} ms opening a WebSocket to ${path}`));
    }, ms);
    ws.once("upgrade", (res: IncomingMessage) => {
      response = res;
      // Listen from the very first frame on: the server may send in open().
      client = new WsClient(ws, res);
    });
    ws.once("open", () => {
      clearTimeout(timer);
      resolve(client ?? new WsClient(ws, response!));
    });
    ws.once("unexpected-response", (_req, res: IncomingMessage) => {
      clearTimeout(timer);
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => reject(Object.assign(new Error(`WebSocket to ${path} refused: ${res.statusCode} ${Buffer.concat(chunks).toString()}`), { status: res.statusCode })));
      res.on("error", () => reject(new Error(`WebSocket to ${path} refused: ${res.statusCode}`)));
      ws.terminate();
    });
    ws.once("error", (e) => {
      clearTimeout(timer);
      if (client === null) reject(e);
    });
  });
}

/** What a refused upgrade answered. */
export interface Refusal {
  status: number;
  headers: IncomingMessage["headers"];
  body: string;
}

/** Attempts an upgrade that the server is expected to refuse; resolves with its HTTP response, rejects if it upgraded. */
export function refusedUpgrade(target: WsTarget, path = "/", options: ConnectOptions = {}): Promise<Refusal> {
  const { protocols, ms = 5000, ...clientOptions } = options;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(target, path), protocols, { perMessageDeflate: false, ...clientOptions });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`timed out after ${ms} ms waiting for the refusal of ${path}`));
    }, ms);
    ws.once("open", () => {
      clearTimeout(timer);
      ws.terminate();
      reject(new Error(`expected ${path} to be refused, but it upgraded`));
    });
    ws.once("unexpected-response", (_req, res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        clearTimeout(timer);
        ws.terminate();
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() });
      });
    });
    ws.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** Opens `n` clients, `batch` at a time. */
export async function connectMany(target: WsTarget, n: number, path: (i: number) => string, batch = 25): Promise<WsClient[]> {
  const clients: WsClient[] = [];
  for (let i = 0; i < n; i += batch) {
    const group = await Promise.all(Array.from({ length: Math.min(batch, n - i) }, (_, j) => connectWs(target, path(i + j))));
    clients.push(...group);
  }
  return clients;
}

/** Terminates every client (for finally blocks). */
export function closeAll(clients: Iterable<WsClient | RawWs | null | undefined>): void {
  for (const c of clients) {
    if (c instanceof WsClient) c.terminate();
    else c?.destroy();
  }
}

/**
 * A Bun-style server on 127.0.0.1:0 whose fetch upgrades every request (data: `data(req)`,
 * default `{ url }`) and answers 400 "not a websocket" when the upgrade is refused.
 */
export function serveWs(websocket: Record<string, unknown>, options: { data?: (req: Request) => unknown; [key: string]: unknown } = {}): Server {
  const { data = (req: Request) => ({ url: req.url }), ...rest } = options;
  return start({
    fetch(req: Request, server: any) {
      if (server.upgrade(req, { data: data(req) })) return undefined;
      return new Response("not a websocket", { status: 400 });
    },
    websocket,
    ...rest,
  });
}

/** A frame the raw client received (server frames are never masked). */
export interface RawFrame {
  fin: boolean;
  /** RSV1: set on the first frame of a permessage-deflate compressed message. */
  rsv1: boolean;
  opcode: number;
  payload: Buffer;
}

export const OP = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

/** Encodes a client frame (masked, as RFC 6455 requires from clients). */
export function clientFrame(opcode: number, payload: Buffer | string = Buffer.alloc(0), fin = true): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload) : payload;
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  let head: Buffer;
  if (body.length < 126) {
    head = Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | body.length]);
  } else if (body.length < 65536) {
    head = Buffer.alloc(4);
    head[0] = (fin ? 0x80 : 0) | opcode;
    head[1] = 0x80 | 126;
    head.writeUInt16BE(body.length, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = (fin ? 0x80 : 0) | opcode;
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(body.length), 2);
  }
  const masked = Buffer.alloc(body.length);
  for (let i = 0; i < body.length; i++) masked[i] = body[i]! ^ mask[i & 3]!;
  return Buffer.concat([head, mask, masked]);
}

/** A close frame payload: code then UTF-8 reason. */
export function closePayload(code: number, reason = ""): Buffer {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code, 0);
  b.write(reason, 2);
  return b;
}

/**
 * A WebSocket client on a raw TCP socket: does the handshake by hand, then parses the frames
 * the server sends. `pause()` stops reading from the kernel (the server then hits backpressure),
 * `resume()` reads again. Payloads are kept unless `keepPayloads` is false (then only sizes).
 */
export class RawWs {
  readonly socket: net.Socket;
  /** The handshake response head, latin1. */
  readonly head: string;
  readonly frames: RawFrame[] = [];
  /** Bytes of frame payload received so far. */
  payloadBytes = 0;
  /** Raw bytes received after the handshake. */
  bytesReceived = 0;
  closed = false;
  readonly keepPayloads: boolean;
  #chunks: Buffer[] = [];
  #length = 0;
  /** Bytes needed before the next parse attempt can make progress. */
  #need = 2;
  #signal = new Set<() => void>();

  private constructor(socket: net.Socket, head: string, rest: Buffer, keepPayloads: boolean) {
    this.socket = socket;
    this.head = head;
    this.keepPayloads = keepPayloads;
    socket.on("data", (d: Buffer) => this.#push(d));
    socket.on("error", () => {});
    socket.on("close", () => {
      this.closed = true;
      notify(this.#signal);
    });
    if (rest.length > 0) this.#push(rest);
  }

  /** Connects, sends the upgrade request, resolves after a 101 (rejects with the head otherwise). */
  static open(port: number, path = "/", options: { headers?: Record<string, string>; ms?: number; keepPayloads?: boolean } = {}): Promise<RawWs> {
    const { headers = {}, ms = 5000, keepPayloads = true } = options;
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1");
      let got = Buffer.alloc(0);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`timed out after ${ms} ms waiting for the 101 to ${path}; got ${JSON.stringify(got.toString("latin1"))}`));
      }, ms);
      const onData = (d: Buffer) => {
        got = Buffer.concat([got, d]);
        const end = got.indexOf("\r\n\r\n");
        if (end < 0) return;
        clearTimeout(timer);
        socket.off("data", onData);
        socket.pause();
        const head = got.subarray(0, end).toString("latin1");
        if (!/^HTTP\/1\.1 101/.test(head)) {
          socket.destroy();
          reject(new Error(`expected 101, got ${JSON.stringify(head)}`));
          return;
        }
        const raw = new RawWs(socket, head, got.subarray(end + 4), keepPayloads);
        socket.resume();
        resolve(raw);
      };
      socket.on("data", onData);
      socket.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      socket.once("connect", () => {
        let request =
          `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n`;
        for (const [name, value] of Object.entries(headers)) request += `${name}: ${value}\r\n`;
        socket.write(request + "\r\n");
      });
    });
  }

  #push(d: Buffer): void {
    this.bytesReceived += d.length;
    this.#chunks.push(d);
    this.#length += d.length;
    this.#parse();
    notify(this.#signal);
  }

  #parse(): void {
    for (;;) {
      if (this.#length < this.#need) return;
      let buf = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
      this.#chunks = [buf];
      const b1 = buf[1]! & 0x7f;
      let offset = 2;
      let size = b1;
      if (b1 === 126) {
        if (buf.length < 4) return void (this.#need = 4);
        size = buf.readUInt16BE(2);
        offset = 4;
      } else if (b1 === 127) {
        if (buf.length < 10) return void (this.#need = 10);
        size = Number(buf.readBigUInt64BE(2));
        offset = 10;
      }
      if (buf.length < offset + size) {
        // Wait for the whole frame before concatenating again.
        this.#need = offset + size;
        return;
      }
      this.#need = 2;
      const payload = buf.subarray(offset, offset + size);
      this.frames.push({ fin: (buf[0]! & 0x80) !== 0, rsv1: (buf[0]! & 0x40) !== 0, opcode: buf[0]! & 0x0f, payload: this.keepPayloads ? Buffer.from(payload) : Buffer.alloc(0) });
      this.payloadBytes += size;
      buf = buf.subarray(offset + size);
      this.#chunks = buf.length > 0 ? [buf] : [];
      this.#length = buf.length;
    }
  }

  /** Data frames (text/binary) received so far. */
  get dataFrames(): RawFrame[] {
    return this.frames.filter((f) => f.opcode === OP.text || f.opcode === OP.binary || f.opcode === OP.continuation);
  }

  /** The close frame received, if any: its code and reason. */
  get closeFrame(): CloseInfo | null {
    const f = this.frames.find((x) => x.opcode === OP.close);
    if (!f) return null;
    return { code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005, reason: f.payload.subarray(2).toString("utf8") };
  }

  until(predicate: () => boolean, ms: number, what: string): Promise<void> {
    return until(predicate, ms, () => `${what} (raw client has ${this.frames.length} frames, ${this.bytesReceived} bytes, closed: ${this.closed})`, this.#signal);
  }

  write(data: Buffer): void {
    this.socket.write(data);
  }

  sendText(text: string): void {
    this.write(clientFrame(OP.text, text));
  }

  sendBinary(data: Buffer): void {
    this.write(clientFrame(OP.binary, data));
  }

  sendClose(code = 1000, reason = ""): void {
    this.write(clientFrame(OP.close, closePayload(code, reason)));
  }

  /** Stops reading from the socket: the kernel buffers fill and the server sees backpressure. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
