// resolveTls: Bun's tls / Deno's cert+key validated with errors that name the problem, handed to uWS as memfd paths (or private temp files), and served, SNI included.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { tryLoadNative } from "../dist/transport/native.js";
import { resolveTls, type ResolvedTls } from "../dist/engines/uws/tls-files.js";
import { loadCore, type TemplatedApp, type us_listen_socket } from "../dist/engines/uws/uws.js";

const uws = loadCore();

const HAS_OPENSSL = spawnSync("openssl", ["version"]).status === 0;
const HAS_CURL = spawnSync("curl", ["--version"]).status === 0;
/** memfd needs Linux and the built addon; elsewhere resolveTls uses private temp files. */
const MEMFD = process.platform === "linux" && tryLoadNative() !== null;
const PASS = "correct horse";

/** PEM texts made once by the openssl CLI: a CA and leaves it signed. */
interface Certs {
  dir: string;
  ca: string;
  /** a.test (ECDSA P-256) */
  aKey: string;
  aCert: string;
  /** a.test's key as encrypted PKCS#8 and as a traditional encrypted EC key, both under PASS. */
  aKeyEncrypted: string;
  aKeyTraditional: string;
  /** b.test (ECDSA P-256) */
  bKey: string;
  bCert: string;
  /** localhost + 127.0.0.1 (RSA 2048): the default certificate */
  dKey: string;
  dCert: string;
  /** An Ed448 key with its self-signed certificate (BoringSSL cannot serve it). */
  edKey: string;
  edCert: string;
  dhParams: string;
}

let certs: Certs;

