/**
 * Publishing to topics. Subscriptions live in the engine's topic tree (uWS's, in C++, or the
 * node engine's, engines/node/ws-topics.ts); this module decides how each publish enters it,
 * and keeps the books the trees don't: what each publish did, and which messages slow
 * subscribers lost.
 *
 * Two things the uWS core does that uwserve works around (the node engine's tree is driven the
 * same way, so statuses, drops and publish order are the same on both engines):
 * - It drains a subscriber's queued messages as soon as 32 are waiting. Inside a uWS callback
 *   (a `message` handler, say) the calling socket holds the loop's only cork buffer, so those
 *   drains can't cork and every frame becomes its own send() syscall: fan-out throughput falls
 *   off a cliff once more than ~32 publishes pile up in one loop turn. So a publish made inside
 *   a callback after the 32nd of the turn is queued here and handed to the core from
 *   setImmediate, where nothing is corked and each subscriber's batch goes out in one write.
 * - It drops a message for a subscriber over `backpressureLimit` silently (this uWebSockets.js
 *   build exposes no `dropped` callback). uwserve tracks which sockets have data queued
 *   (`send()` results, `drain` events, and a sweep every 100 ms over subscribed sockets) and, at
 *   publish time, checks those subscribers: one over the limit is counted as a drop for the
 *   topic and reported to the `dropped` hook; one with data queued makes the publish report -1.
 */
import { coreText } from "../engines/uws/core-bytes.js";
import type { Connection, TopicTree } from "./connection.js";
import { relaySafely, type Backplane } from "./backplane.js";
import { Sweep } from "../core/sweep.js";
import type { WebSocketData } from "../types.js";

/** What the publisher needs of a socket (implemented by ServerWebSocket). */
export interface Subscriber {
  /** The engine's connection, null once closed. */
  readonly native: Connection | null;
  /** The socket is over the limit and its topics' messages are lost: report it. */
  reportDrop(data: WebSocketData, topic: string | null): void;
}

/** What the publisher reports deliveries to (observability/ws-observer.ts). */
export interface DeliveryObserver {
  /** Someone wants deliveries now: the remote path counts recipients only then. */
  watchingPublishes(): boolean;
  published(topic: string, size: number, recipients: number, remote: boolean): void;
}

/** Per-subscriber messages the core queues before it drains them in the middle of a publish. */
const CORE_DRAIN_BATCH = 32;
const SWEEP_MS = 100;

interface Deferred {
  topic: string | Buffer;
  message: string | Uint8Array;
  isBinary: boolean;
  compress: boolean;
  sender: Subscriber | null;
}

export class TopicPublisher {
  readonly #app: TopicTree;
  readonly #limit: number;
  readonly #publishToSelf: boolean;
  /** Sockets with at least one subscription, swept for data queued by publishes alone. */
  readonly #subscribed: Sweep<Subscriber>;
  /** Sockets known to have data queued in the core. */
  readonly congested: Set<Subscriber>;
  readonly #dropsByTopic: Map<string, number>;
  #drops: number;
  /** Depth of uWS callbacks on the stack (where a socket holds the cork buffer). */
  callbackDepth: number;
  #turnPublishes: number;
  #queue: Deferred[];
  #flushScheduled: boolean;
  #closed: boolean;
  /** Set by #dropForCongested: a congested subscriber under the limit has data queued. */
  #congestedWaiting: boolean;
  /** Where publishes also go beyond this thread (the hub in `--workers` mode), else null. */
  readonly relay: Backplane | null;
  /** Told of publishes delivered here when it is watching them (telemetry, diagnostics channel). */
  deliveries: DeliveryObserver | null;

  constructor(app: TopicTree, limit: number, publishToSelf: boolean, relay: Backplane | null = null) {
    this.relay = relay;
    this.deliveries = null;
    this.#app = app;
    this.#limit = limit;
    this.#publishToSelf = publishToSelf;
    this.#subscribed = new Sweep(SWEEP_MS, (socket) => this.#checkCongestion(socket));
    this.congested = new Set();
    this.#dropsByTopic = new Map();
    this.#drops = 0;
    this.callbackDepth = 0;
    this.#turnPublishes = 0;
    this.#queue = [];
    this.#flushScheduled = false;
    this.#closed = false;
    this.#congestedWaiting = false;
  }

