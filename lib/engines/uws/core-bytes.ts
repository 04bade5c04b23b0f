/**
 * Strings on their way into the uWS core, as the bytes HTTP and WebSocket mean by them on every
 * binary. The binaries differ (see `coreTraits`): the ABI 137+ ones copy a one-byte string as
 * Latin-1, the older ones encode every string as UTF-8. An ASCII string is the same bytes
 * either way and goes as it is (the common case, checked in one pass); others become a Buffer.
 */
import { coreTraits } from "./uws.js";

function isAscii(text: string): boolean {
  return Buffer.byteLength(text, "utf8") === text.length;
}

/** Text (bodies, chunks, WebSocket text, topics, close reasons) as UTF-8. */
export const coreText: (text: string) => string | Buffer = coreTraits.latin1Strings
  ? (text) => (isAscii(text) ? text : Buffer.from(text, "utf8"))
  : (text) => text;

/**
 * A header value or reason phrase as a ByteString: one byte per character, U+0000–U+00FF (the
 * writer refuses anything above). Converted on every binary: a Latin-1-range string that V8
 * stores as two-byte would be encoded as UTF-8 even by the binaries that copy one-byte ones.
 */
export function coreByteString(value: string): string | Buffer {
  return isAscii(value) ? value : Buffer.from(value, "latin1");
}
