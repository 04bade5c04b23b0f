/**
 * The cross-thread topic hub: a publish on one thread reaches the subscribers on every other
 * thread of the same group, exactly once and in publish order per publishing thread.
 *
 * Each thread that serves sockets joins once (`joinHub`) and mirrors its sockets' topic
 * interest (`subscribe`/`unsubscribe` once per socket subscribe/unsubscribe: the hub counts
 * them and only queues a topic's messages to threads whose count is above zero). A publish
 * (`publish`) is copied once into a shared buffer and queued to every OTHER member with
 * interest; the publishing thread delivers to its own sockets itself, so its publishToSelf
 * rules apply unchanged, and the other threads' sockets never include the sender. Each member
 * gets all messages queued since its last wake-up in one batch, per turn of its event loop; a
 * publishing thread wakes each receiver once, at the end of its own loop turn, so a burst of
 * publishes (say, every frame of one socket read) costs the receiver one wake-up.
 *
 * Bounds: a member's queue holds at most `maxQueuedMessages` (65,536) messages or
 * `maxQueuedBytes` (64 MiB) of payload; beyond that its copies are dropped and counted, and
 * `publish` returns -1. A thread that exits, is terminated or dies leaves the hub by itself.
 *
 * The native side is native/hub.cc; this module only gives it types and a per-message callback.
 */
import { loadNative, type NativeAddon, type NativeHubMemberStats, type NativeHubStats } from "../transport/native.js";

export type HubStats = NativeHubStats;
export type HubMemberStats = NativeHubMemberStats;

/**
 * Receives one message from another thread. `payload` is a view the receiver may read during
 * the call and keep; large payloads (≥ `externalMinBytes`, 16 KiB) share their memory with the
 * other threads that received them, so it must not be written to.
 */
export type HubMessageHandler = (topic: string, payload: Uint8Array, isBinary: boolean, compress: boolean) => void;

export interface HubJoinOptions {
  /** Members only exchange messages with members of the same group ("" by default; no NUL). */
  group?: string;
}

/** publish()'s result when some thread's queue was full and lost the message. */
export const HUB_BACKPRESSURE = -1;

const BINARY = 1;
const COMPRESS = 2;
const EXTERNAL = 4;

/** This thread's membership in the hub. */
export class HubMember {
  /** The member's id, unique in the process while it is in the hub. */
  readonly id: number;
  readonly #native: NativeAddon;
  readonly #onMessage: HubMessageHandler;
  #left: boolean;

  /** Use joinHub(). */
  private constructor(native: NativeAddon, onMessage: HubMessageHandler, group: string) {
    this.#native = native;
    this.#onMessage = onMessage;
    this.#left = false;
    this.id = native.hubJoin(this.#deliver, group);
  }

  /** @internal Takes the addon, the handler and the group, returns a joined member. */
  static create(native: NativeAddon, onMessage: HubMessageHandler, group: string): HubMember {
    return new HubMember(native, onMessage, group);
  }

  /** True once leave() ran. */
  get left(): boolean {
    return this.#left;
  }

  /** One more socket on this thread subscribes to topic; returns the thread's count for it. */
  subscribe(topic: string): number {
    return this.#native.hubInterest(this.id, topic, 1);
  }

  /** One socket on this thread unsubscribed (or closed); returns the thread's count for it (RangeError below 0). */
  unsubscribe(topic: string): number {
    return this.#native.hubInterest(this.id, topic, -1);
  }

  /**
   * Sends message to the other threads with interest in topic (not to this one). Returns how
   * many threads it was queued to (0: none listens), or HUB_BACKPRESSURE (-1) when at least one
   * thread's queue was full and lost it (counted in its `dropped`).
   */
  publish(
    topic: string,
    message: string | ArrayBuffer | ArrayBufferView,
    isBinary: boolean = typeof message !== "string",
    compress = false,
  ): number {
    return this.#native.hubPublish(this.id, topic, message, isBinary, compress);
  }

  /** Subscribers the other threads of the group have for `topic` (this thread's are not counted). */
  remoteSubscribers(topic: string): number {
    return this.#left ? 0 : this.#native.hubSubscribers(this.id, topic);
  }

  /** This member's counters, null after leave(). */
  stats(): HubMemberStats | null {
    return this.#left ? null : this.#native.hubStats(this.id);
  }

  /**
   * Leaves the hub on this thread: messages still queued to it are dropped. Returns false when
   * it had already left. Must be called on the thread that joined.
   */
  leave(): boolean {
    if (this.#left) return false;
    this.#left = true;
    return this.#native.hubLeave(this.id);
  }

  /** Unpacks one native batch into onMessage calls; a throw doesn't stop the rest of the batch. */
  #deliver = (
    topics: string[],
    meta: Uint32Array,
    arena: ArrayBuffer | undefined,
    externals: ArrayBuffer[] | undefined,
  ): void => {
    const onMessage = this.#onMessage;
    let failed = false;
    let failure: unknown;
    for (let i = 0; i < meta.length; i += 4) {
      const flags = meta[i + 1]!;
      const payload =
        flags & EXTERNAL
          ? new Uint8Array(externals![meta[i + 2]!]!)
          : new Uint8Array(arena!, meta[i + 2]!, meta[i + 3]!);
      try {
        onMessage(topics[meta[i]!]!, payload, (flags & BINARY) !== 0, (flags & COMPRESS) !== 0);
      } catch (err) {
        // The first throw becomes this callback's (an uncaughtException); later ones follow it.
        if (!failed) {
          failed = true;
          failure = err;
        } else {
          queueMicrotask(() => {
            throw err;
          });
        }
      }
    }
    if (failed) throw failure;
  };
}

/**
 * Joins the hub on this thread: `onMessage` then receives, on this thread, every message another
 * member of the group publishes to a topic this member has interest in. Throws when the native
 * addon is unavailable (code UWSERVE_ERR_NATIVE_UNAVAILABLE).
 */
export function joinHub(onMessage: HubMessageHandler, options: HubJoinOptions = {}): HubMember {
  return HubMember.create(loadNative(), onMessage, options.group ?? "");
}

/** The process-wide counters (throws like joinHub without the addon). */
export function hubStats(): HubStats {
  return loadNative().hubStats();
}
