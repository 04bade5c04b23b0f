/**
 * One WebSocket on the node engine: a `ws` socket (handshake, parsing, permessage-deflate, close
 * handshake, pongs) seen through the Connection contract the hub and ServerWebSocket use on
 * both engines, with uWS's semantics: send() says SUCCESS, BACKPRESSURE or DROPPED (over
 * backpressureLimit, nothing sent); end() and close() report the close at once; `drain` comes
 * when what backpressure queued is written out.
 *
 * `ws` builds its sockets as ServerSocket, a subclass (the server's documented `WebSocket`
 * option) that hands its events to the connection by overriding emit(): no listener objects
 * or added properties per connection, which an idle connection would otherwise pay for.
 *
 * Without permessage-deflate on the connection, frames are written to the TCP socket directly
 * (shared with every subscriber of a publish, ws-topics.ts); `ws`'s own writes (pings, pongs,
 * close frames) go to the same socket synchronously, so the order holds. With it, everything
 * goes through `ws.send()`, whose queue keeps compressed and plain messages in order.
 */
import type { Socket } from "node:net";
import { WebSocket } from "ws";
import {
  SEND_BACKPRESSURE, SEND_DROPPED, SEND_SUCCESS, type Connection, type Message, type SendStatus, type TopicKey,
} from "../../websocket/connection.js";
import type { ServerWebSocket } from "../../websocket/websocket.js";
import type { WebSocketHub } from "../../websocket/websocket-hub.js";
import { buildFrame, FRAMES_SHARED, payloadOf, topicName, type Frame, type NodeTopicTree, type TopicSubscriber } from "./ws-topics.js";

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

/** `ws`'s socket, with its events going to its connection. */
export class ServerSocket extends WebSocket {
  connection: NodeConnection | null = null;

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    const connection = this.connection;
    if (connection === null) return super.emit(event, ...args);
    switch (event) {
      case "message":
        connection.receivedMessage(args[0] as Buffer, args[1] as boolean);
        return true;
      case "ping":
      case "pong":
        connection.receivedControl(args[0] as Buffer, event);
        return true;
      case "error":
        connection.failed(args[0] as Error);
        return true;
      case "close":
        connection.reportClose(args[0] as number, (args[1] as Buffer).toString("utf8"));
        return true;
      default:
        return super.emit(event, ...args);
    }
  }
}

export class NodeConnection implements Connection, TopicSubscriber {
  readonly ws: ServerSocket;
  readonly #socket: Socket;
  readonly #tree: NodeTopicTree<NodeConnection>;
  readonly #hub: WebSocketHub;
  /** The hub's socket object, reported to on every event. */
  readonly owner: ServerWebSocket<unknown>;
  /** Frames go to the TCP socket directly (no permessage-deflate here). */
  readonly #direct: boolean;
  /** Topics subscribed, in order (the tree answers isSubscribed). */
  #topics: string[] | null;
  /** Corked by a publish until the end of this tick, and by cork() callbacks running. */
  #turnCorked: boolean;
  #userCorks: number;
  /** Bytes written under a cork, not handed to the kernel yet: not backpressure. */
  #corkedBytes: number;
  /** A send reported backpressure: `drain` is owed once the queue empties. */
  #owesDrain: boolean;
  #closed: boolean;
  /** Idle checks since the client last sent anything (a message, ping or pong). */
  quietChecks: number;
  /** Write callback (made at the first backpressure): the queue may have emptied. */
  #written: (() => void) | null;

  constructor(
    ws: ServerSocket,
    socket: Socket,
    tree: NodeTopicTree<NodeConnection>,
    hub: WebSocketHub,
    owner: ServerWebSocket<unknown>,
  ) {
    this.ws = ws;
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
    this.quietChecks = 0;
    this.#written = null;
    ws.connection = this;
  }

  /** Called when the kernel took what was queued before: `drain` if it is all out, else wait again. */
  #flushed(): () => void {
    return (this.#written ??= () => {
      if (!this.#owesDrain || this.#closed) return;
      if (this.getBufferedAmount() === 0) {
        this.#owesDrain = false;
        this.#hub.drained(this.owner);
      } else if (this.#direct) {
        this.#socket.write(EMPTY, this.#written!);
      }
    });
  }

  /** Backpressure: `drain` is owed; an empty write's callback says when what is queued before it is out. */
  #oweDrain(): void {
    if (this.#owesDrain) return;
    this.#owesDrain = true;
    if (this.#direct) this.#socket.write(EMPTY, this.#flushed());
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
    else this.ws.send(payload, { binary: isBinary, compress, fin: true }, this.#flushed());
    return this.#status();
  }

  /** BACKPRESSURE when bytes are left queued (beyond what a cork holds for this tick). */
  #status(): SendStatus {
    if (this.getBufferedAmount() === 0) return SEND_SUCCESS;
    this.#oweDrain();
    return SEND_BACKPRESSURE;
  }

  #writeFrame(frame: Frame): void {
    const socket = this.#socket;
    if (this.#turnCorked || this.#userCorks > 0) this.#corkedBytes += frame.head.length + (frame.body?.length ?? 0);
    if (frame.body === null) {
      socket.write(frame.head);
      return;
    }
    socket.cork();
    socket.write(frame.head);
    socket.write(frame.body);
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
      this.ws.send(payload, { binary: isBinary, compress, fin: true }, this.#flushed());
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
    if (this.getBufferedAmount() > 0) this.#oweDrain();
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
    this.ws.ping(payloadOf(message), false);
    return this.#status();
  }

  pong(message: Message = EMPTY): SendStatus {
    if (this.#closed) return SEND_DROPPED;
    this.ws.pong(payloadOf(message), false);
    return this.#status();
  }

  end(code = 1000, reason: Message = EMPTY): void {
    if (this.#closed) return;
    const text = typeof reason === "string" ? reason : payloadOf(reason).toString("utf8");
    this.ws.close(code, text);
    this.reportClose(code, text);
  }

  /** Cuts the connection without a close frame (`ws`'s terminate). */
  close(): void {
    if (this.#closed) return;
    this.ws.terminate();
    this.reportClose(1006, "");
  }

  subscribe(topic: TopicKey): boolean {
    if (this.#closed || !this.#tree.add(topic, this)) return false;
    // A literal for the first: an array grown by push() starts with room for 17.
    if (this.#topics === null) this.#topics = [topicName(topic)];
    else this.#topics.push(topicName(topic));
    return true;
  }

  unsubscribe(topic: TopicKey): boolean {
    if (!this.#tree.remove(topic, this)) return false;
    const topics = this.#topics!;
    topics.splice(topics.indexOf(topicName(topic)), 1);
    if (topics.length === 0) this.#topics = null;
    return true;
  }

  isSubscribed(topic: TopicKey): boolean {
    return this.#topics !== null && this.#tree.has(topic, this);
  }

  getTopics(): string[] {
    return this.#topics === null ? [] : this.#topics.slice();
  }

  publish(topic: TopicKey, message: Message, isBinary = false, compress = false): boolean {
    return this.#tree.publish(topic, message, isBinary, compress, this);
  }

  /** A message from the client (`ws` gives it away: no copy needed). */
  receivedMessage(data: Buffer, isBinary: boolean): void {
    if (this.#closed) return;
    this.quietChecks = 0;
    this.#hub.received(this.owner, data, isBinary, true);
  }

  /** A ping (`ws` answered it) or a pong. */
  receivedControl(data: Buffer, kind: "ping" | "pong"): void {
    if (this.#closed) return;
    this.quietChecks = 0;
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
    this.#hub.closed(this.owner, code, reason);
  }
}
