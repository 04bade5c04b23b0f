/** uwserve: `Bun.serve` and `Deno.serve` for Node.js on the uWebSockets C++ core. */
export { serve } from "./serve.js";
export { Server } from "./server.js";
export { UwsResponse as Response } from "./response.js";
export { file, UwsFile, type FileOptions } from "./file.js";
export { upgradeWebSocket, CloseEvent, DenoWebSocket, type UpgradeWebSocketOptions } from "./deno-websocket.js";
export type * from "./types.js";
export type { UwserveErrorCode } from "./errors.js";
