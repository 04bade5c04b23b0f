/**
 * The `websocket` option: validated and resolved to Bun's defaults (not uWS's), and turned into
 * the numbers the uWS core takes. The core terminates the process on some values it doesn't
 * accept (an idleTimeout outside 0 or 8–960), so every value is checked here first.
 */
import { invalidOption, optionOutOfRange, uwserveError } from "../errors.js";
import type { WebSocketHandler } from "../types.js";

export interface ResolvedWebSocketOptions {
  open: NonNullable<WebSocketHandler["open"]> | null;
  message: NonNullable<WebSocketHandler["message"]> | null;
  close: NonNullable<WebSocketHandler["close"]> | null;
  drain: NonNullable<WebSocketHandler["drain"]> | null;
  ping: NonNullable<WebSocketHandler["ping"]> | null;
  pong: NonNullable<WebSocketHandler["pong"]> | null;
  error: NonNullable<WebSocketHandler["error"]> | null;
  dropped: NonNullable<WebSocketHandler["dropped"]> | null;
  maxPayloadLength: number;
  backpressureLimit: number;
  closeOnBackpressureLimit: boolean;
  idleTimeout: number;
  sendPings: boolean;
  /** permessage-deflate: the core's compressor and decompressor names (null: off), read by the engine. */
  compression: { compress: string | null; decompress: string | null };
  publishToSelf: boolean;
  messageConcurrency: number;
  maxPendingMessages: number;
}

const MIB = 1024 * 1024;
/** The core keeps lengths in a signed 32-bit int. */
const MAX_INT32 = 2 ** 31 - 1;
const HANDLERS = ["open", "message", "close", "drain", "ping", "pong", "error", "dropped"] as const;
const KNOWN = new Set<string>([
  ...HANDLERS,
  "maxPayloadLength", "backpressureLimit", "closeOnBackpressureLimit", "idleTimeout", "sendPings",
  "perMessageDeflate", "publishToSelf", "messageConcurrency", "maxPendingMessages",
]);

/** Defaults for servers without a `websocket` option (Deno's upgradeWebSocket still works). */
export function defaultWebSocketOptions(): ResolvedWebSocketOptions {
  return resolveWebSocketOptions({});
}

export function resolveWebSocketOptions(value: unknown): ResolvedWebSocketOptions {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw invalidOption("websocket", "an object of handlers ({ open, message, close, ... })", value);
  }
  const options = value as Record<string, unknown>;
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) {
      throw uwserveError(TypeError, "UWSERVE_ERR_INVALID_OPTION", `uwserve: unknown websocket option "${key}"`);
    }
  }
  const handler = (name: (typeof HANDLERS)[number]) => {
    const fn = options[name];
    if (fn === undefined || fn === null) return null;
    if (typeof fn !== "function") throw invalidOption(`websocket.${name}`, "a function", fn);
    return fn as never;
  };
  const idleTimeout = integer(options, "idleTimeout", 120, 0, 960);
  if (idleTimeout !== 0 && idleTimeout < 8) {
    // The core terminates the process below 8 s (its timer granularity is 4 s).
    throw optionOutOfRange("websocket.idleTimeout", "0 (off) or 8 to 960 seconds", idleTimeout);
  }
  const messageConcurrency = options.messageConcurrency ?? Infinity;
  if (typeof messageConcurrency !== "number" || !(messageConcurrency >= 1) || (messageConcurrency !== Infinity && !Number.isInteger(messageConcurrency))) {
    throw optionOutOfRange("websocket.messageConcurrency", "a positive integer or Infinity", messageConcurrency);
  }
  return {
    open: handler("open"),
    message: handler("message"),
    close: handler("close"),
    drain: handler("drain"),
    ping: handler("ping"),
    pong: handler("pong"),
    error: handler("error"),
    dropped: handler("dropped"),
    maxPayloadLength: integer(options, "maxPayloadLength", 16 * MIB, 1, MAX_INT32),
    backpressureLimit: integer(options, "backpressureLimit", 16 * MIB, 1, MAX_INT32),
    closeOnBackpressureLimit: boolean(options, "closeOnBackpressureLimit", false),
    idleTimeout,
    sendPings: boolean(options, "sendPings", true),
    compression: compressionChoice(options.perMessageDeflate),
    publishToSelf: boolean(options, "publishToSelf", false),
    messageConcurrency,
    maxPendingMessages: integer(options, "maxPendingMessages", 1024, 1, MAX_INT32),
  };
}

