/**
 * `ServerWebSocket`: Bun's API over one engine connection (connection.ts): a uWS socket, whose
 * framing, permessage-deflate, pings, topics and backpressure stay in C++, or the node
 * engine's over `ws`. The hub that wires a server's `websocket` handlers to the connections
 * is websocket-hub.ts.
 */
import { coreText } from "../engines/uws/core-bytes.js";
import { toMessage, type Subscriber } from "./pubsub.js";
import type { ServerWebSocket as ServerWebSocketType, WebSocketData } from "../types.js";
import type { WebSocketHub } from "./websocket-hub.js";
import { SEND_BACKPRESSURE, SEND_DROPPED, SEND_SUCCESS, type Connection } from "./connection.js";

/**
 * With `sendPings`, quiet sockets are pinged this often. The core pings only shortly before its
 * own idle timeout (at 104 s of the default 120 s), too late for proxies and load balancers
 * that drop connections quiet for 60 s.
 */
export const KEEPALIVE_PING_MS = 30_000;

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

/**
 * Receives a socket's events instead of the server's `websocket` handlers: Deno's
 * `upgradeWebSocket()` socket installs one.
 */
export interface SocketListener {
  onOpen(): void;
  onMessage(message: ArrayBuffer | Uint8Array, isBinary: boolean): void;
  onClose(code: number, reason: string): void;
  onDrain(): void;
  onPong(): void;
}

let warnedPong = false;
/** UTF-8 (the engine has validated it already). */
export const textDecoder = new TextDecoder();

export class ServerWebSocket<T = undefined> implements ServerWebSocketType<T>, Subscriber {
  data: T;
  binaryType: "nodebuffer" | "arraybuffer" | "uint8array";
  #native: Connection | null;
  #state: 0 | 1 | 2 | 3;
  #remoteAddress: string;
  readonly #hub: WebSocketHub;
  /** Deno's socket, when this connection was made by upgradeWebSocket(). */
  listener: SocketListener | null;
  /** `message` handlers started but not settled, and messages waiting for one (messageConcurrency). */
  pendingMessages: number;
  running: number;
  queued: Array<string | Buffer> | null;
  /** Heard from since the last keepalive tick. */
  active: boolean;
  /** Topics held, mirrored only when a cross-thread hub needs them at close (else null). */
  topics: Set<string> | null;

  constructor(hub: WebSocketHub, data: T, listener: SocketListener | null) {
    this.data = data;
    this.binaryType = "nodebuffer";
    this.#native = null;
    this.#state = CONNECTING;
    this.#remoteAddress = "";
    this.#hub = hub;
    this.listener = listener;
    this.pendingMessages = 0;
    this.running = 0;
    this.queued = null;
    this.active = true;
    this.topics = null;
  }

  /** Subscriber: the engine's connection while it is open. */
  get native(): Connection | null {
    return this.#native;
  }

  attach(native: Connection, remoteAddress: string): void {
    this.#native = native;
    this.#state = OPEN;
    this.#remoteAddress = remoteAddress;
  }

  detach(): void {
    this.#native = null;
    this.#state = CLOSED;
  }

  get readyState(): 0 | 1 | 2 | 3 {
    return this.#state;
  }
  get remoteAddress(): string {
    return this.#remoteAddress;
  }
  get subscriptions(): string[] {
    return this.#native === null ? [] : this.#native.getTopics();
  }

  send(data: WebSocketData, compress = false): number {
    return this.#send(data, typeof data !== "string", compress);
  }
  sendText(data: string, compress = false): number {
    if (typeof data !== "string") throw new TypeError("uwserve: sendText() takes a string");
    return this.#send(data, false, compress);
  }
  sendBinary(data: ArrayBufferView | ArrayBuffer | SharedArrayBuffer, compress = false): number {
    if (typeof data === "string") throw new TypeError("uwserve: sendBinary() takes bytes (ArrayBuffer or a typed array), not a string");
    return this.#send(data, true, compress);
  }

  #send(data: WebSocketData, isBinary: boolean, compress: boolean): number {
    const native = this.#native;
    if (native === null || this.#state !== OPEN) return 0;
    const message = toMessage(data);
    const status = native.send(message, isBinary, compress);
    if (status !== SEND_DROPPED && this.#hub.observer?.counting === true) this.#hub.observer.sent();
    if (status === SEND_SUCCESS) return typeof message === "string" ? Buffer.byteLength(message) : message.byteLength;
    if (status === SEND_BACKPRESSURE) {
      this.#hub.publisher.congested.add(this);
      return -1;
    }
    if (status === SEND_DROPPED) {
      this.#hub.publisher.countDrop(null);
      this.reportDrop(data, null);
    }
    return 0;
  }

  publish(topic: string, data: WebSocketData, compress = false): number {
    return this.#publish(topic, data, typeof data !== "string", compress);
  }
  publishText(topic: string, data: string, compress = false): number {
    return this.#publish(topic, data, false, compress);
  }
  publishBinary(topic: string, data: ArrayBufferView | ArrayBuffer | SharedArrayBuffer, compress = false): number {
    return this.#publish(topic, data, true, compress);
  }
  #publish(topic: string, data: WebSocketData, isBinary: boolean, compress: boolean): number {
    checkTopic(topic);
    // Bun: a closed socket still publishes, through the server.
    return this.#hub.publisher.publish(topic, data, isBinary, compress, this.#native === null ? null : this);
  }

