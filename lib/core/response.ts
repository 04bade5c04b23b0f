/**
 * uwserve's own `Response`: the standard constructor and members, `instanceof Response` true,
 * but built for the server's hot path. undici's `new Response("text")` costs several µs on
 * Node 20 (WebIDL conversion, a Headers object, a ReadableStream for every body); this one only
 * stores what it was given. The writer reads those parts directly; any member that needs a real
 * undici Response (body stream, formData, symbols undici looks up) materialises one, once.
 */
import { FORM_URLENCODED, TEXT_PLAIN } from "./writer/head.js";
import { delegateMissingMembers } from "./_delegate.js";
import { NativeHeaders, NativeResponse } from "./_globals.js";
import { assertValidHeader, forEachHeaderInit } from "./_headers.js";

/** What the writer needs from a fast Response. `real` is set once a native one was materialised. */
export interface FastResponseParts {
  status: number;
  statusText: string;
  /**
   * The init headers as a flat [name, value, …] list, names lower case, everything validated;
   * null when none were given or once `headers` was read (then `headers` is authoritative).
   */
  headerList: readonly string[] | null;
  headers: Headers | null;
  body: unknown;
  real: Response | null;
}

const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);
/** RFC 9110 reason-phrase: HTAB, SP, VCHAR, obs-text. */
const REASON_PHRASE = /^[\t\x20-\x7e\x80-\xff]*$/;

let readParts: (response: object) => FastResponseParts | undefined;
/** readParts fills this one object (no allocation per response): read it before the next call. */
const scratchParts: FastResponseParts = { status: 0, statusText: "", headerList: null, headers: null, body: null, real: null };
let materialize: (response: FastResponse) => Response;
let takeBody: (response: FastResponse) => boolean;

function isBodyUsedError(): TypeError {
  return new TypeError("Body is unusable: Body has already been read");
}

/** True for async iterables that are not one of the standard body types (Bun accepts these). */
export function isAsyncIterableBody(body: unknown): body is AsyncIterable<unknown> {
  return (
    typeof body === "object" &&
    body !== null &&
    typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function" &&
    !(body instanceof ReadableStream)
  );
}

/** Normalises a BodyInit the way the Fetch standard does for the cheap cases. */
function normalizeBody(body: unknown): unknown {
  if (body === undefined || body === null) return null;
  if (typeof body === "string") return body;
  if (typeof body === "object" || typeof body === "function") {
    if (
      body instanceof Uint8Array ||
      body instanceof ArrayBuffer ||
      ArrayBuffer.isView(body) ||
      body instanceof Blob ||
      body instanceof ReadableStream ||
      body instanceof FormData ||
      body instanceof URLSearchParams ||
      isAsyncIterableBody(body) ||
      (typeof SharedArrayBuffer !== "undefined" && body instanceof SharedArrayBuffer)
    ) {
      return body;
    }
  }
  // WebIDL converts any other value to a USVString.
  return String(body);
}

function checkInit(init: ResponseInit | undefined, hasBody: boolean): [number, string, string[] | null] {
  if (init === undefined || init === null) return [200, "", null];
  if (typeof init !== "object") {
    throw new TypeError("Response constructor: init must be an object");
  }
  let status = 200;
  if (init.status !== undefined) {
    status = Number(init.status);
    if (!Number.isInteger(status) || status < 200 || status > 599) {
      throw new RangeError(`init["status"] must be in the range of 200 to 599, inclusive, but received ${init.status}`);
    }
  }
  let statusText = "";
  if (init.statusText !== undefined) {
    statusText = String(init.statusText);
    if (!REASON_PHRASE.test(statusText)) throw new TypeError("Invalid statusText");
  }
  if (hasBody && NULL_BODY_STATUS.has(status)) {
    throw new TypeError("Response constructor: Invalid response status code " + status);
  }
  const headersInit = init.headers;
  if (headersInit === undefined || headersInit === null) return [status, statusText, null];
  if (typeof headersInit !== "object") {
    throw new TypeError("Response constructor: init.headers must be an object, an array of pairs or a Headers");
  }
  return [status, statusText, toHeaderList(headersInit)];
}

/**
 * Copies a HeadersInit into a validated flat list once, at construction, as undici copies it
 * into its own list: later changes to the caller's object don't leak in, and the writer reads
 * the list without validating or walking the caller's object again.
 */
function toHeaderList(init: object): string[] {
  const list: string[] = [];
  listTarget = list;
  try {
    forEachHeaderInit(init, pushValidated);
  } finally {
    listTarget = null;
  }
  return list;
}

let listTarget: string[] | null = null;
function pushValidated(name: string, value: string): void {
  assertValidHeader(name, value);
  listTarget!.push(name.toLowerCase(), value);
}

