/**
 * TLS for the node engine: the same validated `tls` entries as the uws engine (tls.ts reads and
 * checks them), handed to node:tls in memory. SNI picks an entry by exact name, then by a
 * `*.` wildcard one level up, else the default one, as the uws engine's core does.
 */
import { readFileSync } from "node:fs";
import { createSecureContext, type SecureContext } from "node:tls";
import type { SecureContextOptions } from "node:tls";
import { readTlsEntries, type TlsEntry } from "../../transport/tls.js";

export interface NodeTls {
  /** Options for https.createServer: the default certificate, and SNICallback when there are names. */
  options: SecureContextOptions & { SNICallback?: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void };
}

function contextOptions(entry: TlsEntry): SecureContextOptions {
  const options: SecureContextOptions = { key: entry.key.export({ type: "pkcs8", format: "pem" }) as string, cert: entry.cert };
  if (entry.ca !== null) options.ca = entry.ca;
  if (entry.dhParamsFile !== null) options.dhparam = readFileSync(entry.dhParamsFile);
  return options;
}

/** The node engine's TLS options from the same three serve() options, or null for plain HTTP. */
export function resolveNodeTls(tls: unknown, denoCert: unknown, denoKey: unknown): NodeTls | null {
  const entries = readTlsEntries(tls, denoCert, denoKey);
  if (entries.length === 0) return null;
  const fallback = entries.find((entry) => entry.serverName === null) ?? entries[0]!;
  const options: NodeTls["options"] = contextOptions(fallback);
  const named = new Map<string, SecureContext>();
  for (const entry of entries) {
    if (entry.serverName !== null && entry !== fallback) named.set(entry.serverName.toLowerCase(), createSecureContext(contextOptions(entry)));
  }
  if (named.size > 0) {
    options.SNICallback = (name, cb) => {
      const lower = name.toLowerCase();
      const dot = lower.indexOf(".");
      // undefined: node uses the default context.
      cb(null, named.get(lower) ?? (dot > 0 ? named.get("*" + lower.slice(dot)) : undefined));
    };
  }
  return { options };
}
