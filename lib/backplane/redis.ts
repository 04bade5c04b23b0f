/**
 * `uwserve/redis`: the Redis backplane, over node-redis (the optional peer `redis`).
 *
 *   serve({ backplane: redisBackplane("redis://cache:6379", { prefix: "chat" }), ... })
 *
 * Two connections per process, as Redis pub/sub needs (a subscribed connection takes no other
 * command): one publishes, its duplicate subscribes. A topic travels on the channel
 * `${prefix}:${topic}`. node-redis reconnects (with our backoff and jitter) and subscribes again
 * to every channel by itself; publishes while it is down are dropped, never queued for later.
 */
import { invalidOption, uwserveError } from "../errors.js";
import type { BrokerLink, LinkEvents } from "./broker.js";
import { makeDriver, reconnectDelay, redactUrl, resolveCommonOptions, scrub, type BackplaneCommonOptions, type BackplaneDriver } from "./driver.js";
import { loadPeer } from "../peer.js";

/** The members of a node-redis client this driver uses (a client from `createClient()`). */
export interface RedisClientLike {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  connect(): Promise<unknown>;
  duplicate(overrides?: Record<string, unknown>): RedisClientLike;
  publish(channel: string, message: Buffer): Promise<number>;
  subscribe(channel: string, listener: (message: Buffer, channel: Buffer) => void, bufferMode: true): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  sendCommand(args: string[]): Promise<unknown>;
  destroy(): void;
  close?(): Promise<unknown>;
  on(event: string, listener: (...args: any[]) => void): unknown;
  off?(event: string, listener: (...args: any[]) => void): unknown;
}

export interface RedisBackplaneOptions extends BackplaneCommonOptions {
  /** `redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS. */
  url?: string;
  /** A node-redis client you made (connected or not): uwserve publishes on it, subscribes on a duplicate, and never closes it. */
  client?: RedisClientLike;
  /** More options for node-redis's `createClient` (`password`, `socket: { tls, ca, … }`, …). */
  clientOptions?: Record<string, unknown>;
}

interface NodeRedis {
  createClient(options: Record<string, unknown>): RedisClientLike;
}

/** Redis's own default for one bulk string (proto-max-bulk-len). */
const REDIS_DEFAULT_MAX_BULK = 512 * 1024 * 1024;