/** [name, value] pairs of a flat list, for undici's constructors. */
function toPairs(list: readonly string[] | null): Array<[string, string]> | undefined {
  if (list === null) return undefined;
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i < list.length; i += 2) pairs.push([list[i]!, list[i + 1]!]);
  return pairs;
}



/** Converts a BodyInit we keep into something undici's constructor takes. */
function toNativeBody(body: unknown): BodyInit | null {
  if (isAsyncIterableBody(body)) {
    // ReadableStream.from exists since Node 20.6; lib.dom in TypeScript 5.9 lacks it.
    const from = (ReadableStream as unknown as { from(it: AsyncIterable<unknown>): ReadableStream }).from;
    return from(body as AsyncIterable<Uint8Array>) as unknown as BodyInit;
  }
  return body as BodyInit | null;
}

class FastResponse {
  #status: number;
  #statusText: string;
  #headerList: readonly string[] | null;
  #headers: Headers | null;
  #body: unknown;
  #bodyUsed: boolean;
  #real: Response | null;

  constructor(body?: BodyInit | null | AsyncIterable<unknown>, init?: ResponseInit) {
    const normalized = normalizeBody(body);
    const [status, statusText, headerList] = checkInit(init, normalized !== null);
    this.#status = status;
    this.#statusText = statusText;
    this.#headerList = headerList;
    this.#headers = null;
    this.#body = normalized;
    this.#bodyUsed = false;
    this.#real = null;
  }