function openssl(dir: string, ...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

function makeCerts(): Certs {
  const dir = mkdtempSync(join(tmpdir(), "uwserve-tls-test-"));
  const read = (name: string) => readFileSync(join(dir, name), "utf8");
  openssl(dir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
    "-out", "ca.pem", "-days", "2", "-subj", "/CN=uwserve test CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  const leaf = (name: string, keyArgs: string[], san: string) => {
    openssl(dir, "req", "-new", ...keyArgs, "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\n`);
    openssl(dir, "x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
      "-out", `${name}.pem`, "-days", "2", "-extfile", `${name}.ext`);
  };
  leaf("a.test", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], "DNS:a.test");
  leaf("b.test", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], "DNS:b.test");
  leaf("localhost", ["-newkey", "rsa:2048"], "DNS:localhost,IP:127.0.0.1");
  openssl(dir, "pkey", "-in", "a.test.key", "-aes256", "-passout", `pass:${PASS}`, "-out", "a.enc.key");
  openssl(dir, "ec", "-in", "a.test.key", "-aes256", "-passout", `pass:${PASS}`, "-out", "a.trad.key");
  openssl(dir, "req", "-x509", "-newkey", "ed448", "-nodes", "-keyout", "ed.key", "-out", "ed.pem", "-days", "2", "-subj", "/CN=ed448");
  openssl(dir, "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "dh_param:ffdhe2048", "-out", "dh.pem");
  return {
    dir,
    ca: read("ca.pem"),
    aKey: read("a.test.key"),
    aCert: read("a.test.pem"),
    aKeyEncrypted: read("a.enc.key"),
    aKeyTraditional: read("a.trad.key"),
    bKey: read("b.test.key"),
    bCert: read("b.test.pem"),
    dKey: read("localhost.key"),
    dCert: read("localhost.pem"),
    edKey: read("ed.key"),
    edCert: read("ed.pem"),
    dhParams: join(dir, "dh.pem"),
  };
}

/** A Blob subclass whose `name` is its path, like uwserve's and Bun's file(). */
class PathBlob extends Blob {
  readonly #path: string;
  constructor(path: string) {
    super([]);
    this.#path = path;
  }
  get name(): string {
    return this.#path;
  }
  override get size(): number {
    return existsSync(this.#path) ? statSync(this.#path).size : 0;
  }
}

/** Runs resolveTls expecting a throw; returns the error. */
function failure(tlsOption: unknown, cert?: unknown, key?: unknown): Error & { code?: string } {
  try {
    const resolved = resolveTls(tlsOption, cert, key);
    resolved?.release();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error("resolveTls did not throw");
}

/** The names in /proc/self/fd that are uwserve memfds (Linux), or [] elsewhere. */
function uwserveMemfds(): string[] {
  if (process.platform !== "linux") return [];
  const found: string[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith("/memfd:uwserve-")) found.push(target);
    } catch {
      // closed while listing (the readdir's own fd)
    }
  }
  return found;
}

/** The uwserve-tls-* directories in the places the temp-file fallback writes to. */
function tempDirs(): string[] {
  const bases = [tmpdir(), ...(existsSync("/dev/shm") ? ["/dev/shm"] : [])];
  return bases
    .flatMap((base) => readdirSync(base).filter((name) => /^uwserve-tls-(?!test-)/.test(name)).map((name) => join(base, name)))
    .sort();
}

const resolvedSets: ResolvedTls[] = [];
/** resolveTls, released after the test even when it fails. */
function resolve(tlsOption: unknown, cert?: unknown, key?: unknown): ResolvedTls {
  const resolved = resolveTls(tlsOption, cert, key);
  if (resolved === null) throw new Error("resolveTls returned null");
  resolvedSets.push(resolved);
  return resolved;
}
afterEach(() => {
  for (const resolved of resolvedSets.splice(0)) resolved.release();
});

beforeAll(() => {
  if (HAS_OPENSSL) certs = makeCerts();
});
afterAll(() => {
  if (certs) rmSync(certs.dir, { recursive: true, force: true });
});

describe.skipIf(!HAS_OPENSSL)("resolveTls: what it returns", () => {
  it("returns null without TLS: no option, null, {} or undefined key and cert", () => {
    expect(resolveTls(undefined, undefined, undefined)).toBeNull();
    expect(resolveTls(null, undefined, undefined)).toBeNull();
    expect(resolveTls({}, undefined, undefined)).toBeNull();
    expect(resolveTls({ key: undefined, cert: undefined }, undefined, undefined)).toBeNull();
  });

  it("hands uWS paths that read back the certificate and the key (re-encrypted under a one-time passphrase)", () => {
    const resolved = resolve({ key: certs.aKey, cert: certs.aCert }, undefined, undefined);
    expect(resolved.servers).toEqual([]);
    const { key_file_name, cert_file_name, passphrase } = resolved.app;
    expect(typeof passphrase).toBe("string");
    expect((passphrase as string).length).toBeGreaterThanOrEqual(24);
    const cert = readFileSync(cert_file_name as string, "utf8");
    expect(new X509Certificate(cert).fingerprint256).toBe(new X509Certificate(certs.aCert).fingerprint256);
    const keyText = readFileSync(key_file_name as string, "utf8");
    expect(keyText).toContain("-----BEGIN ENCRYPTED PRIVATE KEY-----");
    const key = createPrivateKey({ key: keyText, passphrase: passphrase as string });
    expect(key.export({ type: "pkcs8", format: "pem" })).toBe(createPrivateKey(certs.aKey).export({ type: "pkcs8", format: "pem" }));
    expect(resolved.app.ca_file_name).toBeUndefined();
    expect(resolved.app.ssl_prefer_low_memory_usage).toBeUndefined();
  });

  it.runIf(MEMFD)("on Linux the paths are memfds: nothing in any directory, and release() closes them", () => {
    const dirsBefore = tempDirs();
    const resolved = resolve({ key: certs.aKeyEncrypted, passphrase: PASS, cert: certs.aCert, ca: certs.ca }, undefined, undefined);
    const paths = [resolved.app.key_file_name, resolved.app.cert_file_name, resolved.app.ca_file_name] as string[];
    for (const path of paths) {
      expect(path).toMatch(/^\/proc\/self\/fd\/\d+$/);
      expect(readlinkSync(path)).toMatch(/^\/memfd:uwserve-tls-(key|cert|ca)-\d+\.pem \(deleted\)$/);
    }
    expect(uwserveMemfds()).toHaveLength(3);
    expect(tempDirs()).toEqual(dirsBefore);
    // The memfd is sealed: not even this process can change the key the core will read.
    expect(() => writeFileSync(paths[0]!, "x")).toThrow();
    resolved.release();
    expect(uwserveMemfds()).toEqual([]);
    for (const path of paths) expect(existsSync(path)).toBe(false);
    resolved.release(); // twice is fine
  });

  it("falls back to 0600 files in a private 0700 directory when the addon is unavailable, removed by release()", async () => {
    vi.resetModules();
    vi.doMock("../dist/transport/native.js", () => ({ tryLoadNative: () => null, loadNative: () => { throw new Error("no addon"); } }));
    try {
      const { resolveTls: resolveWithoutAddon } = await import("../dist/engines/uws/tls-files.js");
      const before = tempDirs();
      const resolved = resolveWithoutAddon({ key: certs.aKeyEncrypted, passphrase: PASS, cert: certs.aCert }, undefined, undefined)!;
      const keyPath = resolved.app.key_file_name as string;
      const dir = join(keyPath, "..");
      expect(tempDirs()).toEqual([...before, dir].sort());
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      expect(statSync(keyPath).mode & 0o777).toBe(0o600);
      // Even this short-lived copy of the key is encrypted, under a passphrase only this process knows.
      expect(readFileSync(keyPath, "utf8")).toContain("-----BEGIN ENCRYPTED PRIVATE KEY-----");
      expect(readFileSync(keyPath, "utf8")).not.toContain(PASS);
      const app = uws.SSLApp(resolved.app);
      resolved.release();
      app.close();
      expect(existsSync(dir)).toBe(false);
      expect(tempDirs()).toEqual(before);
    } finally {
      vi.doUnmock("../dist/transport/native.js");
      vi.resetModules();
    }
  });

  it("falls back to temp files when memfd_create fails (old kernel, seccomp)", async () => {
    vi.resetModules();
    const enosys = Object.assign(new Error("createMemoryFile: memfd_create failed: ENOSYS"), { code: "ENOSYS" });
    vi.doMock("../dist/transport/native.js", () => ({
      tryLoadNative: () => ({ setListenRef: () => 0, createMemoryFile: () => { throw enosys; } }),
    }));
    try {
      const { resolveTls: resolveWithBrokenMemfd } = await import("../dist/engines/uws/tls-files.js");
      const resolved = resolveWithBrokenMemfd({ key: certs.aKey, cert: certs.aCert }, undefined, undefined)!;
      const keyPath = resolved.app.key_file_name as string;
      expect(keyPath).not.toMatch(/^\/proc\//);
      expect(existsSync(keyPath)).toBe(true);
      resolved.release();
      expect(existsSync(keyPath)).toBe(false);
    } finally {
      vi.doUnmock("../dist/transport/native.js");
      vi.resetModules();
    }
  });

  it("takes strings, Buffers, Uint8Arrays, ArrayBuffers, file() Blobs and arrays of them (concatenated: the chain)", () => {
    const certPath = join(certs.dir, "a.test.pem");
    const keyPath = join(certs.dir, "a.test.key");
    const inputs: Array<[unknown, unknown]> = [
      [Buffer.from(certs.aKey), Buffer.from(certs.aCert)],
      [new TextEncoder().encode(certs.aKey), new TextEncoder().encode(certs.aCert).buffer],
      [new PathBlob(keyPath), new PathBlob(certPath)],
      [[certs.aKey], [new PathBlob(certPath), Buffer.from(certs.ca)]],
    ];
    for (const [key, cert] of inputs) {
      const resolved = resolve({ key, cert }, undefined, undefined);
      expect(() => uws.SSLApp(resolved.app).close()).not.toThrow();
    }
    const chained = resolve({ key: certs.aKey, cert: [certs.aCert, certs.ca] }, undefined, undefined);
    const chain = readFileSync(chained.app.cert_file_name as string, "utf8");
    expect(chain.match(/-----BEGIN CERTIFICATE-----/g)).toHaveLength(2);
    expect(chain.indexOf(certs.aCert.trim().split("\n")[1]!)).toBeLessThan(chain.indexOf(certs.ca.trim().split("\n")[1]!));
  });

  it("decrypts PKCS#8 and traditional encrypted keys with the passphrase; uWS builds contexts from the result", () => {
    for (const key of [certs.aKeyEncrypted, certs.aKeyTraditional]) {
      const resolved = resolve({ key, passphrase: PASS, cert: certs.aCert }, undefined, undefined);
      expect(resolved.app.passphrase).not.toBe(PASS);
      expect(() => uws.SSLApp(resolved.app).close()).not.toThrow();
    }
  });

  it("passes ca, dhParamsFile and lowMemoryMode on", () => {
    const resolved = resolve(
      { key: certs.dKey, cert: certs.dCert, ca: certs.ca, dhParamsFile: certs.dhParams, lowMemoryMode: true },
      undefined,
      undefined,
    );
    expect(new X509Certificate(readFileSync(resolved.app.ca_file_name as string)).subject).toContain("uwserve test CA");
    expect(resolved.app.dh_params_file_name).toBe(certs.dhParams);
    expect(resolved.app.ssl_prefer_low_memory_usage).toBe(true);
    expect(() => uws.SSLApp(resolved.app).close()).not.toThrow();
  });

  it("accepts Deno's top-level cert and key", () => {
    const resolved = resolve(undefined, certs.aCert, certs.aKey);
    expect(readFileSync(resolved.app.cert_file_name as string, "utf8")).toContain("-----BEGIN CERTIFICATE-----");
    expect(resolved.servers).toEqual([]);
  });

  it("an array is SNI: the entry without serverName is the default, the others are servers", () => {
    const resolved = resolve(
      [
        { key: certs.aKey, cert: certs.aCert, serverName: "a.test" },
        { key: certs.dKey, cert: certs.dCert },
        { key: certs.bKey, cert: certs.bCert, serverName: "B.Test" },
      ],
      undefined,
      undefined,
    );
    const subject = (options: ResolvedTls["app"]) => new X509Certificate(readFileSync(options.cert_file_name as string)).subject;
    expect(subject(resolved.app)).toBe("CN=localhost");
    expect(resolved.servers.map((s) => s.serverName)).toEqual(["a.test", "b.test"]); // lowercased
    expect(resolved.servers.map((s) => subject(s.options))).toEqual(["CN=a.test", "CN=b.test"]);
  });

  it("without an unnamed entry the first is the default (and not repeated as a server)", () => {
    const resolved = resolve(
      [
        { key: certs.aKey, cert: certs.aCert, serverName: "a.test" },
        { key: certs.bKey, cert: certs.bCert, serverName: "b.test" },
      ],
      undefined,
      undefined,
    );
    expect(new X509Certificate(readFileSync(resolved.app.cert_file_name as string)).subject).toBe("CN=a.test");
    expect(resolved.servers.map((s) => s.serverName)).toEqual(["b.test"]);
  });
});

describe.skipIf(!HAS_OPENSSL)("resolveTls: errors name the problem", () => {
  it("an encrypted key without passphrase", () => {
    const err = failure({ key: certs.aKeyEncrypted, cert: certs.aCert });
    expect(err.code).toBe("UWSERVE_ERR_TLS");
    expect(err.message).toBe("uwserve: tls.key is encrypted: pass its passphrase as tls.passphrase");
  });

  it("a wrong passphrase, for both encrypted formats", () => {
    for (const key of [certs.aKeyEncrypted, certs.aKeyTraditional]) {
      const err = failure({ key, passphrase: "wrong", cert: certs.aCert });
      expect(err.code).toBe("UWSERVE_ERR_TLS");
      expect(err.message).toMatch(/^uwserve: tls\.passphrase does not decrypt tls\.key \(wrong passphrase\?\)/);
    }
  });

  it("a key that does not belong to the certificate", () => {
    const err = failure({ key: certs.bKey, cert: certs.aCert });
    expect(err.code).toBe("UWSERVE_ERR_TLS");
    expect(err.message).toContain("uwserve: tls.key does not match the certificate in tls.cert (subject CN=a.test)");
  });

  it("the chain in the wrong order (the leaf must come first)", () => {
    const err = failure({ key: certs.aKey, cert: [certs.ca, certs.aCert] });
    expect(err.message).toContain("tls.key does not match the certificate in tls.cert (subject CN=uwserve test CA)");
  });

  it("a certificate that is not PEM, or whose PEM does not parse", () => {
    expect(failure({ key: certs.aKey, cert: "hello\nworld" }).message).toMatch(
      /^uwserve: tls\.cert must be a PEM certificate \("-----BEGIN CERTIFICATE-----"\); received 11 characters/,
    );
    const broken = certs.aCert.replace(/\n[A-Za-z0-9+/]{20}/, "\n!!!!");
    const err = failure({ key: certs.aKey, cert: broken });
    expect(err.code).toBe("UWSERVE_ERR_TLS");
    expect(err.message).toMatch(/^uwserve: tls\.cert: its certificate cannot be parsed: /);
    expect(failure({ key: certs.aKey, cert: certs.aCert, ca: [certs.ca, broken] }).message).toMatch(
      /^uwserve: tls\.ca: certificate 2 of 2 cannot be parsed/,
    );
  });

  it("key and cert swapped, and a path where contents belong", () => {
    expect(failure({ key: certs.aCert, cert: certs.aKey }).message).toBe(
      'uwserve: tls.key must be a PEM private key ("-----BEGIN PRIVATE KEY-----"); it holds a CERTIFICATE block instead (are key and cert swapped?)',
    );
    const path = join(certs.dir, "a.test.key");
    expect(failure({ key: path, cert: certs.aCert }).message).toContain(`it looks like a file path: pass the contents, e.g. file(${JSON.stringify(path)})`);
    expect(failure({ key: "", cert: certs.aCert }).message).toContain("tls.key must be a PEM private key");
  });

  it("a file() that cannot be read, a slice of one, and an in-memory Blob", () => {
    const missing = join(certs.dir, "missing.pem");
    const unreadable = failure({ key: new PathBlob(missing), cert: certs.aCert });
    expect(unreadable.code).toBe("UWSERVE_ERR_TLS");
    expect(unreadable.message).toMatch(new RegExp(`^uwserve: tls\\.key: cannot read file\\(${JSON.stringify(missing).replace(/[.\\/]/g, "\\$&")}\\): ENOENT`));
    const slice = new (class extends PathBlob {
      override get size() {
        return 10;
      }
    })(join(certs.dir, "a.test.key"));
    expect(failure({ key: slice, cert: certs.aCert }).message).toContain("tls.key is a slice of file(");
    const memory = failure({ key: new Blob([certs.aKey]), cert: certs.aCert });
    expect(memory.code).toBe("UWSERVE_ERR_INVALID_OPTION");
    expect(memory.message).toContain("uwserve: tls.key is a Blob held in memory, which can only be read asynchronously");
    expect(failure({ key: new File([certs.aKey], join(certs.dir, "a.test.key")), cert: certs.aCert }).message).toContain("Blob held in memory");
  });

  it("wrong types and missing halves", () => {
    const wrongKey = failure({ key: 42, cert: certs.aCert });
    expect(wrongKey).toBeInstanceOf(TypeError);
    expect(wrongKey.code).toBe("UWSERVE_ERR_INVALID_OPTION");
    expect(wrongKey.message).toBe('uwserve: option "tls.key" must be PEM contents: a string, Buffer, TypedArray, file() or an array of them, but received a number (42)');
    expect(failure({ key: certs.aKey, cert: certs.aCert, passphrase: 1 }).message).toContain('option "tls.passphrase" must be a string');
    expect(failure({ key: certs.aKey, cert: certs.aCert, lowMemoryMode: "yes" }).message).toContain('option "tls.lowMemoryMode" must be a boolean');
    expect(failure({ key: certs.aKey }).message).toBe("uwserve: tls.cert is missing; TLS needs both key and cert");
    expect(failure({ passphrase: PASS }).message).toBe("uwserve: tls.key is missing; TLS needs both key and cert, and tls has only passphrase");
    expect(failure("cert").message).toContain('option "tls" must be an object ({ key, cert }) or an array of them for SNI');
    expect(failure({ key: certs.aKey, cert: certs.aCert }, certs.aCert, certs.aKey).message).toBe(
      'uwserve: give either "tls" (Bun style) or "cert" and "key" (Deno style), not both',
    );
    expect(failure(undefined, certs.aCert, undefined).message).toBe(
      'uwserve: option "key" is missing; HTTPS needs both "cert" and "key" (or Bun\'s "tls")',
    );
  });

  it("misspelt fields get a hint; unknown ones are ignored as Bun ignores them", () => {
    expect(failure({ key: certs.aKey, cert: certs.aCert, Passphrase: PASS }).message).toBe(
      'uwserve: unknown option "tls.Passphrase"; did you mean "tls.passphrase"?',
    );
    expect(() => resolve({ key: certs.aKey, cert: certs.aCert, ALPNProtocols: "http/1.1" })).not.toThrow();
  });

  it("what the core cannot do: secureOptions, several keys, Ed448", () => {
    const secure = failure({ key: certs.aKey, cert: certs.aCert, secureOptions: 0x4000000 });
    expect(secure.code).toBe("UWSERVE_ERR_NOT_SUPPORTED");
    expect(secure.message).toContain("tls.secureOptions (67108864) is not supported");
    expect(() => resolve({ key: certs.aKey, cert: certs.aCert, secureOptions: 0 })).not.toThrow();
    const twoKeys = failure({ key: [certs.aKey, certs.bKey], cert: [certs.aCert, certs.bCert] });
    expect(twoKeys.code).toBe("UWSERVE_ERR_NOT_SUPPORTED");
    expect(twoKeys.message).toContain("tls.key holds 2 private keys");
    const ed448 = failure({ key: certs.edKey, cert: certs.edCert });
    expect(ed448.code).toBe("UWSERVE_ERR_NOT_SUPPORTED");
    expect(ed448.message).toContain("tls.key is a key of type ed448, which the uWebSockets core's TLS library (BoringSSL) cannot serve");
  });

  it("dhParamsFile that is missing or not DH parameters", () => {
    const missing = join(certs.dir, "nope.pem");
    expect(failure({ key: certs.aKey, cert: certs.aCert, dhParamsFile: missing }).message).toMatch(
      /^uwserve: tls\.dhParamsFile: cannot read .*nope\.pem: ENOENT/,
    );
    expect(failure({ key: certs.aKey, cert: certs.aCert, dhParamsFile: join(certs.dir, "ca.pem") }).message).toContain(
      'holds no "-----BEGIN DH PARAMETERS-----" block',
    );
  });

  it("SNI errors name the entry and its serverName", () => {
    const entries = (second: Record<string, unknown>) => [{ key: certs.dKey, cert: certs.dCert }, second];
    expect(failure(entries({ key: certs.aKeyEncrypted, cert: certs.aCert, serverName: "a.test" })).message).toBe(
      'uwserve: tls[1].key (serverName "a.test") is encrypted: pass its passphrase as tls[1].passphrase',
    );
    expect(failure(entries({ key: certs.bKey, cert: certs.aCert, serverName: "a.test" })).message).toContain(
      'tls[1].key does not match the certificate in tls[1].cert (serverName "a.test")',
    );
    expect(failure(entries({ key: certs.aKey, serverName: "a.test" })).message).toBe(
      'uwserve: tls[1].cert is missing; every entry of a tls array needs its own key and cert (serverName "a.test")',
    );
    expect(failure(entries({ key: certs.aKey, cert: certs.aCert })).message).toBe(
      "uwserve: tls[0] and tls[1] both lack a serverName; in a tls array only the default certificate may omit it",
    );
    expect(failure([
      { key: certs.aKey, cert: certs.aCert, serverName: "a.test" },
      { key: certs.aKey, cert: certs.aCert, serverName: "A.test" },
    ]).message).toBe('uwserve: tls[0] and tls[1] both have serverName "a.test"');
    expect(failure(entries({ key: certs.aKey, cert: certs.aCert, serverName: "https://a.test" })).message).toContain(
      'option "tls[1].serverName" must be a host name',
    );
    expect(failure([]).message).toContain('option "tls" must be an object or a non-empty array of objects');
    expect(failure([null]).message).toContain('option "tls[0]" must be an object');
  });

  it("a failed resolveTls leaves no memfd and no temp directory behind", () => {
    const fds = uwserveMemfds();
    const dirs = tempDirs();
    failure([{ key: certs.dKey, cert: certs.dCert }, { key: certs.bKey, cert: certs.aCert, serverName: "a.test" }]);
    expect(uwserveMemfds()).toEqual(fds);
    expect(tempDirs()).toEqual(dirs);
  });
});

// ---- end to end: the material in a listening uWS.SSLApp ----------------------------------------

interface Listening {
  app: TemplatedApp;
  socket: us_listen_socket;
  port: number;
}
const listening: Listening[] = [];

/** Builds an SSLApp from resolved material the way the server does, releases it, routes every SNI domain, listens. */
function listen(resolved: ResolvedTls): Listening {
  const app = uws.SSLApp(resolved.app);
  for (const { serverName, options } of resolved.servers) app.addServerName(serverName, options);
  resolved.release();
  // uWS gives each added server name its own router: routes go on every domain.
  const domains = resolved.servers.length === 0 ? [null] : ["", ...resolved.servers.map((s) => s.serverName)];
  for (const domain of domains) {
    if (domain !== null) app.domain(domain);
    app.get("/*", (res, req) => {
      res.end(`hello ${req.getHeader("host").split(":")[0]}`);
    });
  }
  let socket: us_listen_socket | false = false;
  app.listen("127.0.0.1", 0, (token) => {
    socket = token;
  });
  if (socket === false) throw new Error("listen failed");
  const entry = { app, socket, port: uws.us_socket_local_port(socket) };
  listening.push(entry);
  return entry;
}
afterEach(() => {
  for (const { app, socket } of listening.splice(0)) {
    uws.us_listen_socket_close(socket);
    app.close();
  }
});

/** Connects with node:tls trusting only the test CA; resolves with the peer's subject CN, whether it was trusted, and the chain length sent. */
function handshake(port: number, servername: string | undefined): Promise<{ cn: string; authorized: boolean; error: string | null }> {
  return new Promise((resolvePromise, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername, ca: certs.ca, rejectUnauthorized: false }, () => {
      const cert = socket.getPeerCertificate();
      resolvePromise({ cn: String(cert.subject.CN), authorized: socket.authorized, error: socket.authorizationError?.message ?? null });
      socket.end();
    });
    socket.on("error", reject);
  });
}

