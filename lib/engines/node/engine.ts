/**
 * The node engine: node:http (node:https with TLS) under the same pipeline as the uws engine.
 * It serves wherever Node runs (no uWS binary for this Node, glibc too old, musl) and what the
 * core can't: HTTP/1.0 clients, the client's port, abstract unix sockets. Routes are matched in
 * JS; each request is read into the shared pipeline with a NodeExchange as its exchange.
 */
import type { ServerOptions } from "node:http";
import { isIP, Server as NetServer, type Socket } from "node:net";
import { scanH2Headers, scanRawHeaders } from "../../core/_head.js";
import type { Http2ServerRequest } from "node:http2";
import { routeInJs, targetFor, type Dispatcher } from "../../core/dispatch.js";
import type { Engine } from "../../core/engine.js";
import type { ResolvedOptions } from "../../options.js";
import type { Exchange } from "../../core/exchange.js";
import { uwserveError } from "../../errors.js";
import { needsNormalizing, normalizePath } from "../../core/router.js";
import type { SocketAddress } from "../../types.js";
import { prepareUnixPath } from "../../transport/unix-socket.js";
import { isWildcardHost, listenError } from "../listen-error.js";
import { socketAddress } from "../socket-address.js";
import { NODE_SHARES_PORTS } from "../select.js";
import { NodeExchange } from "./exchange.js";
import { resolveNodeTls } from "./tls.js";
import { createNodeServers, type NodeRequest, type NodeResponse, type NodeServers } from "./servers.js";
import type { IncomingMessage } from "node:http";
import { WebSocketHub } from "../../websocket/websocket-hub.js";
import { defaultWebSocketOptions } from "../../websocket/websocket-options.js";
import { openRelay, type RelayPlan } from "../../backplane/relay.js";
import { ignoreError, nodeHandshake, NodeWebSocketTransport, upgradeResponse, type UpgradeContext } from "./ws-transport.js";

/** node:http's own head limit sits above the server's maxHeaderSize, so uwserve's check answers first (431). */
const HEAD_LIMIT_SLACK = 4096;

/** net.Server's synchronous bind (`_listen2`, the alias cluster uses): serve() reports its port at once, as Bun's does. */
type SyncListen = (address: string, port: number, addressType: number, backlog: number, fd?: number, flags?: number) => void;
const syncListen = (NetServer.prototype as unknown as { _listen2?: SyncListen })._listen2;
/** libuv's bind flag for SO_REUSEPORT, which net.Server passes for listen({ reusePort }) since Node 22.12 / 23.1. */
const UV_TCP_REUSEPORT = 2;


export class NodeEngine implements Engine {
  readonly name = "node" as const;
  readonly scheme: "http" | "https";
  readonly hub: WebSocketHub;
  port: number;
  fallbackOrigin: string;
  readonly #servers: NodeServers;
  readonly #options: ResolvedOptions;
  readonly #dispatcher: Dispatcher;
  readonly #sockets: Set<Socket>;
  #listening: boolean;
  #refed: boolean;

