/**
 * What the WebSocket layer (ServerWebSocket, the hub, the publisher) needs of an engine: one
 * open connection, the topic tree, and the act of accepting a handshake. The uws engine hands
 * over uWS's own objects (they have this shape); the node engine implements it over the `ws`
 * library (engines/node/ws-*.ts). Everything above this seam is the same on both engines.
 */
import type { RequestContext } from "../core/context.js";
import type { ServerWebSocket } from "./websocket.js";

/** send()/ping() results, uWS's numbering. */
export const SEND_BACKPRESSURE = 0;
export const SEND_SUCCESS = 1;
export const SEND_DROPPED = 2;
export type SendStatus = typeof SEND_BACKPRESSURE | typeof SEND_SUCCESS | typeof SEND_DROPPED;

/** A message as it goes to an engine; a topic as it goes to one (a string, or its UTF-8 bytes). */
export type Message = string | Uint8Array | ArrayBuffer;
export type TopicKey = string | Buffer;

/** One open WebSocket connection of an engine. */
export interface Connection {
  /** Writes one message: SUCCESS, BACKPRESSURE (taken, some of it queued) or DROPPED (over backpressureLimit, not sent). */
  send(message: Message, isBinary?: boolean, compress?: boolean): number;
  /** Sends a close frame; the engine reports the close (the hub's `closed`) before this returns. */
  end(code?: number, reason?: Message): void;
  /** Cuts the connection without a close frame; reported as 1006 before this returns. */
  close(): void;
  ping(message?: Message): number;
  /** An unsolicited pong, where the engine can send one (uWS can't). */
  pong?(message?: Message): number;
  cork(callback: () => void): void;
  subscribe(topic: TopicKey): boolean;
  unsubscribe(topic: TopicKey): boolean;
  isSubscribed(topic: TopicKey): boolean;
  getTopics(): string[];
  /** Publishes to `topic`'s subscribers but this connection. */
  publish(topic: TopicKey, message: Message, isBinary?: boolean, compress?: boolean): boolean;
  getBufferedAmount(): number;
}

/** The topics of one server's connections. */
export interface TopicTree {
  numSubscribers(topic: TopicKey): number;
  /** Sends `message` to every subscriber of `topic`. */
  publish(topic: TopicKey, message: Message, isBinary?: boolean, compress?: boolean): boolean;
}

/** What an engine gives the hub. */
export interface WebSocketTransport {
  readonly topics: TopicTree;
  /**
   * Completes the handshake of `ctx`'s request (its Handshake is valid): the 101 with `headers`
   * and `protocol`, then the hub's `opened` for `socket` (at once or soon after).
   */
  accept(ctx: RequestContext, socket: ServerWebSocket<unknown>, headers: Array<[string, string]>, protocol: string): void;
}
