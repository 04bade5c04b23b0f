/**
 * WebSockets on the node engine: `ws`'s WebSocketServer (noServer) completes handshakes the
 * shared pipeline accepted, and each `ws` socket becomes a NodeConnection under the same hub
 * as on the uws engine. Also here: the idle timeout and its pings (uWS's `idleTimeout` and
 * `sendPingsAutomatically`), with one timer for all sockets.
 */
import { ServerResponse, type IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { WebSocketServer, type PerMessageDeflateOptions, type WebSocket } from "ws";
import type { RequestContext } from "../../core/context.js";
import type { WebSocketTransport } from "../../websocket/connection.js";
import { readHandshake, type Handshake } from "../../websocket/upgrade.js";
import type { ServerWebSocket } from "../../websocket/websocket.js";
import type { WebSocketHub } from "../../websocket/websocket-hub.js";
import { engineMaxPayload, type ResolvedWebSocketOptions } from "../../websocket/websocket-options.js";
import { socketAddress } from "../socket-address.js";
import type { NodeExchange } from "./exchange.js";
import { NodeConnection } from "./ws-connection.js";
import { NodeTopicTree } from "./ws-topics.js";

/** What a node engine handshake carries to the upgrade: the socket node:http handed over, and the bytes read past the head. */
interface UpgradeContext {
  socket: Socket;
  head: Buffer;
}

/** The 101's extras for one request, read by `ws`'s hooks while it completes the handshake. */
interface Accepting {
  headers: Array<[string, string]>;
  protocol: string;
}
const ACCEPTING = Symbol("uwserve.accepting");
type AcceptingRequest = IncomingMessage & { [ACCEPTING]?: Accepting };

const CONNECTION = Symbol("uwserve.connection");
type TaggedWebSocket = WebSocket & { [CONNECTION]: NodeConnection };

/** Idle checks run this often; uWS's own timer ticks every 4 s. */
const IDLE_CHECK_MS = 1000;

/** Reads a handshake from node:http's request (a GET with Sec-WebSocket-Key; or one node:http handed over as an upgrade). */
export function nodeHandshake(req: IncomingMessage, context: UpgradeContext | null): Handshake {
  const headers = req.headers;
  const header = (name: string): string => {
    const value = headers[name];
    return value === undefined ? "" : Array.isArray(value) ? value.join(", ") : value;
  };
  return readHandshake(header, context);
}

/** A client that ends its side before the upgrade is gone: close, so the request aborts. */
function onEarlyEnd(this: Socket): void {
  this.destroy();
}

/**
 * node:http stops reading a connection once it hands it over as an upgrade: the exchange for
 * that request is a ServerResponse on the bare socket, which closes after answering (when the
 * handler doesn't upgrade after all) or when the client leaves first.
 */
export function upgradeResponse(req: IncomingMessage, socket: Socket): ServerResponse {
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket);
  // node:http's sockets are half-open: without its listeners, a client's FIN alone closes nothing.
  socket.once("end", onEarlyEnd);
  res.once("finish", () => {
    res.detachSocket(socket);
    socket.end();
  });
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
  readonly #open: Set<NodeConnection>;
  #idleTimer: ReturnType<typeof setInterval> | null;

  constructor(options: ResolvedWebSocketOptions) {
    this.#options = options;
    this.topics = new NodeTopicTree();
    this.hub = null;
    this.#open = new Set();
    this.#idleTimer = null;
    this.#server = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: engineMaxPayload(options.maxPayloadLength),
      perMessageDeflate: deflateOptions(options.compression),
      handleProtocols: (_offered, req) => (req as AcceptingRequest)[ACCEPTING]?.protocol || false,
    });
    this.#server.on("headers", (lines: string[], req: AcceptingRequest) => {
      for (const [name, value] of req[ACCEPTING]?.headers ?? []) lines.push(`${name}: ${value}`);
    });
  }

  accept(ctx: RequestContext, socket: ServerWebSocket<unknown>, headers: Array<[string, string]>, protocol: string): void {
    const exchange = ctx.res as NodeExchange;
    const req = exchange.req as AcceptingRequest;
    const upgrade = ctx.handshake!.context as UpgradeContext;
    // The socket is the WebSocket's from here on: the response object lets go of it.
    (exchange.res as ServerResponse).detachSocket(upgrade.socket);
    upgrade.socket.removeListener("end", onEarlyEnd);
    req[ACCEPTING] = { headers, protocol };
    this.#server.handleUpgrade(req, upgrade.socket, upgrade.head, (ws) => {
      delete req[ACCEPTING];
      this.#opened(ws, upgrade.socket, socket);
    });
  }

  #opened(ws: WebSocket, tcp: Socket, socket: ServerWebSocket<unknown>): void {
    const hub = this.hub!;
    const connection = new NodeConnection(ws, tcp, this.topics, hub, socket, this.#forget);
    (ws as TaggedWebSocket)[CONNECTION] = connection;
    ws.on("message", onMessage);
    ws.on("ping", onPing);
    ws.on("pong", onPong);
    ws.on("error", onError);
    ws.on("close", onClose);
    this.#open.add(connection);
    if (this.#options.idleTimeout > 0 && this.#idleTimer === null) this.#startIdleChecks();
    hub.opened(socket, connection, socketAddress(tcp.remoteAddress ?? "", 0).address);
  }

  /** A connection is over (whichever side ended it). */
  readonly #forget = (connection: NodeConnection): void => {
    this.#open.delete(connection);
    if (this.#open.size === 0 && this.#idleTimer !== null) {
      clearInterval(this.#idleTimer);
      this.#idleTimer = null;
    }
  };

  /**
   * uWS's idle timeout: a socket the client sent nothing on for `idleTimeout` seconds is cut
   * (1006). With sendPings it is pinged halfway there, and the client's pong counts as traffic.
   */
  #startIdleChecks(): void {
    const limit = Math.max(1, Math.round((this.#options.idleTimeout * 1000) / IDLE_CHECK_MS));
    const pingAt = Math.max(1, Math.floor(limit / 2));
    this.#idleTimer = setInterval(() => {
      for (const connection of this.#open) {
        if (connection.heard) {
          connection.heard = false;
          connection.quietChecks = 0;
          continue;
        }
        const quiet = ++connection.quietChecks;
        if (quiet >= limit) connection.close();
        else if (quiet === pingAt && this.#options.sendPings) connection.ping();
      }
    }, IDLE_CHECK_MS);
    this.#idleTimer.unref();
  }
}

// One listener of each kind for all sockets: the connection is found on the socket, no closure per connection.

function connectionOf(ws: WebSocket): NodeConnection {
  return (ws as TaggedWebSocket)[CONNECTION];
}

function onMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
  connectionOf(this).receivedMessage(data, isBinary);
}

function onPing(this: WebSocket, data: Buffer): void {
  connectionOf(this).receivedControl(data, "ping");
}

function onPong(this: WebSocket, data: Buffer): void {
  connectionOf(this).receivedControl(data, "pong");
}

function onError(this: WebSocket, err: Error): void {
  connectionOf(this).failed(err);
}

function onClose(this: WebSocket, code: number, reason: Buffer): void {
  connectionOf(this).reportClose(code, reason.toString("utf8"));
}
