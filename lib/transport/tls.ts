/**
 * TLS options: validates Bun's `tls` option (one object, or an array of them for SNI) and
 * Deno's top-level `cert`/`key` with node:crypto before any engine sees them, so every problem
 * is an error that names the option and the SNI entry (the uWS core would report only "App
 * construction failed", or nothing for addServerName). Each engine then hands the entries to
 * its TLS: engines/uws/tls-files.ts (file paths for the core), engines/node/tls.ts (node:tls).
 */
import { createPrivateKey, X509Certificate, type KeyObject } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describeValue, invalidOption, uwserveError } from "../errors.js";

/** The fields of one `tls` object; anything else is ignored (as Bun ignores what it doesn't know) unless it looks like a typo. */
const FIELDS = ["key", "cert", "ca", "passphrase", "dhParamsFile", "serverName", "lowMemoryMode", "secureOptions"];

/**
 * Key types the core's TLS library (BoringSSL) can serve. Node's OpenSSL parses more (Ed448,
 * RSA-PSS, secp256k1), which the core would reject, silently for addServerName.
 */
const SERVABLE_CURVES = new Set(["prime256v1", "secp384r1", "secp521r1", "secp224r1"]);

/** One validated `tls` object: what the core needs, still in memory. */
export interface TlsEntry {
  /** How errors name the entry's fields: "tls" → "tls.key", "tls[1]" → "tls[1].key", "" (Deno) → "key". */
  prefix: string;
  serverName: string | null;
  key: KeyObject;
  /** The certificate chain as PEM, leaf first, nothing but CERTIFICATE blocks. */
  cert: string;
  ca: string | null;
  dhParamsFile: string | null;
  lowMemoryMode: boolean;
}

// ---- reading and validating ----------------------------------------------------------------

/** Takes the three options, returns the validated entries ([] = no TLS); throws on any problem. */
export function readTlsEntries(tls: unknown, denoCert: unknown, denoKey: unknown): TlsEntry[] {
  const deno = denoCert !== undefined || denoKey !== undefined;
  if (tls !== undefined && tls !== null) {
    if (deno) {
      throw uwserveError(
        TypeError,
        "UWSERVE_ERR_INVALID_OPTION",
        'uwserve: give either "tls" (Bun style) or "cert" and "key" (Deno style), not both',
      );
    }
    if (Array.isArray(tls)) return readSniEntries(tls);
    if (typeof tls !== "object") throw invalidOption("tls", "an object ({ key, cert }) or an array of them for SNI", tls);
    const options = tls as Record<string, unknown>;
    // Bun serves plain HTTP for a tls object without key and cert; so does uwserve, but only
    // when nothing else was set either (a lone passphrase or ca is surely a mistake).
    if (options.key === undefined && options.cert === undefined) {
      const set = Object.keys(options).filter((name) => options[name] !== undefined);
      if (set.length === 0) return [];
      throw missing("tls.key", `TLS needs both key and cert, and tls has only ${set.join(", ")}`);
    }
    return [readEntry(options, "tls", false)];
  }
  if (!deno) return [];
  if (denoCert === undefined) throw missing('option "cert"', 'HTTPS needs both "cert" and "key" (or Bun\'s "tls")');
  if (denoKey === undefined) throw missing('option "key"', 'HTTPS needs both "cert" and "key" (or Bun\'s "tls")');
  return [readEntry({ cert: denoCert, key: denoKey }, "", false)];
}

