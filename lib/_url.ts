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

export function buildUrl(host: string, path: string, query: string, fallbackOrigin: string): string {
  const origin = isValidHost(host) ? "http://" + host : fallbackOrigin;
  const fast =
    PLAIN_PATH.test(path) && !NEEDS_NORMALIZING.test(path) && (query === "" || PLAIN_QUERY.test(query));
  if (fast) {
    const url = query === "" ? origin + path : origin + path + "?" + query;
    // A Host with upper case or a default port is rewritten by the parser; let it.
    if (!/[A-Z]|:80$/.test(origin)) return url;
  }
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
