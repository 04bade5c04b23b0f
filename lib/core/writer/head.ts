/**
 * The response head as the writer builds it: validated, lower-cased headers from any source
 * (uwserve's Response, undici's, a Response-like), the framing headers the engine writes
 * itself taken out (H5, H7), and the head written onto the exchange.
 */
import type { RequestContext } from "../context.js";
import { isValidHeaderName, isValidHeaderValue, forEachHeaderInit } from "../_headers.js";
import { statusLine } from "../_status.js";
import type { FastResponseParts } from "../response.js";
import { coreByteString } from "../../engines/uws/core-bytes.js";
import { uwserveError } from "../../errors.js";

export const TEXT_PLAIN = "text/plain;charset=UTF-8";
export const FORM_URLENCODED = "application/x-www-form-urlencoded;charset=UTF-8";
/** RFC 9110 reason-phrase: HTAB, SP, VCHAR, obs-text. */
export const REASON_PHRASE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** Statuses whose responses never carry a body or Content-Length (H5, uWebSockets #1370). */
export const NO_BODY_STATUS: ReadonlySet<number> = new Set([204, 304]);
/** The response head as the writer sends it. */
export interface Head {
  status: number;
  statusText: string;
  /** Flat [name, value, name, value…]; names lower-cased and validated, values validated. */
  headers: string[];
  contentType: boolean;
  /** Value of a user Content-Length header, or -1. */
  contentLength: number;
  /** The user asked for `Connection: close`. */
  close: boolean;
}

/** Whether the connection must close after this response: a protocol error, a stopping server, or the user asked. */
export function mustClose(ctx: RequestContext, head: Head): boolean {
  return ctx.closeConnection || ctx.owner.stopping || head.close;
}

/** Thrown for handler results that can't be sent; the caller turns it into a 500. */
export function badResponseError(value: unknown): TypeError {
  const what =
    value === undefined
      ? "undefined (did the handler forget to return a Response?)"
      : value === null
        ? "null"
        : typeof value === "object"
          ? `an object that is not a Response (${(value as object).constructor?.name ?? "Object"})`
          : `a ${typeof value}`;
  return uwserveError(TypeError, "UWSERVE_ERR_BAD_RESPONSE", `uwserve: the handler returned ${what}; expected a Response`);
}

/** Builds the head from a header source, dropping hop-by-hop headers uWS manages itself. */
export function collectHead(status: number, statusText: string, init: unknown): Head {
  const head: Head = { status, statusText, headers: [], contentType: false, contentLength: -1, close: false };
  // A module-level visitor instead of a closure per response (the hot path allocates little).
  collecting = head;
  try {
    forEachHeaderInit(init, collectHeader);
  } finally {
    collecting = null;
  }
  return head;
}

let collecting: Head | null = null;
function collectHeader(name: string, value: string): void {
  addHeader(collecting!, name, value);
}

function addHeader(head: Head, name: string, value: string): void {
  if (!isValidHeaderName(name)) throw new TypeError(`Invalid header name: ${JSON.stringify(name)}`);
  if (!isValidHeaderValue(value)) throw new TypeError(`Invalid value for header ${JSON.stringify(name)}`);
  addCheckedHeader(head, name.toLowerCase(), value);
}

/** A uwserve Response's flat list, validated and lower-cased when it was constructed. */
export function collectListHead(status: number, statusText: string, list: readonly string[] | null): Head {
  const head: Head = { status, statusText, headers: [], contentType: false, contentLength: -1, close: false };
  if (list !== null) for (let i = 0; i < list.length; i += 2) addCheckedHeader(head, list[i]!, list[i + 1]!);
  return head;
}

/** The head of a uwserve Response: its Headers once read (authoritative), else its checked list. */
export function fastHead(fast: FastResponseParts): Head {
  return fast.headers !== null
    ? collectHead(fast.status, fast.statusText, fast.headers)
    : collectListHead(fast.status, fast.statusText, fast.headerList);
}

/** Headers that undici already validated and lower-cased (a native Response's list). */
export function collectCheckedHead(status: number, statusText: string, pairs: Array<[string, string]>): Head {
  const head: Head = { status, statusText, headers: [], contentType: false, contentLength: -1, close: false };
  for (let i = 0; i < pairs.length; i++) addCheckedHeader(head, pairs[i]![0], pairs[i]![1]);
  return head;
}

/** `lower` is a valid lower-case name and `value` a valid value. */
function addCheckedHeader(head: Head, lower: string, value: string): void {
  switch (lower) {
    case "content-type":
      head.contentType = true;
      break;
    case "content-length": {
      const n = Number(value);
      if (Number.isSafeInteger(n) && n >= 0) head.contentLength = n;
      return;
    }
    // uWS frames the body and writes Date itself (H5, H7); never send a second one.
    case "transfer-encoding":
    case "date":
    case "keep-alive":
      return;
    case "connection":
      if (/\bclose\b/i.test(value)) head.close = true;
      return;
  }
  head.headers.push(lower, value);
}

export function writeHead(ctx: RequestContext, head: Head, defaultType: string | null): void {
  ctx.status = head.status;
  const res = ctx.res;
  // uWS writes "200 OK" itself when no status was written: one native call fewer per request.
  if (head.status !== 200 || head.statusText !== "") {
    res.writeStatus(coreByteString(statusLine(head.status, head.statusText)));
  }
  const headers = head.headers;
  for (let i = 0; i < headers.length; i += 2) {
    res.writeHeader(headers[i]!, coreByteString(headers[i + 1]!));
  }
  if (!head.contentType && defaultType !== null) res.writeHeader("content-type", defaultType);
}
