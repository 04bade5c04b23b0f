// Files the TLS and file scenarios need, made at run time and never committed: a self-signed
// certificate (openssl CLI, into bench/_tls/, ignored by git) and the file /file serves (a tmp dir).
// The runner makes both once and hands their paths to every server through the environment
// (BENCH_TLS_KEY, BENCH_TLS_CERT, BENCH_FILE); a server started by hand makes its own.
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ONE_MIB } from "../_data.mjs";

export const TLS_DIR = fileURLToPath(new URL("../_tls/", import.meta.url));

/**
 * Returns { keyFile, certFile }: the paths in BENCH_TLS_KEY / BENCH_TLS_CERT when set, else
 * bench/_tls/key.pem and cert.pem, made with `openssl req -x509` (P-256 key, CN=localhost,
 * SAN localhost + 127.0.0.1, 30 days) when missing. The key file is 0600 in a 0700 directory.
 */
export function ensureTls() {
  if (process.env.BENCH_TLS_KEY && process.env.BENCH_TLS_CERT) {
    return { keyFile: process.env.BENCH_TLS_KEY, certFile: process.env.BENCH_TLS_CERT };
  }
  const keyFile = join(TLS_DIR, "key.pem");
  const certFile = join(TLS_DIR, "cert.pem");
  if (existsSync(keyFile) && existsSync(certFile)) return { keyFile, certFile };
  mkdirSync(TLS_DIR, { recursive: true, mode: 0o700 });
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", keyFile, "-out", certFile, "-days", "30", "-subj", "/CN=localhost",
    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
  ], { stdio: ["ignore", "ignore", "pipe"] });
  chmodSync(keyFile, 0o600);
  return { keyFile, certFile };
}

/**
 * Takes a size in bytes, writes a file of that many bytes of ONE_MIB's pattern (repeated) into a
 * fresh tmp dir and returns { path, remove() }. Named .bin so every server types it
 * application/octet-stream.
 */
export function makeFile(size = ONE_MIB.length, name = "bench.bin") {
  const dir = mkdtempSync(join(tmpdir(), "uwserve-bench-"));
  const path = join(dir, name);
  const block = Buffer.from(ONE_MIB.buffer, ONE_MIB.byteOffset, ONE_MIB.byteLength);
  if (size === block.length) {
    writeFileSync(path, block);
  } else {
    const chunks = [];
    for (let left = size; left > 0; left -= block.length) chunks.push(left >= block.length ? block : block.subarray(0, left));
    writeFileSync(path, Buffer.concat(chunks));
  }
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Returns the path /file serves: BENCH_FILE when set, else a 1 MiB file made now (removed at exit). */
export function benchFile() {
  if (process.env.BENCH_FILE) return process.env.BENCH_FILE;
  const made = makeFile();
  process.on("exit", made.remove);
  for (const signal of ["SIGINT", "SIGTERM"]) process.once(signal, () => process.exit(0));
  return made.path;
}
