/**
 * Fixtures for the backplane tests: brokers the test starts (killed after the file), servers
 * with a driver (force-stopped after each test), clients that record what they get, and
 * `linked()`, which waits until a process listens at the broker for a topic.
 */
import { createClient } from "redis";
import { afterAll, afterEach } from "vitest";
import { serve, type Server } from "../../dist/index.js";
import { redisBackplane } from "../../dist/backplane/redis.js";
import { natsBackplane } from "../../dist/backplane/nats.js";
import { Broker, type BrokerKind, type BrokerOptions } from "./brokers.js";
import { sleep } from "./client.js";
import { trackServers } from "./server.js";
import { closeAll, connectWs, type WsClient } from "./ws.js";

export function backplaneFixture() {
  const track = trackServers();
  const brokers: Broker[] = [];
  const clients: WsClient[] = [];
  afterEach(() => closeAll(clients.splice(0)));
  afterAll(async () => {
    await Promise.all(brokers.map((b) => b.kill()));
  });

  async function startBroker(kind: BrokerKind, options: BrokerOptions = {}, started = true): Promise<Broker> {
    const broker = started ? await Broker.start(kind, options) : await Broker.unstarted(kind, options);
    brokers.push(broker);
    return broker;
  }

  type DriverOptions = Record<string, unknown>;
  function driver(kind: BrokerKind, url: string, options: DriverOptions = {}) {
    return kind === "redis" ? redisBackplane(url, options) : natsBackplane(url, options);
  }

  /**
   * A pub/sub server: /?topics=a,b subscribes the socket; a client's text "pub TOPIC PAYLOAD"
   * publishes, "bin TOPIC HEX" publishes bytes, "sub T"/"unsub T" change interest (answered).
   */
  function pubsub(backplane: unknown, extra: Record<string, unknown> = {}, websocketExtra: Record<string, unknown> = {}): Server {
    return track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        backplane: backplane as never,
        fetch(req, server) {
          const topics = new URL(req.url).searchParams.get("topics");
          return server.upgrade(req, { data: { topics: topics ? topics.split(",") : [] } }) ? undefined : new Response("plain", { status: 200 });
        },
        websocket: {
          open(ws) {
            for (const topic of (ws.data as { topics: string[] }).topics) ws.subscribe(topic);
          },
          message(ws, message) {
            const text = String(message);
            const [command, topic, ...rest] = text.split(" ");
            if (command === "pub") ws.publish(topic!, rest.join(" "));
            else if (command === "bin") ws.publish(topic!, Buffer.from(rest.join(""), "hex"));
            else if (command === "sub") {
              ws.subscribe(topic!);
              ws.send(`subbed ${topic}`);
            } else if (command === "unsub") {
              ws.unsubscribe(topic!);
              ws.send(`unsubbed ${topic}`);
            }
          },
          ...websocketExtra,
        },
        ...extra,
      } as never),
    );
  }

  async function client(server: Server, topics: string[]): Promise<WsClient> {
    const c = await connectWs(server, `/?topics=${topics.map(encodeURIComponent).join(",")}`);
    clients.push(c);
    return c;
  }

  /** Publishes probes from `from` until `to` got one: `to`'s process then listens at the broker. Drops the probes. */
  async function linked(from: Server, to: WsClient, topic: string, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    const isProbe = (m: { data: string | Buffer }) => typeof m.data === "string" && m.data.startsWith("probe ");
    while (!to.messages.some(isProbe)) {
      if (Date.now() > deadline) throw new Error(`no probe on ${topic} crossed in ${ms} ms (stats ${JSON.stringify(from.backplane?.stats())})`);
      from.publish(topic, `probe ${Date.now()}`);
      await sleep(30);
    }
    await sleep(100);
    for (let i = to.messages.length - 1; i >= 0; i--) if (isProbe(to.messages[i]!)) to.messages.splice(i, 1);
  }


  return { startBroker, driver, pubsub, client, linked };
}

export const texts = (c: WsClient) => c.messages.filter((m) => !m.binary).map((m) => m.data as string);

export async function numsub(broker: Broker, channel: string): Promise<number> {
  const c = createClient({ url: broker.url });
  await c.connect();
  try {
    const reply = (await c.sendCommand(["PUBSUB", "NUMSUB", channel])) as [string, number];
    return Number(reply[1]);
  } finally {
    c.destroy();
  }
}

export async function waitUntil(predicate: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

