/**
 * The handler's Request where the lazy stand-in (request.ts) can't stand in: a real undici
 * Request, built when the request arrives.
 *
 * undici 7+ (Node 24+) keeps a Request's state in `#private` fields. `new Request(req)` and
 * `fetch(req)` read those fields from anything that passes `instanceof Request`, so a stand-in
 * whose prototype chains to Request throws there ("Cannot read private member #state"), and
 * undici 8 turns it into its URL string, silently dropping method, headers and body. Only an
 * object that undici itself constructed has the fields: this class is that object, plus what
 * the bridge keeps beside it (route params, the request's context, the abort on disconnect).
 * It costs a Request construction per request (about 1.3 µs on Node 24, measured), which the
 * stand-in defers until someone needs one.
 */
import { NativeRequest } from "./_globals.js";
import { requestCookies, type CookieMap } from "./cookies.js";
import { appendRawHeaders } from "./_lazy_headers.js";
import { isDisturbed } from "./_undici.js";
import type { RequestBody } from "./body.js";

/** What the bridge reads back from one of its requests, whichever class it is. */
export interface RequestInternals {
  context: unknown;
  rawHeaders: string[];
  abort(reason: string): void;
}

let internalsOf: (req: object) => RequestInternals | undefined;

export class BackedServerRequest extends NativeRequest {
  /** Route parameters (Bun's `BunRequest.params`), percent-decoded; empty outside param routes. */
  params: Record<string, string>;
  #rawHeaders: string[];
  #body: RequestBody | null;
  /** The stream undici holds as this request's body. */
  #stream: ReadableStream<Uint8Array> | null;
  #context: unknown;
  #controller: AbortController | null;
  #abortReason: string | null;
  #cookies: CookieMap | null;

  /** Same arguments as the stand-in's, so the bridge builds either the same way. */
  constructor(url: string, method: string, rawHeaders: string[], body: RequestBody | null, context: unknown, params: Record<string, string>) {
    const stream = body !== null && method !== "GET" && method !== "HEAD" ? body.stream() : null;
    // No init at all for a GET: undici then skips its whole init pass (measured 0.25 µs less).
    // @ts-expect-error duplex is required by undici for stream bodies, missing from lib.dom
    super(url, stream !== null ? { method, body: stream, duplex: "half" } : method === "GET" ? undefined : { method });
    appendRawHeaders(super.headers, rawHeaders);
    this.params = params;
    this.#rawHeaders = rawHeaders;
    this.#body = body;
    this.#stream = stream;
    this.#context = context;
    this.#controller = null;
    this.#abortReason = null;
    this.#cookies = null;
  }

  static {
    internalsOf = (req) => {
      if (!(#context in req)) return undefined;
      const r = req as BackedServerRequest;
      return { context: r.#context, rawHeaders: r.#rawHeaders, abort: (reason: string) => r.#abort(reason) };
    };
  }

  /** Bun's `req.cookies`: the Cookie header as a CookieMap; its changes go on the response. */
  get cookies(): CookieMap {
    return (this.#cookies ??= requestCookies(this.#rawHeaders, this.#context));
  }

  /**
   * Fires when the client goes away (or the request times out), like the stand-in's. undici's
   * own signal for this Request can't be reached from outside, so this one is handed out
   * instead; a copy made with `new Request(req)` follows undici's, which never fires.
   */
  override get signal(): AbortSignal {
    if (this.#controller === null) {
      this.#controller = new AbortController();
      if (this.#abortReason !== null) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  /**
   * The whole body without undici's stream reading, while nobody has touched the stream: its
   * cancel() then marks undici's body used, as a read would (bodyUsed, `new Request(req)`).
   */
  #whole(): Promise<Buffer> | null {
    const stream = this.#stream;
    if (stream === null || stream.locked || isDisturbed(stream)) return null;
    const whole = this.#body!.readAllInsteadOfStream();
    if (whole === null) return null;
    stream.cancel().catch(() => {});
    return whole;
  }

  override text(): Promise<string> {
    const whole = this.#whole();
    return whole === null ? super.text() : whole.then((bytes) => bytes.toString("utf8"));
  }
  override json(): Promise<unknown> {
    const whole = this.#whole();
    return whole === null ? super.json() : whole.then((bytes) => JSON.parse(bytes.toString("utf8")));
  }
  override arrayBuffer(): Promise<ArrayBuffer> {
    const whole = this.#whole();
    // Buffers may share a pooled ArrayBuffer: hand out an exact copy.
    return whole === null ? super.arrayBuffer() : whole.then((b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer);
  }

  #abort(reason: string): void {
    if (this.#abortReason !== null) return;
    this.#abortReason = reason;
    this.#body?.fail(new DOMException(reason, "AbortError"));
    this.#controller?.abort(reason);
  }
}

/** The internals of a BackedServerRequest, or undefined for any other object. */
export function backedInternals(req: object): RequestInternals | undefined {
  return internalsOf(req);
}