/** GET / over node:https trusting only the test CA, with `servername` as SNI and Host. */
function httpsGet(port: number, servername: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const req = https.get({ host: "127.0.0.1", port, path: "/", servername, headers: { host: servername }, ca: certs.ca, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolvePromise(body));
    });
    req.on("error", reject);
  });
}

/** How many certificates the server sends for `servername` (`openssl s_client -showcerts`, run async: the server shares this loop). */
function sentChain(port: number, servername: string): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const proc = spawn("openssl", ["s_client", "-connect", `127.0.0.1:${port}`, "-servername", servername, "-showcerts"], {
      stdio: ["pipe", "pipe", "ignore"],
    });
    let out = "";
    proc.stdout.on("data", (d) => (out += d));
    proc.on("error", reject);
    proc.on("close", () => resolvePromise(out.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0));
    proc.stdin.end();
  });
}

/** curl to https://NAME:PORT/ resolved to 127.0.0.1, trusting the CA file; returns [exit code, body, subject line]. */
function curl(port: number, name: string): Promise<[number | null, string, string]> {
  return new Promise((resolvePromise) => {
    const proc = spawn("curl", ["-sS", "-v", "--max-time", "10", "--cacert", join(certs.dir, "ca.pem"), "--resolve", `${name}:${port}:127.0.0.1`, `https://${name}:${port}/`]);
    let out = "";
    let err = "";
    proc.stdout.on("data", (d) => (out += d));
    proc.stderr.on("data", (d) => (err += d));
    proc.on("close", (code) => resolvePromise([code, out, /subject: (.*)/.exec(err)?.[1]?.trim() ?? ""]));
  });
}

