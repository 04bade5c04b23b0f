/**
 * A backplane over a message broker (Redis, NATS): the part the drivers share. It frames the
 * publishes of each event-loop turn (wire.ts: consecutive publishes to one topic share one broker
 * message), sends them on the topic's channel, and publishes what arrives from other processes
 * to this process's subscribers. The guarantees (README, Scaling out):
 * - local first: the publish has reached local subscribers (or the core's queues) before the
 *   broker write leaves this turn, and its return value is the local delivery's;
 * - at-most-once, never retried: while the broker is down, slow or paused, a publish beyond
 *   `maxPending` unacknowledged broker messages (or `maxPendingBytes`) is dropped and counted, so
 *   memory stays bounded;
 * - never echoed: a message from this process is recognised by its origin and skipped;
 * - in order per publisher: one connection, batches cut whenever the topic changes, and a
 *   message older than one already delivered from the same publisher is refused;
 * - interest-based: a topic's channel is subscribed while some local socket wants the topic
 *   (an unsubscribe lingers a second, so subscribe/unsubscribe churn costs the broker nothing).
 * Anything not ours on a channel (another application, garbage) is dropped and counted.
 */
import { uwserveError } from "../errors.js";
import type { Backplane, BackplaneDelivery } from "../websocket/backplane.js";
import type { BackplaneDriver } from "./driver.js";
import { BatchWriter, decodeBatch, FLAG_BINARY, FLAG_COMPRESS, isFrom, type Payload } from "./wire.js";

/** What a driver's connection does for the BrokerBackplane. */
export interface BrokerLink {
  /** The channel (Redis) or subject (NATS) a topic travels on. */
  channel(topic: string): string;
  /** The largest message the broker takes, in bytes (Infinity while unknown). */
  maxMessageBytes(): number;
  /** Broker messages (batches) the broker has not acknowledged yet, and their bytes. */
  readonly pendingMessages: number;
  readonly pendingBytes: number;
  /** Sends one batch of `messages` publishes; only called while the link is up. May throw (counted as dropped). */
  publish(channel: string, frame: Uint8Array, messages: number): void;
  /** Subscriptions survive reconnects (the link subscribes again). */
  subscribe(channel: string): void;
  unsubscribe(channel: string): void;
  /** Ends the connection(s) the link opened (never a client the user passed in). */
  close(): void;
}

/** How a link reports to its backplane. */
export interface LinkEvents {
  message(channel: string, frame: Uint8Array): void;
  /** Connected (again): subscriptions are in place. */
  up(): void;
  /** The broker can't be reached or the connection was lost; the link keeps retrying. */
  down(error: unknown): void;
  /** A batch of `messages` handed over earlier was refused or lost with its connection. */
  lost(messages: number): void;
}

export type BackplaneState = "connecting" | "connected" | "reconnecting" | "closed";
const STATES: readonly BackplaneState[] = ["connecting", "connected", "reconnecting", "closed"];

/** `server.backplane.stats()`. */
export interface BackplaneStats {
  state: BackplaneState;
  /** Messages handed to the broker. */
  published: number;
  /** Messages from other processes delivered here. */
  received: number;
  /** Messages lost at this process, every reason below included. */
  dropped: number;
  /** Of those: not sent (the broker was down, too many unacknowledged) or refused after it was handed over. */
  droppedOutbound: number;
  /** Of those: over the broker's size limit. */
  tooLarge: number;
  /** Of those: garbage or another application's message on one of our channels. */
  malformed: number;
  /** Times the connection came back after it was lost. */
  reconnects: number;
  /** Topics whose channel this process listens to. */
  subscriptions: number;
}

// Slots of the counters array (a SharedArrayBuffer in worker groups: the threads read it).
const STATE = 0;
const PUBLISHED = 1;
const RECEIVED = 2;
const DROPPED = 3;
const DROPPED_OUTBOUND = 4;
const TOO_LARGE = 5;
const MALFORMED = 6;
const RECONNECTS = 7;
const SUBSCRIPTIONS = 8;
export const STAT_SLOTS = 9;

/** Reads counters written by a BrokerBackplane (this thread's or, shared, the main thread's). */
export function readStats(counters: Float64Array): BackplaneStats {
  return {
    state: STATES[counters[STATE]!] ?? "closed",
    published: counters[PUBLISHED]!,
    received: counters[RECEIVED]!,
    dropped: counters[DROPPED]!,
    droppedOutbound: counters[DROPPED_OUTBOUND]!,
    tooLarge: counters[TOO_LARGE]!,
    malformed: counters[MALFORMED]!,
    reconnects: counters[RECONNECTS]!,
    subscriptions: counters[SUBSCRIPTIONS]!,
  };
}

/** How long a topic nobody here wants any more stays subscribed at the broker. */
const UNSUBSCRIBE_LINGER_MS = 1000;
/** Publishers remembered for order; beyond, the oldest is forgotten. */
const MAX_PUBLISHERS = 4096;
/** A batch is sent once it holds this much (or at the end of the turn). */
const BATCH_BYTES = 64 * 1024;

