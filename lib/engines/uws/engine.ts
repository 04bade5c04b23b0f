/**
 * The uws engine: one uWebSockets.js app listening on one address. The C++ router matches
 * route shapes; this reads each request while uWS's HttpRequest is still valid (H1) and hands
 * it to the shared pipeline (core/dispatch.ts) with uWS's HttpResponse as the exchange.
 */
import { scanHead } from "../../core/_head.js";
import type { Dispatcher } from "../../core/dispatch.js";
import { routeInJs, targetFor } from "../../core/dispatch.js";
import type { Exchange } from "../../core/exchange.js";
import type { Engine } from "../../core/engine.js";
import type { ResolvedOptions } from "../../options.js";
import { openRelay, type RelayPlan } from "../../backplane/relay.js";
import { tryLoadNative } from "../../transport/native.js";
import { NO_PARAMS } from "../../core/request.js";
import { decodeParam, needsNormalizing, normalizePath, type Route, type RouteTable } from "../../core/router.js";
import { resolveTls } from "./tls-files.js";
import type { SocketAddress } from "../../types.js";
import { prepareUnixPath } from "../../transport/unix-socket.js";
import { readHandshake } from "../../websocket/upgrade.js";
import { loadCore, type HttpRequest, type HttpResponse, type TemplatedApp, type us_listen_socket, type us_socket_context_t } from "./uws.js";
import { WebSocketHub } from "../../websocket/websocket-hub.js";
import { uwsTransport, webSocketBehavior } from "./ws-behavior.js";
import { defaultWebSocketOptions } from "../../websocket/websocket-options.js";
import { listenError } from "../listen-error.js";
import { uwserveError } from "../../errors.js";
import { uwsSocketAddress } from "../socket-address.js";

const LISTEN_EXCLUSIVE_PORT = 1;
/** Free ports tried for `reusePort` with port 0 before giving up (one is taken only by a race). */
const REUSE_PORT_ATTEMPTS = 5;
/** The core's HTTP idle timeout, fixed inside the binary (HTTP_IDLE_TIMEOUT_S). */
export const CORE_IDLE_TIMEOUT_S = 10;

export class UwsEngine implements Engine {
  readonly name = "uws" as const;
  readonly scheme: "http" | "https";
  readonly hub: WebSocketHub;
  port: number;
  fallbackOrigin: string;
  readonly #app: TemplatedApp;
  readonly #options: ResolvedOptions;
  readonly #dispatcher: Dispatcher;
  #listenSocket: us_listen_socket | null;
  /** Route shapes registered with the uWS router (it can add routes, never remove them). */
  readonly #shapes: Set<string>;
  /** Shapes of the current table not yet registered (reload() from inside a handler). */
  #unregistered: number;
  readonly #domains: string[] | null;

