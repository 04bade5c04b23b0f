/**
 * uwserve's `node:diagnostics_channel` channels. Nothing is built or published unless someone
 * subscribes: each publish site checks `hasSubscribers` first (one property read).
 *
 * Requests use a TracingChannel, the shape node:http and undici use for theirs: `start` runs
 * the handler inside `runStores` (so a subscriber's `bindStore` context is active in it, also
 * across `await`), `error` when it throws or rejects or its body fails, `end` once the response
 * is fully handed to the socket or the client went away. WebSocket events are plain channels.
 */
import { channel, tracingChannel } from "node:diagnostics_channel";
import type { ServerLike, ServerWebSocket } from "../types.js";

/** The message of one request on `tracing:uwserve:request:*`; the same object from start to end. */
export interface RequestChannelMessage {
  readonly request: Request;
  readonly server: ServerLike;
  /** "uws" or "node". */
  readonly engine: "uws" | "node";
  /** The matched `routes` pattern ("/users/:id"), or null (the `fetch` fallback, 404). */
  readonly route: string | null;
  /** Set by `end`: the status sent (0 when the client left before a response). */
  status: number;
  /** Set by `end`: request body bytes received. */
  requestBodySize: number;
  /** Set by `end`: response body bytes handed to the socket. */
  responseBodySize: number;
  /** Set by `end`: the client disconnected before the response was complete. */
  aborted: boolean;
  /** Set by `end`: milliseconds from the request to the end of its response. */
  duration: number;
  /** Set by `error`: what the handler threw or rejected with, or why its body failed. */
  error?: unknown;
}

export interface WebSocketOpenMessage {
  readonly socket: ServerWebSocket<unknown>;
  readonly server: ServerLike;
}
export interface WebSocketCloseMessage {
  readonly socket: ServerWebSocket<unknown>;
  readonly server: ServerLike;
  readonly code: number;
  readonly reason: string;
}
export interface WebSocketPublishMessage {
  readonly server: ServerLike;
  readonly topic: string;
  /** Message bytes. */
  readonly size: number;
  /** Sockets of this thread it was handed to (drops excluded). */
  readonly recipients: number;
  /** From another worker thread or process (through the backplane), not published here. */
  readonly remote: boolean;
}
export interface WebSocketDropMessage {
  readonly socket: ServerWebSocket<unknown>;
  readonly server: ServerLike;
  /** The topic of a dropped publish; null for a direct send. */
  readonly topic: string | null;
}

/** The channel names, for `subscribe()` and `tracingChannel()`. */
export const CHANNELS = {
  request: "uwserve:request",
  webSocketOpen: "uwserve:websocket:open",
  webSocketClose: "uwserve:websocket:close",
  webSocketPublish: "uwserve:websocket:publish",
  webSocketDrop: "uwserve:websocket:drop",
} as const;

export const requestChannel = tracingChannel<unknown, RequestChannelMessage>(CHANNELS.request);
export const webSocketOpenChannel = channel(CHANNELS.webSocketOpen);
export const webSocketCloseChannel = channel(CHANNELS.webSocketClose);
export const webSocketPublishChannel = channel(CHANNELS.webSocketPublish);
export const webSocketDropChannel = channel(CHANNELS.webSocketDrop);

/** Someone listens to requests (any of the sub-channels uwserve publishes). */
export function requestsObserved(): boolean {
  return requestChannel.start.hasSubscribers || requestChannel.end.hasSubscribers || requestChannel.error.hasSubscribers;
}

/** Someone listens to any WebSocket channel. */
export function webSocketsObserved(): boolean {
  return webSocketOpenChannel.hasSubscribers || webSocketCloseChannel.hasSubscribers || webSocketPublishChannel.hasSubscribers || webSocketDropChannel.hasSubscribers;
}
