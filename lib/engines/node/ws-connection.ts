/**
 * One WebSocket on the node engine: a `ws` socket (handshake, parsing, permessage-deflate, close
 * handshake, pongs) seen through the Connection contract the hub and ServerWebSocket use on
 * both engines, with uWS's semantics: send() says SUCCESS, BACKPRESSURE or DROPPED (over
 * backpressureLimit, nothing sent); end() and close() report the close at once; `drain` comes
 * when what backpressure queued is written out.
 *
 * Without permessage-deflate on the connection, frames are written to the TCP socket directly
 * (shared with every subscriber of a publish, ws-topics.ts); `ws`'s own writes (pings, pongs,
 * close frames) go to the same socket synchronously, so the order holds. With it, everything
 * goes through `ws.send()`, whose queue keeps compressed and plain messages in order.
 */
import type { Socket } from "node:net";
import type { WebSocket } from "ws";
import {
  SEND_BACKPRESSURE, SEND_DROPPED, SEND_SUCCESS, type Connection, type Message, type SendStatus, type TopicKey,
} from "../../websocket/connection.js";
import type { ServerWebSocket } from "../../websocket/websocket.js";
import type { WebSocketHub } from "../../websocket/websocket-hub.js";
import { buildFrame, FRAMES_SHARED, payloadOf, type Frame, type NodeTopicTree, type TopicSubscriber } from "./ws-topics.js";

const EMPTY = Buffer.alloc(0);
/**
 * A publish's tick-long cork is written through once it holds this much: a flood goes out in
 * big writes as it is published, and backpressure shows when the kernel refuses, as on uWS
 * (whose cork buffer is 16 KiB).
 */
const CORK_FLUSH_BYTES = 64 * 1024;

