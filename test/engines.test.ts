// The engine seam: serve({ engine }), UWSERVE_ENGINE, the CLI's --engine, what "auto" picks
// and says, and what the node engine serves that the uWS core can't (the client's port,
// HTTP/1.0 keep-alive, idleTimeout between requests).
import { execFile, spawnSync } from "node:child_process";
import { connect } from "node:net";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { serve, type Server } from "../dist/index.js";
import { coreUnavailable } from "../dist/engines/uws/uws.js";
import { parseResponses, rawExchange, thrown, trackServers } from "./helpers/server.js";
import { NODE_SHARES_PORTS } from "./helpers/core.js";
import { connectWs } from "./helpers/ws.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CORE_LOADS = coreUnavailable() === null;
const track = trackServers();
const fetchOk = (): Response => new Response("ok");

/** Runs `code` (an ES module importing uwserve) in a fresh Node with `env`; resolves its output. */
async function runNode(code: string, env: Record<string, string | undefined> = {}): Promise<{ stdout: string; stderr: string; code: number }> {
  const result = spawnSync(process.execPath, ["--input-type=module", "-e", code], {
    cwd: ROOT,
    env: { ...process.env, UWSERVE_ENGINE: undefined, ...env },
    encoding: "utf8",
    timeout: 20_000,
  });
  return { stdout: result.stdout, stderr: result.stderr, code: result.status ?? -1 };
}

describe("choosing the engine", () => {
  it('engine: "node" serves with node:http, and server.engine says so', async () => {
    const server = track(serve({ port: 0, hostname: "127.0.0.1", engine: "node", fetch: (req) => new Response(`node ${new URL(req.url).pathname}`) }));
    expect(server.engine).toBe("node");
    const res = await fetch(`http://127.0.0.1:${server.port}/x`);
    expect(await res.text()).toBe("node /x");
  });

  it.runIf(CORE_LOADS)('"uws" and "auto" take the uWS core where it loads', () => {
    expect(track(serve({ port: 0, engine: "uws", fetch: fetchOk })).engine).toBe("uws");
    expect(track(serve({ port: 0, engine: "auto", fetch: fetchOk })).engine).toBe("uws");
  });

  it.runIf(!CORE_LOADS)('"uws" where the core can\'t load throws UWSERVE_ERR_UWS_UNAVAILABLE with the loader\'s explanation', () => {
    const err = thrown(() => serve({ port: 0, engine: "uws", fetch: fetchOk }));
    expect(err.code).toBe("UWSERVE_ERR_UWS_UNAVAILABLE");
    expect(err.message).toContain("could not be loaded");
  });

  it("auto says which engine it picked, and why, once per process (nothing where the core loads)", async () => {
    const out = await runNode(
      `import { serve } from "./dist/index.js";
       const a = serve({ port: 0, fetch: () => new Response("a") });
       const b = serve({ port: 0, fetch: () => new Response("b") });
       console.log(a.engine, b.engine);
       await a.stop(true); await b.stop(true);`,
    );
    expect(out.code).toBe(0);
    if (CORE_LOADS) {
      expect(out.stdout.trim()).toBe("uws uws");
      expect(out.stderr).not.toContain("node engine");
      return;
    }
    expect(out.stdout.trim()).toBe("node node");
    const lines = out.stderr.split("\n").filter((line) => line.includes("serving with the node engine"));
    expect(lines).toHaveLength(1);
    // The reason (a glibc too old, or no binary for this Node) and how to get the fast path.
    expect(lines[0]).toMatch(/glibc|no binary/);
    expect(lines[0]).toContain("for the uWS fast path");
  });

  it("UWSERVE_ENGINE sets the default for the whole process; serve({ engine }) wins over it", async () => {
    const out = await runNode(
      `import { serve } from "./dist/index.js";
       const a = serve({ port: 0, fetch: () => new Response("a") });
       ${CORE_LOADS ? 'const b = serve({ port: 0, engine: "uws", fetch: () => new Response("b") });' : "const b = a;"}
       console.log(a.engine, b.engine);
       await a.stop(true); await b.stop(true);`,
      { UWSERVE_ENGINE: "node" },
    );
    expect(out.stderr).toBe("");
    expect(out.stdout.trim()).toBe(CORE_LOADS ? "node uws" : "node node");
  });

  it("idleTimeout other than 10 warns once on the uws engine (it covers uploads only there), never on the node engine", async () => {
    const code = (engine: string) =>
      `import { serve } from "./dist/index.js";
       const a = serve({ port: 0, engine: "${engine}", idleTimeout: 5, fetch: () => new Response("a") });
       const b = serve({ port: 0, engine: "${engine}", idleTimeout: 7, fetch: () => new Response("b") });
       await a.stop(true); await b.stop(true);`;
    const node = await runNode(code("node"));
    expect(node.stderr).not.toContain("UWSERVE_IDLE_TIMEOUT_PARTIAL");
    if (!CORE_LOADS) return;
    const uws = await runNode(code("uws"));
    expect(uws.stderr.match(/UWSERVE_IDLE_TIMEOUT_PARTIAL/g)).toHaveLength(1);
  });

  it("a wrong engine is refused with a coded error, from the option and from UWSERVE_ENGINE", async () => {
    const err = thrown(() => serve({ port: 0, engine: "fast", fetch: fetchOk } as never));
    expect(err.code).toBe("UWSERVE_ERR_INVALID_OPTION");
    expect(err.message).toContain('"engine"');
    const out = await runNode(`import { serve } from "./dist/index.js"; try { serve({ port: 0, fetch: () => new Response("x") }); } catch (e) { console.log(e.code, e.message); }`, {
      UWSERVE_ENGINE: "turbo",
    });
    expect(out.stdout).toContain("UWSERVE_ERR_INVALID_OPTION");
    expect(out.stdout).toContain("UWSERVE_ENGINE");
  });

  it("engine: \"node\" serves WebSockets too (the same handlers, on `ws`)", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        engine: "node",
        fetch: (req, srv) => (srv.upgrade(req) ? undefined : fetchOk()),
        websocket: { message: (ws, msg) => void ws.send(`node: ${msg}`) },
      }),
    );
    expect(server.engine).toBe("node");
    const client = await connectWs(server);
    try {
      client.ws.send("hi");
      expect(await client.nextText()).toBe("node: hi");
    } finally {
      client.terminate();
    }
  });

  it("the CLI's --engine picks the engine and the listening line names it; a wrong value is a usage error", async () => {
    const entry = "test/fixtures/engine-entry.mjs";
    const child = execFile(process.execPath, ["dist/cli.js", "--engine", "node", "--port", "0", "--hostname", "127.0.0.1", entry], { cwd: ROOT });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = "";
        child.stdout!.on("data", (s: string) => {
          out += s;
          const match = /uwserve listening on \S+ \(\w+ engine\)/.exec(out);
          if (match) resolve(match[0]);
        });
        child.on("exit", (code) => reject(new Error(`exited ${code}: ${out}`)));
      });
      expect(line).toMatch(/\(node engine\)$/);
      const url = /on (\S+)/.exec(line)![1]!;
      expect(await (await fetch(url)).text()).toBe("engine node");
    } finally {
      child.kill("SIGKILL");
    }
    const bad = await promisify(execFile)(process.execPath, ["dist/cli.js", "--engine", "warp", entry], { cwd: ROOT }).catch((e: { code: number; stderr: string }) => e);
    expect((bad as { code: number }).code).toBe(1);
    expect((bad as { stderr: string }).stderr).toContain("--engine must be auto, uws or node");
  });
});

