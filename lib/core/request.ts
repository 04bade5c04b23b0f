/**
 * The handler's Request: lazy over a copy of what uWS gave us (the uWS HttpRequest dies at
 * the handler's first await, H1). `instanceof Request` is true; `url`, `method`, a header read
 * and the body readers cost almost nothing; everything else (and `new Request(req)`,
 * `fetch(req)`, `clone()`) goes through a real undici Request built once on demand (H15, H16).
 * That works where undici reads a Request's state through symbols (undici 6); elsewhere the
 * bridge builds a real one at once (request-backed.ts): `createServerRequest` picks.
 */
import { requestCookies, type CookieMap } from "./cookies.js";
import { delegateMissingMembers } from "./_delegate.js";
import { NativeRequest, NativeResponse } from "./_globals.js";
import { LazyHeaders } from "./_lazy_headers.js";
import { internalsAllowed, requestSymbols } from "./_undici.js";
import { backedInternals, BackedServerRequest, type RequestInternals } from "./request-backed.js";
import { buildUrl } from "./_url.js";
import type { RequestBody } from "./body.js";

/** Methods the Fetch standard normalises to upper case; others keep their case. */
const NORMALIZED_METHODS: Record<string, string> = {
  delete: "DELETE",
  get: "GET",
  head: "HEAD",
  options: "OPTIONS",
  post: "POST",
  put: "PUT",
  patch: "PATCH",
};
/** undici refuses to construct these (forbidden methods). */
const FORBIDDEN_METHODS = new Set(["CONNECT", "TRACE", "TRACK"]);

/** Reads a request's internals (module-internal door to the private fields). */
let internals: (req: object) => RequestInternals | undefined;
let materialize: (req: ServerRequest) => Request;

/** `params` of requests that matched no parameter route: shared, so frozen. */
export const NO_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>;

export class ServerRequest {
  /** Route parameters (Bun's `BunRequest.params`), percent-decoded; empty outside param routes. */
  params: Record<string, string>;
  #method: string;
  #path: string;
  #query: string;
  #rawHeaders: string[];
  #host: string;
  #fallbackOrigin: string;
  #body: RequestBody | null;
  #url: string | null;
  #headers: Headers | null;
  #controller: AbortController | null;
  #abortReason: string | null;
  #real: Request | null;
  #stream: ReadableStream<Uint8Array> | null;
  #context: unknown;
  #cookies: CookieMap | null;

  /** Takes what the bridge copied out of the uWS request (positional: no init object per request). */
  constructor(
    method: string,
    path: string,
    query: string,
    rawHeaders: string[],
    host: string,
    fallbackOrigin: string,
    body: RequestBody | null,
    context: unknown,
  ) {
    this.params = NO_PARAMS;
    this.#method = method;
    this.#path = path;
    this.#query = query;
    this.#rawHeaders = rawHeaders;
    this.#host = host;
    this.#fallbackOrigin = fallbackOrigin;
    this.#body = body;
    this.#url = null;
    this.#headers = null;
    this.#controller = null;
    this.#abortReason = null;
    this.#real = null;
    this.#stream = null;
    this.#context = context;
    this.#cookies = null;
  }

