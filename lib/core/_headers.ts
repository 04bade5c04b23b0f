/** Header validation and iteration shared by the request bridge and the response writer. */

/** RFC 9110 token: what a header name (and an extension method) may contain. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/**
 * Characters that would split a response (H6: uWS copies header bytes verbatim), and any above
 * U+00FF: a value is a ByteString, one byte per character, and undici refuses the same ones.
 */
const FORBIDDEN_IN_VALUE = /[\r\n\0\u0100-\uffff]/;

export function isValidHeaderName(name: string): boolean {
  return TOKEN.test(name);
}

export function isValidHeaderValue(value: string): boolean {
  return !FORBIDDEN_IN_VALUE.test(value);
}

export function assertValidHeader(name: string, value: string): void {
  if (!TOKEN.test(name)) throw new TypeError(`Invalid header name: ${JSON.stringify(name)}`);
  if (FORBIDDEN_IN_VALUE.test(value)) {
    throw new TypeError(`Invalid header value for ${JSON.stringify(name)}: it contains CR, LF, NUL or a character above U+00FF`);
  }
}

/**
 * Calls `visit(name, value)` for every header of an init value without building a `Headers`,
 * keeping repeated values (Set-Cookie) separate. Values are trimmed of HTTP whitespace as the
 * Fetch standard normalises them. Returns false when `init` is not a shape it knows.
 */
export function forEachHeaderInit(init: unknown, visit: (name: string, value: string) => void): boolean {
  if (init === undefined || init === null) return true;
  if (init instanceof Headers) {
    for (const [name, value] of init) {
      if (name === "set-cookie") continue;
      visit(name, value);
    }
    for (const cookie of init.getSetCookie()) visit("set-cookie", cookie);
    return true;
  }
  if (typeof init !== "object") return false;
  const iterator = (init as Iterable<unknown>)[Symbol.iterator];
  if (typeof iterator === "function") {
    for (const pair of init as Iterable<unknown>) {
      if (!Array.isArray(pair) || pair.length !== 2) {
        throw new TypeError("Headers init pairs must be [name, value] arrays of length 2");
      }
      visit(String(pair[0]), normalizeValue(String(pair[1])));
    }
    return true;
  }
  for (const name in init as Record<string, unknown>) {
    const value = (init as Record<string, unknown>)[name];
    if (Array.isArray(value)) {
      // Node-style arrays of values (accepted by undici for records too: joined by ", ").
      visit(name, normalizeValue(value.join(", ")));
    } else {
      visit(name, normalizeValue(String(value)));
    }
  }
  return true;
}

/** Strips leading and trailing HTTP whitespace (tab, space, CR, LF) as `Headers` does. */
export function normalizeValue(value: string): string {
  const first = value.charCodeAt(0);
  const last = value.charCodeAt(value.length - 1);
  if (first > 32 && last > 32) return value;
  return value.replace(/^[\t\n\r ]+|[\t\n\r ]+$/g, "");
}
