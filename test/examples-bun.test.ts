// The examples of reference/bun-serve.md, run as written except for `port: 0` and the import line.
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { serve, file, Response, type Server } from "../dist/index.js";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import { connectionRefused, freePort, httpRequest } from "./helpers/client.js";
import { fetchFrom, trackServers, waitFor, withTimeout } from "./helpers/server.js";
import WebSocket from "ws";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ON_NODE_ENGINE } from "./helpers/core.js";

/** The examples call `Bun.serve` and `Bun.file`: here they are uwserve's. */
const Bun = { serve, file };

const HAS_OPENSSL = spawnSync("openssl", ["version"]).status === 0;
/** The key and certificate files the TLS examples name, made once with the openssl CLI. */
const tls = { dir: "" };
beforeAll(() => {
  if (!HAS_OPENSSL) return;
  tls.dir = mkdtempSync(join(tmpdir(), "uwserve-example-tls-"));
  const run = (...args: string[]) => execFileSync("openssl", args, { cwd: tls.dir, stdio: ["ignore", "ignore", "pipe"] });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  run("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=example CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  for (const [base, name] of [["", "localhost"], ["1", "my-server1.com"], ["2", "my-server2.com"]]) {
    run("req", "-new", ...ec, "-keyout", `key${base}.pem`, "-out", `req${base}.csr`, "-subj", `/CN=${name}`);
    writeFileSync(join(tls.dir, `ext${base}`), `subjectAltName=DNS:${name}${name === "localhost" ? ",IP:127.0.0.1" : ""}\n`);
    run("x509", "-req", "-in", `req${base}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", `cert${base}.pem`, "-days", "2", "-extfile", `ext${base}`);
  }
  run("pkey", "-in", "key.pem", "-aes256", "-passout", "pass:my-secret-passphrase", "-out", "key.enc.pem");
  run("genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "group:ffdhe2048", "-out", "dhparams.pem");
});
afterAll(() => {
  if (tls.dir) rmSync(tls.dir, { recursive: true, force: true });
});

const track = trackServers();
const at = fetchFrom;

describe("Bun.serve() — HTML imports", () => {
  it.skip("HTML imports — Bun's bundler, not part of uwserve", () => {});
  // The routing examples of this page run in test/routes-basic.test.ts.
});

describe("fetch request handler", () => {
  it("routes by pathname inside fetch", async () => {
    const server = track(
      serve({
        port: 0,
        fetch(req) {
          const url = new URL(req.url);
          if (url.pathname === "/") return new Response("Home page!");
          if (url.pathname === "/blog") return new Response("Blog!");
          return new Response("404!");
        },
      }),
    );
    expect(await (await at(server, "/")).text()).toBe("Home page!");
    expect(await (await at(server, "/blog")).text()).toBe("Blog!");
    expect(await (await at(server, "/nope")).text()).toBe("404!");
  });

  it("supports async/await (Bun's sleep → node:timers/promises)", async () => {
    const server = track(
      serve({
        port: 0,
        async fetch(req) {
          const start = performance.now();
          await sleep(10);
          const end = performance.now();
          return new Response(`Slept for ${end - start}ms`);
        },
      }),
    );
    const text = await (await at(server)).text();
    const ms = Number(/^Slept for ([\d.]+)ms$/.exec(text)?.[1]);
    expect(ms).toBeGreaterThanOrEqual(9);
  });

  it("Promise-based responses: forwarding with fetch (a local server instead of example.com)", async () => {
    const upstream = track(serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("<h1>Example Domain</h1>", { headers: { "content-type": "text/html" } }) }));
    const server = track(
      serve({
        port: 0,
        fetch(req) {
          // Forward the request to another server.
          return fetch(`http://127.0.0.1:${upstream.port}/`);
        },
      }),
    );
    const res = await at(server);
    expect(res.headers.get("content-type")).toBe("text/html");
    expect(await res.text()).toBe("<h1>Example Domain</h1>");
  });

  it("the Server is the second argument: server.requestIP(req)", async () => {
    // `server` is passed in as the second argument to `fetch`.
    const server = track(
      serve({
        port: 0,
        fetch(req, server) {
          const ip = server.requestIP(req);
          return new Response(`Your IP is ${ip}`);
        },
      }),
    );
    // As in Bun, the SocketAddress object is interpolated as is.
    expect(await (await at(server)).text()).toBe("Your IP is [object Object]");
  });
});