export function redisBackplane(url: string, options?: RedisBackplaneOptions): BackplaneDriver;
export function redisBackplane(options: RedisBackplaneOptions): BackplaneDriver;
export function redisBackplane(first: string | RedisBackplaneOptions, more: RedisBackplaneOptions = {}): BackplaneDriver {
  const options: RedisBackplaneOptions = typeof first === "string" ? { ...more, url: first } : { ...first };
  if (typeof options !== "object" || options === null) throw invalidOption("redisBackplane", "a URL or an options object", first);
  const common = resolveCommonOptions(options, "redisBackplane");
  const { url, client, clientOptions = {} } = options;
  if (url !== undefined && typeof url !== "string") throw invalidOption("redisBackplane: url", "a redis:// or rediss:// URL", url);
  if (url !== undefined && (!/^rediss?:\/\//i.test(url) || !URL.canParse(url))) throw invalidOption("redisBackplane: url", "a redis:// or rediss:// URL", redactUrl(url));
  if (client !== undefined && (typeof client !== "object" || client === null || typeof client.duplicate !== "function")) {
    throw invalidOption("redisBackplane: client", "a node-redis client (createClient())", client);
  }
  if (url === undefined && client === undefined) {
    throw uwserveError(TypeError, "UWSERVE_ERR_INVALID_OPTION", "uwserve: redisBackplane needs a url (redis://host:6379) or a client");
  }
  const redis = client === undefined ? loadPeer<NodeRedis>("redis", "redisBackplane") : null;
  const secrets = secretsOf(url, clientOptions);
  const where = url !== undefined ? redactUrl(url) : "redis (a client you passed)";
  return makeDriver({
    kind: "redis",
    where,
    common,
    open: (events) => new RedisLink(events, common.prefix, secrets, client ?? redis!.createClient({
      ...clientOptions,
      url,
      disableOfflineQueue: true,
      socket: { ...(clientOptions.socket as object | undefined), reconnectStrategy: reconnectDelay },
    }), client === undefined),
  });
}

function secretsOf(url: string | undefined, clientOptions: Record<string, unknown>): string[] {
  const secrets: string[] = [];
  if (url !== undefined) {
    try {
      const parsed = new URL(url);
      if (parsed.password !== "") secrets.push(parsed.password, decodeURIComponent(parsed.password));
    } catch {
      // Not a URL: createClient reports it, scrubbed of nothing it could hold.
    }
  }
  if (typeof clientOptions.password === "string") secrets.push(clientOptions.password);
  return secrets;
}

class RedisLink implements BrokerLink {
  pendingMessages = 0;
  pendingBytes = 0;
  readonly #events: LinkEvents;
  readonly #prefix: string;
  readonly #secrets: string[];
  readonly #publisher: RedisClientLike;
  readonly #subscriber: RedisClientLike;
  readonly #owned: boolean;
  /** Channels some local socket wants, and those node-redis is subscribed to. */
  readonly #wanted = new Set<string>();
  readonly #atRedis = new Set<string>();
  #maxBulk = REDIS_DEFAULT_MAX_BULK;
  #up = false;
  #closed = false;

  constructor(events: LinkEvents, prefix: string, secrets: string[], publisher: RedisClientLike, owned: boolean) {
    this.#events = events;
    this.#prefix = prefix === "" ? "" : `${prefix}:`;
    this.#secrets = secrets;
    this.#publisher = publisher;
    this.#owned = owned;
    // The subscriber queues its SUBSCRIBEs while offline: they run when it connects.
    this.#subscriber = publisher.duplicate({ disableOfflineQueue: false });
    for (const client of [publisher, this.#subscriber]) {
      client.on("error", this.#onError);
      client.on("ready", this.#onReady);
      client.on("reconnecting", this.#onReconnecting);
    }
    if (!publisher.isOpen) publisher.connect().catch(this.#onError);
    this.#subscriber.on("ready", this.#onSubscriberReady);
    this.#subscriber.connect().catch(this.#onError);
    if (publisher.isReady) this.#onReady();
  }

  channel(topic: string): string {
    return this.#prefix + topic;
  }

  maxMessageBytes(): number {
    return this.#maxBulk;
  }

  publish(channel: string, frame: Uint8Array, messages: number): void {
    const bytes = frame.length;
    this.pendingMessages++;
    this.pendingBytes += bytes;
    // node-redis takes strings and Buffers only (a worker's frame arrives as a Uint8Array view).
    const buffer = Buffer.isBuffer(frame) ? frame : Buffer.from(frame.buffer, frame.byteOffset, frame.length);
    this.#publisher.publish(channel, buffer).then(
      () => this.#settled(bytes),
      () => {
        this.#settled(bytes);
        if (!this.#closed) this.#events.lost(messages);
      },
    );
  }

  // node-redis 5 mis-decodes a SUBSCRIBE queued while offline next to its own re-subscribe on
  // reconnect (an error, then a reconnect): channels are only (un)subscribed while the
  // subscriber is ready, and the wanted set is applied each time it becomes ready.
  subscribe(channel: string): void {
    this.#wanted.add(channel);
    if (this.#subscriber.isReady) this.#subscribeNow(channel);
  }

  unsubscribe(channel: string): void {
    this.#wanted.delete(channel);
    if (this.#subscriber.isReady) this.#unsubscribeNow(channel);
  }

  #subscribeNow(channel: string): void {
    this.#atRedis.add(channel);
    this.#subscriber.subscribe(channel, this.#onMessage, true).catch(this.#ignore);
  }

  #unsubscribeNow(channel: string): void {
    this.#atRedis.delete(channel);
    this.#subscriber.unsubscribe(channel).catch(this.#ignore);
  }

  /** The subscriber is (again) connected: node-redis re-subscribed what it had; align it with what is wanted. */
  #onSubscriberReady = (): void => {
    if (this.#closed) return;
    for (const channel of [...this.#atRedis]) if (!this.#wanted.has(channel)) this.#unsubscribeNow(channel);
    for (const channel of this.#wanted) if (!this.#atRedis.has(channel)) this.#subscribeNow(channel);
  };

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#subscriber.destroy();
    for (const client of [this.#publisher, this.#subscriber]) {
      client.off?.("ready", this.#onReady);
      client.off?.("reconnecting", this.#onReconnecting);
    }
    this.#subscriber.off?.("ready", this.#onSubscriberReady);
    if (!this.#owned) return;
    const publisher = this.#publisher;
    if (!publisher.isReady || publisher.close === undefined) {
      publisher.destroy();
      return;
    }
    // Publishes already written get their replies; a broker that doesn't answer is cut after a second.
    const cut = setTimeout(() => publisher.destroy(), 1000);
    cut.unref();
    publisher.close().then(() => clearTimeout(cut), () => publisher.destroy());
  }

  #settled(bytes: number): void {
    this.pendingMessages--;
    this.pendingBytes -= bytes;
  }

  #onMessage = (message: Buffer, channel: Buffer): void => {
    this.#events.message(channel.toString("utf8"), message);
  };

  #onReady = (): void => {
    if (this.#closed || this.#up || !this.#publisher.isReady || !this.#subscriber.isReady) return;
    this.#up = true;
    // The broker's limit on one bulk string; a managed Redis may refuse CONFIG: keep Redis's default.
    this.#publisher.sendCommand(["CONFIG", "GET", "proto-max-bulk-len"]).then((reply) => {
      const value = Array.isArray(reply) ? Number(reply[1]) : reply !== null && typeof reply === "object" ? Number((reply as Record<string, unknown>)["proto-max-bulk-len"]) : NaN;
      if (Number.isFinite(value) && value > 0) this.#maxBulk = value;
    }, this.#ignore);
    this.#events.up();
  };

  #onReconnecting = (): void => {
    this.#down(new Error("connection lost"));
  };

  #onError = (error: unknown): void => {
    this.#down(error);
  };

  #down(error: unknown): void {
    if (this.#closed) return;
    this.#up = false;
    const text = error instanceof Error ? error.message : String(error);
    this.#events.down(new Error(scrub(text, this.#secrets)));
  }

  #ignore = (): void => {};
}
