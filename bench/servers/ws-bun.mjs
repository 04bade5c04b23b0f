// Bun.serve's WebSockets (run with `bun`): the reference uwserve mirrors, the same handlers as ws-uwserve.mjs.
import { wsOptions, collectOnSignal } from "./_ws.mjs";

const server = Bun.serve(wsOptions(Response));
collectOnSignal();
console.log(`ready ${server.port}`);
