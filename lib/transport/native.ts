/** Finds, loads and caches the optional uwserve_native addon (native/*.cc), built at install by scripts/build-native.mjs. */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { uwserveError } from "../errors.js";

/** The functions uwserve_native exports (native/addon.cc). */
export interface NativeAddon {
  /**
   * Sets whether the uWS listen socket(s) bound to TCP `port` (when `path` is null) or to the
   * unix socket `path` (exactly as given to `listen_unix`; `port` is then ignored) keep the
   * calling thread's event loop alive, like `net.Server#ref()`/`unref()`; accepted connections
   * are unaffected. Returns how many listen sockets matched (0: none bound there).
   * Throws TypeError on bad arguments.
   */
  setListenRef(port: number, path: string | null, ref: boolean): number;
  /**
   * How many uv_poll handles this thread's loop has open (not closing): one per uWS socket,
   * connections and listen sockets alike.
   */
  openSocketCount(): number;
  /**
   * Creates an anonymous in-memory file (Linux `memfd_create`, close-on-exec) holding exactly
   * `contents`, sealed against later writes, and returns its fd: `/proc/self/fd/<fd>` opens it
   * as a file until the caller closes the fd with `fs.closeSync`. `name` (1 to 249 bytes) only
   * labels it in /proc. Throws TypeError on bad arguments, and an Error whose `code` is the errno
   * name where it cannot (`ENOSYS` off Linux, `EMFILE`, `ENOMEM`, ...).
   */
  createMemoryFile(name: string, contents: Uint8Array): number;
  /** gzip with a per-thread deflate stream that is reset, not rebuilt, per call (~25 % less CPU than zlib.gzipSync on small bodies). */
  gzipSync(input: Uint8Array, level: number): Buffer;
  /** Runs `callback` with fd 1 on /dev/null (the core prints a line per SNI domain routed). */
  callWithQuietStdout<T>(callback: () => T): T;
  /**
   * Joins the cross-thread topic hub (native/hub.cc; lib/hub.ts wraps these) and returns the
   * new member's id. `deliver` runs on this thread, once per wake-up, with every message queued
   * since the last call: message i is topic `topics[meta[4i]]`, flags `meta[4i+1]` (1 binary,
   * 2 compress, 4 external) and bytes `arena[meta[4i+2] .. +meta[4i+3]]`, or all of
   * `externals[meta[4i+2]]` when external (shared with other threads: read only). Members only
   * hear members of the same `group`. Leaves by itself when this thread's env is torn down.
   */
  hubJoin(deliver: HubDeliver, group?: string): number;
  /** Adds `delta` (+1 subscribe, -1 unsubscribe) to the member's interest in topic; returns the new count (RangeError below 0). */
  hubInterest(member: number, topic: string, delta: number): number;
  /**
   * Queues one shared copy of payload to every other member with interest in topic; returns how
   * many members it was queued to, or -1 when a target's queue was full (that copy dropped).
   */
  hubPublish(member: number, topic: string, payload: string | ArrayBuffer | ArrayBufferView, isBinary: boolean, compress: boolean): number;
  /** Leaves the hub (on the member's own thread; throws elsewhere); false when it had already left. */
  hubLeave(member: number): boolean;
  /** The hub's counters, or one member's (null when it isn't in the hub). */
  /** Subscribers the other members of `member`'s group reported for `topic`. */
  hubSubscribers(member: number, topic: string): number;
  hubStats(): NativeHubStats;
  hubStats(member: number): NativeHubMemberStats | null;
}

/** hubJoin's callback: one batch of messages (see NativeAddon.hubJoin). */
export type HubDeliver = (
  topics: string[],
  meta: Uint32Array,
  arena: ArrayBuffer | undefined,
  externals: ArrayBuffer[] | undefined,
) => void;

