/**
 * HTTP → WebSocket upgrades. The handshake headers are copied while the uWS request is alive
 * (H1); the upgrade itself may happen later, after the handler awaited something, on the same
 * uWS response, corked (H3).
 */
import { coreByteString } from "../engines/uws/core-bytes.js";
import type { RequestContext } from "../core/context.js";
import type { HttpRequest, HttpResponse, us_socket_context_t } from "../engines/uws/uws.js";
import type { ServerWebSocket } from "./websocket.js";
import type { WebSocketHub } from "./websocket-hub.js";

/** A request that asked for a WebSocket, as uWS saw it. */
export interface Handshake {
  key: string;
  /** Sec-WebSocket-Protocol as sent: a comma-separated list. */
  protocols: string;
  extensions: string;
  context: us_socket_context_t;
  /** The request meets RFC 6455 §4.2.1 (Upgrade, Connection, version 13, a 16-byte key). */
  valid: boolean;
  /** Sec-WebSocket-Version is 13 (else a refusal is a 426 naming it, RFC 6455 §4.4). */
  versionOk: boolean;
}

/** Reads the handshake inside the uWS upgrade callback: valid only as RFC 6455 §4.2.1 asks. */
export function readHandshake(req: HttpRequest, context: us_socket_context_t): Handshake {
  const upgrade = req.getHeader("upgrade");
  const connection = req.getHeader("connection");
  const version = req.getHeader("sec-websocket-version");
  const key = req.getHeader("sec-websocket-key");
  const versionOk = version.trim() === "13";
  return {
    key,
    protocols: req.getHeader("sec-websocket-protocol"),
    extensions: req.getHeader("sec-websocket-extensions"),
    context,
    valid: hasToken(upgrade, "websocket") && hasToken(connection, "upgrade") && versionOk && KEY.test(key.trim()),
    versionOk,
  };
}

/** RFC 6455 §4.2.1: Sec-WebSocket-Key is the base64 of 16 bytes (22 characters and "=="). */
const KEY = /^[A-Za-z0-9+/]{21}[AQgw]==$/;

function hasToken(header: string, token: string): boolean {
  return header.split(",").some((part) => part.trim().toLowerCase() === token);
}

/** The protocols the client offered, in its order of preference. */
export function offeredProtocols(handshake: Handshake): string[] {
  return handshake.protocols.split(",").map((p) => p.trim()).filter((p) => p !== "");
}

/** Headers the handshake writes itself; a user's copy would duplicate or contradict them. */
const HANDSHAKE_HEADERS = new Set(["upgrade", "connection", "sec-websocket-accept", "sec-websocket-extensions", "sec-websocket-protocol"]);

/**
 * Upgrades `ctx`'s connection: the 101 (with `headers`), then the core calls `open` at once.
 * `protocol` is the one sent back; a Sec-WebSocket-Protocol in `headers` overrides it.
 */
export function performUpgrade(
  ctx: RequestContext,
  hub: WebSocketHub,
  socket: ServerWebSocket<unknown>,
  headers: HeadersInit | undefined,
  protocol: string,
): void {
  const handshake = ctx.handshake!;
  const extra: Array<[string, string]> = [];
  if (headers !== undefined) {
    // undici's Headers validates names and values (no CR/LF: no response splitting).
    const list = new Headers(headers);
    for (const [name, value] of list) {
      if (name === "sec-websocket-protocol") protocol = value;
      else if (name === "set-cookie") continue;
      else if (!HANDSHAKE_HEADERS.has(name)) extra.push([name, value]);
    }
    for (const cookie of list.getSetCookie()) extra.push(["set-cookie", cookie]);
  }
  ctx.responded = true;
  ctx.upgraded = true;
  // Only the uws engine has WebSockets: its exchange is uWS's HttpResponse.
  const res = ctx.res as HttpResponse;
  ctx.run(() => {
    if (extra.length > 0) {
      // The status first, or the first header would write "200 OK" and break the upgrade.
      res.writeStatus("101 Switching Protocols");
      for (const [name, value] of extra) res.writeHeader(name, coreByteString(value));
    }
    res.upgrade(hub.userData(socket), handshake.key, protocol, handshake.extensions, handshake.context);
  });
  ctx.finish();
}
