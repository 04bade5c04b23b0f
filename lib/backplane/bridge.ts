/**
 * The broker connection of a worker group, on its main thread: one per process, whatever the
 * thread count. It is a member of the group's hub like a thread without sockets:
 * - the threads send it a framed copy of each publish (BRIDGE_OUT_TOPIC), which it sends on;
 * - a thread whose interest in a topic starts or ends nudges it (BRIDGE_INTEREST_TOPIC), and
 *   it asks the hub whether any thread still wants the topic; a periodic check catches threads
 *   that died without saying so;
 * - what arrives from the broker it publishes to the hub, which hands it to every thread that
 *   wants the topic.
 */
import type { ServerBackplane } from "../types.js";
import type { Backplane } from "../websocket/backplane.js";
import { joinHub, type HubMember } from "../websocket/hub.js";
import { BrokerBackplane, readStats, STAT_SLOTS, type BackplaneStats } from "./broker.js";
import type { BackplaneDriver } from "./driver.js";
import { BRIDGE_INTEREST_TOPIC, BRIDGE_OUT_TOPIC, type BridgeShare } from "./relay.js";
import { newOrigin } from "./wire.js";

const RECHECK_MS = 2000;

export class BackplaneBridge {
  readonly share: BridgeShare;
  readonly #member: HubMember;
  readonly #broker: BrokerBackplane;
  readonly #recheck: NodeJS.Timeout;

  constructor(driver: BackplaneDriver, group: string) {
    const stats = new SharedArrayBuffer(STAT_SLOTS * Float64Array.BYTES_PER_ELEMENT);
    const origin = newOrigin();
    this.share = { origin, stats, kind: driver.kind, where: driver.where };
    this.#member = joinHub((topic, payload) => this.#fromThread(topic, payload), { group });
    this.#member.subscribe(BRIDGE_OUT_TOPIC);
    this.#member.subscribe(BRIDGE_INTEREST_TOPIC);
    this.#broker = new BrokerBackplane(
      driver,
      (topic, payload, isBinary, compress) => void this.#member.publish(topic, payload, isBinary, compress),
      { origin, counters: new Float64Array(stats) },
    );
    this.#recheck = setInterval(() => this.#recheckInterest(), RECHECK_MS);
    this.#recheck.unref();
  }

  stats(): BackplaneStats {
    return this.#broker.stats();
  }

  close(): void {
    clearInterval(this.#recheck);
    this.#broker.close();
    this.#member.leave();
  }

  #fromThread(topic: string, payload: Uint8Array): void {
    if (topic === BRIDGE_OUT_TOPIC) this.#broker.forward(payload);
    else if (topic === BRIDGE_INTEREST_TOPIC) {
      const wanted = Buffer.from(payload.buffer, payload.byteOffset, payload.length).toString("utf8");
      this.#broker.setInterest(wanted, this.#member.remoteSubscribers(wanted) > 0);
    }
  }

  #recheckInterest(): void {
    for (const topic of [...this.#broker.topics()]) {
      if (this.#member.remoteSubscribers(topic) === 0) this.#broker.setInterest(topic, false);
    }
  }
}

/**
 * What `server.backplane` shows: the group's bridge (its main thread), the bridge's shared
 * counters (a worker), or this thread's own broker; null without a broker.
 */
export function serverBackplane(bridge: BackplaneBridge | null, share: BridgeShare | null, relay: Backplane | null): ServerBackplane | null {
  if (bridge !== null) return { kind: bridge.share.kind, where: bridge.share.where, stats: () => bridge.stats() };
  if (share !== null) {
    const counters = new Float64Array(share.stats);
    return { kind: share.kind, where: share.where, stats: () => readStats(counters) };
  }
  return relay instanceof BrokerBackplane ? { kind: relay.kind, where: relay.where, stats: () => relay.stats() } : null;
}