describe("changing the port and hostname", () => {
  it("port and hostname options (8080 / mydomain.com → 0 / 127.0.0.1)", async () => {
    const server = track(
      serve({
        port: 0, // defaults to $BUN_PORT, $PORT, $NODE_PORT otherwise 3000
        hostname: "127.0.0.1", // defaults to "0.0.0.0"
        fetch(req) {
          return new Response("404!");
        },
      }),
    );
    expect(server.hostname).toBe("127.0.0.1");
    expect(await (await at(server)).text()).toBe("404!");
  });

  it("port: 0 selects a random port, read from server.port and server.url", async () => {
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    const server = track(
      serve({
        port: 0, // random port
        fetch(req) {
          return new Response("404!");
        },
      }),
    );
    // server.port is the randomly selected port
    console.log(server.port);
    console.log(server.url);
    expect(log.mock.calls[0]![0]).toBe(server.port);
    expect(String(log.mock.calls[1]![0])).toBe(`http://localhost:${server.port}/`);
    expect(server.port).toBeGreaterThan(0);
  });

  describe("configuring a default port", () => {
    const saved = { PORT: process.env.PORT, NODE_PORT: process.env.NODE_PORT };
    afterEach(() => {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    });

    it.skip("`bun --port=4002 server.ts` — the CLI flag is covered by test/cli.test.ts", () => {});
    it.skip("BUN_PORT — Bun's own variable; the contract reads $PORT then $NODE_PORT", () => {});

    it("PORT=4002 (a free port instead of 4002)", async () => {
      const port = await freePort();
      process.env.PORT = String(port);
      const server = track(serve({ fetch: () => new Response("from $PORT") }));
      expect(server.port).toBe(port);
      expect(await (await at(server)).text()).toBe("from $PORT");
    });

    it("NODE_PORT=4002 (a free port instead of 4002)", async () => {
      const port = await freePort();
      delete process.env.PORT;
      process.env.NODE_PORT = String(port);
      const server = track(serve({ fetch: () => new Response("from $NODE_PORT") }));
      expect(server.port).toBe(port);
    });
  });
});

describe("unix sockets", () => {
  it("Unix domain sockets — the example with a per-run path instead of /tmp/my-socket.sock", async () => {
    const path = join(tmpdir(), `uwserve-example-${process.pid}.sock`);
    const server = track(
      Bun.serve({
        unix: path, // path to socket
        fetch(req) {
          return new Response(`404!`);
        },
      }),
    );
    const body = await new Promise<string>((resolve, reject) => {
      get({ socketPath: path, path: "/" }, (res) => {
        let text = "";
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () => resolve(text));
      }).on("error", reject);
    });
    expect(body).toBe("404!");
  });

  // The node engine binds abstract names (Linux); the uWS core can't.
  it.runIf(ON_NODE_ENGINE)("Abstract namespace sockets — served by the node engine", async () => {
    const server = Bun.serve({
      unix: "\0my-abstract-socket", // abstract namespace socket
      fetch(req) {
        return new Response(`404!`);
      },
    });
    try {
      expect(server.url.protocol).toBe("unix:");
      expect(server.engine).toBe("node");
    } finally {
      await server.stop(true);
    }
  });

  it.runIf(!ON_NODE_ENGINE)("Abstract namespace sockets — refused with a clear error: the uWS core can't bind them", () => {
    const err = (() => {
      try {
        Bun.serve({
          unix: "\0my-abstract-socket", // abstract namespace socket
          fetch(req) {
            return new Response(`404!`);
          },
        });
      } catch (e) {
        return e as Error & { code?: string };
      }
      throw new Error("expected a throw");
    })();
    expect(err.code).toBe("UWSERVE_ERR_NOT_SUPPORTED");
    expect(err.message).toContain("abstract unix sockets");
  });
});

