// Raw uWebSockets.js WebSockets: the ceiling for bench/ws.mjs. The path picks the behaviour, as in every ws-* peer:
// /echo sends each message back, /sub subscribes to topic "t" on open, /pub publishes each message to "t" with
// app.publish (the publisher itself is not subscribed), /idle does nothing.
import { uWS, listen } from "./_uws.mjs";
import { collectOnSignal } from "./_ws.mjs";

const MiB = 1024 * 1024;
const app = uWS.App();

app.ws("/*", {
  // The settings uwserve and Bun use by default: no compression, 16 MiB payloads and backpressure, 120 s idle timeout.
  compression: uWS.DISABLED,
  maxPayloadLength: 16 * MiB,
  maxBackpressure: 16 * MiB,
  idleTimeout: 120,
  upgrade: (res, req, context) => {
    res.upgrade(
      { path: req.getUrl() },
      req.getHeader("sec-websocket-key"),
      req.getHeader("sec-websocket-protocol"),
      req.getHeader("sec-websocket-extensions"),
      context,
    );
  },
  open: (ws) => {
    if (ws.getUserData().path === "/sub") ws.subscribe("t");
  },
  message: (ws, message, isBinary) => {
    const path = ws.getUserData().path;
    if (path === "/pub") app.publish("t", message, isBinary);
    else if (path === "/echo") ws.send(message, isBinary);
  },
});

collectOnSignal();
listen(app);
