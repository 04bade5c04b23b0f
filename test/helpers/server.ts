/** Shared test helpers: start a uwserve server on a free port and always stop it. */
import net from "node:net";
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
