/** uwserve: `Bun.serve` and `Deno.serve` for Node.js on the uWebSockets C++ core. */
export { serve } from "./serve.js";
export { Server } from "./server.js";
export { UwsResponse as Response } from "./core/response.js";
export { file, UwsFile, type FileOptions } from "./transport/file.js";
export { CookieMap, type CookieInit, type CookieSameSite, type CookieStoreDeleteOptions } from "./core/cookies.js";
export { upgradeWebSocket, CloseEvent, DenoWebSocket, type UpgradeWebSocketOptions } from "./websocket/deno-websocket.js";
export type * from "./types.js";
export type { UwserveErrorCode } from "./errors.js";
export { CHANNELS } from "./observability/channels.js";
export type { RequestChannelMessage, WebSocketOpenMessage, WebSocketCloseMessage, WebSocketPublishMessage, WebSocketDropMessage } from "./observability/channels.js";
export type { AccessLogOption, AccessLogFormat } from "./observability/access-log.js";
