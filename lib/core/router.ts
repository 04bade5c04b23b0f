/**
 * Bun's `routes` table: validation, compilation and parameter decoding. Matching on the
 * network path is done by the uWS C++ router (see server.ts); this module also holds a small
 * JS matcher with the same precedence for the two cases the C++ router can't take: paths that
 * need normalising first (dot segments) and `server.fetch()`, which never touches the network.
 */
import { uwserveError } from "../errors.js";
import { fastResponseParts, UwsResponse } from "./response.js";
import { NativeResponse } from "./_globals.js";
import { StaticRoute } from "./static-route.js";

/** Methods a per-method route object may define (Bun's list). */
export const ROUTE_METHODS = ["GET", "HEAD", "OPTIONS", "DELETE", "PATCH", "POST", "PUT"] as const;
export type RouteMethod = (typeof ROUTE_METHODS)[number];

export type RouteHandler = (request: Request, server: unknown) => unknown;

/** What a route (or one method of it) does. */
export type RouteTarget =
  | { kind: "handler"; handler: RouteHandler }
  | { kind: "static"; route: StaticRoute; response: Response };

/** One compiled route. */
export interface Route {
  /** The key as the user wrote it. */
  pattern: string;
  /** The pattern with parameter names removed ("/users/:"): what the uWS router sees. */
  shape: string;
  /** Parameter names in order (uWS hands values out by position). */
  paramNames: string[];
  /** A target for every method, or null when the route has per-method targets. */
  all: RouteTarget | null;
  methods: Map<string, RouteTarget> | null;
  /** The Allow header for a 405: the defined methods, HEAD included when GET is. */
  allow: string;
}

export interface RouteTable {
  /** By shape: two patterns of one shape are the same route to the uWS router. */
  byShape: Map<string, Route>;
  tree: MatchNode;
}

interface MatchNode {
  statics: Map<string, MatchNode>;
  param: MatchNode | null;
  /** A `prefix/*` route hanging off this node. */
  wildcard: Route | null;
  route: Route | null;
}

function badRoute(key: string, problem: string): TypeError {
  return uwserveError(TypeError, "UWSERVE_ERR_BAD_ROUTE", `uwserve: route ${JSON.stringify(key)}: ${problem}`);
}

const PARAM_NAME = /^[A-Za-z_$][\w$]*$/;

/** Checks one pattern and returns its uWS shape and parameter names. */
function compilePattern(key: string): { shape: string; paramNames: string[] } {
  if (!key.startsWith("/")) throw badRoute(key, 'a pattern must start with "/"');
  if (/[^\x21-\x7e]/.test(key)) {
    throw badRoute(key, "a pattern may hold only visible ASCII: percent-encode other characters (as Bun requires)");
  }
  if (key.includes("?") || key.includes("#")) throw badRoute(key, "a pattern matches a path: no query or fragment");
  const segments = key.split("/").slice(1);
  const paramNames: string[] = [];
  const shape: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment.includes("*")) {
      if (segment !== "*" || i !== segments.length - 1) throw badRoute(key, '"*" may only stand alone as the last segment');
      shape.push("*");
    } else if (segment.startsWith(":")) {
      const name = segment.slice(1);
      if (name === "") throw badRoute(key, 'a parameter needs a name (":id")');
      if (!PARAM_NAME.test(name)) throw badRoute(key, `parameter name ${JSON.stringify(name)} must be an identifier (letters, digits, _ or $, not starting with a digit)`);
      if (paramNames.includes(name)) throw badRoute(key, `parameter ":${name}" appears twice`);
      paramNames.push(name);
      shape.push(":");
    } else {
      if (segment.includes(":")) throw badRoute(key, 'a ":" may only start a parameter segment');
      shape.push(segment);
    }
  }
  return { shape: "/" + shape.join("/"), paramNames };
}

function isResponse(value: unknown): value is Response {
  return value instanceof NativeResponse || (typeof value === "object" && value !== null && fastResponseParts(value) !== undefined);
}

