// uwserve's Bun-style WebSockets (serve + server.upgrade + websocket handlers), from dist/ (npm run build).
import { serve, Response } from "../../dist/index.js";
import { wsOptions, collectOnSignal } from "./_ws.mjs";

const server = serve(wsOptions(Response));
collectOnSignal();
console.log(`ready ${server.port}`);