export interface BrokerBackplaneOptions {
  /** The process origin (wire.ts); every thread of a worker group uses the main thread's. */
  origin: Uint8Array;
  /** Where the counters live (a shared array in worker groups). */
  counters?: Float64Array;
}

export class BrokerBackplane implements Backplane {
  readonly id: string;
  readonly counters: Float64Array;
  readonly #driver: BackplaneDriver;
  readonly #link: BrokerLink;
  readonly #deliver: BackplaneDelivery;
  readonly #origin: Uint8Array;
  /** Local subscribers per topic (a thread count in worker groups). */
  readonly #interest: Map<string, number>;
  /** Topics nobody wants any more, unsubscribed at the broker after the linger. */
  readonly #leaving: Set<string>;
  #lingerTimer: NodeJS.Timeout | null;
  /** The newest seq delivered per publisher (its origin and stream). */
  readonly #lastSeq: Map<string, number>;
  #seq: number;
  /** The publishes of this turn not yet sent (one topic), and whether a send is scheduled. */
  #batch: BatchWriter | null;
  #sendScheduled: boolean;
  #up: boolean;
  /** An outage was reported and its end is not yet. */
  #reported: boolean;
  #everUp: boolean;

  constructor(driver: BackplaneDriver, deliver: BackplaneDelivery, options: BrokerBackplaneOptions) {
    this.#driver = driver;
    this.#deliver = deliver;
    this.#origin = options.origin;
    this.id = `${driver.kind}:${Buffer.from(options.origin).toString("hex")}`;
    this.counters = options.counters ?? new Float64Array(STAT_SLOTS);
    this.#interest = new Map();
    this.#leaving = new Set();
    this.#lingerTimer = null;
    this.#lastSeq = new Map();
    this.#seq = 0;
    this.#batch = null;
    this.#sendScheduled = false;
    this.#up = false;
    this.#reported = false;
    this.#everUp = false;
    this.counters[STATE] = 0;
    this.#link = driver.open({
      message: (channel, frame) => this.#received(channel, frame),
      up: () => this.#onUp(),
      down: (error) => this.#onDown(error),
      lost: (messages) => void this.#drop(DROPPED_OUTBOUND, messages),
    });
  }

  stats(): BackplaneStats {
    return readStats(this.counters);
  }

  get kind(): string {
    return this.#driver.kind;
  }

  get where(): string {
    return this.#driver.where;
  }

  /** Sends a local publish to the other processes; always 0: the local delivery decides the status. */
  publish(topic: string, message: Payload, isBinary: boolean, compress: boolean): number {
    if (this.#canSend()) this.#append(topic, (isBinary ? FLAG_BINARY : 0) | (compress ? FLAG_COMPRESS : 0), 0, ++this.#seq, message);
    return 0;
  }

  /** Sends what a worker thread framed (worker groups: the threads reach the broker through here). */
  forward(frame: Uint8Array): void {
    const batch = decodeBatch(frame);
    if (batch === null) return;
    for (const entry of batch.entries) if (this.#canSend()) this.#append(batch.topic, entry.flags, entry.stream, entry.seq, entry.payload);
  }

  subscribe(topic: string): void {
    const count = (this.#interest.get(topic) ?? 0) + 1;
    this.#interest.set(topic, count);
    if (count === 1) this.#want(topic);
  }

  unsubscribe(topic: string): void {
    const count = (this.#interest.get(topic) ?? 0) - 1;
    if (count > 0) {
      this.#interest.set(topic, count);
      return;
    }
    this.#interest.delete(topic);
    this.#leave(topic);
  }

  /** Worker groups: whether some thread wants `topic` (the hub knows; see bridge.ts). */
  setInterest(topic: string, wanted: boolean): void {
    if (wanted === this.#interest.has(topic)) return;
    if (wanted) {
      this.#interest.set(topic, 1);
      this.#want(topic);
    } else {
      this.#interest.delete(topic);
      this.#leave(topic);
    }
  }

  /** The topics some local socket wants. */
  topics(): IterableIterator<string> {
    return this.#interest.keys();
  }

  close(): void {
    if (this.counters[STATE] === 3) return;
    this.counters[STATE] = 3;
    this.#sendBatch();
    this.#up = false;
    if (this.#lingerTimer !== null) clearTimeout(this.#lingerTimer);
    this.#link.close();
  }

  #canSend(): boolean {
    const link = this.#link;
    if (this.#up && link.pendingMessages < this.#driver.common.maxPending && link.pendingBytes < this.#driver.common.maxPendingBytes) return true;
    this.#drop(DROPPED_OUTBOUND);
    return false;
  }

  /** Adds one publish to this turn's batch; a batch for another topic, or a full one, is sent first. */
  #append(topic: string, flags: number, stream: number, seq: number, payload: Payload): void {
    const size = BatchWriter.entryBytes(payload);
    const limit = Math.min(this.#driver.common.maxMessageBytes ?? Infinity, this.#link.maxMessageBytes());
    let batch = this.#batch;
    if (batch !== null && (batch.topic !== topic || batch.bytes + size > Math.min(limit, BATCH_BYTES))) {
      this.#sendBatch();
      batch = null;
    }
    if (batch === null) {
      batch = BatchWriter.open(this.#origin, topic);
      if (batch === null || batch.bytes + size > limit) {
        this.#drop(TOO_LARGE);
        return;
      }
      this.#batch = batch;
      if (!this.#sendScheduled) {
        this.#sendScheduled = true;
        setImmediate(this.#endOfTurn);
      }
    }
    batch.add(flags, stream, seq, payload);
  }

  #endOfTurn = (): void => {
    this.#sendScheduled = false;
    this.#sendBatch();
  };

  #sendBatch(): void {
    const batch = this.#batch;
    if (batch === null) return;
    this.#batch = null;
    try {
      this.#link.publish(this.#link.channel(batch.topic), batch.finish(), batch.count);
      this.counters[PUBLISHED]! += batch.count;
    } catch {
      this.#drop(DROPPED_OUTBOUND, batch.count);
    }
  }

  #drop(reason: number, messages = 1): void {
    this.counters[reason]! += messages;
    this.counters[DROPPED]! += messages;
  }

  #want(topic: string): void {
    // Still subscribed from before the linger ran out: nothing to tell the broker.
    if (this.#leaving.delete(topic)) return;
    this.counters[SUBSCRIPTIONS]!++;
    this.#link.subscribe(this.#link.channel(topic));
  }

  #leave(topic: string): void {
    this.#leaving.add(topic);
    if (this.#lingerTimer === null && this.counters[STATE] !== 3) {
      this.#lingerTimer = setTimeout(() => this.#unsubscribeLeaving(), UNSUBSCRIBE_LINGER_MS);
      this.#lingerTimer.unref();
    }
  }

  #unsubscribeLeaving(): void {
    this.#lingerTimer = null;
    for (const topic of this.#leaving) {
      this.counters[SUBSCRIPTIONS]!--;
      this.#link.unsubscribe(this.#link.channel(topic));
    }
    this.#leaving.clear();
  }

  #received(channel: string, frame: Uint8Array): void {
    // Ours, echoed by Redis: skipped before any decoding (a process with local subscribers gets
    // every one of its publishes back).
    if (this.counters[STATE] === 3 || isFrom(frame, this.#origin)) return;
    const batch = decodeBatch(frame);
    // Garbage, a foreign message, or ours framed for another channel.
    if (batch === null || this.#link.channel(batch.topic) !== channel) {
      this.#drop(MALFORMED);
      return;
    }
    // Late: after the last local subscriber left (the linger).
    if (!this.#interest.has(batch.topic)) return;
    for (const entry of batch.entries) {
      // Older than one already delivered from the same publisher: refused.
      const publisher = batch.origin + entry.stream;
      const last = this.#lastSeq.get(publisher);
      if (last !== undefined && ((entry.seq - last) | 0) <= 0) continue;
      if (last === undefined && this.#lastSeq.size >= MAX_PUBLISHERS) this.#lastSeq.delete(this.#lastSeq.keys().next().value!);
      this.#lastSeq.set(publisher, entry.seq);
      this.counters[RECEIVED]!++;
      this.#deliver(batch.topic, entry.payload, entry.isBinary, entry.compress);
    }
  }

  #onUp(): void {
    if (this.counters[STATE] === 3) return;
    if (this.#everUp) this.counters[RECONNECTS]!++;
    this.#everUp = true;
    this.#up = true;
    this.counters[STATE] = 1;
    if (this.#reported) {
      this.#reported = false;
      if (this.#driver.common.onError === null) console.error(`uwserve: backplane ${this.#driver.where} connected; publishes cross processes again`);
    }
  }

  #onDown(error: unknown): void {
    if (this.counters[STATE] === 3) return;
    this.#up = false;
    this.counters[STATE] = this.#everUp ? 2 : 0;
    if (this.#reported) return;
    this.#reported = true;
    const what = this.#everUp ? "lost its connection" : "can't reach the broker";
    const cause = error instanceof Error ? error.message : String(error);
    const report = uwserveError(
      Error,
      "UWSERVE_ERR_BACKPLANE",
      `uwserve: backplane ${this.#driver.where} ${what} (${cause}); local pub/sub goes on, publishes to other processes are dropped and counted until it reconnects`,
    );
    const onError = this.#driver.common.onError;
    if (onError === null) {
      console.error(report.message);
      return;
    }
    try {
      onError(report);
    } catch (err) {
      queueMicrotask(() => {
        throw err;
      });
    }
  }
}
