// The chat on its own: `npm run build && node dist/cli.js examples/chat/server.ts`, then open
// http://localhost:3000/chat in two windows (uwserve --port N picks another port).
// `node dist/cli.js --workers 3 examples/chat/server.ts` runs it on three threads (see README.md).
// As several processes: `CHAT_REDIS_URL=redis://127.0.0.1:6379 node dist/cli.js --backplane
// redis://127.0.0.1:6379 --port 3001 examples/chat/server.ts` in each (README.md, Across processes).
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
