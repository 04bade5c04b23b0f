/**
 * WebSockets on the node engine: `ws`'s WebSocketServer (noServer) completes handshakes the
 * shared pipeline accepted, and each `ws` socket becomes a NodeConnection under the same hub
 * as on the uws engine. Also here: the idle timeout and its pings (uWS's `idleTimeout` and
 * `sendPingsAutomatically`), with one timer for all sockets.
 */
import { ServerResponse, type IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { WebSocketServer, type PerMessageDeflateOptions } from "ws";
import type { RequestContext } from "../../core/context.js";
import type { WebSocketTransport } from "../../websocket/connection.js";
import { readHandshake, type Handshake } from "../../websocket/upgrade.js";
import type { ServerWebSocket } from "../../websocket/websocket.js";
import type { WebSocketHub } from "../../websocket/websocket-hub.js";
import { engineMaxPayload, type ResolvedWebSocketOptions } from "../../websocket/websocket-options.js";
import { plainAddress } from "../socket-address.js";
import type { NodeExchange } from "./exchange.js";
import { NodeConnection, ServerSocket } from "./ws-connection.js";
import { NodeTopicTree } from "./ws-topics.js";

/** What a node engine handshake carries to the upgrade: the socket node:http handed over, and the bytes read past the head. */
export interface UpgradeContext {
  socket: Socket;
  head: Buffer;
}

/** Idle checks run this often; uWS's own timer ticks every 4 s. */
const IDLE_CHECK_MS = 1000;

/**
 * Reads a handshake from node:http's request: a GET with Sec-WebSocket-Key. Only one node:http
 * handed over as an upgrade (with its socket: `context`) can be accepted; one that came as a
 * plain request is refused as upgrade() refuses any invalid handshake (400, or 426).
 */
export function nodeHandshake(req: IncomingMessage, context: UpgradeContext | null): Handshake {
  const headers = req.headers;
  const header = (name: string): string => {
    const value = headers[name];
    return value === undefined ? "" : Array.isArray(value) ? value.join(", ") : value;
  };
  const handshake = readHandshake(header, context);
  if (context === null) handshake.valid = false;
  return handshake;
}

/** node:http takes its listeners off a socket it hands over: until `ws` has it, errors (resets) are ignored here. */
export function ignoreError(): void {}

/** A client that ends its side before the upgrade is gone: close, so the request aborts. */
function onEarlyEnd(this: Socket): void {
  this.destroy();
}

/** A response answered instead of an upgrade: the connection ends with it. */
function onAnswered(this: ServerResponse): void {
  const socket = this.socket!;
  this.detachSocket(socket);
  socket.end();
}

/**
 * node:http stops reading a connection once it hands it over as an upgrade: the exchange for
 * that request is a ServerResponse on the bare socket, which closes after answering (when the
 * handler doesn't upgrade after all) or when the client leaves first. Shared listeners, no
 * closures: every upgrade goes through here, and what it allocates an idle server keeps in RSS.
 */
export function upgradeResponse(req: IncomingMessage, socket: Socket): ServerResponse {
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket);
  // node:http's sockets are half-open: without its listeners, a client's FIN alone closes nothing.
  socket.on("end", onEarlyEnd);
  res.on("finish", onAnswered);
  return res;
}

/** `perMessageDeflate` for `ws`: uWS's shared (de)compressor keeps no context between messages. */
function deflateOptions(choice: ResolvedWebSocketOptions["compression"]): PerMessageDeflateOptions | false {
  if (choice.compress === null && choice.decompress === null) return false;
  return {
    // Every message marked `compress` is compressed, as uWS does (ws skips those under 1 KiB by default).
    threshold: 0,
    serverNoContextTakeover: choice.compress === null || choice.compress === "SHARED_COMPRESSOR",
    clientNoContextTakeover: choice.decompress === null || choice.decompress === "SHARED_DECOMPRESSOR",
  };
}