  /**
   * Publishes `data` to `topic`: bytes when every subscriber takes it, -1 when one of them has
   * data queued (it is sent when that drains), 0 when nobody is subscribed or all were dropped.
   * `sender`'s own socket is skipped unless publishToSelf.
   */
  publish(topic: string, data: WebSocketData, isBinary: boolean, compress: boolean, sender: Subscriber | null): number {
    if (this.#closed) return 0;
    const message = toMessage(data);
    const bytes = typeof message === "string" ? Buffer.byteLength(message) : message.byteLength;
    const excluded = sender !== null && !this.#publishToSelf ? sender : null;
    // Other worker threads first (the hub copies the message now): they count as recipients.
    const relayed = this.relay !== null ? relaySafely(this.relay, topic, message, isBinary, compress) : 0;
    // The topic as the core stores it (relay and drop counts keep the string).
    const key = coreText(topic);
    let recipients = this.#app.numSubscribers(key);
    if (excluded !== null && excluded.native !== null && excluded.native.isSubscribed(key)) recipients--;
    if (recipients <= 0) return relayed > 0 ? bytes : relayed < 0 ? -1 : 0;
    let status = bytes;
    if (this.congested.size > 0) {
      recipients -= this.#dropForCongested(key, topic, () => data, excluded);
      if (this.#congestedWaiting) status = -1;
      if (recipients <= 0) status = relayed > 0 ? bytes : 0;
    }
    if (relayed < 0) status = -1;
    if (recipients > 0 && this.deliveries?.watchingPublishes() === true) this.deliveries.published(topic, bytes, recipients, false);
    // Beyond one core batch inside a callback: hand it over uncorked (see the top of the file).
    // Once anything is queued, every publish queues behind it (also from outside a callback,
    // such as an async handler's continuation) so publish order holds.
    if (this.#queue.length > 0 || (this.callbackDepth > 0 && ++this.#turnPublishes > CORE_DRAIN_BATCH)) {
      // A string's bytes from `receiving` die with the callback: queue its own encoding.
      this.#queue.push({ topic: key, message: typeof data === "string" ? coreText(data) : copyIfBytes(message), isBinary, compress, sender: excluded });
      this.#scheduleFlush();
    } else {
      this.#send(key, message, isBinary, compress, excluded);
      if (this.#turnPublishes === 1) this.#scheduleFlush();
    }
    return status;
  }

  /**
   * A publish from another node (a worker thread, through the backplane), published here to
   * this thread's subscribers. A subscriber over the limit loses it, as with a local publish:
   * counted for the topic and reported to `dropped`. Queued behind this thread's own deferred
   * publishes, so their order holds.
   */
  deliverRemote(topic: string, payload: string | Uint8Array, isBinary: boolean, compress: boolean): void {
    if (this.#closed) return;
    const key = coreText(topic);
    let dropped = 0;
    if (this.congested.size > 0) {
      // The hub lends its bytes for this call only: the hook gets its own copy.
      dropped = this.#dropForCongested(key, topic, () => (typeof payload === "string" ? payload : isBinary ? Buffer.from(payload) : Buffer.from(payload).toString("utf8")), null);
    }
    if (this.deliveries?.watchingPublishes() === true) {
      const recipients = this.#app.numSubscribers(key) - dropped;
      if (recipients > 0) this.deliveries.published(topic, typeof payload === "string" ? Buffer.byteLength(payload) : payload.byteLength, recipients, true);
    }
    const message = typeof payload === "string" ? coreText(payload) : payload;
    if (this.#queue.length > 0) {
      this.#queue.push({ topic: key, message: copyIfBytes(message), isBinary, compress, sender: null });
      this.#scheduleFlush();
    } else {
      this.#app.publish(key, message, isBinary, compress);
    }
  }

  /**
   * The congested subscribers of `key` (but `excluded`) over the limit lose this message: the
   * core will skip them, so each is counted for `topic` now and reported to `dropped` with
   * `data()`. Returns how many; sets #congestedWaiting when one below the limit has data queued.
   */
  #dropForCongested(key: string | Buffer, topic: string, data: () => WebSocketData, excluded: Subscriber | null): number {
    let dropped = 0;
    this.#congestedWaiting = false;
    for (const socket of this.congested) {
      const native = socket.native;
      if (socket === excluded || native === null || !native.isSubscribed(key)) continue;
      if (native.getBufferedAmount() > this.#limit) {
        this.countDrop(topic);
        socket.reportDrop(data(), topic);
        dropped++;
      } else {
        this.#congestedWaiting = true;
      }
    }
    return dropped;
  }

  #send(topic: string | Buffer, message: string | Uint8Array | ArrayBuffer, isBinary: boolean, compress: boolean, excluded: Subscriber | null): void {
    // The core's ws.publish skips its sender but sends nothing at all when the sender has no
    // subscriptions; the app's publish reaches everyone. So: the sender's only when it matters.
    const native = excluded?.native ?? null;
    if (native !== null && this.#subscribed.has(excluded!)) native.publish(topic, message, isBinary, compress);
    else this.#app.publish(topic, message, isBinary, compress);
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    this.#turnPublishes = 0;
    const queue = this.#queue;
    if (queue.length === 0 || this.#closed) return;
    this.#queue = [];
    for (const item of queue) this.#send(item.topic, item.message, item.isBinary, item.compress, item.sender);
  }

  countDrop(topic: string | null): void {
    this.#drops++;
    if (topic !== null) this.#dropsByTopic.set(topic, (this.#dropsByTopic.get(topic) ?? 0) + 1);
  }

  /** Messages dropped for backpressure: for one topic, or in all (direct sends included). */
  dropped(topic?: string): number {
    return topic === undefined ? this.#drops : (this.#dropsByTopic.get(topic) ?? 0);
  }

  subscribedSocket(socket: Subscriber): void {
    if (!this.#closed) this.#subscribed.add(socket);
  }

  /** The socket closed, or has no subscriptions left. */
  forget(socket: Subscriber): void {
    this.#subscribed.delete(socket);
    this.congested.delete(socket);
  }

  /** Finds a subscriber whose queue grew from publishes alone (a client that stopped reading). */
  #checkCongestion(socket: Subscriber): boolean {
    const native = socket.native;
    if (native === null) return true; // closed: forget() takes it out
    if (native.getBufferedAmount() > 0) this.congested.add(socket);
    else this.congested.delete(socket);
    return true;
  }

  close(): void {
    this.#closed = true;
    this.#queue = [];
    this.#subscribed.clear();
  }
}

/**
 * The text message a `message` handler is running for, and its bytes as the core delivered them
 * (valid only until that callback returns). Sending or publishing that same text again (echo,
 * relay, chat fan-out) passes the core its own bytes instead of a string it would re-encode.
 */
export const receiving: { text: string | null; bytes: ArrayBuffer | Uint8Array | null } = { text: null, bytes: null };

/** Engines read strings, ArrayBuffers and typed arrays; other views and shared memory are viewed as bytes. */
export function toMessage(data: WebSocketData): string | Uint8Array | ArrayBuffer {
  if (typeof data === "string") return data === receiving.text ? receiving.bytes! : coreText(data);
  if (data instanceof ArrayBuffer || data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (typeof SharedArrayBuffer !== "undefined" && data instanceof SharedArrayBuffer) return new Uint8Array(data);
  throw new TypeError(`uwserve: a WebSocket message must be a string, ArrayBuffer or typed array, not ${describe(data)}`);
}

/** A queued message must not change if the caller reuses its buffer. */
function copyIfBytes(message: string | Uint8Array | ArrayBuffer): string | Uint8Array {
  if (typeof message === "string") return message;
  return message instanceof ArrayBuffer ? new Uint8Array(message).slice() : message.slice();
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return (value as object).constructor?.name ?? "an object";
  return typeof value;
}
