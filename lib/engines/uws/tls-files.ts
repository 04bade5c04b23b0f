/**
 * TLS material for the uws engine: the validated entries (transport/tls.ts) turned into the
 * file paths uWebSockets.js insists on (H12) without a private key ever reaching a disk: memfds
 * through the native addon where it runs on Linux (/proc/self/fd/N), else 0600 files in a
 * private 0700 directory (tmpfs when there is one), the key re-encrypted under a one-time
 * passphrase, all closed or removed by release() once the core built its SSL contexts.
 */
import { randomBytes } from "node:crypto";
import { accessSync, closeSync, constants, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tryLoadNative, type NativeAddon } from "../../transport/native.js";
import { readTlsEntries, type TlsEntry } from "../../transport/tls.js";
import type { AppOptions } from "./uws.js";

export interface ResolvedTls {
  /** Options for uws.SSLApp (the default certificate). */
  app: AppOptions;
  /**
   * SNI: each serverName with its own options, for app.addServerName(name, options). The default
   * entry is not repeated here even when it has a serverName: connections naming it, or no name,
   * or a name no entry has, all get `app`'s certificate. uWS gives every added server name its
   * own empty router, so routes (and ws routes) must be registered again after
   * `app.domain(serverName)` for each of these; `app.domain("")` returns to the default router.
   */
  servers: Array<{ serverName: string; options: AppOptions }>;
  /** Closes the in-memory files / removes the temp files: call right after SSLApp() and every addServerName() returned. */
  release(): void;
}

/** Validates and materialises `tls` (object or array for SNI) and Deno's top-level `cert`/`key`. null when no TLS. Throws uwserve errors naming the problem. */
export function resolveTls(tls: unknown, denoCert: unknown, denoKey: unknown): ResolvedTls | null {
  const entries = readTlsEntries(tls, denoCert, denoKey);
  if (entries.length === 0) return null;
  // The default certificate answers clients without SNI and names no entry matches.
  const fallback = entries.find((entry) => entry.serverName === null) ?? entries[0]!;
  const store = new MemoryFiles();
  try {
    const app = store.appOptions(fallback);
    const servers: ResolvedTls["servers"] = [];
    for (const entry of entries) {
      // The default answers its own name too (as the fallback), without a second SSL context.
      if (entry.serverName === null || entry === fallback) continue;
      servers.push({ serverName: entry.serverName, options: store.appOptions(entry) });
    }
    return { app, servers, release: () => store.release() };
  } catch (err) {
    store.release();
    throw err;
  }
}

// ---- materialising -------------------------------------------------------------------------

/**
 * Files the core can open by path: memfds where the native addon runs on Linux, else 0600
 * files in one private directory; release() closes or removes all of them.
 */
class MemoryFiles {
  #native: NativeAddon | null = process.platform === "linux" ? tryLoadNative() : null;
  #fds: number[] = [];
  #dir: string | null = null;
  #count = 0;
  #released = false;
  /** Removes the temp directory if the process exits before release() (a crash between the two). */
  #onExit = (): void => this.release();

  /** Takes an entry, writes its material, returns the core's options pointing at it. */
  appOptions(entry: TlsEntry): AppOptions {
    const label = entry.prefix === "" ? "tls" : entry.prefix.replace(/\[(\d+)\]/, "$1"); // "tls", "tls1"
    // One-time passphrase: the key as written is useless without this process's memory.
    const passphrase = randomBytes(24).toString("base64url");
    const key = entry.key.export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase });
    const options: AppOptions = {
      key_file_name: this.#write(`${label}-key`, key),
      cert_file_name: this.#write(`${label}-cert`, entry.cert),
      passphrase,
    };
    if (entry.ca !== null) options.ca_file_name = this.#write(`${label}-ca`, entry.ca);
    if (entry.dhParamsFile !== null) options.dh_params_file_name = entry.dhParamsFile;
    if (entry.lowMemoryMode) options.ssl_prefer_low_memory_usage = true;
    return options;
  }

  /** Takes a label and PEM text, returns a path that reads back exactly that text. */
  #write(label: string, text: string | Buffer): string {
    const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text, "utf8");
    const name = `${label}-${this.#count++}.pem`;
    if (this.#native !== null) {
      const path = this.#memoryFile(this.#native, name, bytes);
      if (path !== null) return path;
      this.#native = null; // memfd or /proc unusable here: temp files from now on
    }
    return this.#tempFile(name, bytes);
  }

  /** Takes the addon, a name and bytes, returns /proc/self/fd/N for a memfd holding them, or null where that fails. */
  #memoryFile(native: NativeAddon, name: string, bytes: Buffer): string | null {
    let fd: number;
    try {
      fd = native.createMemoryFile(`uwserve-${name}`, bytes);
    } catch {
      return null; // ENOSYS (old kernel), EPERM (seccomp): fall back
    }
    const path = `/proc/self/fd/${fd}`;
    try {
      // Without /proc mounted (some sandboxes) the path would not open for the core.
      if (statSync(path).size === bytes.length) {
        this.#fds.push(fd);
        return path;
      }
    } catch {
      // fall through
    }
    closeSync(fd);
    return null;
  }

  /** Takes a name and bytes, returns the path of a new 0600 file holding them in the private directory. */
  #tempFile(name: string, bytes: Buffer): string {
    if (this.#dir === null) {
      // mkdtemp makes the directory 0700; tmpfs keeps it off the disk where there is one.
      this.#dir = mkdtempSync(join(privateBase(), "uwserve-tls-"));
      process.once("exit", this.#onExit);
    }
    const path = join(this.#dir, name);
    writeFileSync(path, bytes, { mode: 0o600, flag: "wx" });
    return path;
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    for (const fd of this.#fds.splice(0)) {
      try {
        closeSync(fd);
      } catch {
        // already closed by someone else: nothing left to free
      }
    }
    if (this.#dir !== null) {
      rmSync(this.#dir, { recursive: true, force: true });
      process.removeListener("exit", this.#onExit);
      this.#dir = null;
    }
  }
}

/** Returns /dev/shm when it is a writable tmpfs directory (Linux), else the OS temp directory. */
function privateBase(): string {
  if (process.platform === "linux") {
    try {
      accessSync("/dev/shm", constants.W_OK | constants.X_OK);
      if (statSync("/dev/shm").isDirectory()) return "/dev/shm";
    } catch {
      // no usable /dev/shm
    }
  }
  return tmpdir();
}
