// serve({ tls }) and Deno's serve({ cert, key }): HTTPS end to end, SNI with routes and WebSockets on every name, bad material refused before anything listens, no key left behind.
import { execFile, execFileSync, spawnSync } from "node:child_process";
import { promisify } from "node:util";
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { serve, type Server } from "../dist/index.js";
import { trackServers } from "./helpers/server.js";

const HAS_OPENSSL = spawnSync("openssl", ["version"]).status === 0;
const PASS = "correct horse";
const track = trackServers();

interface Certs {
  dir: string;
  ca: string;
  /** localhost + 127.0.0.1, the default; its key also encrypted under PASS */
  key: string;
  keyEncrypted: string;
  cert: string;
  aKey: string;
  aCert: string;
  bKey: string;
  bCert: string;
}
let certs: Certs;

/** A CA and three leaves it signed (ECDSA P-256), made by the openssl CLI. */
function makeCerts(): Certs {
  const dir = mkdtempSync(join(tmpdir(), "uwserve-tls-test-"));
  const run = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  const read = (name: string) => readFileSync(join(dir, name), "utf8");
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  run("req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=uwserve test CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  for (const [name, san] of [["localhost", "DNS:localhost,IP:127.0.0.1"], ["a.test", "DNS:a.test"], ["b.test", "DNS:b.test"]]) {
    run("req", "-new", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
    run("x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.pem`,
      "-days", "2", "-extfile", `${name}.ext`);
  }
  run("pkey", "-in", "localhost.key", "-aes256", "-passout", `pass:${PASS}`, "-out", "localhost.enc.key");
  return {
    dir,
    ca: read("ca.pem"),
    key: read("localhost.key"),
    keyEncrypted: read("localhost.enc.key"),
    cert: read("localhost.pem"),
    aKey: read("a.test.key"),
    aCert: read("a.test.pem"),
    bKey: read("b.test.key"),
    bCert: read("b.test.pem"),
  };
}

beforeAll(() => {
  if (HAS_OPENSSL) certs = makeCerts();
});
afterAll(() => {
  if (certs) rmSync(certs.dir, { recursive: true, force: true });
});

/** GET `path` over HTTPS trusting only the test CA, with `name` as SNI and Host. */
function get(server: Server, name = "localhost", path = "/"): Promise<{ status: number; body: string; cn: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      { host: "127.0.0.1", port: server.port, path, servername: name, headers: { host: `${name}:${server.port}` }, ca: certs.ca, agent: false },
      (res) => {
        const cn = String((res.socket as tls.TLSSocket).getPeerCertificate().subject.CN);
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body, cn }));
      },
    );
    req.on("error", reject);
  });
}

/** uwserve memfds open in this process, and uwserve-tls-* temp directories (none should outlive serve()). */
function leftovers(): string[] {
  const found: string[] = [];
  if (process.platform === "linux") {
    for (const fd of readdirSync("/proc/self/fd")) {
      try {
        const target = readlinkSync(`/proc/self/fd/${fd}`);
        if (target.startsWith("/memfd:uwserve-")) found.push(target);
      } catch {
        // the listing's own fd
      }
    }
  }
  for (const base of [tmpdir(), "/dev/shm"]) {
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base)) if (/^uwserve-tls-(?!test-)/.test(name)) found.push(join(base, name));
  }
  return found.sort();
}

const hello = (req: Request) => new Response(`hello ${new URL(req.url).hostname} over ${new URL(req.url).protocol}`);

