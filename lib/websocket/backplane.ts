/**
 * The seam for relaying pub/sub beyond one thread's uWS topic tree. A server publishes locally
 * through the core as always and hands each publish to its backplane, which delivers it to the
 * other nodes (threads through the native hub; processes and machines through a broker), where
 * it is published locally in turn.
 *
 * The contract a driver keeps:
 * - at-most-once: a message reaches each other node once or, when that node can't keep up or
 *   the transport fails, not at all (reported, never retried);
 * - a node never gets its own messages back (drivers tell nodes apart by `id`);
 * - in publish order per publishing node; no order across publishers;
 * - local delivery never depends on it: a relay that throws or fails is reported and skipped.
 * The in-process driver is the native hub across worker threads (websocket/hub.ts, native/hub.cc);
 * the Redis and NATS drivers, and which one a server uses, are in lib/backplane/ (relay.ts).
 */
import { joinHub } from "./hub.js";

/** How a driver hands a message from another node to this one. */
export type BackplaneDelivery = (topic: string, payload: Uint8Array, isBinary: boolean, compress: boolean) => void;

export interface Backplane {
  /** This node, unique among the nodes the driver connects. */
  readonly id: string;
  /**
   * Relays a publish to the other nodes: returns how many it was queued to (0: none listens),
   * or -1 when at least one node's queue was full and lost it.
   */
  publish(topic: string, message: string | Uint8Array | ArrayBuffer, isBinary: boolean, compress: boolean): number;
  /** One more local subscriber for `topic` (a driver may skip nodes without any). */
  subscribe(topic: string): void;
  /** One local subscriber fewer for `topic`. */
  unsubscribe(topic: string): void;
  /** Subscribers the other nodes have for `topic`, when the driver knows (else it is absent). */
  remoteSubscribers?(topic: string): number;
  /** Stops relaying both ways; what is still in flight to this node is dropped. */
  close(): void;
}

/** The in-process driver: the native hub, shared by the servers of one `group` across threads. */
export function hubBackplane(deliver: BackplaneDelivery, group: string): Backplane {
  const member = joinHub(deliver, { group });
  return {
    id: `thread:${member.id}`,
    publish: (topic, message, isBinary, compress) => member.publish(topic, message, isBinary, compress),
    subscribe: (topic) => void member.subscribe(topic),
    unsubscribe: (topic) => void member.unsubscribe(topic),
    remoteSubscribers: (topic) => member.remoteSubscribers(topic),
    close: () => void member.leave(),
  };
}

let warnedRelayFailure = false;

/** Relays through `backplane`, reporting (once) instead of throwing: local delivery goes on. */
export function relaySafely(backplane: Backplane, topic: string, message: string | Uint8Array | ArrayBuffer, isBinary: boolean, compress: boolean): number {
  try {
    return backplane.publish(topic, message, isBinary, compress);
  } catch (err) {
    if (!warnedRelayFailure) {
      warnedRelayFailure = true;
      console.error(`uwserve: relaying a publish through backplane ${backplane.id} failed (local subscribers still get it):`, err);
    }
    return 0;
  }
}
