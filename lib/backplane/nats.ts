/**
 * `uwserve/nats`: the NATS backplane, over nats.js (the optional peer `@nats-io/transport-node`).
 *
 *   serve({ backplane: natsBackplane("nats://nats:4222", { prefix: "chat" }), ... })
 *
 * One connection per process, with `noEcho` (the server never sends a process its own
 * publishes). A topic travels on the subject `${prefix}.${token}`, where the token is the topic
 * with every character outside [A-Za-z0-9_-] written as ~XX (its UTF-8 bytes in hex): NATS
 * subjects can't hold spaces, dots inside a token or wildcards. nats.js reconnects (with backoff
 * and jitter) and subscribes again by itself; the first connection is retried here, so a server
 * starts while NATS is down. Publishes are acknowledged in batches with a flush (PING/PONG):
 * what is not acknowledged counts against maxPending, so a paused server bounds memory.
 */
import { invalidOption } from "../errors.js";
import type { BrokerLink, LinkEvents } from "./broker.js";
import { makeDriver, reconnectDelay, redactUrl, resolveCommonOptions, scrub, type BackplaneCommonOptions, type BackplaneDriver } from "./driver.js";
import { loadPeer } from "../peer.js";

/** The members of a nats.js connection this driver uses (from `connect()`). */
export interface NatsConnectionLike {
  readonly info?: { max_payload: number };
  publish(subject: string, payload: Uint8Array): void;
  subscribe(subject: string, options: { callback: (err: Error | null, msg: { subject: string; data: Uint8Array }) => void }): { unsubscribe(): void };
  flush(): Promise<void>;
  status(): AsyncIterable<{ type: string }>;
  close(): Promise<void>;
  isClosed(): boolean;
}

export interface NatsBackplaneOptions extends BackplaneCommonOptions {
  /** `nats://[user:pass@|token@]host[:port]`, `tls://` for TLS; several, comma-separated or as an array, for a cluster. */
  servers?: string | string[];
  /** A nats.js connection you made: uwserve uses it and never closes it. */
  connection?: NatsConnectionLike;
  token?: string;
  user?: string;
  pass?: string;
  /** TLS options for nats.js (`{ caFile, certFile, keyFile }`, or `{}` for the system CAs). */
  tls?: Record<string, unknown>;
  /** More options for nats.js's `connect()`. */
  connectOptions?: Record<string, unknown>;
}

interface NatsModule {
  connect(options: Record<string, unknown>): Promise<NatsConnectionLike>;
}

export function natsBackplane(servers: string | string[], options?: NatsBackplaneOptions): BackplaneDriver;
export function natsBackplane(options: NatsBackplaneOptions): BackplaneDriver;
export function natsBackplane(first: string | string[] | NatsBackplaneOptions, more: NatsBackplaneOptions = {}): BackplaneDriver {
  const options: NatsBackplaneOptions = typeof first === "string" || Array.isArray(first) ? { ...more, servers: first } : { ...first };
  const common = resolveCommonOptions(options, "natsBackplane");
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(common.prefix)) {
    throw invalidOption("natsBackplane: prefix", "subject tokens ([A-Za-z0-9_-]) separated by dots", common.prefix);
  }
  const { connection } = options;
  if (connection !== undefined && (typeof connection !== "object" || connection === null || typeof connection.subscribe !== "function")) {
    throw invalidOption("natsBackplane: connection", "a nats.js connection (connect())", connection);
  }
  let connect: (() => Promise<NatsConnectionLike>) | null = null;
  let where = "nats (a connection you passed)";
  const secrets: string[] = [];
  if (connection === undefined) {
    const list = typeof options.servers === "string" ? options.servers.split(",") : options.servers;
    if (!Array.isArray(list) || list.length === 0 || list.some((s) => typeof s !== "string" || !/^(nats|tls):\/\//i.test(s.trim()))) {
      throw invalidOption("natsBackplane: servers", "nats:// or tls:// URLs", options.servers === undefined ? undefined : "(not nats:// URLs)");
    }
    const parsed = list.map((s) => parseServer(s.trim()));
    where = parsed.map((p) => p.where).join(",");
    const auth: Record<string, unknown> = {};
    const first = parsed.find((p) => p.token !== undefined || p.user !== undefined);
    if (first?.user !== undefined) Object.assign(auth, { user: first.user, pass: first.pass });
    else if (first?.token !== undefined) auth.token = first.token;
    if (options.token !== undefined) auth.token = options.token;
    if (options.user !== undefined) auth.user = options.user;
    if (options.pass !== undefined) auth.pass = options.pass;
    for (const value of [auth.token, auth.pass]) if (typeof value === "string") secrets.push(value);
    const tls = options.tls ?? (parsed.some((p) => p.tls) ? {} : undefined);
    const nats = loadPeer<NatsModule>("@nats-io/transport-node", "natsBackplane");
    const settings = {
      name: "uwserve",
      ...options.connectOptions,
      ...auth,
      ...(tls === undefined ? {} : { tls }),
      servers: parsed.map((p) => p.hostPort),
      noEcho: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 250,
      reconnectJitterTLS: 500,
    };
    connect = () => nats.connect(settings);
  }
  return makeDriver({
    kind: "nats",
    where,
    common,
    open: (events) => new NatsLink(events, common.prefix, secrets, connection ?? null, connect),
  });
}

