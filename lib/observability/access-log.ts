/**
 * The access log: one line per request, in the common log format (extended with the route and
 * the duration) or as JSON lines. Lines are gathered in memory and written once per turn of
 * the event loop (or at 64 KiB), never one write per request.
 */
import { writeSync } from "node:fs";
import { isMainThread } from "node:worker_threads";
import { invalidOption } from "../errors.js";

export type AccessLogFormat = "common" | "json";

/** The `accessLog` option: `true` (common format on stdout), a format, or where to write. */
export type AccessLogOption = boolean | AccessLogFormat | { format?: AccessLogFormat; write?: (lines: string) => void };

export interface AccessLogEntry {
  remote: string;
  method: string;
  path: string;
  query: string;
  protocol: string;
  status: number;
  bytes: number;
  route: string | null;
  /** Milliseconds. */
  duration: number;
  userAgent: string | undefined;
}

const FLUSH_BYTES = 64 * 1024;
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

export interface ResolvedAccessLog {
  format: AccessLogFormat;
  /** null: stdout. */
  write: ((lines: string) => void) | null;
}

/** The resolved option, or null when off. */
export function resolveAccessLog(option: unknown): ResolvedAccessLog | null {
  if (option === undefined || option === false) return null;
  if (option === true) return { format: "common", write: null };
  if (option === "common" || option === "json") return { format: option, write: null };
  if (typeof option === "object" && option !== null) {
    const { format = "common", write } = option as { format?: unknown; write?: unknown };
    if (format !== "common" && format !== "json") throw invalidOption("accessLog.format", '"common" or "json"', format);
    if (write !== undefined && typeof write !== "function") throw invalidOption("accessLog.write", "a function", write);
    return { format, write: (write as (lines: string) => void | undefined) ?? null };
  }
  throw invalidOption("accessLog", 'a boolean, "common", "json" or { format, write }', option);
}

function pad2(n: number): string {
  return n < 10 ? "0" + n : String(n);
}

/** `[04/Dec/2026:16:20:00 +0000]` for the current second, computed once per second. */
let stampSecond = -1;
let stamp = "";
function clfTime(now: number): string {
  const second = Math.floor(now / 1000);
  if (second !== stampSecond) {
    const d = new Date(second * 1000);
    stamp = `[${pad2(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} +0000]`;
    stampSecond = second;
  }
  return stamp;
}

/** A quoted CLF field: quotes, backslashes and control characters escaped. */
function quoted(value: string): string {
  return `"${value.replace(/[\\"\x00-\x1f\x7f]/g, (c) => (c === '"' || c === "\\" ? "\\" + c : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`))}"`;
}

export function formatCommon(e: AccessLogEntry, now: number): string {
  const target = e.query === "" ? e.path : `${e.path}?${e.query}`;
  return `${e.remote || "-"} - - ${clfTime(now)} ${quoted(`${e.method} ${target} HTTP/${e.protocol}`)} ${e.status === 0 ? "-" : e.status} ${e.bytes} ${quoted(e.route ?? "-")} ${e.duration.toFixed(3)}\n`;
}

export function formatJson(e: AccessLogEntry, now: number): string {
  return (
    JSON.stringify({
      time: new Date(now).toISOString(),
      remote: e.remote,
      method: e.method,
      path: e.path,
      query: e.query === "" ? undefined : e.query,
      protocol: `HTTP/${e.protocol}`,
      status: e.status,
      bytes: e.bytes,
      route: e.route,
      duration_ms: Math.round(e.duration * 1000) / 1000,
      user_agent: e.userAgent,
    }) + "\n"
  );
}

/** Where lines go when the option names no `write`: stdout (synchronously at exit on the main thread). */
function writeStdout(lines: string): void {
  process.stdout.write(lines);
}

export class AccessLog {
  readonly #format: (entry: AccessLogEntry, now: number) => string;
  readonly #write: (lines: string) => void;
  #buffer: string;
  #scheduled: boolean;
  readonly #flushAtExit: (() => void) | null;

  constructor(resolved: ResolvedAccessLog) {
    this.#format = resolved.format === "json" ? formatJson : formatCommon;
    this.#write = resolved.write ?? writeStdout;
    this.#buffer = "";
    this.#scheduled = false;
    // What is still gathered when the process exits goes out synchronously (stdout only: a
    // worker's stdout is a stream to the main thread, which the exit doesn't wait for).
    this.#flushAtExit =
      resolved.write === null && isMainThread
        ? () => {
            if (this.#buffer !== "") writeSync(1, this.#buffer);
            this.#buffer = "";
          }
        : null;
    if (this.#flushAtExit !== null) process.once("exit", this.#flushAtExit);
  }

  add(entry: AccessLogEntry): void {
    this.#buffer += this.#format(entry, Date.now());
    if (this.#buffer.length >= FLUSH_BYTES) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.flush()).unref();
    }
  }

  flush(): void {
    this.#scheduled = false;
    const lines = this.#buffer;
    if (lines === "") return;
    this.#buffer = "";
    try {
      this.#write(lines);
    } catch (err) {
      console.error("uwserve: the access log's write failed:", err);
    }
  }

  /** The server stopped: write what is left, and stop listening for the exit. */
  close(): void {
    this.flush();
    if (this.#flushAtExit !== null) process.off("exit", this.#flushAtExit);
  }
}