  static {
    internals = (req) => {
      if (!(#method in req)) return undefined;
      const r = req as ServerRequest;
      return {
        context: r.#context,
        abort: (reason: string) => r.#abort(reason),
        rawHeaders: r.#rawHeaders,
      };
    };
    materialize = (r) => r.#materialize();
  }

  /** Fires `signal` (if anyone looked at it) and fails an unread body. */
  #abort(reason: string): void {
    if (this.#abortReason !== null) return;
    this.#abortReason = reason;
    this.#body?.fail(new DOMException(reason, "AbortError"));
    this.#controller?.abort(reason);
  }

  get method(): string {
    const method = this.#method;
    return NORMALIZED_METHODS[method.toLowerCase()] ?? method;
  }

  get url(): string {
    return (this.#url ??= buildUrl(this.#host, this.#path, this.#query, this.#fallbackOrigin));
  }

  get headers(): Headers {
    if (this.#real !== null) return this.#real.headers;
    return (this.#headers ??= new LazyHeaders(this.#rawHeaders) as unknown as Headers);
  }

  /** First value of a header without building Headers (for the bridge itself). */
  #header(name: string): string | null {
    return this.headers.get(name);
  }

  /** Bun's `req.cookies`: the Cookie header as a CookieMap; its changes go on the response. */
  get cookies(): CookieMap {
    return (this.#cookies ??= requestCookies(this.#rawHeaders, this.#context));
  }

  get signal(): AbortSignal {
    if (this.#real !== null) return this.#real.signal;
    if (this.#controller === null) {
      this.#controller = new AbortController();
      if (this.#abortReason !== null) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  get body(): ReadableStream<Uint8Array> | null {
    if (this.#real !== null) return this.#real.body;
    if (this.#body === null) return null;
    if (this.#stream === null) {
      if (this.#body.taken) {
        // Read whole already: an empty, disturbed stream, as a consumed Request has.
        const used = new ReadableStream<Uint8Array>({ start: (c) => c.close() });
        void used.getReader().read();
        this.#stream = used;
      } else {
        this.#stream = this.#body.stream();
      }
    }
    return this.#stream;
  }

  get bodyUsed(): boolean {
    if (this.#real !== null) return this.#real.bodyUsed;
    if (this.#body === null) return false;
    if (this.#stream !== null) return this.#stream.locked;
    return this.#body.taken;
  }

  #readAll(): Promise<Buffer> {
    if (this.#real !== null) return this.#real.arrayBuffer().then((ab) => Buffer.from(ab));
    if (this.#body === null) return Promise.resolve(Buffer.alloc(0));
    if (this.#stream !== null) {
      return new NativeResponse(this.#stream).arrayBuffer().then((ab) => Buffer.from(ab));
    }
    try {
      return this.#body.readAll();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  text(): Promise<string> {
    return this.#readAll().then(utf8);
  }
  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }
  async arrayBuffer(): Promise<ArrayBuffer> {
    const buf = await this.#readAll();
    // Buffers may share a pooled ArrayBuffer: hand out an exact copy.
    return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length) as ArrayBuffer;
  }
  async bytes(): Promise<Uint8Array> {
    return new Uint8Array(await this.arrayBuffer());
  }
  async blob(): Promise<Blob> {
    const type = this.#header("content-type") ?? "";
    return new Blob([await this.arrayBuffer()], { type });
  }
  async formData(): Promise<FormData> {
    if (this.#real !== null) return this.#real.formData();
    const contentType = this.#header("content-type") ?? "";
    const bytes = await this.#readAll();
    // undici's multipart/urlencoded parser, reached through a throwaway Response.
    return new NativeResponse(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length) as Uint8Array<ArrayBuffer>, {
      headers: { "content-type": contentType },
    }).formData();
  }

  clone(): Request {
    return this.#materialize().clone();
  }

  /** The equivalent undici Request, built once; the lazy one delegates to it from then on. */
  #materialize(): Request {
    if (this.#real !== null) return this.#real;
    const method = this.method;
    if (FORBIDDEN_METHODS.has(method.toUpperCase())) {
      throw new TypeError(
        `uwserve: a ${method} request cannot be turned into a fetch Request (undici forbids the method); ` +
          "read method, url and headers from it directly",
      );
    }
    const hasBody = this.#body !== null && method !== "GET" && method !== "HEAD";
    const body = hasBody ? this.body : null;
    const real = new NativeRequest(this.url, {
      method,
      headers: this.headers,
      body,
      signal: this.signal,
      // @ts-expect-error duplex is required by undici for stream bodies, missing from lib.dom
      duplex: "half",
    });
    this.#real = real;
    return real;
  }

  get [Symbol.toStringTag](): string {
    return "Request";
  }

  [Symbol.for("nodejs.util.inspect.custom")](): object {
    return { method: this.method, url: this.url, headers: this.headers, bodyUsed: this.bodyUsed };
  }
}

function utf8(bytes: Buffer): string {
  return bytes.toString("utf8");
}

// `instanceof Request` must hold. undici's own code (the Request constructor, fetch) reads its
// internal symbols from anything that passes instanceof (H16): answer them from the real one.
delegateMissingMembers(ServerRequest, NativeRequest, (self) => materialize(self as ServerRequest), requestSymbols);

/**
 * Whether undici takes the stand-in where a Request goes: a copy made with `new Request(req)`
 * must keep its method, URL, headers and body. True on undici 6; undici 7 throws (it reads
 * `#private` fields), undici 8 copies only the URL. `UWSERVE_UNDICI_INTERNALS=off` also turns
 * the stand-in off, so its replacement can be tested on any Node.
 */
export const lazyRequests: boolean = (() => {
  if (!internalsAllowed) return false;
  try {
    const probe = new ServerRequest("PUT", "/probe", "q=1", ["x-probe", "1"], "localhost", "http://localhost", null, null);
    const copy = new NativeRequest(probe as unknown as Request);
    return copy.method === "PUT" && copy.url === "http://localhost/probe?q=1" && copy.headers.get("x-probe") === "1";
  } catch {
    return false;
  }
})();

/** The handler's Request for what the bridge copied out of uWS (see the top of this file). */
export function createServerRequest(
  method: string,
  path: string,
  query: string,
  rawHeaders: string[],
  host: string,
  fallbackOrigin: string,
  body: RequestBody | null,
  context: unknown,
  params: Record<string, string>,
): ServerRequest | BackedServerRequest {
  if (!lazyRequests && !FORBIDDEN_METHODS.has(method.toUpperCase())) {
    const normalized = NORMALIZED_METHODS[method.toLowerCase()] ?? method;
    try {
      return new BackedServerRequest(buildUrl(host, path, query, fallbackOrigin), normalized, rawHeaders, body, context, params);
    } catch {
      // undici refused something uWS accepted (a method token it rejects): the stand-in still
      // serves every member that doesn't need a real Request.
    }
  }
  const request = new ServerRequest(method, path, query, rawHeaders, host, fallbackOrigin, body, context);
  request.params = params;
  return request;
}

/** Internals of either request class. */
function internalsOfAny(req: object): RequestInternals | undefined {
  return internals(req) ?? backedInternals(req);
}

/** The context the bridge attached to one of its requests, or undefined for other objects. */
export function requestContextOf(req: unknown): unknown {
  if (typeof req !== "object" || req === null) return undefined;
  return internalsOfAny(req)?.context;
}

/**
 * A request header's value as received (repeated fields joined with ", "), without building
 * the request's Headers; "" when absent.
 */
export function requestHeader(req: ServerRequest | BackedServerRequest, name: string): string {
  const raw = internalsOfAny(req)!.rawHeaders;
  let value = "";
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i] === name) value = value === "" ? raw[i + 1]! : `${value}, ${raw[i + 1]}`;
  }
  return value;
}

/** Aborts a bridge request's signal and body with a string reason (H20). */
export function abortServerRequest(req: ServerRequest | BackedServerRequest, reason: string): void {
  internalsOfAny(req)?.abort(reason);
}
