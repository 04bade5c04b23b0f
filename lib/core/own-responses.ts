/**
 * The answers uwserve writes itself rather than a handler: 404 and 405 (as bytes, or as a
 * Response for a watched request), 426/400 for a refused handshake, and its 500.
 */
import { developmentErrorPage, PRODUCTION_ERROR_BODY } from "./_error_page.js";
import type { Exchange } from "./exchange.js";
import { UwsResponse } from "./response.js";
import { endHead, TEXT_PLAIN } from "./writer.js";

export const NOT_FOUND_BODY = new TextEncoder().encode("Not Found");
export const METHOD_NOT_ALLOWED_BODY = new TextEncoder().encode("Method Not Allowed");

/** Ends one of uwserve's own short answers (404, 405); a HEAD gets the head only (H5). */
export function endPlain(res: Exchange, body: string, isHead: boolean, close: boolean): void {
  if (isHead) endHead(res, body.length, close);
  else res.end(body, close);
}

/**
 * What a refused WebSocket handshake gets when the handler answers nothing after
 * server.upgrade() returned false: a 426 naming the version this server speaks (RFC 6455 §4.4),
 * or a 400 for a handshake that is malformed otherwise.
 */
export function refusedUpgradeResponse(status: number): Response {
  return status === 426
    ? new UwsResponse("Upgrade Required: this server speaks WebSocket version 13", { status, headers: { "sec-websocket-version": "13" } })
    : new UwsResponse("Bad Request: invalid WebSocket handshake", { status });
}

/** uwserve's own 500: the error page when `readable` (development), else a body without internals. */
export function internalErrorResponse(err: unknown, readable: boolean): Response {
  const page = readable ? developmentErrorPage(err) : null;
  return new UwsResponse(page ? page.body : PRODUCTION_ERROR_BODY, {
    status: 500,
    headers: { "content-type": page ? page.type : TEXT_PLAIN },
  });
}

export function isSendable(value: unknown): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as Response).status === "number" &&
    typeof (value as Response).headers === "object"
  );
}
