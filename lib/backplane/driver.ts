/**
 * What the broker drivers (uwserve/redis, uwserve/nats) share: the descriptor `serve()` takes
 * as `backplane` (lazy: nothing connects until a server starts with it), their common
 * options, and the helpers that keep credentials out of every message.
 */
import { invalidOption, optionOutOfRange } from "../errors.js";
import type { BrokerLink, LinkEvents } from "./broker.js";

const DRIVER = Symbol.for("uwserve.backplane.driver");

/** Options every driver takes. */
export interface BackplaneCommonOptions {
  /** Namespaces one application's channels on a shared broker ("uwserve" by default). */
  prefix?: string;
  /** Publishes the broker has not acknowledged yet, at most; beyond, messages are dropped and counted (10,000). */
  maxPending?: number;
  /** The same bound in bytes (32 MiB). */
  maxPendingBytes?: number;
  /** Largest message sent, bytes; larger ones are dropped and counted (default: the broker's own limit). */
  maxMessageBytes?: number;
  /**
   * Called once per outage (unreachable at start, connection lost), with a coded error
   * (`UWSERVE_ERR_BACKPLANE`) whose message never holds credentials. Without it, uwserve
   * prints one line per outage and one when the broker is back.
   */
  onError?: (error: Error) => void;
}

export interface ResolvedCommonOptions {
  prefix: string;
  maxPending: number;
  maxPendingBytes: number;
  maxMessageBytes: number | null;
  onError: ((error: Error) => void) | null;
}

/** A broker the server connects to when it starts: `serve({ backplane })`. */
export interface BackplaneDriver {
  /** "redis" or "nats". */
  readonly kind: string;
  /** Where it connects, without credentials ("redis://cache:6379"). */
  readonly where: string;
  /** @internal Connects; messages and state changes go to `events`. */
  open(events: LinkEvents): BrokerLink;
  /** @internal The resolved common options. */
  readonly common: ResolvedCommonOptions;
}

/** Brands a driver so that serve() can tell it from any other object. */
export function makeDriver(driver: BackplaneDriver): BackplaneDriver {
  Object.defineProperty(driver, DRIVER, { value: true });
  return driver;
}

export function isBackplaneDriver(value: unknown): value is BackplaneDriver {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[DRIVER] === true;
}

export function resolveCommonOptions(options: BackplaneCommonOptions, fn: string): ResolvedCommonOptions {
  const prefix = options.prefix ?? "uwserve";
  if (typeof prefix !== "string") throw invalidOption(`${fn}: prefix`, "a string", prefix);
  return {
    prefix,
    maxPending: count(options.maxPending, 10_000, `${fn}: maxPending`),
    maxPendingBytes: count(options.maxPendingBytes, 32 * 1024 * 1024, `${fn}: maxPendingBytes`),
    maxMessageBytes: options.maxMessageBytes === undefined ? null : count(options.maxMessageBytes, 0, `${fn}: maxMessageBytes`),
    onError: optionalFunction(options.onError, `${fn}: onError`),
  };
}

function count(value: unknown, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number") throw invalidOption(name, "a number", value);
  if (!Number.isInteger(value) || value < 1) throw optionOutOfRange(name, "a positive integer", value);
  return value;
}

function optionalFunction<T>(value: unknown, name: string): T | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "function") throw invalidOption(name, "a function", value);
  return value as T;
}

/** Reconnect delays: exponential from 50 ms to 2 s, each with ±50 % jitter. */
export function reconnectDelay(attempt: number): number {
  const base = Math.min(50 * 2 ** Math.min(attempt, 10), 2000);
  return Math.round(base * (0.5 + Math.random()));
}

/** A broker URL without its user and password (for messages and `where`). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = "";
    parsed.password = "";
    parsed.search = "";
    return parsed.href.replace(/\/$/, "");
  } catch {
    return "(an unparsable URL)";
  }
}

/** `text` with every secret replaced (a driver's error text may echo what it was given). */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret.length >= 3) out = out.split(secret).join("***");
  return out;
}
