/**
 * The node engine's topic tree, and the frames it writes. A publish is framed once (one header,
 * one payload encoding) and that same frame is written to every subscriber; writes to one
 * subscriber within a tick are corked into one writev at the end of it, so a burst of publishes
 * (a client's read of 32 messages, say) costs each subscriber one syscall, not one per message.
 *
 * Frames are built by `ws`'s `Sender.frame`, which `ws` exports but doesn't document: it is
 * checked at load against known bytes, and where it doesn't produce them (or
 * UWSERVE_WS_FRAMING=ws), every message goes through each socket's `ws.send()` instead.
 */
import * as wsLibrary from "ws";
import type { Message, TopicKey, TopicTree } from "../../websocket/connection.js";

interface FrameOptions {
  fin: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
  rsv1: boolean;
}
/** `ws` exports its Sender (wrapper.mjs); its types don't declare it. */
const Sender = (wsLibrary as unknown as { Sender?: { frame?: (data: Buffer, options: FrameOptions) => Buffer[] } }).Sender;

/** Frames up to this size go out as one buffer (header and payload joined); larger ones as two. */
const JOIN_MAX = 16 * 1024;
const OPCODE_TEXT = 1;
const OPCODE_BINARY = 2;

/** One server-to-client frame: `head` alone, or `head` then `body`. */
export interface Frame {
  head: Buffer;
  body: Buffer | null;
}

/** What the tree needs of a subscriber (NodeConnection). */
export interface TopicSubscriber {
  /** Writes a frame built for `payload` (or sends `payload` itself where frames can't be shared). */
  deliver(frame: () => Frame, payload: Buffer, isBinary: boolean, compress: boolean): void;
  /** The tick's cork ends: write what was corked. */
  uncorkTurn(): void;
}

/** Whether `Sender.frame` builds the frames RFC 6455 §5.2 asks for (unmasked, FIN, 7/16/64-bit lengths). */
function senderFramesCorrectly(): boolean {
  if (typeof Sender?.frame !== "function") return false;
  try {
    const frameOf = (payload: Buffer, opcode: number): Buffer =>
      Buffer.concat(Sender.frame!(payload, { fin: true, opcode, mask: false, readOnly: false, rsv1: false }));
    const small = frameOf(Buffer.from("hi"), OPCODE_TEXT);
    const medium = frameOf(Buffer.alloc(300, 1), OPCODE_BINARY);
    const large = frameOf(Buffer.alloc(70_000, 2), OPCODE_BINARY);
    return (
      small.equals(Buffer.from([0x81, 2, 0x68, 0x69])) &&
      medium.length === 304 && medium[0] === 0x82 && medium[1] === 126 && medium.readUInt16BE(2) === 300 && medium[4] === 1 &&
      large.length === 70_010 && large[1] === 127 && large.readUInt32BE(2) === 0 && large.readUInt32BE(6) === 70_000 && large[10] === 2
    );
  } catch {
    return false;
  }
}

/** Whether this process writes shared frames itself (false: every message through `ws.send()`). */
export const FRAMES_SHARED: boolean = process.env.UWSERVE_WS_FRAMING !== "ws" && senderFramesCorrectly();

export function buildFrame(payload: Buffer, isBinary: boolean): Frame {
  const parts = Sender!.frame!(payload, { fin: true, opcode: isBinary ? OPCODE_BINARY : OPCODE_TEXT, mask: false, readOnly: false, rsv1: false });
  if (parts.length === 1) return { head: parts[0]!, body: null };
  if (payload.length <= JOIN_MAX) return { head: Buffer.concat(parts, parts[0]!.length + payload.length), body: null };
  return { head: parts[0]!, body: parts[1]! };
}

/** A message's bytes, viewed (not copied) where it is bytes already. */
export function payloadOf(message: Message): Buffer {
  if (typeof message === "string") return Buffer.from(message, "utf8");
  if (message instanceof ArrayBuffer) return Buffer.from(message);
  return Buffer.isBuffer(message) ? message : Buffer.from(message.buffer, message.byteOffset, message.byteLength);
}

/** A topic as the publisher hands it over (a string, or its UTF-8 bytes where the uWS core would need them). */
export function topicName(topic: TopicKey): string {
  return typeof topic === "string" ? topic : topic.toString("utf8");
}

export class NodeTopicTree<S extends TopicSubscriber = TopicSubscriber> implements TopicTree {
  readonly #topics: Map<string, Set<S>>;
  /** Subscribers corked this tick, uncorked together at its end. */
  #corked: S[];
  #flushScheduled: boolean;

  constructor() {
    this.#topics = new Map();
    this.#corked = [];
    this.#flushScheduled = false;
  }

  numSubscribers(topic: TopicKey): number {
    return this.#topics.get(topicName(topic))?.size ?? 0;
  }

  has(topic: TopicKey, subscriber: S): boolean {
    return this.#topics.get(topicName(topic))?.has(subscriber) ?? false;
  }

  /** Adds `subscriber` to `topic`; false when it was already there. */
  add(topic: TopicKey, subscriber: S): boolean {
    const name = topicName(topic);
    let set = this.#topics.get(name);
    if (set === undefined) this.#topics.set(name, (set = new Set()));
    if (set.has(subscriber)) return false;
    set.add(subscriber);
    return true;
  }

  remove(topic: TopicKey, subscriber: S): boolean {
    const name = topicName(topic);
    const set = this.#topics.get(name);
    if (set === undefined || !set.delete(subscriber)) return false;
    if (set.size === 0) this.#topics.delete(name);
    return true;
  }

  publish(topic: TopicKey, message: Message, isBinary = false, compress = false, except: S | null = null): boolean {
    const subscribers = this.#topics.get(topicName(topic));
    if (subscribers === undefined) return false;
    const payload = payloadOf(message);
    // Built on the first subscriber that writes shared frames, then reused by all.
    let frame: Frame | null = null;
    const framed = (): Frame => (frame ??= buildFrame(payload, isBinary));
    for (const subscriber of subscribers) if (subscriber !== except) subscriber.deliver(framed, payload, isBinary, compress);
    return true;
  }

  /** `subscriber` corked its socket for the rest of this tick. */
  corkedForTurn(subscriber: S): void {
    this.#corked.push(subscriber);
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    process.nextTick(this.#uncorkAll);
  }

  #uncorkAll = (): void => {
    this.#flushScheduled = false;
    const corked = this.#corked;
    this.#corked = [];
    for (const subscriber of corked) subscriber.uncorkTurn();
  };
}