describe.skipIf(!HAS_OPENSSL)("TLS (the files the examples name are made in a temp dir with the openssl CLI)", () => {
  /** GET / over HTTPS trusting the test CA, with `name` as SNI; resolves [body, certificate CN]. */
  function httpsGet(port: number, name = "localhost"): Promise<[string, string]> {
    return new Promise((resolve, reject) => {
      const req = https.get({ host: "127.0.0.1", port, servername: name, ca: readFileSync(join(tls.dir, "ca.pem")), agent: false }, (res) => {
        const cn = String((res.socket as import("node:tls").TLSSocket).getPeerCertificate().subject.CN);
        let body = "";
        res.on("data", (chunk) => (body += chunk));
        res.on("end", () => resolve([body, cn]));
      });
      req.on("error", reject);
    });
  }
  const at = (name: string) => join(tls.dir, name);

  it("key and cert from Bun.file(), Buffer and string (file() here)", async () => {
    for (const [key, cert] of [
      [Bun.file(at("key.pem")), Bun.file(at("cert.pem"))],
      [readFileSync(at("key.pem")), readFileSync(at("cert.pem"))],
      [readFileSync(at("key.pem"), "utf8"), readFileSync(at("cert.pem"), "utf8")],
    ] as const) {
      const server = track(
        Bun.serve({
          port: 0,
          fetch(req) {
            return new Response("Hello!!!");
          },
          tls: { key, cert },
        }),
      );
      expect(server.url.protocol).toBe("https:");
      expect((await httpsGet(server.port))[0]).toBe("Hello!!!");
    }
  });

  it("passphrase decrypts an encrypted key", async () => {
    const server = track(
      Bun.serve({
        port: 0,
        fetch(req) {
          return new Response("Hello!!!");
        },
        tls: {
          key: Bun.file(at("key.enc.pem")),
          cert: Bun.file(at("cert.pem")),
          passphrase: "my-secret-passphrase",
        },
      }),
    );
    expect((await httpsGet(server.port))[0]).toBe("Hello!!!");
  });

  it("ca: the root CA certificate", async () => {
    const server = track(
      Bun.serve({
        port: 0,
        fetch(req) {
          return new Response("Hello!!!");
        },
        tls: {
          key: Bun.file(at("key.pem")), // path to TLS key
          cert: Bun.file(at("cert.pem")), // path to TLS cert
          ca: Bun.file(at("ca.pem")), // path to root CA certificate
        },
      }),
    );
    expect((await httpsGet(server.port))[0]).toBe("Hello!!!");
  });

  it("dhParamsFile: Diffie-Hellman parameters", async () => {
    const server = track(
      Bun.serve({
        port: 0,
        fetch: () => new Response("dh"),
        tls: {
          key: Bun.file(at("key.pem")),
          cert: Bun.file(at("cert.pem")),
          dhParamsFile: at("dhparams.pem"), // path to Diffie Hellman parameters
        },
      }),
    );
    expect((await httpsGet(server.port))[0]).toBe("dh");
  });

  it("SNI: an array of tls objects, each with its serverName and certificate", async () => {
    const server = track(
      Bun.serve({
        port: 0,
        fetch: (req) => new Response(new URL(req.url).hostname),
        tls: [
          {
            key: Bun.file(at("key1.pem")),
            cert: Bun.file(at("cert1.pem")),
            serverName: "my-server1.com",
          },
          {
            key: Bun.file(at("key2.pem")),
            cert: Bun.file(at("cert2.pem")),
            serverName: "my-server2.com",
          },
        ],
      }),
    );
    expect((await httpsGet(server.port, "my-server1.com"))[1]).toBe("my-server1.com");
    expect((await httpsGet(server.port, "my-server2.com"))[1]).toBe("my-server2.com");
  });
});

