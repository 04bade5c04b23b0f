// sendPings: quiet sockets are pinged every 30 s (one timer for the server), so proxies that drop
// connections quiet for 60 s keep them. The interval is driven with fake timers here.
import { afterEach, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { serve, type Server } from "../dist/index.js";
import { trackServers, waitFor, withTimeout } from "./helpers/server.js";

const track = trackServers();
afterEach(() => {
  vi.useRealTimers();
});

async function connect(server: Server): Promise<{ client: WebSocket; pings: string[] }> {
  const client = new WebSocket(`ws://127.0.0.1:${server.port}/`);
  const pings: string[] = [];
  client.on("ping", (data) => pings.push(String(data)));
  await withTimeout(new Promise((resolve, reject) => client.once("open", resolve).once("error", reject)), 2000, "open");
  return { client, pings };
}

function start(sendPings: boolean): Server {
  return track(
    serve({
      port: 0,
      fetch: (req, server) => (server.upgrade(req) ? undefined : new Response("no", { status: 400 })),
      websocket: { sendPings, message(ws, msg) { ws.send(msg); } },
    }),
  );
}

describe("keepalive pings", () => {
  it("a socket quiet for a whole 30 s tick is pinged; the client's pong counts as traffic", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const server = start(true);
    const quiet = await connect(server);
    const chatty = await connect(server);
    vi.advanceTimersByTime(30_000); // first tick: both were active since they opened
    chatty.client.send("hello");
    await new Promise((resolve) => chatty.client.once("message", resolve));
    vi.advanceTimersByTime(30_000); // second tick: only the quiet one is pinged
    await waitFor(() => quiet.pings.length === 1, 3000, "quiet.pings.length === 1");
    expect(chatty.pings).toEqual([]);
    quiet.client.close();
    chatty.client.close();
  });

  it("sendPings: false sends no keepalive pings", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const server = start(false);
    const quiet = await connect(server);
    vi.advanceTimersByTime(90_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(quiet.pings).toEqual([]);
    quiet.client.close();
  });
});
