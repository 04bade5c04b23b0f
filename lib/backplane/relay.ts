/**
 * Which backplane a server's publishes go through, by where it runs:
 * - one thread, no broker: none;
 * - one thread with a broker: the broker (broker.ts), opened here;
 * - a worker group (any thread of it): the native hub across the threads; with a broker, each
 *   thread also hands its publishes and its topic interest to the group's bridge (bridge.ts)
 *   through the hub, so that the process keeps one broker connection whatever its thread count.
 */
import { threadId } from "node:worker_threads";
import { hubBackplane, type Backplane, type BackplaneDelivery } from "../websocket/backplane.js";
import { joinHub } from "../websocket/hub.js";
import { BrokerBackplane } from "./broker.js";
import type { BackplaneDriver } from "./driver.js";
import { encodeMessage, newOrigin } from "./wire.js";

/** Hub topics only the bridge listens to (a NUL first: no WebSocket topic starts so). */
export const BRIDGE_OUT_TOPIC = "\0uwserve:backplane:out";
export const BRIDGE_INTEREST_TOPIC = "\0uwserve:backplane:interest";

/** What a worker group's threads know of the bridge on its main thread. */
export interface BridgeShare {
  /** The process origin (wire.ts). */
  origin: Uint8Array;
  /** The bridge's counters (broker.ts STAT_SLOTS), for every thread's server.backplane.stats(). */
  stats: SharedArrayBuffer;
  kind: string;
  where: string;
}

export interface RelayPlan {
  /** The worker group's hub group, else null. */
  group: string | null;
  /** One thread with a broker: the driver to open. */
  driver: BackplaneDriver | null;
  /** A worker group with a broker: the bridge to reach. */
  bridge: BridgeShare | null;
}

/** The backplane for `plan`, delivering what arrives through `deliver`; null when there is none. */
export function openRelay(plan: RelayPlan, deliver: BackplaneDelivery): Backplane | null {
  if (plan.group === null) return plan.driver === null ? null : new BrokerBackplane(plan.driver, deliver, { origin: newOrigin() });
  if (plan.bridge === null) return hubBackplane(deliver, plan.group);
  return bridgedHubBackplane(deliver, plan.group, plan.bridge.origin);
}

/** The hub backplane of one thread of a group with a broker: the bridge gets a copy of each publish. */
function bridgedHubBackplane(deliver: BackplaneDelivery, group: string, origin: Uint8Array): Backplane {
  const member = joinHub(deliver, { group });
  // threadId is never reused in a process: a replaced worker is a new publisher for receivers.
  const stream = threadId & 0xffff;
  let seq = 0;
  return {
    id: `thread:${member.id}`,
    publish(topic, message, isBinary, compress) {
      const queued = member.publish(topic, message, isBinary, compress);
      const frame = encodeMessage(origin, stream, ++seq, topic, message, isBinary, compress);
      if (frame !== null) member.publish(BRIDGE_OUT_TOPIC, frame, true, false);
      return queued;
    },
    // The bridge asks the hub whether any thread still wants the topic; it only needs a nudge.
    subscribe(topic) {
      if (member.subscribe(topic) === 1) member.publish(BRIDGE_INTEREST_TOPIC, topic, false, false);
    },
    unsubscribe(topic) {
      if (member.unsubscribe(topic) === 0) member.publish(BRIDGE_INTEREST_TOPIC, topic, false, false);
    },
    remoteSubscribers: (topic) => member.remoteSubscribers(topic),
    close: () => void member.leave(),
  };
}
