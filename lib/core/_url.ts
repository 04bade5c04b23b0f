/**
 * Builds a request's absolute URL from the Host header and the request target without ever
 * throwing (H19): an invalid Host falls back to the listening address, and the slow WHATWG
 * parser runs only when the target holds something it would rewrite (dot segments, "%2e",
 * backslashes, characters it percent-encodes).
 */

/** reg-name / IPv4 with optional port, or an IPv6 literal in brackets with optional port. */
const VALID_HOST = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+(?:%25[A-Za-z0-9\-._~]+)?\](?::\d{1,5})?$/;
/** Path characters the URL parser leaves exactly as they are. */
const PLAIN_PATH = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$/;
/** Query characters the URL parser leaves exactly as they are (for http/https). */
const PLAIN_QUERY = /^[A-Za-z0-9\-._~!$&()*+,;=:@/?%[\]{}|\\^`]*$/;
/** Things that make the parser rewrite a plain-looking path. */
const NEEDS_NORMALIZING = /\/\.|%2e|%(?![0-9A-Fa-f]{2})/i;

export function isValidHost(host: string): boolean {
  return host.length > 0 && host.length <= 255 && VALID_HOST.test(host);
}

/** The last Host seen and its origin: a server mostly sees one Host, so skip the regexes. */
let cachedHost = "";
let cachedFallback = "";
let cachedOrigin: string | null = null;

/** "http://host" for a valid Host the parser would keep as is, else null (slow path). */
function canonicalOrigin(host: string, fallbackOrigin: string): string | null {
  if (host === cachedHost && fallbackOrigin === cachedFallback) return cachedOrigin;
  const secure = fallbackOrigin.startsWith("https:");
  const origin = isValidHost(host) ? (secure ? "https://" : "http://") + host : fallbackOrigin;
  // Upper case or a default port would be rewritten by the parser: take the slow path then.
  const result = (secure ? /[A-Z]|:443$/ : /[A-Z]|:80$/).test(origin) ? null : origin;
  cachedHost = host;
  cachedFallback = fallbackOrigin;
  cachedOrigin = result;
  return result;
}

export function buildUrl(host: string, path: string, query: string, fallbackOrigin: string): string {
  const fastOrigin = canonicalOrigin(host, fallbackOrigin);
  if (
    fastOrigin !== null &&
    PLAIN_PATH.test(path) &&
    !NEEDS_NORMALIZING.test(path) &&
    (query === "" || PLAIN_QUERY.test(query))
  ) {
    return query === "" ? fastOrigin + path : fastOrigin + path + "?" + query;
  }
  const origin = isValidHost(host) ? (fallbackOrigin.startsWith("https:") ? "https://" : "http://") + host : fallbackOrigin;
  try {
    // Parse the target against the origin alone, so an absolute-looking path can't change host.
    const parsed = new URL(origin);
    const target = new URL("http://placeholder" + (path.startsWith("/") ? path : "/" + path) + (query ? "?" + query : ""));
    parsed.pathname = target.pathname;
    parsed.search = target.search;
    return parsed.href;
  } catch {
    return fallbackOrigin + "/";
  }
}