/** Takes the `tls` array, returns its entries; one may omit serverName (the default), names must differ. */
function readSniEntries(list: unknown[]): TlsEntry[] {
  if (list.length === 0) throw invalidOption("tls", "an object or a non-empty array of objects", list);
  const entries = list.map((item, i) => {
    if (typeof item !== "object" || item === null || Array.isArray(item)) {
      throw invalidOption(`tls[${i}]`, "an object ({ key, cert, serverName })", item);
    }
    return readEntry(item as Record<string, unknown>, `tls[${i}]`, true);
  });
  const seen = new Map<string, number>();
  let unnamed = -1;
  entries.forEach((entry, i) => {
    if (entry.serverName === null) {
      if (unnamed >= 0) {
        throw uwserveError(
          TypeError,
          "UWSERVE_ERR_INVALID_OPTION",
          `uwserve: tls[${unnamed}] and tls[${i}] both lack a serverName; in a tls array only the default certificate may omit it`,
        );
      }
      unnamed = i;
      return;
    }
    const first = seen.get(entry.serverName);
    if (first !== undefined) {
      throw uwserveError(
        TypeError,
        "UWSERVE_ERR_INVALID_OPTION",
        `uwserve: tls[${first}] and tls[${i}] both have serverName "${entry.serverName}"`,
      );
    }
    seen.set(entry.serverName, i);
  });
  return entries;
}

/** Takes one tls object and its name ("tls", "tls[1]" or "" for Deno), returns it validated. */
function readEntry(options: Record<string, unknown>, prefix: string, inArray: boolean): TlsEntry {
  const name = (field: string): string => (prefix === "" ? field : `${prefix}.${field}`);
  for (const key of Object.keys(options)) {
    const near = FIELDS.find((field) => field !== key && field.toLowerCase() === key.toLowerCase());
    if (near !== undefined) {
      throw uwserveError(TypeError, "UWSERVE_ERR_INVALID_OPTION", `uwserve: unknown option "${name(key)}"; did you mean "${name(near)}"?`);
    }
  }

  let serverName: string | null = null;
  if (options.serverName !== undefined) {
    const value = options.serverName;
    if (typeof value !== "string" || value === "" || /[\s/:]/.test(value)) {
      throw invalidOption(name("serverName"), 'a host name such as "example.com" or "*.example.com"', value);
    }
    // DNS names are case-insensitive and clients send them lowercased; the core matches bytes.
    serverName = value.toLowerCase();
  }
  const where = serverName === null ? "" : ` (serverName "${serverName}")`;

  const passphrase = options.passphrase;
  if (passphrase !== undefined && passphrase !== null && typeof passphrase !== "string") {
    throw invalidOption(name("passphrase"), "a string", passphrase);
  }
  const lowMemoryMode = options.lowMemoryMode ?? false;
  if (typeof lowMemoryMode !== "boolean") throw invalidOption(name("lowMemoryMode"), "a boolean", lowMemoryMode);
  const secureOptions = options.secureOptions ?? 0;
  if (typeof secureOptions !== "number" || !Number.isInteger(secureOptions) || secureOptions < 0) {
    throw invalidOption(name("secureOptions"), "a non-negative integer (SSL_OP_* flags)", secureOptions);
  }
  if (secureOptions !== 0) {
    throw uwserveError(
      TypeError,
      "UWSERVE_ERR_NOT_SUPPORTED",
      `uwserve: ${name("secureOptions")} (${secureOptions}) is not supported: the uWebSockets core sets its own TLS options ` +
        "(TLS 1.2 and 1.3 only) and offers no way to add OpenSSL flags; remove it",
    );
  }

  const keyText = readMaterial(options.key, name("key"));
  const certText = readMaterial(options.cert, name("cert"));
  const needs = inArray ? `every entry of a tls array needs its own key and cert${where}` : "TLS needs both key and cert";
  if (keyText === null) throw missing(name("key"), needs);
  if (certText === null) throw missing(name("cert"), needs);
  const key = readKey(keyText, name, where, passphrase || undefined);
  const chain = readCertificates(certText, name("cert"), where);
  if (!chain[0]!.checkPrivateKey(key)) {
    throw uwserveError(
      Error,
      "UWSERVE_ERR_TLS",
      `uwserve: ${name("key")} does not match the certificate in ${name("cert")}${where} ` +
        `(subject ${oneLine(chain[0]!.subject)}): the certificate must come first in ${name("cert")}, and the key must be its own`,
    );
  }
  const caText = readMaterial(options.ca, name("ca"));
  const ca = caText === null ? null : readCertificates(caText, name("ca"), where);

  let dhParamsFile: string | null = null;
  if (options.dhParamsFile !== undefined && options.dhParamsFile !== null) {
    const value = options.dhParamsFile;
    if (typeof value !== "string" || value === "") throw invalidOption(name("dhParamsFile"), "a path to a PEM file of DH parameters", value);
    dhParamsFile = resolve(value);
    let text: string;
    try {
      text = readFileSync(dhParamsFile, "latin1");
    } catch (err) {
      throw uwserveError(Error, "UWSERVE_ERR_TLS", `uwserve: ${name("dhParamsFile")}${where}: cannot read ${dhParamsFile}: ${messageOf(err)}`, err);
    }
    if (!text.includes("-----BEGIN DH PARAMETERS-----")) {
      throw uwserveError(
        Error,
        "UWSERVE_ERR_TLS",
        `uwserve: ${name("dhParamsFile")}${where}: ${dhParamsFile} holds no "-----BEGIN DH PARAMETERS-----" block (make one with \`openssl dhparam -out dhparams.pem 2048\`)`,
      );
    }
  }

  return {
    prefix,
    serverName,
    key,
    cert: chain.map((cert) => cert.toString()).join(""),
    ca: ca === null ? null : ca.map((cert) => cert.toString()).join(""),
    dhParamsFile,
    lowMemoryMode,
  };
}

