/**
 * The seam between the server and what carries its HTTP: the uws engine (the uWebSockets.js
 * core) or the node engine (node:http/https). An engine listens, reads each request into the
 * shared pipeline (core/dispatch.ts) and closes connections; the server's life (stop, reload,
 * counters) and everything a request goes through are the same on both.
 */
import type { RouteTable } from "./router.js";
import type { SocketAddress } from "../types.js";
import type { WebSocketHub } from "../websocket/websocket-hub.js";
import type { Exchange } from "./exchange.js";

export type EngineName = "uws" | "node";

export interface Engine {
  readonly name: EngineName;
  readonly scheme: "http" | "https";
  /** The bound port (0 for a unix socket). */
  readonly port: number;
  /** Origin for Request URLs when a request has no Host; set by the server once it knows its URL. */
  fallbackOrigin: string;
  /** WebSockets and pub/sub (both engines have them). */
  readonly hub: WebSocketHub;
  /** Makes a route table's routes reachable (the uWS router needs their shapes). */
  addRoutes(table: RouteTable): void;
  /** Answers a request refused before its handler runs, then closes the connection. */
  refuse(exchange: Exchange, status: string, body: string): void;
  remoteAddress(exchange: Exchange): SocketAddress;
  /** The request's HTTP version: "1.1", "1.0", "2". */
  protocolVersion(exchange: Exchange): string;
  /** Stops accepting connections; open ones stay. */
  stopListening(): void;
  /** Closes every connection at once. */
  closeAll(): void;
  /** Closes keep-alive connections waiting for their next request; returns how many. */
  closeIdleConnections(): number;
  /** Whether the listener keeps the process alive. */
  setRef(ref: boolean): void;
  /** Open sockets of this engine (for the WebSocket close handshakes of a graceful stop). */
  openSockets(): number;
}