/** Process-wide hub counters (totals since the process started, except where noted). */
export interface NativeHubStats {
  /** Members now in the hub. */
  members: number;
  /** Distinct (group, topic) pairs some member has interest in now. */
  topics: number;
  publishes: number;
  /** Message copies queued to members. */
  queuedTotal: number;
  /** Messages waiting in members' queues now. */
  queued: number;
  /** Copies dropped because the target's queue was full. */
  dropped: number;
  /** Messages still queued to members when they left. */
  droppedByLeave: number;
  /** Shared payload buffers alive now (queued, or held by an external ArrayBuffer not yet collected). */
  livePayloads: number;
  livePayloadBytes: number;
  maxQueuedMessages: number;
  maxQueuedBytes: number;
  externalMinBytes: number;
}

/** One member's counters. */
export interface NativeHubMemberStats {
  /** Messages waiting now, and their payload bytes. */
  queued: number;
  queuedBytes: number;
  /** Messages queued to it, handed to its deliver, and dropped for it (queue full). */
  received: number;
  delivered: number;
  dropped: number;
  /** Wake-ups that delivered a batch. */
  wakeups: number;
  /** hubPublish calls it made. */
  published: number;
  /** Topics it has interest in now. */
  topics: number;
}

const FILE = "uwserve_native.node";
const requireNative = createRequire(import.meta.url);
/** The package root: this file runs as <root>/dist/transport/native.js. */
const root = fileURLToPath(new URL("../..", import.meta.url));

let cached: NativeAddon | undefined;
let failure: Error | undefined;

/** Takes nothing, returns [label, absolute path] for every place the addon may be, in load order. */
function candidates(): Array<[string, string]> {
  const list: Array<[string, string]> = [];
  const explicit = process.env.UWSERVE_NATIVE;
  // Relative to the working directory, as a user typing the variable would expect.
  if (explicit) list.push([`$UWSERVE_NATIVE=${explicit}`, resolve(explicit)]);
  for (const config of ["Release", "Debug"]) {
    const file = resolve(root, "build", config, FILE);
    list.push([file, file]);
  }
  return list;
}

const NATIVE_FUNCTIONS = [
  "setListenRef",
  "openSocketCount",
  "createMemoryFile",
  "gzipSync",
  "callWithQuietStdout",
  "hubJoin",
  "hubInterest",
  "hubPublish",
  "hubLeave",
  "hubStats",
  "hubSubscribers",
] as const;

/**
 * Takes what require() returned, returns true when it has every function NativeAddon declares
 * (a stale build from an older uwserve may lack newer ones).
 */
function isNativeAddon(value: unknown): value is NativeAddon {
  if (typeof value !== "object" || value === null) return false;
  const mod = value as Record<string, unknown>;
  return NATIVE_FUNCTIONS.every((name) => typeof mod[name] === "function");
}

/**
 * Returns the addon, loading it on first use. Throws one Error (code
 * `UWSERVE_ERR_NATIVE_UNAVAILABLE`) listing every path tried and how to build it.
 */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  if (failure) throw failure;
  const tried: string[] = [];
  for (const [label, file] of candidates()) {
    if (!existsSync(file)) {
      tried.push(`  ${label}: not found`);
      continue;
    }
    try {
      const mod: unknown = requireNative(file);
      if (isNativeAddon(mod)) {
        cached = mod;
        return mod;
      }
      tried.push(`  ${label}: not a current uwserve_native build (one of ${NATIVE_FUNCTIONS.join(", ")} is missing)`);
    } catch (err) {
      // Wrong architecture, wrong libc or a truncated file: keep the dynamic loader's words.
      tried.push(`  ${label}: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`);
    }
  }
  failure = uwserveError(
    Error,
    "UWSERVE_ERR_NATIVE_UNAVAILABLE",
    "uwserve: the native addon (uwserve_native.node) could not be loaded. Tried:\n" +
      `${tried.join("\n")}\n` +
      "Fix: install cmake (or python3, make and a C++ compiler) and run `npm rebuild uwserve`\n" +
      "(in a checkout: `node scripts/build-native.mjs`), or point $UWSERVE_NATIVE at a built uwserve_native.node.",
  );
  throw failure;
}

/** Returns the addon, or null when it cannot be loaded (loadNative's error says why). */
export function tryLoadNative(): NativeAddon | null {
  try {
    return loadNative();
  } catch {
    return null;
  }
}
