/** Shared test helpers: start a uwserve server on a free port and always stop it. */
import net from "node:net";
import { afterEach, vi } from "vitest";
import { serve, type Server } from "../../dist/index.js";

export type ServeArg = Parameters<typeof serve>[0];

/** Starts a Bun-style server on 127.0.0.1 and a free port. */
export function start(options: Record<string, unknown>): Server {
  return serve({ port: 0, hostname: "127.0.0.1", ...options } as never);
}

/** Rejects if `promise` doesn't settle within `ms`, naming what was awaited. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * Sends raw bytes on a fresh TCP connection and collects everything the server sends until it
 * closes the connection or `idleMs` pass without data.
 */
export function rawRequest(port: number, payload: string | Buffer | Array<string | Buffer>, idleMs = 300): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    let out = "";
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(out);
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(finish, idleMs);
    };
    socket.on("connect", async () => {
      const parts = Array.isArray(payload) ? payload : [payload];
      for (const part of parts) socket.write(part);
      arm();
    });
    socket.setEncoding("latin1");
    socket.on("data", (d) => {
      out += d;
      arm();
    });
    socket.on("error", (e) => (out ? finish() : reject(e)));
    socket.on("close", finish);
  });
}

/** Waits until `predicate()` is true, polling every 10 ms, failing after `ms`. */
export async function waitFor(predicate: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** What one raw TCP exchange produced. */
export interface RawExchange {
  /** Everything the server sent, decoded as latin1 (one char per byte). */
  data: string;
  /** The server ended or reset the connection (as opposed to it idling past `idleMs`). */
  closed: boolean;
  /** The socket error code, e.g. "ECONNRESET", or null. */
  error: string | null;
}

/**
 * Like rawRequest(), but says whether the server closed the connection. `parts` are written in
 * order, `gapMs` apart (strings as latin1: one byte per character); `end` half-closes the client side after the last part. Settles when the
 * server closes, after `idleMs` without data, or at `deadlineMs` at the latest.
 */
export function rawExchange(
  port: number,
  parts: string | Buffer | Array<string | Buffer>,
  options: { idleMs?: number; gapMs?: number; end?: boolean; deadlineMs?: number } = {},
): Promise<RawExchange> {
  const { idleMs = 300, gapMs = 0, end = false, deadlineMs = 10_000 } = options;
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.setNoDelay(true);
    let data = "";
    let done = false;
    let writing = true;
    let idle: NodeJS.Timeout | undefined;
    const finish = (closed: boolean, error: string | null) => {
      if (done) return;
      done = true;
      clearTimeout(idle);
      clearTimeout(deadline);
      socket.destroy();
      resolve({ data, closed, error });
    };
    const deadline = setTimeout(() => finish(false, null), deadlineMs);
    const arm = () => {
      clearTimeout(idle);
      if (!writing) idle = setTimeout(() => finish(false, null), idleMs);
    };
    socket.on("connect", async () => {
      const list = Array.isArray(parts) ? parts : [parts];
      for (let i = 0; i < list.length && !done; i++) {
        if (i > 0 && gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
        const part = list[i]!;
        if (!done) socket.write(typeof part === "string" ? Buffer.from(part, "latin1") : part);
      }
      if (end && !done) socket.end();
      writing = false;
      arm();
    });
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      data += d;
      arm();
    });
    socket.on("end", () => finish(true, null));
    socket.on("error", (e: NodeJS.ErrnoException) => finish(true, e.code ?? e.message));
    socket.on("close", () => finish(true, null));
  });
}

/** One response parsed out of a raw byte stream. */
export interface ParsedResponse {
  status: number;
  statusText: string;
  /** Lower-case names; repeated names keep every value. */
  headers: Array<[string, string]>;
  header(name: string): string | undefined;
  body: string;
}

/**
 * Splits what a server sent on one connection into responses, framing bodies by Content-Length
 * or chunked encoding. `noBody` lists 0-based indices of responses to HEAD requests. Stops at
 * the first incomplete response; `rest` is what could not be parsed.
 */
export function parseResponses(data: string, noBody: ReadonlySet<number> = new Set()): { responses: ParsedResponse[]; rest: string } {
  const responses: ParsedResponse[] = [];
  let pos = 0;
  for (;;) {
    const headEnd = data.indexOf("\r\n\r\n", pos);
    if (headEnd < 0) break;
    const lines = data.slice(pos, headEnd).split("\r\n");
    const match = /^HTTP\/1\.1 (\d{3}) ?(.*)$/.exec(lines[0]!);
    if (match === null) break;
    const headers: Array<[string, string]> = lines.slice(1).map((line) => {
      const colon = line.indexOf(":");
      return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
    });
    const header = (name: string) => headers.find(([n]) => n === name)?.[1];
    const status = Number(match[1]);
    let cursor = headEnd + 4;
    let body = "";
    if (noBody.has(responses.length) || status === 204 || status === 304) {
      // No body.
    } else if (header("transfer-encoding")?.includes("chunked")) {
      let complete = false;
      for (;;) {
        const lineEnd = data.indexOf("\r\n", cursor);
        if (lineEnd < 0) break;
        const size = parseInt(data.slice(cursor, lineEnd), 16);
        if (Number.isNaN(size)) break;
        if (data.length < lineEnd + 2 + size + 2) break;
        body += data.slice(lineEnd + 2, lineEnd + 2 + size);
        cursor = lineEnd + 2 + size + 2;
        if (size === 0) {
          complete = true;
          break;
        }
      }
      if (!complete) break;
    } else {
      const length = Number(header("content-length") ?? 0);
      if (data.length < cursor + length) break;
      body = data.slice(cursor, cursor + length);
      cursor += length;
    }
    responses.push({ status, statusText: match[2]!, headers, header, body });
    pos = cursor;
  }
  return { responses, rest: data.slice(pos) };
}

/**
 * Registers an afterEach that force-stops every server handed to the returned `track` (and
 * restores mocks), so no test leaves a server listening whatever happened in it.
 */
export function trackServers(): (server: Server) => Server {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => withTimeout(s.stop(true), 5000, "server stop")));
    vi.restoreAllMocks();
  });
  return (server) => {
    servers.push(server);
    return server;
  };
}

/** fetch() of `path` on a server at 127.0.0.1, with a deadline. */
export function fetchFrom(server: Server, path = "/", init?: RequestInit): Promise<Response> {
  return withTimeout(fetch(`http://127.0.0.1:${server.port}${path}`, init), 5000, `fetch ${path}`);
}

/** The error `fn` throws (with its uwserve `code`); fails the test when it doesn't throw. */
export function thrown(fn: () => unknown): Error & { code?: string } {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error("expected a throw");
}
