/**
 * The hub of one server's WebSockets, on either engine: the engine's connection events wired to
 * the `websocket` handlers (or a Deno socket's listener), message concurrency and inbound
 * limits, keep-alive pings, topics through the publisher, and the counts a graceful stop waits
 * on. The engine calls opened/received/drained/pinged/closed (the uws engine from its
 * WebSocketBehavior, engines/uws/ws-behavior.ts; the node engine from `ws`'s events).
 */
import { receiving, TopicPublisher } from "./pubsub.js";
import type { WebSocketData } from "../types.js";
import type { ResolvedWebSocketOptions } from "./websocket-options.js";
import type { Backplane } from "./backplane.js";
import { isPromiseLike } from "../core/_promise.js";
import type { Connection, WebSocketTransport } from "./connection.js";
import type { WebSocketObserver } from "../observability/ws-observer.js";
import { coreText } from "../engines/uws/core-bytes.js";
import { checkTopic, copyBytes, KEEPALIVE_PING_MS, textDecoder, toBinaryType, OPEN, type ServerWebSocket } from "./websocket.js";

/**
 * One server's WebSockets: the engine's transport, the open sockets, the publisher, and the
 * calls into the user's handlers (each guarded: an exception is reported, never fatal).
 */
export class WebSocketHub {
  readonly options: ResolvedWebSocketOptions;
  readonly publisher: TopicPublisher;
  /** Sockets between open and close. */
  readonly open: Set<ServerWebSocket<unknown>>;
  /** Called when the last socket closed during a graceful stop. */
  onIdle: (() => void) | null;
  /** Told the number of open sockets whenever it changes (shared counters of `--workers`). */
  onCount: ((open: number) => void) | null;
  /** Telemetry and the diagnostics channels (set by the server). */
  observer: WebSocketObserver | null;
  readonly transport: WebSocketTransport;
  #keepalive: ReturnType<typeof setInterval> | null;

  constructor(transport: WebSocketTransport, options: ResolvedWebSocketOptions, relay: Backplane | null = null) {
    this.transport = transport;
    this.options = options;
    this.publisher = new TopicPublisher(transport.topics, options.backpressureLimit, options.publishToSelf, relay);
    this.open = new Set();
    this.onIdle = null;
    this.onCount = null;
    this.observer = null;
    this.#keepalive = null;
  }

  get pending(): number {
    return this.open.size;
  }

  publish(topic: string, data: WebSocketData, compress: boolean): number {
    checkTopic(topic);
    return this.publisher.publish(topic, data, typeof data !== "string", compress, null);
  }

  /** Subscribers of `topic` here, plus those of the other workers when a backplane knows them. */
  subscriberCount(topic: string): number {
    checkTopic(topic);
    const local = this.transport.topics.numSubscribers(coreText(topic));
    const relay = this.publisher.relay;
    return relay?.remoteSubscribers === undefined ? local : local + relay.remoteSubscribers(topic);
  }

  /** Graceful stop: a close frame with 1001 Going Away to every open socket. */
  goingAway(): void {
    for (const socket of [...this.open]) socket.close(1001, "Server is shutting down");
  }

  /** Forced stop: the app closes every socket; forget them all. */
  shutdown(): void {
    this.publisher.close();
    this.#stopKeepalive();
    this.publisher.relay?.close();
  }

