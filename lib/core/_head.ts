/**
 * Copies a uWS request's headers in one `forEach` pass (the HttpRequest dies when the uWS
 * callback returns, H1), noting on the way what the bridge checks before the handler runs.
 * The scan state is one module-level object reused by every request (no closure or result
 * object per request): read it before the next request can arrive, i.e. synchronously.
 */
import type { HttpRequest } from "../engines/uws/uws.js";

export interface HeadScan {
  /** Flat [name, value, …]; names lower case as uWS gives them, values as latin1 ByteStrings. */
  rawHeaders: string[];
  /** Approximate size of the request head, for maxHeaderSize. */
  headerBytes: number;
  /** The last Host value, and how many Host headers came. */
  host: string;
  hosts: number;
  /** The Content-Length value, and whether two different ones came. */
  contentLength: string;
  conflictingLength: boolean;
  chunked: boolean;
  nonAscii: boolean;
  /** A Sec-WebSocket-Key came (a handshake, for the node engine; uWS routes those itself). */
  webSocketKey: boolean;
}

const NO_HEADERS: string[] = [];

const scan: HeadScan = {
  rawHeaders: [],
  headerBytes: 0,
  host: "",
  hosts: 0,
  contentLength: "",
  conflictingLength: false,
  chunked: false,
  nonAscii: false,
  webSocketKey: false,
};

/** Whether this scan keeps the headers (false: only check them, allocating nothing). */
let collect = true;

function visit(name: string, value: string): void {
  if (collect) scan.rawHeaders.push(name, value);
  scan.headerBytes += name.length + value.length + 4;
  if (name === "host") {
    scan.host = value;
    scan.hosts++;
  } else if (name === "content-length") {
    if (scan.contentLength !== "" && scan.contentLength !== value) scan.conflictingLength = true;
    scan.contentLength = value;
  } else if (name === "transfer-encoding") {
    scan.chunked = true;
  } else if (name === "sec-websocket-key") {
    scan.webSocketKey = true;
  }
  if (!scan.nonAscii && NON_ASCII.test(value)) scan.nonAscii = true;
}

/**
 * Scans `req`'s headers; `lineBytes` is the request line's size. With `keep` false the headers
 * are only checked (static routes). The result is shared: copy what you need.
 */
export function scanHead(req: HttpRequest, lineBytes: number, keep = true): Readonly<HeadScan> {
  reset(lineBytes, keep);
  req.forEach(visit);
  if (scan.nonAscii && keep) latin1Values(req, scan.rawHeaders);
  return scan;
}

/**
 * Scans headers node:http parsed (`rawHeaders`: names as sent, values already latin1), filling
 * the same shared result as scanHead; names are lower-cased as uWS gives them.
 */
export function scanRawHeaders(raw: readonly string[], lineBytes: number, keep = true): Readonly<HeadScan> {
  reset(lineBytes, keep);
  for (let i = 0; i < raw.length; i += 2) visit(raw[i]!.toLowerCase(), raw[i + 1]!);
  return scan;
}

/**
 * The same for an HTTP/2 request's headers (node:http2 gives names lower case), read as
 * HTTP/1 has them: pseudo-headers left out, `:authority` as Host when no Host came (RFC 9113
 * §8.3.1), and a body without Content-Length (`open`: the stream didn't end with its
 * headers) framed like a chunked one, running to the stream's end.
 */
export function scanH2Headers(raw: readonly string[], lineBytes: number, keep: boolean, open: boolean): Readonly<HeadScan> {
  reset(lineBytes, keep);
  let authority: string | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.charCodeAt(0) === 58 /* : */) {
      if (name === ":authority") authority = raw[i + 1]!;
      continue;
    }
    visit(name, raw[i + 1]!);
  }
  if (scan.hosts === 0 && authority !== null) visit("host", authority);
  if (open && scan.contentLength === "") scan.chunked = true;
  return scan;
}

function reset(lineBytes: number, keep: boolean): void {
  collect = keep;
  scan.rawHeaders = keep ? [] : NO_HEADERS;
  scan.headerBytes = lineBytes;
  scan.host = "";
  scan.hosts = 0;
  scan.contentLength = "";
  scan.conflictingLength = false;
  scan.chunked = false;
  scan.nonAscii = false;
  scan.webSocketKey = false;
}

/** Any character a pure-ASCII header value doesn't have. */
const NON_ASCII = /[^\x00-\x7f]/;

/**
 * uWebSockets.js's `forEach` decodes values as UTF-8 (bytes that aren't become U+FFFD), but
 * header values are ByteStrings (H9): re-read those values through `getHeader`, which decodes
 * latin1. It returns a name's first value only, so a repeated name keeps forEach's decoding.
 */
function latin1Values(req: HttpRequest, rawHeaders: string[]): void {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (!NON_ASCII.test(rawHeaders[i + 1]!)) continue;
    const name = rawHeaders[i]!;
    let count = 0;
    for (let j = 0; j < rawHeaders.length; j += 2) if (rawHeaders[j] === name) count++;
    if (count === 1) rawHeaders[i + 1] = req.getHeader(name);
  }
}
