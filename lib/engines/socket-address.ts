/** A client's address as uwserve reports it (requestIP, Deno's remoteAddr, ws.remoteAddress). */
import type { SocketAddress } from "../types.js";

/** IPv4-mapped IPv6 addresses ("::ffff:1.2.3.4") are reported as the IPv4 address. */
export function plainAddress(address: string): string {
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}

export function socketAddress(address: string, port: number): SocketAddress {
  const plain = plainAddress(address);
  return { address: plain, family: plain.includes(":") ? "IPv6" : "IPv4", port };
}

/** uWS's text address (latin1 bytes, no port: the core doesn't expose it). */
export function uwsSocketAddress(raw: ArrayBuffer): SocketAddress {
  return socketAddress(Buffer.from(raw).toString("latin1"), 0);
}
