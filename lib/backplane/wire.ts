/**
 * The bytes a backplane puts on a broker channel: one message per publish, self-describing so
 * that a receiver can drop what is not ours (another application on the channel, garbage) and
 * what it sent itself (Redis echoes a publisher's own messages to its subscriptions).
 *
 *   0  "uwB" and a version byte (1)
 *   4  flags: 1 binary, 2 compress
 *   5  origin: 8 random bytes, one per process
 *  13  stream: u16, the publishing thread within the process (0: the process has one)
 *  15  seq: u32, per stream, so that a receiver can refuse a message it already had
 *  19  topic length: u16, then the topic (UTF-8), then the payload
 */
import { isUtf8 } from "node:buffer";
import { randomBytes } from "node:crypto";

const MAGIC_0 = 0x75; // u
const MAGIC_1 = 0x77; // w
const MAGIC_2 = 0x42; // B
const VERSION = 1;
export const HEADER_BYTES = 21;
export const ORIGIN_BYTES = 8;
const MAX_TOPIC_BYTES = 0xffff;

export const FLAG_BINARY = 1;
export const FLAG_COMPRESS = 2;

/** A new process origin (8 random bytes). */
export function newOrigin(): Buffer {
  return randomBytes(ORIGIN_BYTES);
}

/** One decoded message; `payload` is a view into the received bytes. */
export interface WireMessage {
  topic: string;
  payload: Uint8Array;
  isBinary: boolean;
  compress: boolean;
  /** The origin's 8 bytes and the stream, as one string key (for per-publisher order). */
  publisher: string;
  seq: number;
}

/**
 * Encodes one publish. Returns null when the topic is too long to frame (over 64 KiB of UTF-8).
 */
export function encodeMessage(
  origin: Uint8Array,
  stream: number,
  seq: number,
  topic: string,
  message: string | Uint8Array | ArrayBuffer,
  isBinary: boolean,
  compress: boolean,
): Buffer | null {
  const topicBytes = Buffer.byteLength(topic);
  if (topicBytes > MAX_TOPIC_BYTES) return null;
  const payloadBytes = typeof message === "string" ? Buffer.byteLength(message) : message.byteLength;
  const frame = Buffer.allocUnsafe(HEADER_BYTES + topicBytes + payloadBytes);
  frame[0] = MAGIC_0;
  frame[1] = MAGIC_1;
  frame[2] = MAGIC_2;
  frame[3] = VERSION;
  frame[4] = (isBinary ? FLAG_BINARY : 0) | (compress ? FLAG_COMPRESS : 0);
  frame.set(origin, 5);
  frame.writeUInt16BE(stream, 13);
  frame.writeUInt32BE(seq >>> 0, 15);
  frame.writeUInt16BE(topicBytes, 19);
  frame.write(topic, HEADER_BYTES, "utf8");
  const at = HEADER_BYTES + topicBytes;
  if (typeof message === "string") frame.write(message, at, "utf8");
  else if (message instanceof ArrayBuffer) frame.set(new Uint8Array(message), at);
  else frame.set(message, at);
  return frame;
}

/** The topic of an encoded message, or null when `frame` is not one. */
export function topicOf(frame: Uint8Array): string | null {
  if (!hasHeader(frame)) return null;
  const length = (frame[19]! << 8) | frame[20]!;
  if (HEADER_BYTES + length > frame.length) return null;
  return Buffer.from(frame.buffer, frame.byteOffset + HEADER_BYTES, length).toString("utf8");
}

/** True when `frame` came from the process with `origin`. */
export function isFrom(frame: Uint8Array, origin: Uint8Array): boolean {
  for (let i = 0; i < ORIGIN_BYTES; i++) if (frame[5 + i] !== origin[i]) return false;
  return true;
}

/** Decodes a message from a broker, or null when it is not one of ours (any bytes may arrive). */
export function decodeMessage(frame: Uint8Array): WireMessage | null {
  const topic = topicOf(frame);
  if (topic === null) return null;
  const flags = frame[4]!;
  if ((flags & ~(FLAG_BINARY | FLAG_COMPRESS)) !== 0) return null;
  const at = HEADER_BYTES + ((frame[19]! << 8) | frame[20]!);
  const view = Buffer.from(frame.buffer, frame.byteOffset, frame.length);
  // A text message must be UTF-8 (it goes out as a WebSocket text frame).
  const payload = frame.subarray(at);
  if ((flags & FLAG_BINARY) === 0 && !isUtf8(payload)) return null;
  return {
    topic,
    payload,
    isBinary: (flags & FLAG_BINARY) !== 0,
    compress: (flags & FLAG_COMPRESS) !== 0,
    publisher: view.toString("latin1", 5, 15),
    seq: view.readUInt32BE(15),
  };
}

function hasHeader(frame: Uint8Array): boolean {
  return frame.length >= HEADER_BYTES && frame[0] === MAGIC_0 && frame[1] === MAGIC_1 && frame[2] === MAGIC_2 && frame[3] === VERSION;
}
