/**
 * The bytes a backplane puts on a broker channel. One broker message carries a run of publishes
 * to one topic (a batch: the publishes of one event-loop turn, so a burst costs the broker and
 * its client one command, not one each), self-describing so that a receiver can drop what is
 * not ours (another application on the channel, garbage) and what it sent itself (Redis echoes
 * a publisher's own messages to its subscriptions):
 *
 *   0  "uwB" and a version byte (2)
 *   4  origin: 8 random bytes, one per process
 *  12  topic length: u16, then the topic (UTF-8)
 *   …  one or more entries: flags u8 (1 binary, 2 compress), stream u16 (the publishing thread
 *      in its process), seq u32 (per stream, so a receiver can refuse what it already had),
 *      payload length u32, payload
 *
 * Worker threads hand the bridge single-entry batches in the same format (bridge.ts).
 */
import { isUtf8 } from "node:buffer";
import { randomBytes } from "node:crypto";

const MAGIC = [0x75, 0x77, 0x42]; // "uwB"
const VERSION = 2;
export const ORIGIN_BYTES = 8;
const TOPIC_AT = 14;
const ENTRY_HEADER = 11;
const MAX_TOPIC_BYTES = 0xffff;

export const FLAG_BINARY = 1;
export const FLAG_COMPRESS = 2;

/** A new process origin (8 random bytes). */
export function newOrigin(): Buffer {
  return randomBytes(ORIGIN_BYTES);
}

export type Payload = string | Uint8Array | ArrayBuffer;

/** A batch being written: entries for one topic, then finish(). */
export class BatchWriter {
  readonly topic: string;
  /** Bytes of the finished message so far. */
  bytes: number;
  /** Entries in it. */
  count: number;
  readonly #origin: Uint8Array;
  readonly #topicBytes: number;
  readonly #parts: Buffer[];

  /** Null when the topic is too long to frame (over 64 KiB of UTF-8). */
  static open(origin: Uint8Array, topic: string): BatchWriter | null {
    const topicBytes = Buffer.byteLength(topic);
    return topicBytes > MAX_TOPIC_BYTES ? null : new BatchWriter(origin, topic, topicBytes);
  }

  private constructor(origin: Uint8Array, topic: string, topicBytes: number) {
    this.topic = topic;
    this.#origin = origin;
    this.#topicBytes = topicBytes;
    this.#parts = [];
    this.bytes = TOPIC_AT + topicBytes;
    this.count = 0;
  }

  /** The size an entry for `payload` adds. */
  static entryBytes(payload: Payload): number {
    return ENTRY_HEADER + (typeof payload === "string" ? Buffer.byteLength(payload) : payload.byteLength);
  }

  add(flags: number, stream: number, seq: number, payload: Payload): void {
    const length = typeof payload === "string" ? Buffer.byteLength(payload) : payload.byteLength;
    const entry = Buffer.allocUnsafe(ENTRY_HEADER + length);
    entry[0] = flags;
    entry.writeUInt16BE(stream, 1);
    entry.writeUInt32BE(seq >>> 0, 3);
    entry.writeUInt32BE(length, 7);
    if (typeof payload === "string") entry.write(payload, ENTRY_HEADER, "utf8");
    else entry.set(payload instanceof ArrayBuffer ? new Uint8Array(payload) : payload, ENTRY_HEADER);
    this.#parts.push(entry);
    this.bytes += entry.length;
    this.count++;
  }

  finish(): Buffer {
    const head = Buffer.allocUnsafe(TOPIC_AT + this.#topicBytes);
    head.set(MAGIC, 0);
    head[3] = VERSION;
    head.set(this.#origin, 4);
    head.writeUInt16BE(this.#topicBytes, 12);
    head.write(this.topic, TOPIC_AT, "utf8");
    return Buffer.concat([head, ...this.#parts], this.bytes);
  }
}

/** One publish from a batch; `payload` is a view into the received bytes. */
export interface WireEntry {
  payload: Uint8Array;
  isBinary: boolean;
  compress: boolean;
  flags: number;
  stream: number;
  seq: number;
}

export interface WireBatch {
  topic: string;
  /** The origin's 8 bytes as a latin1 string (a map key). */
  origin: string;
  entries: WireEntry[];
}

/** True when `frame` is a broker message from the process with `origin` (checked before decoding it). */
export function isFrom(frame: Uint8Array, origin: Uint8Array): boolean {
  if (!hasHeader(frame)) return false;
  for (let i = 0; i < ORIGIN_BYTES; i++) if (frame[4 + i] !== origin[i]) return false;
  return true;
}

function hasHeader(frame: Uint8Array): boolean {
  return frame.length >= TOPIC_AT && frame[0] === MAGIC[0] && frame[1] === MAGIC[1] && frame[2] === MAGIC[2] && frame[3] === VERSION;
}

/**
 * Decodes a broker message, or null when it is not one of ours: any bytes may arrive, so every
 * length is checked, the entries must fill it exactly, and text must be UTF-8 (it goes out as a
 * WebSocket text frame).
 */
export function decodeBatch(frame: Uint8Array): WireBatch | null {
  if (!hasHeader(frame)) return null;
  const view = Buffer.from(frame.buffer, frame.byteOffset, frame.length);
  const topicBytes = view.readUInt16BE(12);
  let at = TOPIC_AT + topicBytes;
  if (at > view.length) return null;
  const topic = view.toString("utf8", TOPIC_AT, at);
  const entries: WireEntry[] = [];
  while (at < view.length) {
    if (at + ENTRY_HEADER > view.length) return null;
    const flags = view[at]!;
    const length = view.readUInt32BE(at + 7);
    const start = at + ENTRY_HEADER;
    if ((flags & ~(FLAG_BINARY | FLAG_COMPRESS)) !== 0 || start + length > view.length) return null;
    const payload = frame.subarray(start, start + length);
    if ((flags & FLAG_BINARY) === 0 && !isUtf8(payload)) return null;
    entries.push({ payload, flags, isBinary: (flags & FLAG_BINARY) !== 0, compress: (flags & FLAG_COMPRESS) !== 0, stream: view.readUInt16BE(at + 1), seq: view.readUInt32BE(at + 3) });
    at = start + length;
  }
  if (entries.length === 0) return null;
  return { topic, origin: view.toString("latin1", 4, 4 + ORIGIN_BYTES), entries };
}

/** One publish as a single-entry batch (a worker thread's frame for the bridge; tests). */
export function encodeMessage(origin: Uint8Array, stream: number, seq: number, topic: string, message: Payload, isBinary: boolean, compress: boolean): Buffer | null {
  const batch = BatchWriter.open(origin, topic);
  if (batch === null) return null;
  batch.add((isBinary ? FLAG_BINARY : 0) | (compress ? FLAG_COMPRESS : 0), stream, seq, message);
  return batch.finish();
}