  constructor(options: ResolvedOptions, dispatcher: Dispatcher, relayPlan: RelayPlan) {
    this.#options = options;
    this.#dispatcher = dispatcher;
    // WebSockets as on the uws engine: the same hub, over `ws` (Deno's upgradeWebSocket works
    // without a `websocket` option); in a worker group it joins the cross-thread hub, and with a
    // broker its publishes cross processes (backplane/relay.ts).
    const wsOptions = options.websocket ?? defaultWebSocketOptions();
    const transport = new NodeWebSocketTransport(wsOptions);
    const relay = openRelay(relayPlan, (topic, payload, isBinary, compress) => this.hub.publisher.deliverRemote(topic, payload, isBinary, compress));
    this.hub = new WebSocketHub(transport, wsOptions, relay);
    transport.hub = this.hub;
    const idleMs = options.idleTimeout * 1000;
    const http: ServerOptions = {
      maxHeaderSize: options.maxHeaderSize + HEAD_LIMIT_SLACK,
      // Idle keep-alive connections close after idleTimeout (0: never); a request in progress is
      // never cut for time by node (uploads are timed by the server, as on the uws engine).
      keepAliveTimeout: idleMs,
      // A client still sending its head after idleTimeout is cut (slowloris), checked each second.
      headersTimeout: idleMs,
      connectionsCheckingInterval: 1000,
      requestTimeout: 0,
      // A missing Host is refused below, where nothing pipelined behind it runs.
      requireHostHeader: false,
      joinDuplicateHeaders: false,
    };
    const tls = resolveNodeTls(options.tls.tls, options.tls.cert, options.tls.key);
    this.#servers = createNodeServers(http, tls, options.http2, (req, res) => this.#onRequest(req, res));
    this.#servers.http1.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => this.#onUpgrade(req, socket, head));
    this.scheme = tls !== null ? "https" : "http";
    this.#sockets = new Set();
    // One listener for all sockets (no closure per connection: an idle one costs what it holds).
    const sockets = this.#sockets;
    const forget = function (this: Socket): void {
      sockets.delete(this);
    };
    this.#servers.listener.on("connection", (socket: Socket) => {
      sockets.add(socket);
      if (!this.#refed) socket.unref();
      socket.on("close", forget);
    });
    this.#listening = false;
    this.#refed = true;
    this.port = 0;
    this.fallbackOrigin = "";
    try {
      this.#listen();
    } catch (err) {
      // A broker connection opened above must not outlive a server that never started.
      relay?.close();
      throw err;
    }
  }

  /** Binds before returning, like the uws engine, so `port` is right at once. */
  #listen(): void {
    const { hostname, port, unix, reusePort } = this.#options;
    const server = this.#servers.listener;
    // A failed bind is reported here, as a coded error; node's own 'error' event comes on the
    // next tick and must not become an uncaught exception, so it is swallowed until bound.
    const swallow = (): void => {};
    server.once("error", swallow);
    if (unix !== null) {
      prepareUnixPath(unix.path, unix.option, process.platform === "linux");
      server.listen(unix.path);
      if (!server.listening) throw listenError(hostname, port, unix.path);
    } else {
      const address = bindAddress(hostname);
      if (syncListen === undefined) {
        throw uwserveError(Error, "UWSERVE_ERR_ENGINE_UNAVAILABLE", `uwserve: the node engine needs net.Server's synchronous bind, which Node ${process.version} doesn't have`);
      }
      if (reusePort && !NODE_SHARES_PORTS) {
        throw uwserveError(Error, "UWSERVE_ERR_NOT_SUPPORTED", `uwserve: reusePort on the node engine needs Node 22.12 or newer (SO_REUSEPORT in net.Server); this is ${process.version}`);
      }
      syncListen.call(server, address, port, isIP(address), 511, undefined, reusePort ? UV_TCP_REUSEPORT : 0);
      if (!server.listening) throw listenError(hostname, port, null);
      this.port = (server.address() as { port: number }).port;
    }
    server.removeListener("error", swallow);
    this.#listening = true;
  }

  #onRequest(req: NodeRequest, res: NodeResponse): void {
    const h2 = req.httpVersionMajor === 2;
    // A request pipelined behind one that was refused (ambiguous framing, two Hosts) is never
    // run: the refusal closes the connection once it is written.
    if (!h2 && refusedConnections.has(req.socket)) return;
    this.#serve(req, res, null);
  }

  /**
   * node:http hands over a request with Upgrade and Connection: Upgrade, and its socket: a
   * WebSocket handshake (or another protocol's upgrade, answered as a plain request). Either
   * way the connection serves no further HTTP requests.
   */
  #onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    // node:http took its listeners off the socket: a reset must not become an uncaught error.
    socket.on("error", ignoreError);
    this.#serve(req, upgradeResponse(req, socket), { socket, head });
  }

  /** `upgrade`: the socket and bytes node:http handed over with an upgrade request, else null. */
  #serve(req: NodeRequest, res: NodeResponse, upgrade: UpgradeContext | null): void {
    const h2 = req.httpVersionMajor === 2;
    const handlers = this.#dispatcher.handlers;
    const target = req.url ?? "/";
    const q = target.indexOf("?");
    let path = q === -1 ? target : target.slice(0, q);
    const query = q === -1 ? "" : target.slice(q + 1);
    if (path.charCodeAt(0) !== 47 /* / */) path = originPath(path);
    const method = req.method ?? "GET";
    const { route, params } = routeInJs(handlers.routes, needsNormalizing(path) ? normalizePath(path) : path);
    const routeTarget = route !== null ? targetFor(route, method) : null;
    const isStatic = routeTarget !== null && routeTarget.kind === "static" && routeTarget.route.ready === null && !this.#dispatcher.watching();
    const lineBytes = method.length + target.length + 12;
    const head = h2
      ? scanH2Headers(req.rawHeaders, lineBytes, !isStatic, !(req as Http2ServerRequest).stream.endAfterHeaders)
      : scanRawHeaders(req.rawHeaders, lineBytes, !isStatic);
    // A GET with Sec-WebSocket-Key is a handshake; without the upgrade node:http handed over
    // (no Upgrade/Connection), one that upgrade() refuses (400/426).
    const handshake = !h2 && method === "GET" && head.webSocketKey ? nodeHandshake(req as IncomingMessage, upgrade) : null;
    const exchange = new NodeExchange(req, res);
    if (head.hosts === 0 && req.httpVersionMajor === 1 && req.httpVersionMinor === 1) {
      // RFC 9112 §3.2: an HTTP/1.1 request without Host is a 400, as the uws engine's core answers it.
      this.refuse(exchange, "400 Bad Request", "Bad Request: no Host header");
      return;
    }
    // Corked as a uWS request callback is: a response answered synchronously goes out after it.
    exchange.hold();
    try {
      this.#dispatcher.dispatch(exchange, handlers, method, path, query, head, route, routeTarget, params, handshake, this.fallbackOrigin);
    } finally {
      exchange.release();
    }
    exchange.watchAbort();
  }

  addRoutes(): void {
    // Routes are matched in JS on every request: nothing to register.
  }

  refuse(exchange: Exchange, status: string, body: string): void {
    const req = (exchange as NodeExchange).req;
    // HTTP/2 answers the one stream; the connection's other streams are not affected.
    if (req.httpVersionMajor !== 2) refusedConnections.add(req.socket);
    exchange.writeStatus(status).end(body, true);
  }

  protocolVersion(exchange: Exchange): string {
    const req = (exchange as NodeExchange).req;
    return req.httpVersionMajor === 2 ? "2" : req.httpVersion;
  }

  remoteAddress(exchange: Exchange): SocketAddress {
    const socket = (exchange as NodeExchange).req.socket;
    return socketAddress(socket.remoteAddress ?? "", socket.remotePort ?? 0);
  }

  stopListening(): void {
    if (!this.#listening) return;
    this.#listening = false;
    // node:http's close() also closes idle keep-alive connections; busy ones finish their response first.
    this.#servers.listener.close();
  }

  closeAll(): void {
    this.stopListening();
    this.#servers.closeHttp1();
    for (const socket of this.#sockets) socket.destroy();
  }

  closeIdleConnections(): number {
    const open = (): number => {
      let count = 0;
      for (const socket of this.#sockets) if (!socket.destroyed) count++;
      return count;
    };
    // node:http destroys them synchronously: the difference is what it closed.
    const before = open();
    this.#servers.closeIdleHttp1();
    return before - open();
  }

  setRef(ref: boolean): void {
    this.#refed = ref;
    if (ref) this.#servers.listener.ref();
    else this.#servers.listener.unref();
    for (const socket of this.#sockets) {
      if (ref) socket.ref();
      else socket.unref();
    }
  }

  openSockets(): number {
    return this.#sockets.size;
  }
}

/** Connections whose request was refused before its handler: they close, nothing more runs on them. */
const refusedConnections = new WeakSet<Socket>();

/** The address to bind: an IP as given; "localhost" as the loopback uWS binds for it; the IPv6 wildcard for "" (dual stack). */
function bindAddress(hostname: string): string {
  const bare = hostname.replace(/^\[|\]$/g, "");
  if (isIP(bare) !== 0) return bare;
  if (bare === "localhost") return "127.0.0.1";
  if (isWildcardHost(hostname)) return "::";
  throw uwserveError(
    Error,
    "UWSERVE_ERR_LISTEN",
    `uwserve: the node engine listens on an IP address or "localhost"; resolve ${JSON.stringify(hostname)} first (it binds before serve() returns, without a DNS lookup)`,
  );
}

/** The path of an absolute-form request target ("http://host/p"); "*" (OPTIONS) stays as it is. */
function originPath(target: string): string {
  if (target === "*") return target;
  try {
    return new URL(target).pathname;
  } catch {
    return target;
  }
}
