// Bun.serve's WebSockets (run with `bun`): the reference uwserve mirrors, the same handlers as ws-uwserve.mjs.
import { wsOptions } from "./_ws.mjs";

const server = Bun.serve(wsOptions(Response));
console.log(`ready ${server.port}`);
