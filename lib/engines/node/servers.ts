/**
 * The node:http, node:https or node:http2 servers behind the node engine, and the one that
 * listens. HTTP/2 (`http2: true`): over TLS one http2 server answers h2 by ALPN and HTTP/1.1 for
 * clients without it (allowHTTP1); without TLS a plain listener reads each connection's first
 * bytes and hands it to the h2c server (the HTTP/2 preface: prior knowledge, as Deno serves it)
 * or to the HTTP/1.1 one.
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerOptions, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { createSecureServer, createServer as createH2cServer, type Http2ServerRequest, type Http2ServerResponse } from "node:http2";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import type { EventEmitter } from "node:events";
import type { NodeTls } from "./tls.js";

export type NodeRequest = IncomingMessage | Http2ServerRequest;
export type NodeResponse = ServerResponse | Http2ServerResponse;
export type OnNodeRequest = (req: NodeRequest, res: NodeResponse) => void;

export interface NodeServers {
  /** The server that binds the port or socket. */
  listener: NetServer;
  /** The HTTP/1.1 server whose `upgrade` events carry WebSocket handshakes. */
  http1: EventEmitter;
  /** Closes the HTTP/1 connections node:http tracks (idle ones included). */
  closeHttp1(): void;
  /** Closes the HTTP/1 keep-alive connections that wait for a next request (node:http's closeIdleConnections). */
  closeIdleHttp1(): void;
}

/** The first bytes of every HTTP/2 connection (RFC 9113 §3.4). */
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

export function createNodeServers(http: ServerOptions, tls: NodeTls | null, http2: boolean, onRequest: OnNodeRequest): NodeServers {
  const handle = onRequest as (req: IncomingMessage, res: ServerResponse) => void;
  if (!http2) {
    const server = tls !== null ? createHttpsServer({ ...http, ...tls.options }, handle) : createHttpServer(http, handle);
    return { listener: server, http1: server, closeHttp1: () => server.closeAllConnections(), closeIdleHttp1: () => server.closeIdleConnections() };
  }
  if (tls !== null) {
    const server = createSecureServer({ ...tls.options, allowHTTP1: true, ALPNProtocols: ["h2", "http/1.1"] }, onRequest);
    // HTTP/1.1 fallback connections of an http2 server aren't tracked by node:http2 (it emits their upgrades).
    return { listener: server, http1: server, closeHttp1: () => {}, closeIdleHttp1: () => {} };
  }
  const h1 = createHttpServer(http, handle);
  const h2c = createH2cServer({}, onRequest);
  const listener = createNetServer((socket: Socket) => {
    socket.once("data", (first: Buffer) => {
      // Put the bytes back and let the server of the protocol they start read them again.
      socket.pause();
      socket.unshift(first);
      const n = Math.min(first.length, PREFACE.length);
      (first.subarray(0, n).equals(PREFACE.subarray(0, n)) ? h2c : h1).emit("connection", socket);
      process.nextTick(() => socket.resume());
    });
  });
  return { listener, http1: h1, closeHttp1: () => h1.closeAllConnections(), closeIdleHttp1: () => h1.closeIdleConnections() };
}
