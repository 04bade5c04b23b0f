/**
 * Bun's server.closeIdleConnections(): keep-alive connections waiting for their next request
 * are closed at once and counted; one with a request in flight is not. The node engine has it;
 * the uWS core gives JavaScript no handle on a connection between requests.
 */
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Response, type Server } from "../dist/index.js";
import { ON_NODE_ENGINE } from "./helpers/core.js";
import { start, waitFor, withTimeout } from "./helpers/server.js";

let server: Server | null = null;
afterEach(async () => {
  await server?.stop(true);
  server = null;
});

/** A keep-alive connection that sent one request; resolves once the response arrived. */
function connection(port: number, path: string, waitForResponse: boolean): Promise<{ socket: net.Socket; closed: Promise<void>; data: () => string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    let data = "";
    socket.setEncoding("latin1");
    const closed = new Promise<void>((r) => socket.on("close", () => r()));
    socket.on("error", () => {});
    socket.on("data", (d: string) => {
      data += d;
      if (waitForResponse && /\r\n\r\n[\s\S]*ok$/.test(data)) resolve({ socket, closed, data: () => data });
    });
    socket.once("connect", () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
      if (!waitForResponse) resolve({ socket, closed, data: () => data });
    });
    socket.once("error", reject);
  });
}

describe.runIf(ON_NODE_ENGINE)("closeIdleConnections() on the node engine", () => {
  it("closes the idle keep-alive connections, returns how many, and leaves a request in flight alone", async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((r) => (release = r));
    server = start({
      async fetch(req: Request) {
        if (new URL(req.url).pathname === "/slow") await held;
        return new Response("ok");
      },
    });
    const idle = await Promise.all([1, 2, 3].map(() => connection(server!.port, "/", true)));
    const busy = await connection(server.port, "/slow", false);
    await waitFor(() => server!.pendingRequests === 1, 2000, "the slow request to be in flight");

    expect(server.closeIdleConnections()).toBe(3);
    await withTimeout(Promise.all(idle.map((c) => c.closed)), 2000, "the idle connections to close");
    // The busy one is still open and gets its answer.
    release();
    await waitFor(() => /ok$/.test(busy.data()), 2000, "the slow response");
    expect(busy.socket.destroyed).toBe(false);
    // Nothing idle is left but the one that just answered.
    expect(server.closeIdleConnections()).toBe(1);
    await withTimeout(busy.closed, 2000, "the last connection to close");
    expect(server.closeIdleConnections()).toBe(0);
  });
});

describe.runIf(!ON_NODE_ENGINE)("closeIdleConnections() on the uws engine", () => {
  it("is a coded error that names the engine", () => {
    server = start({ fetch: () => new Response("ok") });
    expect(() => server!.closeIdleConnections()).toThrow(expect.objectContaining({ code: "UWSERVE_ERR_ENGINE_UNSUPPORTED", message: expect.stringContaining("node engine") }));
  });
});