/** `ws`'s protocol errors (its documented error codes) as the close codes it sends for them. */
function closeCodeOf(err: Error & { code?: string }): number {
  if (err.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") return 1009;
  if (err.code === "WS_ERR_INVALID_UTF8") return 1007;
  return 1002;
}

export class NodeConnection implements Connection, TopicSubscriber {
  readonly ws: WebSocket;
  readonly #socket: Socket;
  readonly #tree: NodeTopicTree<NodeConnection>;
  readonly #hub: WebSocketHub;
  /** The hub's socket object, reported to on every event. */
  readonly owner: ServerWebSocket<unknown>;
  /** Frames go to the TCP socket directly (no permessage-deflate here). */
  readonly #direct: boolean;
  #topics: Set<string> | null;
  /** Corked by a publish until the end of this tick, and by cork() callbacks running. */
  #turnCorked: boolean;
  #userCorks: number;
  /** Bytes written under a cork, not handed to the kernel yet: not backpressure. */
  #corkedBytes: number;
  /** A send reported backpressure: `drain` is owed once the queue empties. */
  #owesDrain: boolean;
  #closed: boolean;
  /** Traffic from the client since the last idle check, and checks without any. */
  heard: boolean;
  quietChecks: number;
  /** Write callback: the queue may have emptied. */
  readonly #written: () => void;
  readonly #gone: (connection: NodeConnection) => void;

  constructor(
    ws: WebSocket,
    socket: Socket,
    tree: NodeTopicTree<NodeConnection>,
    hub: WebSocketHub,
    owner: ServerWebSocket<unknown>,
    gone: (connection: NodeConnection) => void,
  ) {
    this.ws = ws;
    this.#gone = gone;
    this.#socket = socket;
    this.#tree = tree;
    this.#hub = hub;
    this.owner = owner;
    this.#direct = FRAMES_SHARED && ws.extensions === "";
    this.#topics = null;
    this.#turnCorked = false;
    this.#userCorks = 0;
    this.#corkedBytes = 0;
    this.#owesDrain = false;
    this.#closed = false;
    this.heard = true;
    this.quietChecks = 0;
    this.#written = () => {
      if (this.#owesDrain && !this.#closed && this.ws.bufferedAmount === 0) {
        this.#owesDrain = false;
        this.#hub.drained(this.owner);
      }
    };
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** What the kernel hasn't taken (what a cork holds for this tick is not counted). */
  getBufferedAmount(): number {
    return this.#closed ? 0 : this.ws.bufferedAmount - this.#corkedBytes;
  }

  send(message: Message, isBinary = false, compress = false): SendStatus {
    if (this.#closed) return SEND_DROPPED;
    if (this.getBufferedAmount() > this.#hub.options.backpressureLimit) return SEND_DROPPED;
    const payload = payloadOf(message);
    if (this.#direct) this.#writeFrame(buildFrame(payload, isBinary));
    else this.ws.send(payload, { binary: isBinary, compress, fin: true }, this.#written);
    return this.#status();
  }

  /** BACKPRESSURE when bytes are left queued (beyond what a cork holds for this tick). */
  #status(): SendStatus {
    if (this.getBufferedAmount() === 0) return SEND_SUCCESS;
    this.#owesDrain = true;
    return SEND_BACKPRESSURE;
  }

  #writeFrame(frame: Frame): void {
    const socket = this.#socket;
    if (this.#turnCorked || this.#userCorks > 0) this.#corkedBytes += frame.head.length + (frame.body?.length ?? 0);
    if (frame.body === null) {
      socket.write(frame.head, this.#written);
      return;
    }
    socket.cork();
    socket.write(frame.head);
    socket.write(frame.body, this.#written);
    socket.uncork();
  }

  /** A publish: the shared frame, corked until the tick ends. Over the limit it is dropped, as uWS does. */
  deliver(frame: () => Frame, payload: Buffer, isBinary: boolean, compress: boolean): void {
    if (this.#closed) return;
    if (this.getBufferedAmount() > this.#hub.options.backpressureLimit) {
      // The publisher counted and reported it when it knew this socket was congested.
      if (this.#hub.options.closeOnBackpressureLimit) queueMicrotask(() => this.close());
      return;
    }
    if (!this.#direct) {
      this.ws.send(payload, { binary: isBinary, compress, fin: true }, this.#written);
      return;
    }
    const socket = this.#socket;
    if (!this.#turnCorked) {
      this.#turnCorked = true;
      socket.cork();
      this.#tree.corkedForTurn(this);
    }
    this.#writeFrame(frame());
    if (this.#corkedBytes >= CORK_FLUSH_BYTES && this.#userCorks === 0) {
      socket.uncork();
      this.#corkedBytes = 0;
      socket.cork();
    }
  }

  uncorkTurn(): void {
    if (!this.#turnCorked) return;
    this.#turnCorked = false;
    this.#socket.uncork();
    if (this.#userCorks === 0) this.#corkedBytes = 0;
    if (this.getBufferedAmount() > 0) this.#owesDrain = true;
  }

  cork(callback: () => void): void {
    this.#userCorks++;
    this.#socket.cork();
    try {
      callback();
    } finally {
      this.#userCorks--;
      this.#socket.uncork();
      if (this.#userCorks === 0 && !this.#turnCorked) this.#corkedBytes = 0;
    }
  }

  ping(message: Message = EMPTY): SendStatus {
    if (this.#closed) return SEND_DROPPED;
    this.ws.ping(payloadOf(message), false, this.#written);
    return this.#status();
  }

  pong(message: Message = EMPTY): SendStatus {
    if (this.#closed) return SEND_DROPPED;
    this.ws.pong(payloadOf(message), false, this.#written);
    return this.#status();
  }

  end(code = 1000, reason: Message = EMPTY): void {
    if (this.#closed) return;
    const text = typeof reason === "string" ? reason : payloadOf(reason).toString("utf8");
    this.ws.close(code, text);
    this.reportClose(code, text);
  }

  close(): void {
    if (this.#closed) return;
    this.ws.terminate();
    this.reportClose(1006, "");
  }

  subscribe(topic: TopicKey): boolean {
    if (this.#closed || !this.#tree.add(topic, this)) return false;
    (this.#topics ??= new Set()).add(typeof topic === "string" ? topic : topic.toString("utf8"));
    return true;
  }

  unsubscribe(topic: TopicKey): boolean {
    if (!this.#tree.remove(topic, this)) return false;
    this.#topics?.delete(typeof topic === "string" ? topic : topic.toString("utf8"));
    return true;
  }

  isSubscribed(topic: TopicKey): boolean {
    return this.#topics !== null && this.#topics.has(typeof topic === "string" ? topic : topic.toString("utf8"));
  }

  getTopics(): string[] {
    return this.#topics === null ? [] : [...this.#topics];
  }

  publish(topic: TopicKey, message: Message, isBinary = false, compress = false): boolean {
    return this.#tree.publish(topic, message, isBinary, compress, this);
  }

  /** A message from the client (`ws` gives it away: no copy needed). */
  receivedMessage(data: Buffer, isBinary: boolean): void {
    if (this.#closed) return;
    this.heard = true;
    this.#hub.received(this.owner, data, isBinary, true);
  }

  /** A ping (`ws` answered it) or a pong. */
  receivedControl(data: Buffer, kind: "ping" | "pong"): void {
    if (this.#closed) return;
    this.heard = true;
    this.#hub.pinged(this.owner, data, kind);
  }

  /** `ws` reported a protocol error: it sent the close frame with the code; report that code now. */
  failed(err: Error): void {
    const code = closeCodeOf(err);
    const reason = code === 1009 ? `Message too big (maxPayloadLength is ${this.#hub.options.maxPayloadLength} bytes)` : err.message;
    this.reportClose(code, reason);
  }

  /** The connection is over: leave every topic and tell the hub (once). */
  reportClose(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#topics !== null) for (const topic of this.#topics) this.#tree.remove(topic, this);
    this.#topics = null;
    this.#gone(this);
    this.#hub.closed(this.owner, code, reason);
  }
}