  static {
    readParts = (response) => {
      if (!(#status in response)) return undefined;
      const r = response as FastResponse;
      const parts = scratchParts;
      parts.status = r.#status;
      parts.statusText = r.#statusText;
      parts.headerList = r.#headers === null ? r.#headerList : null;
      parts.headers = r.#headers;
      parts.body = r.#body;
      parts.real = r.#real;
      return parts;
    };
    materialize = (r) => r.#materialize();
    takeBody = (r) => {
      if (r.#body === null) return true;
      if (r.#bodyUsed) return false;
      r.#bodyUsed = true;
      return true;
    };
  }

  /** The undici Response with the same contents, created on first need. */
  #materialize(): Response {
    if (this.#real !== null) return this.#real;
    const real = new NativeResponse(toNativeBody(this.#body), {
      status: this.#status,
      statusText: this.#statusText,
      headers: this.#headers ?? toPairs(this.#headerList),
    });
    if (this.#bodyUsed) {
      // Keep "already used" true on the real one too: lock its stream.
      real.body?.getReader();
    }
    this.#real = real;
    this.#headers = real.headers;
    return real;
  }

  #hasCheapBody(): boolean {
    const body = this.#body;
    return body === null || typeof body === "string" || body instanceof Uint8Array || body instanceof ArrayBuffer;
  }

  #takeCheapBody(): string | Uint8Array | ArrayBuffer | null {
    if (this.#bodyUsed) throw isBodyUsedError();
    if (this.#body !== null) this.#bodyUsed = true;
    return this.#body as string | Uint8Array | ArrayBuffer | null;
  }

  get status(): number {
    return this.#real?.status ?? this.#status;
  }
  get statusText(): string {
    return this.#real?.statusText ?? this.#statusText;
  }
  get ok(): boolean {
    const status = this.status;
    return status >= 200 && status <= 299;
  }
  get type(): ResponseType {
    return this.#real?.type ?? "default";
  }
  get url(): string {
    return this.#real?.url ?? "";
  }
  get redirected(): boolean {
    return this.#real?.redirected ?? false;
  }
  get headers(): Headers {
    if (this.#headers === null) {
      // A FormData's boundary is undici's choice: its headers are the ones the body is sent with.
      if (this.#body instanceof FormData) return this.#materialize().headers;
      this.#headers = new NativeHeaders(toPairs(this.#headerList));
      if (typeof this.#body === "string" && !this.#headers.has("content-type")) {
        // Byte for byte what undici (and Deno) report for a string body.
        this.#headers.set("content-type", TEXT_PLAIN);
      } else if (this.#body instanceof Blob && this.#body.type && !this.#headers.has("content-type")) {
        this.#headers.set("content-type", this.#body.type);
      } else if (this.#body instanceof URLSearchParams && !this.#headers.has("content-type")) {
        this.#headers.set("content-type", FORM_URLENCODED);
      }
    }
    return this.#headers;
  }
  get body(): ReadableStream<Uint8Array> | null {
    if (this.#real === null && this.#body === null) return null;
    return this.#materialize().body;
  }
  get bodyUsed(): boolean {
    return this.#real?.bodyUsed ?? this.#bodyUsed;
  }

  async text(): Promise<string> {
    if (this.#real === null && this.#hasCheapBody()) {
      const body = this.#takeCheapBody();
      if (body === null) return "";
      if (typeof body === "string") return body;
      return Buffer.from(body instanceof ArrayBuffer ? new Uint8Array(body) : body).toString("utf8");
    }
    return this.#materialize().text();
  }
  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }
  async arrayBuffer(): Promise<ArrayBuffer> {
    return (await this.bytes()).buffer as ArrayBuffer;
  }
  async bytes(): Promise<Uint8Array> {
    if (this.#real === null && this.#hasCheapBody()) {
      const body = this.#takeCheapBody();
      if (body === null) return new Uint8Array(0);
      if (typeof body === "string") return new Uint8Array(Buffer.from(body, "utf8"));
      // A copy: the caller owns the result, the Response keeps its bytes.
      return new Uint8Array(body instanceof ArrayBuffer ? body.slice(0) : body.slice());
    }
    return new Uint8Array(await this.#materialize().arrayBuffer());
  }
  async blob(): Promise<Blob> {
    return this.#materialize().blob();
  }
  async formData(): Promise<FormData> {
    return this.#materialize().formData();
  }
  clone(): Response {
    if (this.#bodyUsed || this.#real?.bodyUsed) throw new TypeError("Response.clone: Body has already been consumed.");
    if (this.#real === null && this.#hasCheapBody()) {
      const copy = new FastResponse(null, undefined);
      copy.#status = this.#status;
      copy.#statusText = this.#statusText;
      // Lists are never changed after construction, so the copy may share this one's.
      copy.#headerList = this.#headers !== null ? toHeaderList(this.#headers) : this.#headerList;
      copy.#body = this.#body;
      return copy as unknown as Response;
    }
    return this.#materialize().clone();
  }

  static json(data: unknown, init?: ResponseInit): Response {
    const body = JSON.stringify(data);
    if (body === undefined) throw new TypeError("Response.json: the value is not JSON-serializable");
    const response = new FastResponse(body, init);
    const list = response.#headerList;
    if (list === null) {
      response.#headerList = JSON_HEADERS;
    } else if (!hasName(list, "content-type")) {
      response.#headerList = [...list, "content-type", "application/json"];
    }
    return response as unknown as Response;
  }

  /** Like Bun, relative URLs are kept as given (undici would throw without a base URL). */
  static redirect(url: string | URL, status = 302): Response {
    if (!REDIRECT_STATUS.has(status)) {
      throw new RangeError(`Response.redirect: invalid status code ${status} (expected 301, 302, 303, 307 or 308)`);
    }
    const location = typeof url === "string" ? url : url.href;
    if (!/^[\x20-\x7e\x80-\uffff]*$/.test(location) || /[\r\n\0]/.test(location)) {
      throw new TypeError("Response.redirect: invalid URL");
    }
    const response = new FastResponse(null, { status });
    response.#headerList = ["location", URL.canParse(location) ? new URL(location).href : location];
    return response as unknown as Response;
  }

  static error(): Response {
    return NativeResponse.error();
  }

  /**
   * Once `uwserve/global` made this class the global `Response`, `fetch()` results (undici's
   * own Responses) must still pass `instanceof Response` (H17): any Response of either kind does.
   */
  static [Symbol.hasInstance](value: unknown): boolean {
    return value instanceof NativeResponse;
  }

  get [Symbol.toStringTag](): string {
    return "Response";
  }

  [Symbol.for("nodejs.util.inspect.custom")](): object {
    return {
      status: this.status,
      statusText: this.statusText,
      headers: this.headers,
      body: this.#real ? this.#real.body : this.#body,
      bodyUsed: this.bodyUsed,
      ok: this.ok,
      redirected: this.redirected,
      type: this.type,
      url: this.url,
    };
  }
}

/** Shared by every Response.json() without headers; frozen so no response can change another's. */
const JSON_HEADERS: readonly string[] = Object.freeze(["content-type", "application/json"]);

function hasName(list: readonly string[], name: string): boolean {
  for (let i = 0; i < list.length; i += 2) if (list[i] === name) return true;
  return false;
}

// `instanceof Response` (the native one) must hold, and undici looks some things up by its own
// symbols (state, headers) on objects that pass `instanceof`: answer those from the real one.
delegateMissingMembers(
  FastResponse,
  NativeResponse,
  (self) => materialize(self as FastResponse),
  Object.getOwnPropertySymbols(new NativeResponse(null)),
);
Object.setPrototypeOf(FastResponse, NativeResponse);

/**
 * Returns the parts of a uwserve Response, or undefined for any other object. The result is a
 * shared object overwritten by the next call: read it synchronously.
 */
export function fastResponseParts(response: object): FastResponseParts | undefined {
  return readParts(response);
}

/**
 * Marks the body of a uwserve Response (one fastResponseParts recognised, not materialised) as
 * used because it is being sent; false when it was already used (sent, or read), as Bun
 * refuses to send one body twice. A Response without a body can be sent any number of times.
 */
export function takeFastBody(response: object): boolean {
  return takeBody(response as FastResponse);
}

/** uwserve's Response class, typed as the standard one. */
export const UwsResponse = FastResponse as unknown as typeof globalThis.Response;