describe("workers on the node engine", () => {
  const sharesPorts = NODE_SHARES_PORTS;

  it.runIf(sharesPorts)("serve({ workers: 2, engine: \"node\" }): both threads serve the port, and stop() ends the process", async () => {
    const out = await promisify(execFile)(process.execPath, ["test/fixtures/node-engine-workers.mjs"], { cwd: ROOT, timeout: 20_000 });
    expect(JSON.parse(out.stdout.trim())).toEqual({ engine: "node", threads: ["thread 1", "thread 2"] });
  });

  it.runIf(!sharesPorts)("workers where node:net can't share a port are a coded error naming the Node version", () => {
    const err = thrown(() => serve({ port: 0, engine: "node", workers: 2, fetch: fetchOk }));
    expect(err.code).toBe("UWSERVE_ERR_ENGINE_UNSUPPORTED");
    expect(err.message).toContain("22.12");
  });
});

describe("what the node engine serves that the core can't", () => {
  let server: Server;
  afterEach(async () => {
    await server?.stop(true);
  });

  it("requestIP and Deno's remoteAddr carry the client's real port", async () => {
    server = serve({ port: 0, hostname: "127.0.0.1", engine: "node", fetch: (req, srv) => Response.json(srv.requestIP(req)) });
    const socket = connect(server.port, "127.0.0.1");
    await new Promise((resolve) => socket.once("connect", resolve));
    const localPort = socket.localPort!;
    socket.write("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const text = await new Promise<string>((resolve) => {
      let data = "";
      socket.setEncoding("utf8").on("data", (s: string) => (data += s)).on("close", () => resolve(data));
    });
    const body = JSON.parse(parseResponses(text).responses[0]!.body) as { address: string; port: number; family: string };
    expect(body).toEqual({ address: "127.0.0.1", family: "IPv4", port: localPort });
    await server.stop(true);

    server = serve({ port: 0, hostname: "127.0.0.1", engine: "node", handler: (_req, info) => Response.json(info.remoteAddr) });
    const deno = (await (await fetch(`http://127.0.0.1:${server.port}/`)).json()) as { transport: string; port: number };
    expect(deno.transport).toBe("tcp");
    expect(deno.port).toBeGreaterThan(0);
  });

  it("HTTP/1.0 with Connection: keep-alive keeps the connection for the next request", async () => {
    server = serve({ port: 0, hostname: "127.0.0.1", engine: "node", fetch: (req) => new Response(new URL(req.url).pathname) });
    const ask = (path: string) => `GET ${path} HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n`;
    const out = await rawExchange(server.port, [ask("/one"), ask("/two")], { gapMs: 100, idleMs: 300 });
    const { responses } = parseResponses(out.data);
    expect(responses.map((r) => r.body)).toEqual(["/one", "/two"]);
    expect(out.data).not.toMatch(/transfer-encoding/i);
    expect(out.closed).toBe(false);
  });

  it("idleTimeout closes a keep-alive connection idle between requests (the core's is fixed at 10 s)", async () => {
    server = serve({ port: 0, hostname: "127.0.0.1", engine: "node", idleTimeout: 1, fetch: fetchOk });
    const started = Date.now();
    const out = await rawExchange(server.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", { idleMs: 5000, deadlineMs: 5000 });
    expect(parseResponses(out.data).responses[0]?.status).toBe(200);
    expect(out.closed).toBe(true);
    const seconds = (Date.now() - started) / 1000;
    expect(seconds).toBeGreaterThan(0.8);
    expect(seconds).toBeLessThan(3);
  });
});
