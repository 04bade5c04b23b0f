/** A Response serialised once for a static route (Bun's "static responses"). */
import { NativeResponse } from "../_globals.js";
import { statusLine } from "../_status.js";
import { readNativeResponse } from "../_undici.js";
import { fastResponseParts } from "../response.js";
import { collectCheckedHead, fastHead, FORM_URLENCODED, TEXT_PLAIN, type Head } from "./head.js";

/** A Response reduced to what a static route writes on every request. */
export interface StaticParts {
  /** The status line, or null for a plain "200 OK" (uWS writes that itself). */
  statusLine: string | null;
  status: number;
  statusText: string;
  /** Flat [name, value, …] including the default Content-Type; no Content-Length (uWS writes it). */
  headers: string[];
  /** The body, or a promise for bodies that can only be read asynchronously (Blob, FormData). */
  body: Uint8Array | Promise<Uint8Array>;
}

/**
 * Serialises a Response once for a static route (Bun's "static responses"). Throws for bodies
 * that can't be sent twice, such as a ReadableStream or an async iterable.
 */
export function staticParts(response: Response): StaticParts {
  const fast = fastResponseParts(response);
  let head: Head;
  let body: unknown;
  if (fast !== undefined && fast.real === null) {
    head = fastHead(fast);
    body = fast.body;
  } else {
    const native = fast?.real ?? response;
    const parts = readNativeResponse(native);
    if (parts.source === undefined && !parts.fromSource) {
      throw new TypeError("a static route's Response must have a body that can be read once: not a stream");
    }
    head = collectCheckedHead(parts.status, parts.statusText, parts.headers);
    // Only the stream is known (undici 7+): read a copy once; undici already set its type.
    body = parts.source === undefined ? native.clone().arrayBuffer().then((ab) => new Uint8Array(ab)) : parts.source;
  }
  let bytes: Uint8Array | Promise<Uint8Array>;
  let defaultType: string | null = null;
  if (body === null) {
    bytes = new Uint8Array(0);
  } else if (body instanceof Promise) {
    bytes = body as Promise<Uint8Array>;
  } else if (typeof body === "string") {
    bytes = Buffer.from(body, "utf8");
    defaultType = TEXT_PLAIN;
  } else if (body instanceof ArrayBuffer) {
    bytes = new Uint8Array(body.slice(0));
  } else if (ArrayBuffer.isView(body)) {
    bytes = new Uint8Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
  } else if (body instanceof URLSearchParams) {
    bytes = Buffer.from(body.toString(), "utf8");
    defaultType = FORM_URLENCODED;
  } else if (body instanceof Blob || body instanceof FormData) {
    // Read once, asynchronously; the route answers as soon as the bytes are there.
    const encoded = new NativeResponse(body);
    const type = body instanceof Blob ? body.type : encoded.headers.get("content-type");
    if (type) defaultType = type;
    bytes = encoded.arrayBuffer().then((ab) => new Uint8Array(ab));
  } else {
    throw new TypeError("a static route's Response must have a body that can be read once: not a stream or an async iterable");
  }
  const headers = head.headers.slice();
  if (!head.contentType && defaultType !== null) headers.push("content-type", defaultType);
  if (head.close) headers.push("connection", "close");
  const line = head.status === 200 && head.statusText === "" ? null : statusLine(head.status, head.statusText);
  return { statusLine: line, status: head.status, statusText: head.statusText, headers, body: bytes };
}
