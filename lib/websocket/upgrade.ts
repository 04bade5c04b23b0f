/**
 * HTTP → WebSocket upgrades. The handshake headers are copied while the request is alive (uWS's
 * HttpRequest dies with its callback, H1); the upgrade itself may happen later, after the
 * handler awaited something, through the engine's transport (on uWS: the same response,
 * corked, H3).
 */
import type { RequestContext } from "../core/context.js";
import type { ServerWebSocket } from "./websocket.js";
import type { WebSocketHub } from "./websocket-hub.js";

/** A request that asked for a WebSocket (a GET with Sec-WebSocket-Key), as the engine saw it. */
export interface Handshake {
  key: string;
  /** Sec-WebSocket-Protocol as sent: a comma-separated list. */
  protocols: string;
  extensions: string;
  /** What the engine needs to finish the upgrade (uWS's socket context; node's socket and head). */
  context: unknown;
  /** The request meets RFC 6455 §4.2.1 (Upgrade, Connection, version 13, a 16-byte key). */
  valid: boolean;
  /** Sec-WebSocket-Version is 13 (else a refusal is a 426 naming it, RFC 6455 §4.4). */
  versionOk: boolean;
}

/**
 * Reads a handshake (`header` returns a field's value, "" when absent; on uWS inside the upgrade
 * callback): valid only as RFC 6455 §4.2.1 asks.
 */
export function readHandshake(header: (name: string) => string, context: unknown): Handshake {
  const upgrade = header("upgrade");
  const connection = header("connection");
  const version = header("sec-websocket-version");
  const key = header("sec-websocket-key");
  const versionOk = version.trim() === "13";
  return {
    key,
    protocols: header("sec-websocket-protocol"),
    extensions: header("sec-websocket-extensions"),
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
 * Upgrades `ctx`'s connection: the 101 (with `headers`), then the engine opens the socket.
 * `protocol` is the one sent back; a Sec-WebSocket-Protocol in `headers` overrides it.
 */
export function performUpgrade(
  ctx: RequestContext,
  hub: WebSocketHub,
  socket: ServerWebSocket<unknown>,
  headers: HeadersInit | undefined,
  protocol: string,
): void {
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
  ctx.status = 101;
  ctx.run(() => hub.transport.accept(ctx, socket, extra, protocol));
  ctx.finish();
}