  constructor(options: ResolvedOptions, dispatcher: Dispatcher, relayPlan: RelayPlan) {
    this.#options = options;
    this.#dispatcher = dispatcher;
    if (options.idleTimeout !== CORE_IDLE_TIMEOUT_S) warnIdleTimeout(options.idleTimeout);
    const material = resolveTls(options.tls.tls, options.tls.cert, options.tls.key);
    if (material !== null) {
      try {
        this.#app = loadCore().SSLApp(material.app);
        for (const { serverName, options: o } of material.servers) this.#app.addServerName(serverName, o);
      } finally {
        material.release();
      }
      this.#domains = material.servers.length === 0 ? null : [...material.servers.map((s) => s.serverName), ""];
      this.scheme = "https";
    } else {
      this.#app = loadCore().App();
      this.#domains = null;
      this.scheme = "http";
    }
    // In a worker group (and on its main thread) the server joins the cross-thread hub, and with
    // a broker its publishes also cross processes (backplane/relay.ts); what comes from the
    // others arrives through the hub's publisher, which counts the ones a congested subscriber
    // here loses (the hub exists by the time any arrives: a later turn).
    const relay = openRelay(relayPlan, (topic, payload, isBinary, compress) => this.hub.publisher.deliverRemote(topic, payload, isBinary, compress));
    this.hub = new WebSocketHub(uwsTransport(this.#app), options.websocket ?? defaultWebSocketOptions(), relay);
    this.#shapes = new Set();
    this.#unregistered = 0;
    this.#listenSocket = null;
    this.port = 0;
    this.fallbackOrigin = "";
    // The catch-all is always there: unmatched requests end in fetch (or 404) through it.
    this.#registerShape("/*", "/*");
    if (options.routes !== null) this.addRoutes(options.routes);
    try {
      this.#listen();
    } catch (err) {
      // A broker connection opened above must not outlive a server that never started.
      relay?.close();
      throw err;
    }
  }

  /** Binds synchronously (uWS calls back before listen() returns), so `port` is right at once. */
  #listen(): void {
    const { hostname, port, reusePort, unix } = this.#options;
    let socket: us_listen_socket | false = false;
    if (unix !== null) {
      prepareUnixPath(unix.path, unix.option, false);
      this.#app.listen_unix((token) => {
        socket = token;
      }, unix.path);
      if (socket === false) {
        this.#app.close();
        throw listenError(hostname, port, unix.path);
      }
      this.#listenSocket = socket;
      return;
    }
    // uWebSockets.js takes (host, port, options, cb); its d.ts lacks that overload.
    const listen = this.#app.listen as unknown as (host: string, port: number, options: number, cb: (token: us_listen_socket | false) => void) => void;
    const bind = (at: number, flags: number): us_listen_socket | false => {
      let token: us_listen_socket | false = false;
      listen.call(this.#app, hostname, at, flags, (t) => {
        token = t;
      });
      return token;
    };
    if (reusePort && port === 0) {
      // uSockets sets SO_REUSEPORT only for a port other than 0, so a second listener on the
      // port the kernel picked would fail: learn a free port first, then bind it shareable
      // (again if another process took it in between).
      for (let attempt = 0; attempt < REUSE_PORT_ATTEMPTS && socket === false; attempt++) {
        const probe = bind(0, LISTEN_EXCLUSIVE_PORT);
        if (probe === false) break;
        const free = loadCore().us_socket_local_port(probe);
        loadCore().us_listen_socket_close(probe);
        socket = bind(free, 0);
      }
    } else {
      socket = bind(port, reusePort ? 0 : LISTEN_EXCLUSIVE_PORT);
    }
    if (socket === false) {
      this.#app.close();
      throw listenError(hostname, port, null);
    }
    this.#listenSocket = socket;
    this.port = loadCore().us_socket_local_port(socket);
  }

  stopListening(): void {
    if (this.#listenSocket === null) return;
    loadCore().us_listen_socket_close(this.#listenSocket);
    this.#listenSocket = null;
  }

  /** app.close() fires onAborted for every open request and the close handler of every WebSocket. */
  closeAll(): void {
    this.#app.close();
  }

  closeIdleConnections(): number {
    // uWS keeps no list of HTTP connections JS can reach between requests.
    throw uwserveError(
      Error,
      "UWSERVE_ERR_ENGINE_UNSUPPORTED",
      'uwserve: closeIdleConnections() needs the node engine (engine: "node"); the uWS core gives no handle on a keep-alive connection between requests. stop() closes idle connections on both engines',
    );
  }

  setRef(ref: boolean): void {
    if (this.#listenSocket === null) return;
    const native = tryLoadNative();
    if (native === null) {
      process.emitWarning(
        "uwserve: ref()/unref() need the native addon, which is not built; the server keeps the process alive. Run `npm rebuild uwserve`.",
        { code: "UWSERVE_NATIVE_UNAVAILABLE" },
      );
      return;
    }
    native.setListenRef(this.port, this.#options.unix?.path ?? null, ref);
  }

  /** This thread's open uWS sockets, or Infinity when the addon can't count them. */
  openSockets(): number {
    return tryLoadNative()?.openSocketCount() ?? Number.POSITIVE_INFINITY;
  }

  /**
   * Registers every shape of `table` the uWS router doesn't have yet. The router can add
   * routes but never remove them, so every shape ever registered stays and dispatches through
   * the current table: one the current table lacks yields to the router's next match (in the
   * end the catch-all). That keeps matching in C++ and makes reload() one assignment.
   */
  addRoutes(table: RouteTable): void {
    for (const [shape, route] of table.byShape) {
      if (this.#shapes.has(shape)) continue;
      try {
        this.#registerShape(shape, route.pattern);
      } catch {
        // uWebSockets.js refuses to add routes from inside a request handler: add it right
        // after; meanwhile the catch-all matches such requests in JS.
        this.#unregistered++;
        setImmediate(() => {
          this.#unregistered--;
          if (!this.#shapes.has(shape)) this.#registerShape(shape, route.pattern);
        });
      }
    }
  }

  #registerShape(shape: string, pattern: string): void {
    // A WebSocket route on the same pattern: the core sends GETs with a Sec-WebSocket-Key
    // there first (with the socket context an upgrade needs) and yields the others to `any`.
    const register = (): void => {
      this.#app.ws(pattern, webSocketBehavior(this.hub, (res, req, context) => this.#onRequest(res, req, shape, context)));
      this.#app.any(pattern, (res, req) => this.#onRequest(res, req, shape));
    };
    const domains = this.#domains;
    if (domains === null) {
      register();
    } else {
      // Each SNI name has a router of its own: register there too ("" is the default one). The
      // core prints a line per domain() call; the addon keeps that off the user's stdout.
      const registerEverywhere = (): void => {
        for (const domain of domains) {
          this.#app.domain(domain);
          register();
        }
      };
      const native = tryLoadNative();
      if (native !== null) native.callWithQuietStdout(registerEverywhere);
      else registerEverywhere();
    }
    this.#shapes.add(shape);
  }

  /** A uWS route handler: `shape` is the route shape the C++ router matched ("/*" for the catch-all). */
  #onRequest(res: HttpResponse, req: HttpRequest, shape: string, wsContext?: us_socket_context_t): void {
    const handlers = this.#dispatcher.handlers;
    // Copy everything now: `req` is invalid after this callback returns (H1).
    const handshake = wsContext === undefined ? null : readHandshake((name) => req.getHeader(name), wsContext);
    const path = req.getUrl();
    const method = req.getCaseSensitiveMethod();
    // Which route? The uWS router already chose `shape`; only odd paths are matched in JS.
    let route: Route | null = null;
    let params = NO_PARAMS;
    let decodeParams = false;
    const routes = handlers.routes;
    if (routes !== null) {
      if (needsNormalizing(path)) {
        // The router saw "/w/../x"; the route must be chosen on the path new URL() shows ("/x").
        ({ route, params } = routeInJs(routes, normalizePath(path)));
      } else {
        route = routes.byShape.get(shape) ?? null;
        if (route === null) {
          if (shape !== "/*") {
            // A shape an earlier table registered: let the router try its next match.
            req.setYield(true);
            return;
          }
          if (this.#unregistered > 0) ({ route, params } = routeInJs(routes, path));
        } else {
          decodeParams = route.paramNames.length > 0;
        }
      }
    }
    const target = route !== null ? targetFor(route, method) : null;
    // A ready static route needs no Request: its headers are only checked, not kept.
    const isStatic = target !== null && target.kind === "static" && target.route.ready === null && !this.#dispatcher.watching();
    const query = req.getQuery() ?? "";
    const head = scanHead(req, method.length + path.length + query.length + 12, !isStatic);
    if (decodeParams && target !== null) {
      // uWS hands parameters out by position, raw: decode them now (req dies after this).
      const names = route!.paramNames;
      params = {};
      for (let i = 0; i < names.length; i++) params[names[i]!] = decodeParam(req.getParameter(i));
    }
    this.#dispatcher.dispatch(res, handlers, method, path, query, head, route, target, params, handshake, this.fallbackOrigin);
  }

  /**
   * Answers a request refused before its handler runs, then closes the connection. Never
   * inside the uWS callback: there, `end(body, true)` neither closes the connection nor stops
   * the core from running requests pipelined behind this one in the same read, so a request
   * smuggled after conflicting Content-Lengths would execute. Answered from the next
   * macrotask, the refusal is still pending when such a request is parsed, and the core drops
   * the connection (H8).
   */
  refuse(res: Exchange, status: string, body: string): void {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    setImmediate(() => {
      if (!aborted) res.cork(() => res.writeStatus(status).end(body, true));
    });
  }

  /** The client's address (the core doesn't expose its port). */
  remoteAddress(res: Exchange): SocketAddress {
    return uwsSocketAddress((res as HttpResponse).getRemoteAddressAsText());
  }

  /**
   * The core's HttpRequest has no version getter. Node 20's core answers anything but
   * HTTP/1.1 with 505 itself; the newer core also serves HTTP/1.0, which is reported as 1.1.
   */
  protocolVersion(): string {
    return "1.1";
  }
}

let warnedIdleTimeout = false;

/** Not an error: Bun code often sets idleTimeout, and this engine applies it where the core lets it. */
function warnIdleTimeout(idleTimeout: number): void {
  if (warnedIdleTimeout) return;
  warnedIdleTimeout = true;
  process.emitWarning(
    `uwserve: idleTimeout ${idleTimeout} applies to request bodies (an upload idle that long is cut; one that keeps ` +
      `sending never is). Connections idle between requests or still sending their headers are closed by the uWS ` +
      `core after ${CORE_IDLE_TIMEOUT_S} s, a constant inside its binary; the node engine applies idleTimeout to both.`,
    { code: "UWSERVE_IDLE_TIMEOUT_PARTIAL" },
  );
}

