/** Helpers for the routing tests: one raw request parsed into a response, and a fetch() read whole. */
import type { Server } from "../../dist/index.js";
import { fetchFrom, parseResponses, rawExchange, type ParsedResponse } from "./server.js";

/** A raw exchange's single response, plus everything the server sent (to check HEAD framing). */
export interface RawRouteResponse extends ParsedResponse {
  /** All bytes the server sent on the connection, latin1. */
  data: string;
  /** Bytes after the first response's head (for HEAD: must be empty). */
  afterHead: string;
}

/**
 * Sends `METHOD target HTTP/1.1` exactly as given (no client-side normalization, unlike fetch) on
 * a fresh connection with `Connection: close`, and parses the one response that comes back.
 */
export async function rawRoute(
  port: number,
  target: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<RawRouteResponse> {
  const { method = "GET", headers = {}, body } = options;
  let head = `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  if (body !== undefined) head += `Content-Length: ${Buffer.byteLength(body)}\r\n`;
  const exchange = await rawExchange(port, head + "\r\n" + (body ?? ""), { idleMs: 1000, deadlineMs: 5000 });
  const { responses } = parseResponses(exchange.data, method === "HEAD" ? new Set([0]) : new Set());
  const response = responses[0];
  if (response === undefined) {
    throw new Error(`no whole response to ${method} ${target}; got ${JSON.stringify(exchange.data)} (closed: ${exchange.closed}, error: ${exchange.error})`);
  }
  const headEnd = exchange.data.indexOf("\r\n\r\n");
  return { ...response, data: exchange.data, afterHead: exchange.data.slice(headEnd + 4) };
}

/** What a fetch() of a route came back with, body read as text. */
export interface RouteAnswer {
  status: number;
  headers: Headers;
  body: string;
}

/** fetch() of `path` on `server` (127.0.0.1), body read whole, with a deadline. */
export async function get(server: Server, path: string, init?: RequestInit): Promise<RouteAnswer> {
  const res = await fetchFrom(server, path, { redirect: "manual", ...init });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/** Just the body text of `path` (any status). */
export async function textOf(server: Server, path: string, init?: RequestInit): Promise<string> {
  return (await get(server, path, init)).body;
}