describe("error handling", () => {
  it("development: true surfaces errors with a built-in error page", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const server = track(
      serve({
        port: 0,
        development: true,
        fetch(req) {
          throw new Error("woops!");
        },
      }),
    );
    const res = await at(server);
    expect(res.status).toBe(500);
    expect(res.headers.get("content-type")).toMatch(/text\/html/);
    expect(await res.text()).toContain("woops!");
  });

  it("the error callback's Response supersedes the default page", async () => {
    const server = track(
      serve({
        port: 0,
        fetch(req) {
          throw new Error("woops!");
        },
        error(error) {
          return new Response(`<pre>${error}\n${(error as Error).stack}</pre>`, {
            headers: {
              "Content-Type": "text/html",
            },
          });
        },
      }),
    );
    const res = await at(server);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html");
    const html = await res.text();
    expect(html).toMatch(/^<pre>Error: woops!\nError: woops!\n {4}at /);
  });

  it("server.stop() after serving", async () => {
    const server = track(
      serve({
        port: 0,
        fetch() {
          return new Response("Bun!");
        },
      }),
    );
    expect(await (await at(server)).text()).toBe("Bun!");
    server.stop();
    await withTimeout(server.finished, 5000, "the server to stop");
    expect(await connectionRefused(server.port)).toBe(true);
  });
});

describe("idleTimeout", () => {
  it("idleTimeout: 10 is accepted and the server answers", async () => {
    const server = track(
      serve({
        port: 0,
        // 10 seconds:
        idleTimeout: 10,

        fetch(req) {
          return new Response("Bun!");
        },
      }),
    );
    expect(await (await at(server)).text()).toBe("Bun!");
  });
});

describe("export default syntax", () => {
  it("the default export object is what serve() takes (the CLI passes it; here it is passed directly)", async () => {
    const defaultExport = {
      fetch(req: Request) {
        return new Response("Bun!");
      },
    };
    const server = track(serve({ ...defaultExport, port: 0 }));
    expect(await (await at(server)).text()).toBe("Bun!");
  });
});

