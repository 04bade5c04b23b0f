/**
 * Guarded access to undici's internal state of native Request/Response objects (Node's fetch).
 * Used only as a fast path: every accessor is verified against the public API once at load,
 * and returns undefined when this Node's undici is shaped differently, so callers fall back.
 */
import * as streams from "node:stream";
import { NativeRequest, NativeResponse } from "./_globals.js";

/** Public since Node 16.8 (works on web streams), missing from @types/node 20. */
const isDisturbed = (streams as unknown as { isDisturbed(stream: unknown): boolean }).isDisturbed;

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

/** Parts of a native Response read without creating a reader, or undefined if unavailable. */
export interface NativeResponseParts {
  status: number;
  statusText: string;
  /** [name, value] pairs, Set-Cookie values separate. */
  headers: Array<[string, string]>;
  /** string, bytes or Blob when the body was built from one and is untouched; else undefined. */
  source: string | Uint8Array | Blob | null | undefined;
}

export function readNativeResponse(response: Response): NativeResponseParts | undefined {
  if (kResponseState === undefined) return undefined;
  const state = (response as unknown as Record<symbol, ResponseState | undefined>)[kResponseState];
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
  return { status: state.status, statusText: state.statusText, headers, source };
}