/**
 * Takes a key/cert/ca value (string, Buffer/TypedArray/ArrayBuffer, a file() Blob, or an array
 * of those, concatenated as PEM) and its option name, returns the text, or null when absent.
 */
function readMaterial(value: unknown, name: string): string | null {
  if (value === undefined || value === null) return null;
  if (Array.isArray(value)) {
    if (value.length === 0) throw invalidOption(name, "PEM contents (a string, Buffer or file()) or a non-empty array of them", value);
    // PEM blocks may follow each other directly, but a missing final newline would glue two lines.
    return value.map((item, i) => readOne(item, `${name}[${i}]`)).join("\n");
  }
  return readOne(value, name);
}

/** Takes one non-array material value, returns its text. */
function readOne(value: unknown, name: string): string {
  if (typeof value === "string") return value;
  if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("utf8");
  if (value instanceof ArrayBuffer) return Buffer.from(value).toString("utf8");
  if (value instanceof Blob) {
    const path = filePath(value);
    if (path === null) {
      throw uwserveError(
        TypeError,
        "UWSERVE_ERR_INVALID_OPTION",
        `uwserve: ${name} is a Blob held in memory, which can only be read asynchronously; ` +
          "pass its contents instead (a string or Buffer, e.g. `await blob.text()`), or file(path)",
      );
    }
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (err) {
      throw uwserveError(Error, "UWSERVE_ERR_TLS", `uwserve: ${name}: cannot read file(${JSON.stringify(path)}): ${messageOf(err)}`, err);
    }
    if (value.size !== bytes.length) {
      throw uwserveError(
        TypeError,
        "UWSERVE_ERR_INVALID_OPTION",
        `uwserve: ${name} is a slice of file(${JSON.stringify(path)}); pass the whole file, or the slice's contents as a string or Buffer`,
      );
    }
    return bytes.toString("utf8");
  }
  throw invalidOption(name, "PEM contents: a string, Buffer, TypedArray, file() or an array of them", value);
}

/**
 * Takes a Blob, returns the path it reads from when it is a file() Blob (uwserve's or Bun's:
 * a Blob subclass whose `name` is the path), else null. A web `File`'s name is only a label.
 */
function filePath(blob: Blob): string | null {
  const name = (blob as { name?: unknown }).name;
  if (typeof name !== "string" || name === "") return null;
  const ctor = blob.constructor;
  if (ctor === Blob || (typeof File === "function" && ctor === File)) return null;
  return name;
}

