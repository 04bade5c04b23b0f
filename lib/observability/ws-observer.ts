/**
 * WebSocket events for the diagnostics channels and the OpenTelemetry instruments. The hub
 * calls in on open, close, publish and drop (rare next to messages; each checks its channel
 * first); per-message counts are made only with telemetry on (`counting`).
 */
import type { ServerLike, ServerWebSocket } from "../types.js";
import { webSocketCloseChannel, webSocketDropChannel, webSocketOpenChannel, webSocketPublishChannel } from "./channels.js";
import type { Telemetry } from "./telemetry.js";
import type { DeliveryObserver } from "../websocket/pubsub.js";

export class WebSocketObserver implements DeliveryObserver {
  /** Telemetry is on: count every message in and out. */
  readonly counting: boolean;
  readonly #server: ServerLike;
  readonly #telemetry: Telemetry | null;

  constructor(server: ServerLike, telemetry: Telemetry | null) {
    this.#server = server;
    this.#telemetry = telemetry;
    this.counting = telemetry !== null;
  }

  opened(socket: ServerWebSocket<unknown>): void {
    this.#telemetry?.webSocket.connections.add(1);
    if (webSocketOpenChannel.hasSubscribers) webSocketOpenChannel.publish({ socket, server: this.#server });
  }

  closed(socket: ServerWebSocket<unknown>, code: number, reason: string): void {
    this.#telemetry?.webSocket.connections.add(-1);
    if (webSocketCloseChannel.hasSubscribers) webSocketCloseChannel.publish({ socket, server: this.#server, code, reason });
  }

  received(): void {
    this.#telemetry!.webSocket.received.add(1);
  }

  sent(): void {
    this.#telemetry!.webSocket.sent.add(1);
  }

  /** Telemetry counts deliveries, or someone listens on the publish channel. */
  watchingPublishes(): boolean {
    return this.counting || webSocketPublishChannel.hasSubscribers;
  }

  /** A publish reached `recipients` sockets of this thread (`remote`: it came from another node). */
  published(topic: string, size: number, recipients: number, remote: boolean): void {
    if (recipients > 0) this.#telemetry?.webSocket.deliveries.add(recipients);
    if (webSocketPublishChannel.hasSubscribers) webSocketPublishChannel.publish({ server: this.#server, topic, size, recipients, remote });
  }

  dropped(socket: ServerWebSocket<unknown>, topic: string | null): void {
    this.#telemetry?.webSocket.drops.add(1);
    if (webSocketDropChannel.hasSubscribers) webSocketDropChannel.publish({ socket, server: this.#server, topic });
  }
}