describe("streaming files (the files in a temp dir)", () => {
  it("new Response(Bun.file('./hello.txt'))", async () => {
    const dir = mkdtempSync(join(tmpdir(), "uwserve-example-files-"));
    writeFileSync(join(dir, "hello.txt"), "hello from a file\n");
    try {
      const server = track(
        Bun.serve({
          port: 0,
          fetch(req) {
            return new Response(Bun.file(join(dir, "hello.txt")));
          },
        }),
      );
      const res = await at(server);
      expect(res.headers.get("content-type")).toBe("text/plain;charset=utf-8");
      expect(await res.text()).toBe("hello from a file\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("Range requests with bigFile.slice(start, end): 206 with Content-Range and Content-Length", async () => {
    const dir = mkdtempSync(join(tmpdir(), "uwserve-example-files-"));
    const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 256));
    writeFileSync(join(dir, "big-video.mp4"), bytes);
    try {
      const server = track(
        Bun.serve({
          port: 0,
          fetch(req) {
            // parse `Range` header
            const [start = 0, end = Infinity] = req.headers
              .get("Range")! // Range: bytes=0-100
              .split("=") // ["Range: bytes", "0-100"]
              .at(-1)! // "0-100"
              .split("-") // ["0", "100"]
              .map(Number); // [0, 100]

            // return a slice of the file
            const bigFile = Bun.file(join(dir, "big-video.mp4"));
            return new Response(bigFile.slice(start, end));
          },
        }),
      );
      const res = await at(server, "/", { headers: { range: "bytes=0-100" } });
      expect(res.status).toBe(206);
      // The example passes the inclusive end straight to slice(): bytes 0..99 go out.
      expect(res.headers.get("content-range")).toBe("bytes 0-99/1000");
      expect(res.headers.get("content-length")).toBe("100");
      expect(Buffer.from(await res.arrayBuffer()).equals(bytes.subarray(0, 100))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("server lifecycle methods", () => {
  it("await server.stop() waits for in-flight requests; await server.stop(true) force-closes", async () => {
    const server = track(
      serve({
        port: 0,
        async fetch(req) {
          await sleep(100);
          return new Response("Hello!");
        },
      }),
    );
    const inFlight = at(server).then((r) => r.text());
    await waitFor(() => server.pendingRequests === 1, 5000, "the in-flight request");
    // Gracefully stop the server (waits for in-flight requests)
    await server.stop();
    expect(await inFlight).toBe("Hello!");
    // Force stop and close all active connections
    await server.stop(true);
    expect(await connectionRefused(server.port)).toBe(true);
  });

  it("server.unref() / server.ref()", async () => {
    const server = track(serve({ port: 0, fetch: () => new Response("alive") }));
    // Don't keep process alive if server is the only thing running
    server.unref();
    // Restore default behavior - keep process alive
    server.ref();
    expect(await (await at(server)).text()).toBe("alive");
  });


  it("server.reload() — the fetch part of the example", async () => {
    const server = track(
      serve({
        port: 0,
        fetch(req) {
          return new Response("v1");
        },
      }),
    );
    expect(await (await at(server)).text()).toBe("v1");
    // Update to new handler
    server.reload({
      fetch(req) {
        return new Response("v2");
      },
    });
    expect(await (await at(server)).text()).toBe("v2");
  });
});

describe("per-request controls", () => {
  it("server.timeout(req, 60) before await req.text() (the example's fetch made async)", async () => {
    const server = track(
      serve({
        port: 0,
        async fetch(req, server) {
          // Set 60 second timeout for this request
          server.timeout(req, 60);

          // If they take longer than 60 seconds to send the body, the request will be aborted
          await req.text();

          return new Response("Done!");
        },
      }),
    );
    expect(await (await at(server, "/", { method: "POST", body: "upload" })).text()).toBe("Done!");
  });

  it("server.requestIP(req) — client IP and port", async () => {
    const server = track(
      serve({
        port: 0,
        fetch(req, server) {
          const address = server.requestIP(req);
          if (address) {
            return new Response(`Client IP: ${address.address}, Port: ${address.port}`);
          }
          return new Response("Unknown client");
        },
      }),
    );
    expect(await (await at(server)).text()).toMatch(/^Client IP: 127\.0\.0\.1, Port: \d+$/);
  });
});

describe("server metrics", () => {
  it("server.pendingRequests and server.pendingWebSockets", async () => {
    const server = track(
      serve({
        port: 0,
        fetch(req, server) {
          return new Response(`Active requests: ${server.pendingRequests}\n` + `Active WebSockets: ${server.pendingWebSockets}`);
        },
      }),
    );
    expect(await (await at(server)).text()).toBe("Active requests: 1\nActive WebSockets: 0");
  });

// WebSockets: the uws engine only (the node engine gets them with `ws` later).
  it("server.subscriberCount(topic) — as written (its fetch never upgrades, so nobody is in chat), then with an upgrade", async () => {
    const server = track(
      serve({
        port: 0,
        fetch(req, server) {
          const chatUsers = server.subscriberCount("chat");
          return new Response(`${chatUsers} users in chat`);
        },
        websocket: {
          message(ws) {
            ws.subscribe("chat");
          },
        },
      }),
    );
    expect(await (await at(server)).text()).toBe("0 users in chat");

    // The same handlers with the upgrade the example leaves out.
    const withUpgrade = track(
      serve({
        port: 0,
        fetch(req, server) {
          if (server.upgrade(req)) return;
          const chatUsers = server.subscriberCount("chat");
          return new Response(`${chatUsers} users in chat`);
        },
        websocket: {
          message(ws) {
            ws.subscribe("chat");
          },
        },
      }),
    );
    const clients = await Promise.all([openSocket(withUpgrade), openSocket(withUpgrade)]);
    for (const client of clients) client.send("join");
    await waitFor(() => withUpgrade.subscriberCount("chat") === 2, 3000, "withUpgrade.subscriberCount('chat') === 2");
    expect(await (await fetch(`http://127.0.0.1:${withUpgrade.port}/`)).text()).toBe("2 users in chat");
    for (const client of clients) client.close();
  });
});

// WebSockets: the uws engine only (the node engine gets them with `ws` later).
describe("WebSocket configuration", () => {
  it("server.publish(topic, data, compress) — every message publishes to chat (the elided fetch upgrades; clients subscribe on open)", async () => {
    const server: Server = track(
      serve({
        port: 0,
        fetch(req, server) {
          if (server.upgrade(req)) return;
          return new Response("Upgrade failed", { status: 400 });
        },
        websocket: {
          open(ws) {
            ws.subscribe("chat");
          },
          message(ws) {
            // Publish to all "chat" subscribers
            server.publish("chat", "Hello everyone!");
          },
        },
      }),
    );
    const [a, b] = await Promise.all([openSocket(server), openSocket(server)]);
    await waitFor(() => server.subscriberCount("chat") === 2, 3000, "server.subscriberCount('chat') === 2");
    const received = Promise.all([nextMessage(a), nextMessage(b)]);
    a.send("hi");
    expect(await withTimeout(received, 2000, "both subscribers get the publish")).toEqual(["Hello everyone!", "Hello everyone!"]);
    a.close();
    b.close();
  });

  it("WebSocket handler options — the example's options are accepted and a compressed echo works", async () => {
    const seen: string[] = [];
    const server = track(
      serve({
        port: 0,
        fetch(req, server) {
          if (server.upgrade(req)) return;
          return new Response("no", { status: 400 });
        },
        websocket: {
          maxPayloadLength: 64 * 1024,
          backpressureLimit: 1024 * 1024,
          closeOnBackpressureLimit: true,
          drain(ws) {
            seen.push("drain");
          },
          perMessageDeflate: {
            compress: true,
            decompress: true,
          },
          sendPings: true,
          ping(ws, data) {
            seen.push("ping " + data.toString());
          },
          pong(ws, data) {
            seen.push("pong");
          },
          publishToSelf: false,
          message(ws, message) {
            ws.send(message, true);
          },
        },
      }),
    );
    const client = await openSocket(server);
    expect(client.extensions).toContain("permessage-deflate");
    client.ping("are you there");
    const reply = nextMessage(client);
    client.send("x".repeat(1000));
    expect(await withTimeout(reply, 2000, "echo")).toBe("x".repeat(1000));
    await waitFor(() => seen.includes("ping are you there"), 3000, "seen.includes('ping are you there')");
    client.close();
  });
});

describe("benchmarks", () => {
  it("the Bun server of the benchmark (port 3000 → 0)", async () => {
    const server = track(
      serve({
        fetch(req: Request) {
          return new Response("Bun!");
        },
        port: 0,
      }),
    );
    const res = await httpRequest(server.port);
    expect(res.body.toString()).toBe("Bun!");
  });

  it.skip("the Node version of the benchmark — node:http itself, not uwserve", () => {});
});

/** A `ws` client connected to `server`, open. */
async function openSocket(server: Server): Promise<WebSocket> {
  const client = new WebSocket(`ws://127.0.0.1:${server.port}/`);
  await withTimeout(new Promise((resolve, reject) => client.once("open", resolve).once("error", reject)), 2000, "WebSocket open");
  return client;
}

function nextMessage(client: WebSocket): Promise<string> {
  return new Promise((resolve) => client.once("message", (data) => resolve(String(data))));
}
