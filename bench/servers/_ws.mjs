// The Bun-style WebSocket server shared by ws-uwserve.mjs (uwserve's serve) and ws-bun.mjs (Bun.serve): same paths
// as ws-raw-uws.mjs. /pub publishes with server.publish (publishToSelf is off and the publisher is not subscribed).

/** Takes a Response class, returns serve() options: fetch upgrades every request, websocket echoes or publishes. */
export function wsOptions(Response) {
  let server = null;
  return {
    port: Number(process.env.PORT ?? 3000),
    hostname: "127.0.0.1",
    fetch(req, srv) {
      server = srv;
      // req.url is absolute ("http://127.0.0.1:port/sub"): the path starts at the first "/" after "//".
      const path = req.url.slice(req.url.indexOf("/", 8));
      if (srv.upgrade(req, { data: { path } })) return undefined;
      return new Response("upgrade required", { status: 426 });
    },
    websocket: {
      open(ws) {
        if (ws.data.path === "/sub") ws.subscribe("t");
      },
      message(ws, message) {
        const path = ws.data.path;
        if (path === "/pub") server.publish("t", message);
        else if (path === "/echo") ws.send(message);
      },
    },
  };
}

/**
 * For the idle-memory scenario: on SIGUSR2, a full garbage collection now (Node started with --expose-gc, or Bun), so
 * the runner's VmRSS readings show what the connections retain rather than when the collector last ran. Every ws-*
 * server installs it; without a collector it does nothing (and SIGUSR2 no longer kills the process).
 */
export function collectOnSignal() {
  const collect = globalThis.Bun ? () => globalThis.Bun.gc(true) : globalThis.gc;
  process.on("SIGUSR2", () => collect?.());
}