describe.skipIf(!HAS_OPENSSL)("resolveTls material served by uWS.SSLApp", () => {
  it("a single certificate with an encrypted key: trusted through the CA, and no key left anywhere once released", async () => {
    const dirs = tempDirs();
    const server = listen(resolve({ key: certs.aKeyEncrypted, passphrase: PASS, cert: certs.aCert }, undefined, undefined));
    expect(uwserveMemfds()).toEqual([]);
    expect(tempDirs()).toEqual(dirs);
    expect(await handshake(server.port, "a.test")).toEqual({ cn: "a.test", authorized: true, error: null });
    expect(await httpsGet(server.port, "a.test")).toBe("hello a.test");
  });

  it("SNI: each serverName gets its own certificate, other names and no name get the default", async () => {
    const server = listen(
      resolve(
        [
          { key: certs.aKeyEncrypted, passphrase: PASS, cert: certs.aCert, serverName: "a.test" },
          { key: certs.bKey, cert: [certs.bCert, certs.ca], serverName: "b.test" },
          { key: certs.dKey, cert: certs.dCert },
        ],
        undefined,
        undefined,
      ),
    );
    expect(await handshake(server.port, "a.test")).toMatchObject({ cn: "a.test", authorized: true });
    expect(await handshake(server.port, "b.test")).toMatchObject({ cn: "b.test", authorized: true });
    expect(await handshake(server.port, "c.test")).toMatchObject({ cn: "localhost" });
    expect(await handshake(server.port, undefined)).toMatchObject({ cn: "localhost", authorized: true });
    expect(await httpsGet(server.port, "a.test")).toBe("hello a.test");
    expect(await httpsGet(server.port, "b.test")).toBe("hello b.test");
    expect(await httpsGet(server.port, "localhost")).toBe("hello localhost");
    // b.test's cert option was [leaf, CA]: the whole chain goes out; a.test's is the leaf alone.
    expect(await sentChain(server.port, "b.test")).toBe(2);
    expect(await sentChain(server.port, "a.test")).toBe(1);
  });

  it.runIf(HAS_CURL)("curl --cacert --resolve sees each name's own certificate", async () => {
    const server = listen(
      resolve(
        [
          { key: certs.aKey, cert: certs.aCert, serverName: "a.test" },
          { key: certs.bKey, cert: certs.bCert, serverName: "b.test" },
        ],
        undefined,
        undefined,
      ),
    );
    const [codeA, bodyA, subjectA] = await curl(server.port, "a.test");
    expect([codeA, bodyA]).toEqual([0, "hello a.test"]);
    expect(subjectA).toMatch(/CN ?= ?a\.test/);
    const [codeB, bodyB, subjectB] = await curl(server.port, "b.test");
    expect([codeB, bodyB]).toEqual([0, "hello b.test"]);
    expect(subjectB).toMatch(/CN ?= ?b\.test/);
  });

  it("with ca set, clients without a certificate still connect (uWS asks for one, and does not require it)", async () => {
    const server = listen(resolve({ key: certs.dKey, cert: certs.dCert, ca: certs.ca }, undefined, undefined));
    expect(await handshake(server.port, undefined)).toEqual({ cn: "localhost", authorized: true, error: null });
    expect(await httpsGet(server.port, "localhost")).toBe("hello localhost");
  });

  it("Deno-style cert and key", async () => {
    const server = listen(resolve(undefined, certs.dCert, certs.dKey));
    expect(await httpsGet(server.port, "localhost")).toBe("hello localhost");
  });
});