/** Takes the key's text, the field namer, the SNI suffix and the passphrase, returns the parsed key. */
function readKey(text: string, name: (field: string) => string, where: string, passphrase: string | undefined): KeyObject {
  const blocks = [...text.matchAll(/-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----[\s\S]*?-----END \1-----/g)];
  if (blocks.length === 0) throw notPem(text, name("key"), where, "private key", "PRIVATE KEY");
  if (blocks.length > 1) {
    throw uwserveError(
      TypeError,
      "UWSERVE_ERR_NOT_SUPPORTED",
      `uwserve: ${name("key")}${where} holds ${blocks.length} private keys; the uWebSockets core takes one key per certificate ` +
        "(for several certificates, use a tls array with a serverName each)",
    );
  }
  const block = blocks[0]![0];
  const encrypted = blocks[0]![1] === "ENCRYPTED PRIVATE KEY" || /Proc-Type:\s*4,ENCRYPTED/.test(block);
  if (encrypted && passphrase === undefined) {
    throw uwserveError(
      Error,
      "UWSERVE_ERR_TLS",
      `uwserve: ${name("key")}${where} is encrypted: pass its passphrase as ${name("passphrase")}`,
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: block, format: "pem", passphrase: encrypted ? passphrase : undefined });
  } catch (err) {
    if (encrypted) {
      throw uwserveError(
        Error,
        "UWSERVE_ERR_TLS",
        `uwserve: ${name("passphrase")} does not decrypt ${name("key")}${where} (wrong passphrase?): ${messageOf(err)}`,
        err,
      );
    }
    throw uwserveError(Error, "UWSERVE_ERR_TLS", `uwserve: ${name("key")}${where} is not a valid PEM private key: ${messageOf(err)}`, err);
  }
  const type = key.asymmetricKeyType ?? "unknown";
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (!(type === "rsa" || type === "ed25519" || (type === "ec" && curve !== undefined && SERVABLE_CURVES.has(curve)))) {
    throw uwserveError(
      TypeError,
      "UWSERVE_ERR_NOT_SUPPORTED",
      `uwserve: ${name("key")}${where} is ${type === "ec" ? `an EC key on curve ${curve ?? "unknown"}` : `a key of type ${type}`}, which the ` +
        "uWebSockets core's TLS library (BoringSSL) cannot serve; use RSA, ECDSA (P-256, P-384, P-521) or Ed25519",
    );
  }
  return key;
}

/** Takes PEM text and its option name, returns every certificate in it, in order; throws when none parses. */
function readCertificates(text: string, name: string, where: string): X509Certificate[] {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g);
  if (blocks === null) throw notPem(text, name, where, "certificate", "CERTIFICATE");
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      const which = blocks.length === 1 ? "its certificate" : `certificate ${i + 1} of ${blocks.length}`;
      throw uwserveError(Error, "UWSERVE_ERR_TLS", `uwserve: ${name}${where}: ${which} cannot be parsed: ${messageOf(err)}`, err);
    }
  });
}

/** Takes text with no PEM block of the wanted kind, returns the error that says what it looks like instead. */
function notPem(text: string, name: string, where: string, what: string, label: string): Error {
  let hint: string;
  const found = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(text)?.[1];
  if (found !== undefined) {
    hint = `it holds a ${found} block instead${found.includes("PRIVATE KEY") || found === "CERTIFICATE" ? " (are key and cert swapped?)" : ""}`;
  } else if (text.trim() === "") {
    hint = "it is empty";
  } else if (!/[\n\0]/.test(text) && text.length < 4096 && existsSync(text.trim())) {
    hint = `it looks like a file path: pass the contents, e.g. file(${JSON.stringify(text.trim())}) or readFileSync(path)`;
  } else {
    hint = `received ${text.length} characters without one (DER is not accepted; convert with \`openssl x509 -inform der\` or \`openssl pkey -inform der\`)`;
  }
  return uwserveError(
    Error,
    "UWSERVE_ERR_TLS",
    `uwserve: ${name}${where} must be a PEM ${what} ("-----BEGIN ${label}-----"); ${hint}`,
  );
}

/** Takes the missing option's name and what the user should know, returns the TypeError. */
function missing(name: string, why: string): TypeError {
  return uwserveError(TypeError, "UWSERVE_ERR_INVALID_OPTION", `uwserve: ${name} is missing; ${why}`);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : describeValue(err);
}

function oneLine(subject: string): string {
  return subject.split("\n").join(", ");
}