  /** One timer for all sockets: pings those not heard from since the last tick. */
  #startKeepalive(): void {
    this.#keepalive = setInterval(() => {
      for (const socket of this.open) {
        if (!socket.active) socket.ping();
        socket.active = false;
      }
    }, KEEPALIVE_PING_MS);
    this.#keepalive.unref();
  }

  #stopKeepalive(): void {
    if (this.#keepalive !== null) clearInterval(this.#keepalive);
    this.#keepalive = null;
  }

  /** The engine opened `socket`'s connection. */
  opened(socket: ServerWebSocket<unknown>, native: Connection, remoteAddress: string): void {
    socket.attach(native, remoteAddress);
    this.open.add(socket);
    this.onCount?.(this.open.size);
    this.observer?.opened(socket);
    if (this.options.sendPings && this.#keepalive === null) this.#startKeepalive();
    const listener = socket.listener;
    const open = this.options.open;
    if (listener !== null) this.#call(socket, () => listener.onOpen());
    else if (open !== null) this.#call(socket, () => open(socket as never));
  }

  /**
   * A message arrived. `message` is valid during this call only (uWS detaches its ArrayBuffer on
   * return); `owned`: the engine gave it away (the node engine), so it is kept without a copy
   * when it is all of its ArrayBuffer (a view into a larger read is copied: it would keep the
   * whole read alive, and `.buffer` must be exactly the message).
   */
  received(socket: ServerWebSocket<unknown>, message: ArrayBuffer | Uint8Array, isBinary: boolean, owned = false): void {
    if (message.byteLength > this.options.maxPayloadLength) {
      // RFC 6455 §7.4.1: a close frame with 1009, never the message (see coreMaxPayload).
      socket.close(1009, `Message too big (maxPayloadLength is ${this.options.maxPayloadLength} bytes)`);
      return;
    }
    socket.active = true;
    if (this.observer?.counting === true) this.observer.received();
    const listener = socket.listener;
    this.#enter();
    try {
      if (listener !== null) {
        listener.onMessage(message, isBinary);
        return;
      }
      if (this.options.message === null) return;
      if (socket.pendingMessages >= this.options.maxPendingMessages) {
        // A client sending faster than its handlers settle: bounded, never unbounded memory.
        socket.close(1008, "Too many pending messages");
        return;
      }
      // uWS's ArrayBuffer is detached when this callback returns: copy now (H4).
      const value = isBinary ? (owned && isWhole(message) ? toBuffer(message as Uint8Array) : copyBytes(message)) : textDecoder.decode(message);
      if (socket.running >= this.options.messageConcurrency) {
        (socket.queued ??= []).push(value);
        socket.pendingMessages++;
        return;
      }
      if (!isBinary) {
        receiving.text = value as string;
        receiving.bytes = message;
      }
      this.#runMessage(socket, value);
    } catch (err) {
      this.reportError(socket, err);
    } finally {
      receiving.text = null;
      receiving.bytes = null;
      this.#leave();
    }
  }

  #runMessage(socket: ServerWebSocket<unknown>, value: string | Buffer): void {
    const result = this.options.message!(socket as never, (typeof value === "string" ? value : toBinaryType(socket, value)) as never);
    if (!isPromiseLike(result)) return;
    socket.running++;
    socket.pendingMessages++;
    const done = (): void => {
      socket.running--;
      socket.pendingMessages--;
      const next = socket.queued?.shift();
      if (next !== undefined && socket.readyState === OPEN) {
        socket.pendingMessages--;
        // Outside any uWS callback now: cork so this handler's sends leave together.
        socket.cork(() => {
          try {
            this.#runMessage(socket, next);
          } catch (err) {
            this.reportError(socket, err);
          }
        });
      }
    };
    result.then(done, (err) => {
      this.reportError(socket, err);
      done();
    });
  }

  /** The connection's queued data was written out (some or all of it). */
  drained(socket: ServerWebSocket<unknown>): void {
    if (socket.getBufferedAmount() === 0) this.publisher.congested.delete(socket);
    const listener = socket.listener;
    const drain = this.options.drain;
    if (listener !== null) this.#call(socket, () => listener.onDrain());
    else if (drain !== null) this.#call(socket, () => drain(socket as never));
  }

  /** A ping or pong arrived (the engine answered a ping itself). */
  pinged(socket: ServerWebSocket<unknown>, data: ArrayBuffer | Uint8Array, kind: "ping" | "pong"): void {
    const handler = this.options[kind];
    socket.active = true;
    if (socket.listener !== null) {
      if (kind === "pong") socket.listener.onPong();
      return;
    }
    if (handler !== null) this.#call(socket, () => handler(socket as never, copyBytes(data)));
  }

  /** Runs a handler inside a uWS callback: a throw or rejection is reported, never fatal. */
  #call(socket: ServerWebSocket<unknown>, run: () => unknown): void {
    this.#enter();
    try {
      this.#settle(socket, run());
    } catch (err) {
      this.reportError(socket, err);
    } finally {
      this.#leave();
    }
  }

  /** The connection closed (a close frame either way, or cut: 1006); `socket` is done. */
  closed(socket: ServerWebSocket<unknown>, code: number, reason: string): void {
    if (socket.readyState === 3) return;
    socket.detach();
    socket.queued = null;
    const relay = this.publisher.relay;
    if (relay !== null && socket.topics !== null) {
      for (const topic of socket.topics) relay.unsubscribe(topic);
      socket.topics = null;
    }
    this.open.delete(socket);
    this.onCount?.(this.open.size);
    this.observer?.closed(socket, code, reason);
    this.publisher.forget(socket);
    try {
      if (socket.listener !== null) socket.listener.onClose(code, reason);
      else if (this.options.close !== null) this.#settle(socket, this.options.close(socket as never, code, reason));
    } catch (err) {
      this.reportError(socket, err);
    }
    if (this.open.size === 0) {
      this.#stopKeepalive();
      this.onIdle?.();
    }
  }

  onDropped(socket: ServerWebSocket<unknown>, data: WebSocketData, topic: string | null): void {
    this.observer?.dropped(socket, topic);
    if (this.options.closeOnBackpressureLimit) socket.terminate();
    const hook = this.options.dropped;
    if (hook === null) return;
    try {
      this.#settle(socket, hook(socket as never, data, topic));
    } catch (err) {
      this.reportError(socket, err);
    }
  }

  /** An exception or rejection from a handler: the `error` hook, else the console. */
  reportError(socket: ServerWebSocket<unknown>, err: unknown): void {
    const hook = this.options.error;
    if (hook !== null) {
      try {
        const result = hook(socket as never, err);
        if (isPromiseLike(result)) result.then(undefined, (e) => console.error("uwserve: websocket.error failed:", e));
        return;
      } catch (secondary) {
        console.error("uwserve: websocket.error failed:", secondary);
      }
    }
    console.error("uwserve: a websocket handler failed:", err);
  }

  #settle(socket: ServerWebSocket<unknown>, result: unknown): void {
    if (isPromiseLike(result)) result.then(undefined, (err) => this.reportError(socket, err));
  }

  #enter(): void {
    this.publisher.callbackDepth++;
  }
  #leave(): void {
    this.publisher.callbackDepth--;
  }
}

function isWhole(bytes: ArrayBuffer | Uint8Array): boolean {
  return bytes instanceof ArrayBuffer || (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength);
}

/** A Buffer over the same bytes. */
function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