function compileTarget(key: string, value: unknown, where: string): RouteTarget {
  if (typeof value === "function") return { kind: "handler", handler: value as RouteHandler };
  // A file() or any Blob stands for `new Response(blob)` (Bun's file routes): served as static.
  if (value instanceof Blob) value = new UwsResponse(value);
  if (isResponse(value)) {
    try {
      return { kind: "static", route: new StaticRoute(value), response: value };
    } catch (err) {
      throw badRoute(key, err instanceof Error ? err.message : String(err));
    }
  }
  throw badRoute(key, `${where} must be a Response, a handler function or (for a route) an object of methods, not ${describe(value)}`);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/** Compiles a `routes` table. `false` (and undefined) values are skipped, as in Bun. */
export function compileRoutes(routes: unknown, optionName = "routes"): RouteTable {
  if (typeof routes !== "object" || routes === null || Array.isArray(routes)) {
    throw uwserveError(TypeError, "UWSERVE_ERR_BAD_ROUTE", `uwserve: option "${optionName}" must be an object of path → Response | handler | { GET, POST, … }`);
  }
  const byShape = new Map<string, Route>();
  const tree = newNode();
  for (const key of Object.keys(routes)) {
    const value = (routes as Record<string, unknown>)[key];
    if (value === false || value === undefined) continue;
    const { shape, paramNames } = compilePattern(key);
    let all: RouteTarget | null = null;
    let methods: Map<string, RouteTarget> | null = null;
    if (typeof value === "object" && value !== null && !isResponse(value) && !(value instanceof Blob) && !Array.isArray(value)) {
      methods = new Map();
      for (const method of Object.keys(value)) {
        if (!(ROUTE_METHODS as readonly string[]).includes(method)) {
          throw badRoute(key, `unknown method key ${JSON.stringify(method)} (expected one of ${ROUTE_METHODS.join(", ")})`);
        }
        const target = (value as Record<string, unknown>)[method];
        if (target === false || target === undefined) continue;
        methods.set(method, compileTarget(key, target, `method ${method}`));
      }
    } else {
      all = compileTarget(key, value, "the value");
    }
    const existing = byShape.get(shape);
    if (existing !== undefined) {
      throw badRoute(key, `it matches the same paths as ${JSON.stringify(existing.pattern)} (only parameter names differ)`);
    }
    const allow = methods === null ? "" : allowHeader(methods);
    const route: Route = { pattern: key, shape, paramNames, all, methods, allow };
    byShape.set(shape, route);
    insert(tree, shape, route);
  }
  return { byShape, tree };
}

function allowHeader(methods: Map<string, RouteTarget>): string {
  const list = ROUTE_METHODS.filter((m) => methods.has(m) || (m === "HEAD" && methods.has("GET")));
  return list.join(", ");
}

function newNode(): MatchNode {
  return { statics: new Map(), param: null, wildcard: null, route: null };
}

function insert(root: MatchNode, shape: string, route: Route): void {
  const segments = shape.split("/").slice(1);
  let node = root;
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment === "*") {
      node.wildcard = route;
      return;
    }
    if (segment === ":") {
      node = node.param ??= newNode();
    } else {
      let next = node.statics.get(segment);
      if (next === undefined) node.statics.set(segment, (next = newNode()));
      node = next;
    }
  }
  node.route = route;
}

/**
 * A JS match with the uWS router's precedence (static, then parameter, then wildcard per
 * segment); `params` come back named and decoded, as `req.params` wants them.
 */
export function matchRoute(table: RouteTable, pathname: string): { route: Route; params: Record<string, string> } | null {
  const segments = pathname.split("/").slice(1);
  const raw: string[] = [];
  const route = matchFrom(table.tree, segments, 0, raw);
  if (route === null) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < route.paramNames.length; i++) params[route.paramNames[i]!] = decodeParam(raw[i] ?? "");
  return { route, params };
}

function matchFrom(node: MatchNode, segments: string[], index: number, params: string[]): Route | null {
  if (index === segments.length) {
    if (node.route !== null) return node.route;
    return null;
  }
  const segment = segments[index]!;
  const next = node.statics.get(segment);
  if (next !== undefined) {
    const found = matchFrom(next, segments, index + 1, params);
    if (found !== null) return found;
  }
  // The uWS router never matches an empty segment to a parameter (H14).
  if (node.param !== null && segment !== "") {
    params.push(segment);
    const found = matchFrom(node.param, segments, index + 1, params);
    if (found !== null) return found;
    params.pop();
  }
  if (node.wildcard !== null) return node.wildcard;
  return null;
}

/**
 * Percent-decodes a parameter value: UTF-8 sequences decode to their characters, invalid
 * UTF-8 becomes U+FFFD, and a "%" not followed by two hex digits stays as it is. Never throws.
 */
export function decodeParam(raw: string): string {
  if (raw.indexOf("%") === -1) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    const bytes: number[] = [];
    for (let i = 0; i < raw.length; i++) {
      const c = raw.charCodeAt(i);
      if (c === 37 /* % */ && i + 2 < raw.length && isHex(raw.charCodeAt(i + 1)) && isHex(raw.charCodeAt(i + 2))) {
        bytes.push(parseInt(raw.slice(i + 1, i + 3), 16));
        i += 2;
      } else {
        for (const b of Buffer.from(raw[i]!, "utf8")) bytes.push(b);
      }
    }
    return Buffer.from(bytes).toString("utf8");
  }
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

/** True when the uWS router would see a different path than `new URL()` normalises to. */
export function needsNormalizing(path: string): boolean {
  return path.indexOf("/.") !== -1 || (path.indexOf("%2") !== -1 && /%2e/i.test(path)) || path.indexOf("\\") !== -1;
}

/** The pathname `new URL(req.url).pathname` shows for a raw request path. */
export function normalizePath(path: string): string {
  try {
    return new URL(path.startsWith("/") ? path : "/" + path, "http://x").pathname;
  } catch {
    return path;
  }
}