export class NodeWebSocketTransport implements WebSocketTransport {
  readonly topics: NodeTopicTree<NodeConnection>;
  readonly #server: WebSocketServer;
  readonly #options: ResolvedWebSocketOptions;
  /** Set once the hub exists (it is built with this transport). */
  hub: WebSocketHub | null;
  #idleTimer: ReturnType<typeof setInterval> | null;
  /** The 101's extras for the handshake `ws` is completing now (it reads them synchronously). */
  #acceptHeaders: Array<[string, string]>;
  #acceptProtocol: string;

  constructor(options: ResolvedWebSocketOptions) {
    this.#options = options;
    this.topics = new NodeTopicTree();
    this.hub = null;
    this.#idleTimer = null;
    this.#acceptHeaders = [];
    this.#acceptProtocol = "";
    this.#server = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      WebSocket: ServerSocket,
      maxPayload: engineMaxPayload(options.maxPayloadLength),
      perMessageDeflate: deflateOptions(options.compression),
      handleProtocols: () => this.#acceptProtocol || false,
    });
    this.#server.on("headers", (lines: string[]) => {
      for (const [name, value] of this.#acceptHeaders) lines.push(`${name}: ${value}`);
    });
  }

  accept(ctx: RequestContext, socket: ServerWebSocket<unknown>, headers: Array<[string, string]>, protocol: string): void {
    const exchange = ctx.res as NodeExchange;
    const upgrade = ctx.handshake!.context as UpgradeContext;
    const tcp = upgrade.socket;
    // The socket is the WebSocket's from here on: the response object lets go of it.
    exchange.handOver();
    (exchange.res as ServerResponse).detachSocket(tcp);
    tcp.removeListener("end", onEarlyEnd);
    this.#acceptHeaders = headers;
    this.#acceptProtocol = protocol;
    let ws: ServerSocket | null = null;
    try {
      this.#server.handleUpgrade(exchange.req as IncomingMessage, tcp, upgrade.head, (opened) => {
        ws = opened as ServerSocket;
      });
    } finally {
      this.#acceptHeaders = [];
      this.#acceptProtocol = "";
    }
    // Not when the client went away meanwhile (`ws` destroyed the socket).
    if (ws === null) return;
    // `ws` listens for the socket's errors from here on.
    tcp.removeListener("error", ignoreError);
    this.#opened(ws, tcp, socket);
  }

  #opened(ws: ServerSocket, tcp: Socket, socket: ServerWebSocket<unknown>): void {
    const hub = this.hub!;
    const connection = new NodeConnection(ws, tcp, this.topics, hub, socket);
    if (this.#options.idleTimeout > 0 && this.#idleTimer === null) this.#startIdleChecks(hub);
    hub.opened(socket, connection, plainAddress(tcp.remoteAddress ?? ""));
  }

  /**
   * uWS's idle timeout: a socket the client sent nothing on for `idleTimeout` seconds is cut
   * (1006). With sendPings it is pinged when a quarter of that is left, as uWS pings shortly
   * before its timeout (the client's pong counts as traffic; the hub's 30 s keepalive pings
   * come first for longer timeouts). It walks the hub's open sockets (no set of its own) and
   * stops when none is left.
   */
  #startIdleChecks(hub: WebSocketHub): void {
    const limit = Math.max(1, Math.round((this.#options.idleTimeout * 1000) / IDLE_CHECK_MS));
    const pingAt = Math.max(1, limit - Math.max(1, Math.floor(limit / 4)));
    this.#idleTimer = setInterval(() => {
      if (hub.open.size === 0) {
        clearInterval(this.#idleTimer!);
        this.#idleTimer = null;
        return;
      }
      for (const socket of hub.open) {
        const connection = socket.native as NodeConnection | null;
        if (connection === null) continue;
        const quiet = ++connection.quietChecks;
        if (quiet >= limit) connection.close();
        else if (quiet === pingAt && this.#options.sendPings) connection.ping();
      }
    }, IDLE_CHECK_MS);
    this.#idleTimer.unref();
  }
}
