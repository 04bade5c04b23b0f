/** Client-side test helpers: free ports, exact-header node:http requests, child node processes. */
import { spawn } from "node:child_process";
import http from "node:http";
import net from "node:net";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** `file:` URL of the built entry point, for child processes. */
export const DIST_INDEX_URL = pathToFileURL(join(ROOT, "dist", "index.js")).href;
export const DIST_GLOBAL_URL = pathToFileURL(join(ROOT, "dist", "global.js")).href;
export const NATIVE_ADDON = join(ROOT, "build", "Release", "uwserve_native.node");

/** A TCP port that was free a moment ago on 0.0.0.0 (bound, read, released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "0.0.0.0", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** True when nothing listens on `port` (both on 0.0.0.0 and loopback). */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "0.0.0.0", () => server.close(() => resolve(true)));
  });
}

/** True when a TCP connection to 127.0.0.1:`port` is refused (or fails) within `ms`. */
export function connectionRefused(port: number, ms = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, ms);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

export interface RawResponse {
  status: number;
  statusMessage: string;
  /** node:http's parsed headers (repeated Set-Cookie as an array). */
  headers: http.IncomingHttpHeaders;
  /** Flat [name, value, …] exactly as received, case and repetitions kept. */
  rawHeaders: string[];
  body: Buffer;
}

export interface HttpOptions {
  method?: string;
  path?: string;
  headers?: Record<string, string | string[]>;
  body?: string | Buffer;
  host?: string;
  /** Deadline for the whole exchange (default 5 s). */
  timeoutMs?: number;
}

/** One request over a fresh connection (agent: false) with node:http, when exact headers matter. */
export function httpRequest(port: number, options: HttpOptions = {}): Promise<RawResponse> {
  const { method = "GET", path = "/", headers = {}, body, host = "127.0.0.1", timeoutMs = 5000 } = options;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      req.destroy(new Error(`timed out after ${timeoutMs} ms waiting for ${method} ${path}`));
    }, timeoutMs);
    const req = http.request({ host, port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        clearTimeout(timer);
        resolve({
          status: res.statusCode!,
          statusMessage: res.statusMessage ?? "",
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: Buffer.concat(chunks),
        });
      });
      res.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    req.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

/** Names in a raw header list, lower-cased, in order. */
export function headerNames(rawHeaders: string[]): string[] {
  const names: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) names.push(rawHeaders[i]!.toLowerCase());
  return names;
}

export interface ChildResult {
  /** Exit code, or the signal name, or null when it was killed at the deadline. */
  code: number | string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Runs `source` as an ES module in a child `node --input-type=module -e`, from the repo root,
 * and resolves when it exits or `ms` pass (then it is killed and `timedOut` is true).
 */
export function runNode(source: string, options: { ms?: number; env?: Record<string, string | undefined> } = {}): Promise<ChildResult> {
  const { ms = 10_000, env = {} } = options;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", source], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, ms);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: timedOut ? null : (code ?? signal ?? null), stdout, stderr, timedOut });
    });
  });
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A raw TCP connection kept open across requests: `request()` writes bytes and resolves with
 * the next complete response (Content-Length or chunked framing), `closed` settles when the
 * server (or anyone) closes it.
 */
export class RawConnection {
  readonly socket: net.Socket;
  readonly closed: Promise<void>;
  #buffer = "";
  #wake: (() => void) | null = null;
  #isClosed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      this.#buffer += d;
      this.#wake?.();
    });
    socket.on("error", () => {});
    this.closed = new Promise((resolve) =>
      socket.on("close", () => {
        this.#isClosed = true;
        this.#wake?.();
        resolve();
      }),
    );
  }

  static open(port: number, ms = 5000): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1");
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`timed out after ${ms} ms connecting to ${port}`));
      }, ms);
      socket.once("connect", () => {
        clearTimeout(timer);
        resolve(new RawConnection(socket));
      });
      socket.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Writes `payload` and resolves with the next whole response (head + body), as latin1 text. */
  async request(payload: string, ms = 5000): Promise<string> {
    this.socket.write(payload);
    return this.readResponse(ms);
  }

  /** Resolves with the next whole response already or soon in the buffer. */
  async readResponse(ms = 5000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const length = completeResponseLength(this.#buffer);
      if (length > 0) {
        const response = this.#buffer.slice(0, length);
        this.#buffer = this.#buffer.slice(length);
        return response;
      }
      if (this.#isClosed) throw new Error(`connection closed before a whole response; got ${JSON.stringify(this.#buffer)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for a response; got ${JSON.stringify(this.#buffer)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          this.#wake = null;
          resolve();
        };
      });
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Length of the first complete HTTP response in `text`, or 0 if it is not complete yet. */
function completeResponseLength(text: string): number {
  const headEnd = text.indexOf("\r\n\r\n");
  if (headEnd < 0) return 0;
  const head = text.slice(0, headEnd).toLowerCase();
  const bodyStart = headEnd + 4;
  const status = Number(/^http\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
  if (status === 204 || status === 304 || (status >= 100 && status < 200)) return bodyStart;
  const length = /\r\ncontent-length: *(\d+)/.exec(head);
  if (length) {
    const end = bodyStart + Number(length[1]);
    return text.length >= end ? end : 0;
  }
  if (/\r\ntransfer-encoding: *chunked/.test(head)) {
    const end = text.indexOf("\r\n0\r\n\r\n", bodyStart - 2);
    return end >= 0 ? end + 7 : 0;
  }
  return 0;
}