describe.skipIf(!HAS_OPENSSL)("serve({ tls })", () => {
  it("serves HTTPS: server.url is https:, requests see https: URLs", async () => {
    const before = leftovers();
    const server = track(serve({ port: 0, hostname: "127.0.0.1", tls: { key: certs.key, cert: certs.cert }, fetch: hello }));
    expect(server.url.protocol).toBe("https:");
    expect(server.url.href).toBe(`https://127.0.0.1:${server.port}/`);
    expect(await get(server)).toEqual({ status: 200, body: "hello localhost over https:", cn: "localhost" });
    expect(leftovers()).toEqual(before);
  });

  it("takes an encrypted key with its passphrase", async () => {
    const server = track(serve({ port: 0, hostname: "127.0.0.1", tls: { key: certs.keyEncrypted, passphrase: PASS, cert: certs.cert }, fetch: hello }));
    expect((await get(server)).body).toBe("hello localhost over https:");
  });

  it("refuses bad material before listening, with the specific error, leaving nothing behind", () => {
    const before = leftovers();
    const attempt = (tlsOption: unknown) => () => serve({ port: 0, hostname: "127.0.0.1", tls: tlsOption, fetch: hello } as never);
    expect(attempt({ key: certs.keyEncrypted, cert: certs.cert })).toThrow(
      expect.objectContaining({ code: "UWSERVE_ERR_TLS", message: "uwserve: tls.key is encrypted: pass its passphrase as tls.passphrase" }),
    );
    expect(attempt({ key: certs.keyEncrypted, passphrase: "nope", cert: certs.cert })).toThrow(/tls\.passphrase does not decrypt tls\.key/);
    expect(attempt({ key: certs.aKey, cert: certs.cert })).toThrow(/tls\.key does not match the certificate in tls\.cert/);
    expect(attempt([{ key: certs.key, cert: certs.cert }, { key: certs.bKey, cert: certs.aCert, serverName: "a.test" }])).toThrow(
      /tls\[1\]\.key does not match the certificate in tls\[1\]\.cert \(serverName "a\.test"\)/,
    );
    expect(leftovers()).toEqual(before);
  });

// WebSockets: the uws engine only (the node engine gets them with `ws` later).
  it("SNI: each name gets its own certificate, and the same fetch, routes and WebSockets", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        tls: [
          { key: certs.key, cert: certs.cert },
          { key: certs.aKey, cert: certs.aCert, serverName: "a.test" },
          { key: certs.bKey, cert: [certs.bCert, certs.ca], serverName: "b.test" },
        ],
        routes: { "/static": new Response("static"), "/param/:id": (req: Request & { params: { id: string } }) => new Response(`param ${req.params.id}`) },
        websocket: { message: (ws: { send(m: string): void }, message: string) => ws.send(`echo ${message}`) },
        fetch(req: Request, srv: Server) {
          if (new URL(req.url).pathname === "/ws" && srv.upgrade(req)) return undefined;
          return hello(req);
        },
      } as never),
    );
    for (const name of ["localhost", "a.test", "b.test"]) {
      expect(await get(server, name)).toEqual({ status: 200, body: `hello ${name} over https:`, cn: name });
      expect((await get(server, name, "/static")).body).toBe("static");
      expect((await get(server, name, "/param/7")).body).toBe("param 7");
      const ws = new WebSocket(`wss://127.0.0.1:${server.port}/ws`, { servername: name, headers: { host: name }, ca: certs.ca });
      const echoed = await new Promise<string>((resolve, reject) => {
        ws.on("open", () => ws.send("hi"));
        ws.on("message", (data) => resolve(String(data)));
        ws.on("error", reject);
      });
      ws.close();
      expect(echoed).toBe("echo hi");
    }
    // A name no entry has gets the default certificate.
    const other = await new Promise<string>((resolve, reject) => {
      const socket = tls.connect({ host: "127.0.0.1", port: server.port, servername: "c.test", rejectUnauthorized: false }, () => {
        resolve(String(socket.getPeerCertificate().subject.CN));
        socket.end();
      });
      socket.on("error", reject);
    });
    expect(other).toBe("localhost");
  });

  it("real clients: fetch trusting the test CA (NODE_EXTRA_CA_CERTS) and curl --cacert, for both SNI names", async () => {
    const server = track(
      serve({
        port: 0,
        hostname: "127.0.0.1",
        tls: [
          { key: certs.key, cert: certs.cert },
          { key: certs.aKey, cert: certs.aCert, serverName: "a.test" },
          { key: certs.bKey, cert: certs.bCert, serverName: "b.test" },
        ],
        fetch: hello,
      }),
    );
    expect(server.url.href).toBe(`https://127.0.0.1:${server.port}/`);
    const caFile = join(certs.dir, "ca.pem");
    // fetch (undici) verifies against Node's CA store: a child process that trusts the test CA.
    // (Asynchronously: this process serves the requests.)
    const run = promisify(execFile);
    const fetched = await run(process.execPath, ["--input-type=module", "-e", `const r = await fetch("https://localhost:${server.port}/f"); console.log(r.status, await r.text());`], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: caFile },
    });
    expect(fetched.stdout.trim()).toBe("200 hello localhost over https:");
    if (spawnSync("curl", ["--version"]).status !== 0) return;
    for (const name of ["a.test", "b.test"]) {
      const curl = await run("curl", ["-s", "-v", "--cacert", caFile, "--resolve", `${name}:${server.port}:127.0.0.1`, `https://${name}:${server.port}/`]);
      expect(curl.stdout).toBe(`hello ${name} over https:`);
      expect(curl.stderr).toMatch(new RegExp(`subject: CN=${name.replace(".", "\\.")}`));
    }
  });

  it("Deno style: serve({ cert, key }, handler)", async () => {
    const server = track(serve({ port: 0, hostname: "127.0.0.1", cert: certs.cert, key: certs.key, onListen() {} }, hello));
    expect(server.url.protocol).toBe("https:");
    expect((await get(server)).body).toBe("hello localhost over https:");
  });
});
