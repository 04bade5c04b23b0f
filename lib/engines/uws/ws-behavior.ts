/**
 * The uws engine's side of WebSockets: uWS's WebSocketBehavior calling the hub, uWS's app as the
 * topic tree, and the upgrade on uWS's HttpResponse. uWS's WebSocket objects are the hub's
 * Connections as they are (connection.ts has their shape).
 */
import { coreByteString } from "./core-bytes.js";
import type { HttpResponse, TemplatedApp, us_socket_context_t, WebSocket as UwsWebSocket, WebSocketBehavior } from "./uws.js";
import { loadCore } from "./uws.js";
import type { Connection, WebSocketTransport } from "../../websocket/connection.js";
import type { ServerWebSocket } from "../../websocket/websocket.js";
import type { WebSocketHub } from "../../websocket/websocket-hub.js";
import { engineMaxPayload, type ResolvedWebSocketOptions } from "../../websocket/websocket-options.js";
import { uwsSocketAddress } from "../socket-address.js";

/** The object handed to uWS as user data: uWebSockets.js copies its own properties onto its socket. */
interface UserData {
  s: ServerWebSocket<unknown>;
}
type NativeWebSocket = UwsWebSocket<UserData> & UserData & Connection;

/** The core's close reasons (WebSocketProtocol.h), mapped to the codes a peer would have seen. */
const CORE_CLOSE_CODES: ReadonlyArray<[prefix: string, code: number]> = [
  ["Received too big message", 1009],
  ["Received invalid UTF-8", 1007],
];

/** The hub's transport on uWS: its app's topics; an upgrade is res.upgrade() on the same response. */
export function uwsTransport(app: TemplatedApp): WebSocketTransport {
  return {
    topics: app as unknown as WebSocketTransport["topics"],
    accept(ctx, socket, headers, protocol) {
      // The exchange of a uws engine request is uWS's HttpResponse.
      const res = ctx.res as HttpResponse;
      const handshake = ctx.handshake!;
      if (headers.length > 0) {
        // The status first, or the first header would write "200 OK" and break the upgrade.
        res.writeStatus("101 Switching Protocols");
        for (const [name, value] of headers) res.writeHeader(name, coreByteString(value));
      }
      res.upgrade({ s: socket } satisfies UserData, handshake.key, protocol, handshake.extensions, handshake.context as us_socket_context_t);
    },
  };
}

/** The uWS behaviour for one route shape; `upgrade` is the server's request bridge. */
export function webSocketBehavior(hub: WebSocketHub, upgrade: WebSocketBehavior<UserData>["upgrade"]): WebSocketBehavior<UserData> {
  const { options } = hub;
  return {
    maxPayloadLength: engineMaxPayload(options.maxPayloadLength),
    maxBackpressure: options.backpressureLimit,
    // uWebSockets.js reads it as an integer.
    closeOnBackpressureLimit: (options.closeOnBackpressureLimit ? 1 : 0) as unknown as number,
    idleTimeout: options.idleTimeout,
    sendPingsAutomatically: options.sendPings,
    compression: coreCompressionBits(options.compression),
    upgrade,
    open: (ws) => hub.opened((ws as NativeWebSocket).s, ws as NativeWebSocket, uwsSocketAddress(ws.getRemoteAddressAsText()).address),
    message: (ws, message, isBinary) => hub.received((ws as NativeWebSocket).s, message, isBinary),
    drain: (ws) => hub.drained((ws as NativeWebSocket).s),
    close: (ws, code, reason) => closed(hub, (ws as NativeWebSocket).s, code, reason),
    ping: (ws, data) => hub.pinged((ws as NativeWebSocket).s, data, "ping"),
    pong: (ws, data) => hub.pinged((ws as NativeWebSocket).s, data, "pong"),
  };
}

function closed(hub: WebSocketHub, socket: ServerWebSocket<unknown>, rawCode: number, rawReason: ArrayBuffer): void {
  let code = rawCode;
  let reason = Buffer.from(rawReason).toString("utf8");
  if (code === 1006) {
    // The core cuts the connection without a close frame on these; report what it means.
    for (const [prefix, mapped] of CORE_CLOSE_CODES) if (reason.startsWith(prefix)) code = mapped;
    if (code === 1009) reason = `Message too big (maxPayloadLength is ${hub.options.maxPayloadLength} bytes)`;
  }
  hub.closed(socket, code, reason);
}

/** The uWS CompressOptions bits of a compression choice. */
function coreCompressionBits(choice: ResolvedWebSocketOptions["compression"]): number {
  const constants = loadCore() as unknown as Record<string, number>;
  return (choice.compress === null ? 0 : constants[choice.compress]!) | (choice.decompress === null ? 0 : constants[choice.decompress]!);
}