function parseServer(server: string): { where: string; hostPort: string; tls: boolean; token?: string; user?: string; pass?: string } {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw invalidOption("natsBackplane: servers", "nats:// or tls:// URLs", "(an unparsable URL)");
  }
  const user = url.username === "" ? undefined : decodeURIComponent(url.username);
  const pass = url.password === "" ? undefined : decodeURIComponent(url.password);
  return {
    where: redactUrl(server),
    hostPort: `${url.hostname}:${url.port === "" ? 4222 : url.port}`,
    tls: url.protocol === "tls:",
    // nats://TOKEN@host carries a token; nats://user:pass@host a user and password.
    ...(pass === undefined ? { token: user } : { user, pass }),
  };
}

/** A topic as one NATS subject token. */
export function subjectToken(topic: string): string {
  if (topic === "") return "~";
  let out = "";
  for (const byte of Buffer.from(topic, "utf8")) {
    const safe = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || byte === 0x5f || byte === 0x2d;
    out += safe ? String.fromCharCode(byte) : `~${byte.toString(16).padStart(2, "0")}`;
  }
  return out;
}

class NatsLink implements BrokerLink {
  pendingMessages = 0;
  pendingBytes = 0;
  readonly #events: LinkEvents;
  readonly #prefix: string;
  readonly #secrets: string[];
  readonly #owned: boolean;
  #connection: NatsConnectionLike | null;
  /** Subjects wanted, with their subscription once connected. */
  readonly #subscriptions = new Map<string, { unsubscribe(): void } | null>();
  #flushing = false;
  #retry: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(events: LinkEvents, prefix: string, secrets: string[], connection: NatsConnectionLike | null, connect: (() => Promise<NatsConnectionLike>) | null) {
    this.#events = events;
    this.#prefix = `${prefix}.`;
    this.#secrets = secrets;
    this.#owned = connection === null;
    this.#connection = null;
    if (connection !== null) this.#attach(connection);
    else this.#dial(connect!, 0);
  }

  channel(topic: string): string {
    return this.#prefix + subjectToken(topic);
  }

  maxMessageBytes(): number {
    return this.#connection?.info?.max_payload ?? Infinity;
  }

  publish(subject: string, frame: Uint8Array, _messages: number): void {
    this.#connection!.publish(subject, frame);
    this.pendingMessages++;
    this.pendingBytes += frame.length;
    if (!this.#flushing) this.#flush();
  }

  subscribe(subject: string): void {
    if (this.#subscriptions.has(subject)) return;
    this.#subscriptions.set(subject, this.#connection === null ? null : this.#subscribeNow(this.#connection, subject));
  }

  unsubscribe(subject: string): void {
    this.#subscriptions.get(subject)?.unsubscribe();
    this.#subscriptions.delete(subject);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#retry !== null) clearTimeout(this.#retry);
    const connection = this.#connection;
    if (connection === null) return;
    if (this.#owned) connection.close().catch(() => {});
    else for (const subscription of this.#subscriptions.values()) subscription?.unsubscribe();
  }

  /** The first connection, retried with backoff until it succeeds or the link closes. */
  #dial(connect: () => Promise<NatsConnectionLike>, attempt: number): void {
    connect().then(
      (connection) => {
        if (this.#closed) connection.close().catch(() => {});
        else this.#attach(connection);
      },
      (error: unknown) => {
        if (this.#closed) return;
        this.#down(error);
        this.#retry = setTimeout(() => this.#dial(connect, attempt + 1), reconnectDelay(attempt));
        this.#retry.unref();
      },
    );
  }

  #attach(connection: NatsConnectionLike): void {
    this.#connection = connection;
    for (const subject of this.#subscriptions.keys()) this.#subscriptions.set(subject, this.#subscribeNow(connection, subject));
    void this.#watch(connection);
    this.#events.up();
  }

  async #watch(connection: NatsConnectionLike): Promise<void> {
    try {
      for await (const status of connection.status()) {
        if (this.#closed) return;
        if (status.type === "disconnect") {
          // What was not acknowledged is gone with the connection (or sent once after it).
          this.pendingMessages = 0;
          this.pendingBytes = 0;
          this.#flushing = false;
          this.#down(new Error("connection lost"));
        } else if (status.type === "reconnect") {
          this.#events.up();
        } else if (status.type === "close") {
          if (!this.#closed) this.#down(new Error("connection closed"));
          return;
        }
      }
    } catch {
      // The iterator ends with the connection.
    }
  }

  #subscribeNow(connection: NatsConnectionLike, subject: string): { unsubscribe(): void } {
    return connection.subscribe(subject, {
      callback: (err, msg) => {
        if (err === null) this.#events.message(msg.subject, msg.data);
      },
    });
  }

  /** One PING/PONG at a time: its PONG acknowledges every publish written before it. */
  #flush(): void {
    const connection = this.#connection;
    if (connection === null) return;
    this.#flushing = true;
    const messages = this.pendingMessages;
    const bytes = this.pendingBytes;
    connection.flush().then(
      () => {
        this.#flushing = false;
        this.pendingMessages = Math.max(0, this.pendingMessages - messages);
        this.pendingBytes = Math.max(0, this.pendingBytes - bytes);
        if (this.pendingMessages > 0 && !this.#closed) this.#flush();
      },
      () => {
        this.#flushing = false;
      },
    );
  }

  #down(error: unknown): void {
    const text = error instanceof Error ? error.message : String(error);
    this.#events.down(new Error(scrub(text, this.#secrets)));
  }
}

