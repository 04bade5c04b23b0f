/**
 * Bun's CookieMap: the request's cookies (`req.cookies`) as a Map-like object whose changes
 * (`set`, `delete`) become Set-Cookie headers on the response the handler returns. Values are
 * percent-decoded when read and percent-encoded when set, as the `cookie` package and Bun do;
 * `set` defaults to `Path=/; SameSite=Lax`, as Bun's CookieInit does.
 */

export type CookieSameSite = "strict" | "lax" | "none";

export interface CookieInit {
  name?: string;
  value?: string;
  domain?: string;
  /** Defaults to "/". */
  path?: string;
  expires?: number | Date | string;
  secure?: boolean;
  /** Defaults to "lax". */
  sameSite?: CookieSameSite;
  httpOnly?: boolean;
  partitioned?: boolean;
  maxAge?: number;
}

export interface CookieStoreDeleteOptions {
  name: string;
  domain?: string | null;
  path?: string;
}

/** RFC 6265 §4.1.1: a cookie name is an HTTP token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Domain and Path attribute values: no `;`, no control characters. */
const ATTRIBUTE = /^[^\x00-\x1f\x7f;]*$/;
const SAME_SITE: Record<CookieSameSite, string> = { strict: "Strict", lax: "Lax", none: "None" };
const EPOCH = new Date(0).toUTCString();

function decode(value: string): string {
  if (!value.includes("%")) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

function checkName(name: unknown): string {
  if (typeof name !== "string" || !TOKEN.test(name)) {
    throw new TypeError(`uwserve: a cookie name must be a non-empty token (letters, digits and !#$%&'*+-.^_\`|~), not ${JSON.stringify(name)}`);
  }
  return name;
}

function attribute(label: string, value: string): string {
  if (!ATTRIBUTE.test(value)) throw new TypeError(`uwserve: a cookie's ${label} must not contain ";" or control characters`);
  return value;
}

/** One Set-Cookie header value. */
function serialize(name: string, value: string, init: CookieInit): string {
  let header = `${name}=${encodeURIComponent(value)}`;
  if (init.domain !== undefined && init.domain !== null) header += `; Domain=${attribute("domain", String(init.domain))}`;
  header += `; Path=${attribute("path", init.path ?? "/")}`;
  if (init.expires !== undefined) {
    const expires = init.expires instanceof Date ? init.expires : new Date(init.expires);
    if (Number.isNaN(expires.getTime())) throw new TypeError("uwserve: a cookie's expires must be a valid date");
    header += `; Expires=${expires.toUTCString()}`;
  }
  if (init.maxAge !== undefined) {
    if (!Number.isFinite(init.maxAge)) throw new TypeError("uwserve: a cookie's maxAge must be a finite number of seconds");
    header += `; Max-Age=${Math.trunc(init.maxAge)}`;
  }
  if (init.secure === true) header += "; Secure";
  if (init.httpOnly === true) header += "; HttpOnly";
  if (init.partitioned === true) header += "; Partitioned";
  const sameSite = init.sameSite ?? "lax";
  if (!(sameSite in SAME_SITE)) throw new TypeError(`uwserve: a cookie's sameSite must be "strict", "lax" or "none", not ${JSON.stringify(sameSite)}`);
  return `${header}; SameSite=${SAME_SITE[sameSite]}`;
}

export class CookieMap implements Iterable<[string, string]> {
  readonly #values = new Map<string, string>();
  /** name → the Set-Cookie value that applies its latest change. */
  readonly #changes = new Map<string, string>();

  /** From a Cookie header string ("a=1; b=2"), an object, or [name, value] pairs. */
  constructor(init?: string | Record<string, string> | string[][]) {
    if (init === undefined || init === null) return;
    if (typeof init === "string") {
      this.#parse(init);
    } else if (Array.isArray(init)) {
      for (const pair of init) this.#values.set(String(pair[0]), String(pair[1]));
    } else {
      for (const [name, value] of Object.entries(init)) this.#values.set(name, String(value));
    }
  }

  /** Adds the cookies of one Cookie header; the first of a repeated name wins (RFC 6265 §5.4). */
  #parse(header: string): void {
    for (const part of header.split(";")) {
      const eq = part.indexOf("=");
      if (eq === -1) continue;
      const name = part.slice(0, eq).trim();
      if (name === "" || this.#values.has(name)) continue;
      let value = part.slice(eq + 1).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      this.#values.set(name, decode(value));
    }
  }

  get size(): number {
    return this.#values.size;
  }
  get(name: string): string | null {
    return this.#values.get(name) ?? null;
  }
  has(name: string): boolean {
    return this.#values.has(name);
  }

  set(name: string, value: string, options?: CookieInit): void;
  set(options: CookieInit): void;
  set(nameOrInit: string | CookieInit, value?: string, options: CookieInit = {}): void {
    const init = typeof nameOrInit === "object" && nameOrInit !== null ? nameOrInit : { ...options, name: nameOrInit, value };
    const name = checkName(init.name);
    const text = String(init.value ?? "");
    this.#changes.set(name, serialize(name, text, init));
    this.#values.set(name, text);
  }

  delete(name: string, options?: Omit<CookieStoreDeleteOptions, "name">): void;
  delete(options: CookieStoreDeleteOptions): void;
  delete(nameOrOptions: string | CookieStoreDeleteOptions, options: Omit<CookieStoreDeleteOptions, "name"> = {}): void {
    const init = typeof nameOrOptions === "object" && nameOrOptions !== null ? nameOrOptions : { ...options, name: nameOrOptions };
    const name = checkName(init.name);
    const header = serialize(name, "", { domain: init.domain ?? undefined, path: init.path });
    this.#changes.set(name, header.replace("; Path=", `; Expires=${EPOCH}; Path=`));
    this.#values.delete(name);
  }

  /** The Set-Cookie values that apply every change made to this map, in the order of their names' first change. */
  toSetCookieHeaders(): string[] {
    return [...this.#changes.values()];
  }
  toJSON(): Record<string, string> {
    return Object.fromEntries(this.#values);
  }

  entries(): IterableIterator<[string, string]> {
    return this.#values.entries();
  }
  keys(): IterableIterator<string> {
    return this.#values.keys();
  }
  values(): IterableIterator<string> {
    return this.#values.values();
  }
  forEach(callback: (value: string, name: string, map: CookieMap) => void, thisArg?: unknown): void {
    for (const [name, value] of this.#values) callback.call(thisArg, value, name, this);
  }
  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.#values.entries();
  }
  get [Symbol.toStringTag](): string {
    return "CookieMap";
  }
}

/** The CookieMap of a request's headers (every Cookie header, in order), from the flat raw list. */
export function cookiesOf(rawHeaders: readonly string[]): CookieMap {
  const parts: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === "cookie") parts.push(rawHeaders[i + 1]!);
  return new CookieMap(parts.join("; "));
}

/**
 * A request's CookieMap, registered on its context (when it has one) so the writer adds the
 * map's Set-Cookie headers to whatever response the handler returns.
 */
export function requestCookies(rawHeaders: readonly string[], context: unknown): CookieMap {
  const map = cookiesOf(rawHeaders);
  if (context !== null && typeof context === "object" && "cookies" in context) (context as { cookies: CookieMap | null }).cookies = map;
  return map;
}
