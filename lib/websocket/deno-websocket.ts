/**
 * Deno's `upgradeWebSocket(req)`: `{ socket, response }`, where `socket` behaves like a browser
 * `WebSocket` and the upgrade happens when the handler returns `response`.
 */
import { requestContextOf } from "../core/request.js";
import type { RequestContext } from "../core/context.js";
import { UwsResponse } from "../core/response.js";
import { offeredProtocols } from "./upgrade.js";
import { CLOSED, CLOSING, CONNECTING, OPEN, ServerWebSocket } from "./websocket.js";
import type { WebSocketHub } from "./websocket-hub.js";
import { uwserveError } from "../errors.js";

export interface UpgradeWebSocketOptions {
  /** The subprotocol sent back (one the client offered). */
  protocol?: string;
  /** Seconds without a message or pong before the socket is closed; a ping is sent halfway (default 120, 0 off). */
  idleTimeout?: number;
}

/** What the server needs to finish a Deno-style upgrade when the handler returns `response`. */
export interface PendingUpgrade {
  response: Response;
  socket: DenoWebSocket;
}

/** Node 20 has no global CloseEvent. */
export class CloseEvent extends Event {
  readonly code: number;
  readonly reason: string;
  readonly wasClean: boolean;
  constructor(type: string, init: { code?: number; reason?: string; wasClean?: boolean } = {}) {
    super(type);
    this.code = init.code ?? 0;
    this.reason = init.reason ?? "";
    this.wasClean = init.wasClean ?? false;
  }
}

const textDecoder = new TextDecoder();

type Handler<E extends Event> = ((this: DenoWebSocket, event: E) => unknown) | null;

export class DenoWebSocket extends EventTarget {
  static readonly CONNECTING = CONNECTING;
  static readonly OPEN = OPEN;
  static readonly CLOSING = CLOSING;
  static readonly CLOSED = CLOSED;
  readonly CONNECTING = CONNECTING;
  readonly OPEN = OPEN;
  readonly CLOSING = CLOSING;
  readonly CLOSED = CLOSED;
  readonly url: string;
  readonly protocol: string;
  readonly extensions: string;
  #binaryType: "arraybuffer" | "blob";
  onopen: Handler<Event>;
  onmessage: Handler<MessageEvent>;
  onclose: Handler<CloseEvent>;
  onerror: Handler<Event>;
  /** The server side of the connection. */
  /** @internal The server side of the connection. */
  readonly socket: ServerWebSocket<undefined>;
  #idleTimeout: number;
  #idleTimer: ReturnType<typeof setInterval> | null;
  #active: boolean;

  /** @internal upgradeWebSocket() makes these. */
  constructor(hub: WebSocketHub, url: string, protocol: string, extensions: string, idleTimeout: number) {
    super();
    this.url = url;
    this.protocol = protocol;
    this.extensions = extensions;
    this.#binaryType = "arraybuffer";
    this.onopen = null;
    this.onmessage = null;
    this.onclose = null;
    this.onerror = null;
    this.socket = new ServerWebSocket<undefined>(hub, undefined, this);
    this.#idleTimeout = idleTimeout;
    this.#idleTimer = null;
    this.#active = true;
  }

  get readyState(): number {
    return this.socket.readyState;
  }
  get bufferedAmount(): number {
    return this.socket.getBufferedAmount();
  }
  get binaryType(): "arraybuffer" | "blob" {
    return this.#binaryType;
  }
  set binaryType(value: "arraybuffer" | "blob") {
    if (value === "arraybuffer" || value === "blob") this.#binaryType = value;
  }

  send(data: string | ArrayBufferLike | ArrayBufferView | Blob): void {
    if (this.readyState === CONNECTING) {
      throw new DOMException("uwserve: send() before the socket opened (return `response` from the handler first)", "InvalidStateError");
    }
    if (data instanceof Blob) {
      void data.arrayBuffer().then((bytes) => this.socket.sendBinary(bytes));
      return;
    }
    this.socket.send(data as string | ArrayBuffer);
  }

  close(code?: number, reason?: string): void {
    if (code !== undefined && code !== 1000 && (code < 3000 || code > 4999)) {
      throw new DOMException(`uwserve: close code ${code} must be 1000 or 3000–4999`, "InvalidAccessError");
    }
    this.socket.close(code ?? 1000, reason ?? "");
  }

  // ---- SocketListener: events from the core --------------------------------------------

