// The chat on its own: `npm run build && node dist/cli.js examples/chat/server.ts`, then open
// http://localhost:3000/chat in two windows (uwserve --port N picks another port).
// `node dist/cli.js --workers 3 examples/chat/server.ts` runs it on three threads (see README.md).
import { Response } from "uwserve";
import { createChat } from "./chat.js";

const chat = createChat({ historySize: 50 });

export default {
  port: 3000,
  routes: {
    ...chat.routes,
    "/": new Response(null, { status: 302, headers: { location: "/chat" } }),
  },
  websocket: chat.websocket,
};