  subscribe(topic: string): void {
    checkTopic(topic);
    const native = this.#native;
    if (native === null) return;
    const relay = this.#hub.publisher.relay;
    const key = coreText(topic);
    if (relay !== null && !native.isSubscribed(key)) {
      // Other threads learn that this one now wants the topic.
      relay.subscribe(topic);
      (this.topics ??= new Set()).add(topic);
    }
    native.subscribe(key);
    this.#hub.publisher.subscribedSocket(this);
  }
  unsubscribe(topic: string): void {
    checkTopic(topic);
    const native = this.#native;
    if (native === null) return;
    const relay = this.#hub.publisher.relay;
    if (relay !== null && this.topics?.delete(topic) === true) relay.unsubscribe(topic);
    native.unsubscribe(coreText(topic));
    if (native.getTopics().length === 0) this.#hub.publisher.forget(this);
  }
  isSubscribed(topic: string): boolean {
    checkTopic(topic);
    return this.#native !== null && this.#native.isSubscribed(coreText(topic));
  }

  /** Runs `callback` with this socket corked, so its sends leave in one write; returns its result. */
  cork<R>(callback: (ws: this) => R): R {
    const native = this.#native;
    if (native === null) return callback(this);
    let result!: R;
    native.cork(() => {
      result = callback(this);
    });
    return result;
  }

  /** Sends a close frame (default 1000) and closes; the `close` handler runs at once. */
  close(code?: number, reason?: string): void {
    const native = this.#native;
    if (native === null || this.#state !== OPEN) return;
    const closeCode = code === undefined ? 1000 : checkCloseCode(code);
    const closeReason = reason === undefined ? "" : String(reason);
    if (Buffer.byteLength(closeReason) > 123) throw new RangeError("uwserve: a close reason is at most 123 bytes of UTF-8");
    this.#state = CLOSING;
    native.end(closeCode, coreText(closeReason));
  }

  /** Cuts the connection without a close frame; the `close` handler sees 1006. */
  terminate(): void {
    const native = this.#native;
    if (native === null) return;
    this.#state = CLOSING;
    native.close();
  }

  ping(data?: WebSocketData): number {
    return this.#control("ping", data);
  }

  /**
   * An unsolicited pong. The node engine sends it; uWebSockets.js sends only text, binary and
   * ping frames (pings are answered with pongs by the core itself): there it reports 0, as a
   * dropped message.
   */
  pong(data?: WebSocketData): number {
    const native = this.#native;
    if (native === null || native.pong !== undefined) return this.#control("pong", data);
    if (!warnedPong) {
      warnedPong = true;
      process.emitWarning("uwserve: ws.pong() sends nothing: the uWS core has no API for unsolicited pongs (it answers pings itself)", {
        code: "UWSERVE_WS_PONG_UNSUPPORTED",
      });
    }
    return 0;
  }

  /** A ping or pong frame: its bytes, -1 when queued under backpressure, 0 when closed or dropped. */
  #control(kind: "ping" | "pong", data: WebSocketData | undefined): number {
    const native = this.#native;
    if (native === null || this.#state !== OPEN) return 0;
    const message = data === undefined ? "" : toMessage(data);
    const status = kind === "ping" ? native.ping(message) : native.pong!(message);
    if (status === SEND_BACKPRESSURE) return -1;
    if (status === SEND_DROPPED) return 0;
    return typeof message === "string" ? Buffer.byteLength(message) : message.byteLength;
  }

  getBufferedAmount(): number {
    return this.#native === null ? 0 : this.#native.getBufferedAmount();
  }

  /** Subscriber: a message for this socket was dropped (over backpressureLimit). */
  reportDrop(data: WebSocketData, topic: string | null): void {
    this.#hub.onDropped(this, data, topic);
  }
}

/** A Buffer with an ArrayBuffer of its own (so `.buffer` is exactly the message). */
export function copyBytes(message: ArrayBuffer | Uint8Array): Buffer {
  const copy = Buffer.allocUnsafeSlow(message.byteLength);
  copy.set(message instanceof ArrayBuffer ? new Uint8Array(message) : message);
  return copy;
}

export function toBinaryType(socket: ServerWebSocket<unknown>, value: Buffer): Buffer | ArrayBuffer | Uint8Array {
  if (socket.binaryType === "nodebuffer") return value;
  // The hub hands over whole Buffers (copyBytes, or the node engine's own when whole).
  if (socket.binaryType === "arraybuffer") return value.buffer as ArrayBuffer;
  return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

export function checkTopic(topic: unknown): void {
  if (typeof topic !== "string") throw new TypeError(`uwserve: a topic must be a string, not ${topic === null ? "null" : typeof topic}`);
}

/** RFC 6455 §7.4: 1000–1003, 1007–1014 and 3000–4999 may be sent; the rest are reserved. */
function checkCloseCode(code: unknown): number {
  if (
    typeof code !== "number" ||
    !Number.isInteger(code) ||
    !(code === 1000 || code === 1001 || code === 1002 || code === 1003 || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999))
  ) {
    throw new RangeError(`uwserve: ${String(code)} is not a close code a server may send (1000–1003, 1007–1014, 3000–4999)`);
  }
  return code;
}

export { CLOSED, CLOSING, CONNECTING, OPEN };