  /** @internal SocketListener: the server side's events. */
  onOpen(): void {
    if (this.#idleTimeout > 0) this.#startIdleTimer();
    this.#emit(new Event("open"), this.onopen);
  }

  /** @internal SocketListener: the server side's events. */
  onMessage(message: ArrayBuffer, isBinary: boolean): void {
    this.#active = true;
    // The ArrayBuffer is detached when the core's callback returns: copy it.
    const data = isBinary
      ? this.#binaryType === "blob"
        ? new Blob([new Uint8Array(message)])
        : new Uint8Array(message).slice().buffer
      : textDecoder.decode(message);
    this.#emit(new MessageEvent("message", { data, origin: new URL(this.url).origin }), this.onmessage);
  }

  /** @internal SocketListener: the server side's events. */
  onPong(): void {
    this.#active = true;
  }

  /** @internal SocketListener: the server side's events. */
  onDrain(): void {}

  /** @internal SocketListener: the server side's events. */
  onClose(code: number, reason: string): void {
    if (this.#idleTimer !== null) clearInterval(this.#idleTimer);
    this.#idleTimer = null;
    const wasClean = code !== 1006;
    if (!wasClean) this.#emit(new Event("error"), this.onerror);
    this.#emit(new CloseEvent("close", { code, reason, wasClean }), this.onclose);
  }

  /** Pings halfway through the idle timeout; closes when a whole timeout passed without traffic. */
  #startIdleTimer(): void {
    let quietTicks = 0;
    this.#idleTimer = setInterval(() => {
      if (this.#active) {
        this.#active = false;
        quietTicks = 0;
        return;
      }
      if (++quietTicks >= 2) this.socket.terminate();
      else this.socket.ping();
    }, (this.#idleTimeout * 1000) / 2);
    this.#idleTimer.unref();
  }

  #emit<E extends Event>(event: E, handler: Handler<E>): void {
    if (handler !== null) {
      try {
        handler.call(this, event);
      } catch (err) {
        console.error("uwserve: a WebSocket event handler failed:", err);
      }
    }
    this.dispatchEvent(event);
  }
}

/** The server-side half of `upgradeWebSocket`: how the request's server provides a hub. */
interface UpgradeProvider {
  webSocketHub(): WebSocketHub;
}

/**
 * Deno's `upgradeWebSocket(req, options)`. Throws a TypeError, as Deno does, when `req` is not a
 * WebSocket upgrade request this server is handling.
 */
export function upgradeWebSocket(request: Request, options: UpgradeWebSocketOptions = {}): { socket: DenoWebSocket; response: Response } {
  const ctx = requestContextOf(request) as RequestContext | undefined;
  if (ctx === undefined) {
    throw uwserveError(TypeError, "UWSERVE_ERR_NOT_A_SERVER_REQUEST", "uwserve: upgradeWebSocket() takes the request a uwserve server is handling");
  }
  const handshake = ctx.handshake;
  if (handshake === null || !handshake.valid) {
    throw new TypeError("uwserve: upgradeWebSocket(): not a WebSocket upgrade request (it needs GET with Upgrade: websocket, Connection: Upgrade, Sec-WebSocket-Key and Sec-WebSocket-Version: 13)");
  }
  if (ctx.pendingUpgrade !== null || ctx.upgraded) throw new TypeError("uwserve: upgradeWebSocket() was already called for this request");
  if (typeof options !== "object" || options === null) throw new TypeError("uwserve: upgradeWebSocket(req, options): options must be an object");
  const { protocol = "", idleTimeout = 120 } = options;
  if (typeof protocol !== "string") throw new TypeError("uwserve: upgradeWebSocket(): protocol must be a string");
  if (protocol !== "" && !offeredProtocols(handshake).includes(protocol)) {
    throw new TypeError(`uwserve: upgradeWebSocket(): protocol "${protocol}" was not offered by the client (${handshake.protocols || "none"})`);
  }
  if (typeof idleTimeout !== "number" || !(idleTimeout >= 0) || !Number.isFinite(idleTimeout)) {
    throw new TypeError("uwserve: upgradeWebSocket(): idleTimeout must be a number of seconds >= 0");
  }
  const hub = (ctx.owner as unknown as UpgradeProvider).webSocketHub();
  const url = request.url.replace(/^http/, "ws");
  // The negotiated extensions are chosen inside the core and not reported back.
  const socket = new DenoWebSocket(hub, url, protocol, "", idleTimeout);
  // Deno's response says 101; a web Response can't be built with it, so the status is set after.
  const response = new UwsResponse(null, { status: 200 });
  Object.defineProperty(response, "status", { value: 101 });
  ctx.pendingUpgrade = { response, socket };
  return { socket, response };
}