function integer(options: Record<string, unknown>, name: string, fallback: number, min: number, max: number): number {
  const value = options[name];
  if (value === undefined) return fallback;
  if (typeof value !== "number") throw invalidOption(`websocket.${name}`, "a number", value);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw optionOutOfRange(`websocket.${name}`, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

function boolean(options: Record<string, unknown>, name: string, fallback: boolean): boolean {
  const value = options[name];
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw invalidOption(`websocket.${name}`, "a boolean", value);
  return value;
}

/** Bun's compressor names → the core's dedicated window sizes. */
const COMPRESSORS: Record<string, string> = {
  "3KB": "DEDICATED_COMPRESSOR_3KB", "4KB": "DEDICATED_COMPRESSOR_4KB", "8KB": "DEDICATED_COMPRESSOR_8KB",
  "16KB": "DEDICATED_COMPRESSOR_16KB", "32KB": "DEDICATED_COMPRESSOR_32KB", "64KB": "DEDICATED_COMPRESSOR_64KB",
  "128KB": "DEDICATED_COMPRESSOR_128KB", "256KB": "DEDICATED_COMPRESSOR_256KB", dedicated: "DEDICATED_COMPRESSOR_256KB",
};
const DECOMPRESSORS: Record<string, string> = {
  "512B": "DEDICATED_DECOMPRESSOR_512B", "1KB": "DEDICATED_DECOMPRESSOR_1KB", "2KB": "DEDICATED_DECOMPRESSOR_2KB",
  "4KB": "DEDICATED_DECOMPRESSOR_4KB", "8KB": "DEDICATED_DECOMPRESSOR_8KB", "16KB": "DEDICATED_DECOMPRESSOR_16KB",
  "32KB": "DEDICATED_DECOMPRESSOR_32KB", dedicated: "DEDICATED_DECOMPRESSOR",
};

/**
 * `perMessageDeflate`: `true`, `false`, or `{ compress, decompress }` with Bun's values, checked
 * without loading the core (serve() validates before it picks an engine).
 */
function compressionChoice(value: unknown): ResolvedWebSocketOptions["compression"] {
  if (value === undefined || value === false) return { compress: null, decompress: null };
  if (value === true) return { compress: "SHARED_COMPRESSOR", decompress: "SHARED_DECOMPRESSOR" };
  if (typeof value !== "object" || value === null) {
    throw invalidOption("websocket.perMessageDeflate", "a boolean or { compress, decompress }", value);
  }
  const { compress = true, decompress = true } = value as { compress?: unknown; decompress?: unknown };
  const pick = (side: string, choice: unknown, table: Record<string, string>, shared: string): string | null => {
    if (choice === false || choice === "disable") return null;
    if (choice === true || choice === "shared") return shared;
    if (typeof choice === "string" && table[choice] !== undefined) return table[choice]!;
    throw optionOutOfRange(
      `websocket.perMessageDeflate.${side}`,
      `true, false, "disable", "shared" or one of ${Object.keys(table).map((k) => `"${k}"`).join(", ")}`,
      choice,
    );
  };
  return { compress: pick("compress", compress, COMPRESSORS, "SHARED_COMPRESSOR"), decompress: pick("decompress", decompress, DECOMPRESSORS, "SHARED_DECOMPRESSOR") };
}

/**
 * The message limit given to an engine. Both cut a message past their own limit themselves
 * (uWS without a close frame: the client sees 1006; `ws` with a bare 1009), so an engine gets
 * twice the user's limit (64 KiB more at least) and the hub closes with 1009 and a reason over
 * the user's: a client gets that close frame for any message up to this ceiling; the close
 * handler sees 1009 either way.
 */
export function engineMaxPayload(limit: number): number {
  return Math.min(0x7fffffff, Math.max(limit * 2, limit + 64 * 1024));
}
