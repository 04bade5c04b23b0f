// The `ws` npm library on node:http: the usual Node WebSocket server. Same paths as ws-raw-uws.mjs; it has no
// topics, so /pub fans out by iterating a Set of the /sub sockets.
import { createServer } from "node:http";
import { WebSocketServer } from "ws";
import { collectOnSignal } from "./_ws.mjs";

const server = createServer((req, res) => {
  res.writeHead(426, { "content-type": "text/plain" }).end("upgrade required");
});
const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 16 * 1024 * 1024 });
const subscribers = new Set();

wss.on("connection", (ws, req) => {
  const path = req.url;
  if (path === "/sub") {
    subscribers.add(ws);
    ws.on("close", () => subscribers.delete(ws));
  } else if (path === "/pub") {
    ws.on("message", (data, isBinary) => {
      for (const s of subscribers) s.send(data, { binary: isBinary });
    });
  } else if (path === "/echo") {
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  }
});

collectOnSignal();
server.listen(Number(process.env.PORT ?? 3000), "127.0.0.1", () => console.log(`ready ${server.address().port}`));
