/**
 * What the writer needs of a native (undici) Response, read without creating a reader.
 *
 * Fast path: undici 6 (Node 20, 22) keeps a Response's state under `Symbol(state)`, with the
 * body's source (the string, bytes or Blob it was built from). Every accessor is verified
 * against the public API once at load. undici 7+ (Node 24+) keeps it in `#private` fields, so
 * there the public members are used (the fallback; `UWSERVE_UNDICI_INTERNALS=off` forces it
 * anywhere, for tests). The body is then only a stream, and what made it is recognised by what
 * undici does: a string, bytes, URLSearchParams, FormData or Blob becomes a byte stream (users'
 * own streams rarely are), and a file() Blob's stream is found through `fileOfStream`.
 */
import * as streams from "node:stream";
import { NativeRequest, NativeResponse } from "./_globals.js";
import { fileOfStream } from "../transport/file.js";

/**
 * Off when the environment asks for the public-API path (read once, at load); request.ts
 * reads it too, for its lazy stand-in.
 */
export const internalsAllowed = process.env.UWSERVE_UNDICI_INTERNALS !== "off";

/** Public since Node 16.8 (works on web streams), missing from @types/node 20. */
export const isDisturbed = (streams as unknown as { isDisturbed(stream: unknown): boolean }).isDisturbed;

function symbolNamed(target: object, description: string): symbol | undefined {
  return Object.getOwnPropertySymbols(target).find((s) => s.description === description);
}

/** The own symbols of a native Request (state, signal, headers, dispatcher on undici 6). */
export const requestSymbols: readonly symbol[] = (() => {
  try {
    return Object.getOwnPropertySymbols(new NativeRequest("http://localhost/"));
  } catch {
    return [];
  }
})();

interface HeadersListState {
  cookies: string[] | null;
  [Symbol.iterator](): Iterator<[string, string]>;
}

interface ResponseState {
  status: number;
  statusText: string;
  headersList: HeadersListState;
  /** undefined (not null) for a null-body Response on undici 6. */
  body: { stream: ReadableStream; source: unknown; length: number | null } | null | undefined;
}

const kResponseState: symbol | undefined = (() => {
  if (!internalsAllowed) return undefined;
  try {
    const probe = new NativeResponse("probe", {
      status: 201,
      statusText: "Made",
      headers: [["x-a", "1"], ["set-cookie", "a=1"], ["set-cookie", "b=2"]],
    });
    const key = symbolNamed(probe, "state");
    if (!key) return undefined;
    const state = (probe as unknown as Record<symbol, ResponseState>)[key];
    const entries = [...state.headersList];
    const ok =
      state.status === 201 &&
      state.statusText === "Made" &&
      state.body?.source === "probe" &&
      state.body.stream instanceof ReadableStream &&
      entries.some(([n, v]) => n === "x-a" && v === "1") &&
      JSON.stringify(state.headersList.cookies) === JSON.stringify(["a=1", "b=2"]);
    return ok ? key : undefined;
  } catch {
    return undefined;
  }
})();

/**
 * The Map inside undici's HeadersList (lower-case name → { value }). Iterating it directly
 * instead of through HeadersList's generator saves about 1 µs per response (measured).
 */
const kHeadersMap: symbol | undefined = (() => {
  try {
    const probe = new NativeResponse(null, { headers: [["X-A", "1"], ["x-b", "2"]] });
    if (kResponseState === undefined) return undefined;
    const list = (probe as unknown as Record<symbol, ResponseState>)[kResponseState]!.headersList;
    const key = symbolNamed(list, "headers map");
    if (!key) return undefined;
    const map = (list as unknown as Record<symbol, unknown>)[key];
    if (!(map instanceof Map)) return undefined;
    const entries = [...map].map(([name, entry]) => `${name}=${(entry as { value: string }).value}`).join(",");
    return entries === "x-a=1,x-b=2" ? key : undefined;
  } catch {
    return undefined;
  }
})();

/** Appends a HeadersList's entries (Set-Cookie excluded) to `out` as [name, value] pairs. */
function listEntries(list: HeadersListState, out: Array<[string, string]>): void {
  const map = kHeadersMap !== undefined ? (list as unknown as Record<symbol, Map<string, { value: string }>>)[kHeadersMap] : undefined;
  if (map !== undefined) {
    for (const [name, entry] of map) if (name !== "set-cookie") out.push([name, entry.value]);
    return;
  }
  for (const [name, value] of list) if (name !== "set-cookie") out.push([name, value]);
}

/** Whether the fast path into undici's state is on (false on undici 7+, or when forced off). */
export const undiciInternals: boolean = kResponseState !== undefined;

/** Parts of a native Response read without creating a reader. */
export interface NativeResponseParts {
  status: number;
  statusText: string;
  /** [name, value] pairs, Set-Cookie values separate. */
  headers: Array<[string, string]>;
  /**
   * string, bytes or Blob when the body was built from one and is untouched; null for no body;
   * undefined when only `stream` is known.
   */
  source: string | Uint8Array | Blob | null | undefined;
  /** With `source` undefined: the body as a stream (still unread), or null when it is gone. */
  stream: ReadableStream<Uint8Array> | null;
  /** With `source` undefined: the stream is one undici made from a whole-body source (see top). */
  fromSource: boolean;
}

export function readNativeResponse(response: Response): NativeResponseParts {
  if (kResponseState !== undefined) {
    const parts = readState(response);
    if (parts !== undefined) return parts;
  }
  return readPublic(response);
}

function readState(response: Response): NativeResponseParts | undefined {
  const state = (response as unknown as Record<symbol, ResponseState | undefined>)[kResponseState!];
  if (!state || typeof state.status !== "number") return undefined;
  const headers: Array<[string, string]> = [];
  listEntries(state.headersList, headers);
  const cookies = state.headersList.cookies;
  if (cookies) for (const cookie of cookies) headers.push(["set-cookie", cookie]);
  let source: NativeResponseParts["source"];
  const body = state.body;
  if (body === null || body === undefined) {
    source = null;
  } else if (
    !body.stream.locked &&
    // node:stream's isDisturbed, not `response.bodyUsed`: same answer, half a µs cheaper.
    !isDisturbed(body.stream) &&
    (typeof body.source === "string" || body.source instanceof Uint8Array || body.source instanceof Blob)
  ) {
    source = body.source;
  }
  return { status: state.status, statusText: state.statusText, headers, source, stream: source === undefined ? response.body : null, fromSource: false };
}

/** The public-API reading (undici 7+): correct for every Response, the body known by its stream. */
function readPublic(response: Response): NativeResponseParts {
  const headers: Array<[string, string]> = [];
  const list = response.headers;
  for (const [name, value] of list) if (name !== "set-cookie") headers.push([name, value]);
  for (const cookie of list.getSetCookie()) headers.push(["set-cookie", cookie]);
  const stream = response.body;
  let source: NativeResponseParts["source"];
  let fromSource = false;
  if (stream === null) {
    source = null;
  } else if (!stream.locked && !isDisturbed(stream)) {
    const file = fileOfStream(stream);
    if (file !== undefined) source = file;
    else fromSource = isByteStream(stream);
  }
  return { status: response.status, statusText: response.statusText, headers, source, stream: source === undefined ? stream : null, fromSource };
}

/** A stream with byte-stream support (`type: "bytes"`), found without reading or keeping a lock. */
function isByteStream(stream: ReadableStream): boolean {
  try {
    stream.getReader({ mode: "byob" }).releaseLock();
    return true;
  } catch {
    return false;
  }
}
