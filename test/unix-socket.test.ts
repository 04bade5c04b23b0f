// Listening on unix domain sockets: `unix` (Bun) and `path` (Deno), checked with curl
// --unix-socket and node:http's socketPath; stale and live socket files; abstract names.
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it, vi } from "vitest";
import { serve, type Server } from "../dist/index.js";
import { thrown, trackServers, waitFor } from "./helpers/server.js";
import { ON_NODE_ENGINE } from "./helpers/core.js";

const track = trackServers();
const dir = mkdtempSync(join(tmpdir(), "uwserve-unix-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;
const socketPath = () => join(dir, `s${++counter}.sock`);

function httpOverSocket(path: string, urlPath = "/", method = "GET", body?: string): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: path, path: urlPath, method }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode!, body: text, headers: res.headers }));
    });
    req.on("error", reject);
    req.end(body);
  });
}


describe("unix: Bun style", () => {
  it("serves over the socket: node:http socketPath, a POST body, and curl --unix-socket", async () => {
    const path = socketPath();
    const server = track(
      serve({
        unix: path,
        async fetch(req) {
          const body = req.method === "POST" ? await req.text() : "";
          return new Response(`${req.method} ${new URL(req.url).pathname} ${body}`);
        },
      }),
    );
    expect(server.url.href).toBe(`unix://${path}`);
    expect(server.addr).toEqual({ transport: "unix", path });
    expect(await httpOverSocket(path, "/a")).toMatchObject({ status: 200, body: "GET /a " });
    expect((await httpOverSocket(path, "/b", "POST", "hello")).body).toBe("POST /b hello");
    const { stdout } = await promisify(execFile)("curl", ["-s", "--unix-socket", path, "http://localhost/curl"]);
    expect(stdout).toBe("GET /curl ");
  });

  it("requestIP is null on a unix socket, as Bun documents", async () => {
    const path = socketPath();
    track(serve({ unix: path, fetch: (req, server) => new Response(JSON.stringify(server.requestIP(req))) }));
    expect((await httpOverSocket(path)).body).toBe("null");
  });

  it("the socket file is removed on stop", async () => {
    const path = socketPath();
    const server = serve({ unix: path, fetch: () => new Response("x") });
    expect(existsSync(path)).toBe(true);
    await server.stop();
    expect(existsSync(path)).toBe(false);
  });

  it("a stale socket file from a crashed run doesn't block a restart", async () => {
    const path = socketPath();
    // A process that listens on the path and is killed: the socket file stays behind.
    const child = spawn(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(path)}, () => console.log("up"))`], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise((resolve) => child.stdout!.once("data", resolve));
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
    expect(existsSync(path)).toBe(true);
    track(serve({ unix: path, fetch: () => new Response("restarted") }));
    expect((await httpOverSocket(path)).body).toBe("restarted");
  });

  it("a socket a running server listens on is an error, and that server keeps serving", async () => {
    const path = socketPath();
    track(serve({ unix: path, fetch: () => new Response("first") }));
    const err = thrown(() => serve({ unix: path, fetch: () => new Response("second") }));
    expect(err.code).toBe("UWSERVE_ERR_ADDRESS_IN_USE");
    expect(err.message).toContain(path);
    expect((await httpOverSocket(path)).body).toBe("first");
  });

  it("a path that exists and is not a socket is an error; the file is left alone", () => {
    const path = join(dir, "plain-file");
    writeFileSync(path, "data");
    const err = thrown(() => serve({ unix: path, fetch: () => new Response("x") }));
    expect(err.code).toBe("UWSERVE_ERR_LISTEN");
    expect(err.message).toContain("not a socket");
    expect(existsSync(path)).toBe(true);
  });

  // The node engine binds abstract names (Linux); the uWS core can't.
  it.runIf(ON_NODE_ENGINE && process.platform === "linux")("abstract sockets (a leading NUL) are served by the node engine", async () => {
    const name = `\0uwserve-abstract-${process.pid}`;
    const server = track(serve({ unix: name, fetch: () => new Response("abstract ok") }));
    const body = await new Promise<string>((resolve, reject) => {
      request({ socketPath: name, path: "/" }, (res) => {
        let text = "";
        res.setEncoding("utf8").on("data", (c: string) => (text += c)).on("end", () => resolve(text));
      }).on("error", reject).end();
    });
    expect(body).toBe("abstract ok");
    expect(server.addr).toEqual({ transport: "unix", path: name });
  });

  it.runIf(!ON_NODE_ENGINE)("abstract sockets (a leading NUL) get a clear error: the core can't bind them", () => {
    const err = thrown(() => serve({ unix: "\0uwserve-abstract", fetch: () => new Response("x") }));
    expect(err.code).toBe("UWSERVE_ERR_NOT_SUPPORTED");
    expect(err.message).toMatch(/abstract unix sockets .* can't be bound by the uWS core/);
  });

  it("bad values are refused before binding: wrong type, too long, unix together with port", () => {
    expect(thrown(() => serve({ unix: 5, fetch: () => new Response("x") } as never)).message).toContain('"unix"');
    expect(thrown(() => serve({ unix: join(dir, "x".repeat(120)), fetch: () => new Response("x") })).message).toContain("at most 107");
    expect(thrown(() => serve({ unix: socketPath(), port: 0, fetch: () => new Response("x") })).code).toBe("UWSERVE_ERR_INVALID_CALL");
    expect(thrown(() => serve({ unix: join(dir, "missing-dir", "s.sock"), fetch: () => new Response("x") })).code).toBe("UWSERVE_ERR_LISTEN");
  });
});

describe("path: Deno style", () => {
  it("serve({ path }, handler): onListen gets the unix address, info.remoteAddr is unix", async () => {
    const path = socketPath();
    const onListen = vi.fn();
    const server: Server = track(
      serve({ path, onListen }, (req, info) => new Response(JSON.stringify(info.remoteAddr))),
    );
    expect(onListen).toHaveBeenCalledWith({ transport: "unix", path });
    expect(server.addr).toEqual({ transport: "unix", path });
    expect(JSON.parse((await httpOverSocket(path)).body)).toEqual({ transport: "unix", path });
  });

  it("unref() lets the process exit with a unix server open", async () => {
    const path = socketPath();
    const child = spawn(
      process.execPath,
      ["--input-type=module", "-e", `import { serve } from ${JSON.stringify(new URL("../dist/index.js", import.meta.url).href)}; serve({ unix: ${JSON.stringify(path)}, fetch: () => new Response("x") }).unref(); console.log("listening");`],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let exited = false;
    child.once("exit", () => (exited = true));
    await waitFor(() => exited, 5000, "the process to exit");
  });
});
