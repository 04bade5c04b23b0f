/**
 * `file(path)`: Bun's lazy file Blob for Node. Nothing touches the disk until a member asks:
 * `size`/`lastModified` stat synchronously (as Bun does), reads open the file per call, and as a
 * response body the writer streams it from disk under uWS backpressure (see writer.ts).
 */
import { statSync, type Stats } from "node:fs";
import { open, stat, type FileHandle } from "node:fs/promises";
import { createRequire } from "node:module";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";

/** Options of `file()`. */
export interface FileOptions {
  /** The MIME type to report instead of the one guessed from the extension. */
  type?: string;
}

/**
 * How many bytes `stream()` (and the response writer) read from disk at a time; also what one
 * download in progress holds. Measured with curl on a 200 MB file (2 cores, page cache warm):
 * 64 KiB reads ≈ 0.95 GB/s, 256 KiB ≈ 2.3 GB/s, 1 MiB ≈ 2.7 GB/s; each read is a thread-pool
 * round trip, so small reads cost more than the copy they save.
 */
export const FILE_CHUNK_BYTES = 256 * 1024;

const DEFAULT_TYPE = "application/octet-stream";

interface MimeEntry {
  source?: string;
  charset?: string;
  extensions?: string[];
}

/**
 * Ranks the mime-db entries that claim the same extension, as mime-types 3 does ("mime-score"):
 * a registered (IANA) type beats an Apache/nginx one, a standard tree beats `vnd.`/`x-`, and
 * `application/` beats `text/` (application/xml over text/xml). Shorter wins a tie.
 */
function mimeScore(type: string, source: string | undefined): number {
  if (type === DEFAULT_TYPE) return 0;
  const [top, subtype = ""] = type.split("/");
  const facet = /^(vnd\.|x-|x\.|prs\.)/.exec(subtype)?.[1];
  const facetScore = facet === "prs." ? 100 : facet === "x-" ? 200 : facet === "x." ? 300 : facet === "vnd." ? 400 : 900;
  const sourceScore = source === "nginx" ? 10 : source === "apache" ? 20 : source === "iana" ? 40 : 30;
  const topScore = top === "application" ? 1 : top === "font" ? 2 : 0;
  return facetScore + sourceScore + topScore + (1 - type.length / 100);
}

/**
 * Where the score picks a type browsers don't expect. mime-db 1.53 gave `.mp4` to
 * application/mp4 as well, which the score prefers; a video element wants video/mp4.
 */
const PREFERRED: Readonly<Record<string, string>> = { mp4: "video/mp4" };

let extensionTypes: Map<string, string> | null = null;

/** extension → `type[;charset=utf-8]`, built from mime-db on first use (it is a 200 KB JSON). */
function typesByExtension(): Map<string, string> {
  if (extensionTypes !== null) return extensionTypes;
  const db = createRequire(import.meta.url)("mime-db") as Record<string, MimeEntry>;
  const best = new Map<string, { type: string; score: number }>();
  for (const type of Object.keys(db)) {
    const entry = db[type]!;
    if (entry.extensions === undefined) continue;
    const score = mimeScore(type, entry.source);
    for (const ext of entry.extensions) {
      const current = best.get(ext);
      if (current === undefined || score > current.score) best.set(ext, { type, score });
    }
  }
  extensionTypes = new Map();
  for (const [ext, { type }] of best) {
    const chosen = PREFERRED[ext] ?? type;
    // Bun's spelling: "text/html;charset=utf-8". Text types, and the others mime-db marks UTF-8 (JSON, JS).
    const utf8 = chosen.startsWith("text/") || db[chosen]?.charset?.toUpperCase() === "UTF-8";
    extensionTypes.set(ext, utf8 ? `${chosen};charset=utf-8` : chosen);
  }
  return extensionTypes;
}

/** The Content-Type Bun reports for a path: from its extension, else application/octet-stream. */
export function typeForPath(path: string): string {
  const ext = extname(path).slice(1).toLowerCase();
  return (ext && typesByExtension().get(ext)) || DEFAULT_TYPE;
}

/** Blob's rule for a given type: lower-cased, or "" when it has characters outside U+0020–U+007E. */
function normalizeType(type: string): string {
  return /^[\x20-\x7e]*$/.test(type) ? type.toLowerCase() : "";
}

/** Blob.slice()'s relative index: negative counts from the end, then clamped to [0, size]. */
function relativeIndex(index: number, size: number): number {
  if (index < 0) return Math.max(size + index, 0);
  return Math.min(index, size);
}

/** Converts a slice() argument like WebIDL's `long long` (NaN → 0, fractions truncated). */
function toIndex(value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Math.trunc(Number(value));
  return Number.isNaN(n) ? 0 : n;
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}

function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
}

/** The byte range of a file that `[start, end)` selects once the file's size is known. */
export interface ResolvedRange {
  start: number;
  end: number;
  /** The file's size when it was measured. */
  size: number;
}

/** The parts of a file Blob the response writer needs. */
export interface FileParts {
  path: string;
  /** Offset of the first byte; may lie past the end of the file. */
  start: number;
  /** Offset after the last byte, or Infinity for "to the end". */
  end: number;
}

let readParts: (file: UwsFile) => FileParts;
let sliceOf: (parent: UwsFile, start: number, end: number, type: string) => UwsFile;

/**
 * A file on disk as a `Blob` (`instanceof Blob` is true) that reads nothing until asked.
 * Created by `file()`. The bytes are read when they are needed, so they are the file's
 * contents at that time: a file that changes between `size` and a read gives the new bytes.
 *
 * Node's own Blob machinery reads Blobs through internal slots, not through these methods, so
 * `new Blob([f])`, `structuredClone(f)` and appending it to a `FormData` see an empty Blob;
 * read it (`await f.bytes()`) first there. `new Response(f)`, `fetch(url, { body: f })` and
 * uwserve's writer use `stream()` and work.
 */
export class UwsFile extends Blob {
  #path: string;
  /** Offset of the first byte (a slice may start past the end of the file). */
  #start: number;
  /** Offset after the last byte; Infinity for a whole file. */
  #end: number;
  #type: string;

  constructor(path: string | URL, options?: FileOptions) {
    super([]);
    this.#path = path instanceof URL ? fileURLToPath(path) : String(path);
    this.#start = 0;
    this.#end = Infinity;
    this.#type = options?.type !== undefined ? normalizeType(String(options.type)) : typeForPath(this.#path);
  }

  static {
    readParts = (file) => ({ path: file.#path, start: file.#start, end: file.#end });
    sliceOf = (parent, start, end, type) => {
      const child = new UwsFile(parent.#path, { type });
      child.#start = start;
      child.#end = end;
      return child;
    };
  }

  /** The path the file was created with (Bun's `BunFile.name`). */
  get name(): string {
    return this.#path;
  }

  /** The MIME type: from the extension (with `;charset=utf-8` for text) unless one was given. */
  override get type(): string {
    return this.#type;
  }

  /**
   * The size in bytes, read with a synchronous stat on every access (a slice: the part of the
   * file it covers). 0 for a missing file, as in Bun.
   */
  override get size(): number {
    const stats = statOrNull(this.#path);
    if (stats === null) return 0;
    const { start, end } = this.#resolve(stats.size);
    return end - start;
  }

  /** The file's modification time in ms since the epoch; 0 for a missing file. */
  get lastModified(): number {
    const stats = statOrNull(this.#path);
    return stats === null ? 0 : Math.floor(stats.mtimeMs);
  }

  /** This file's range, clamped to a file of `size` bytes. */
  #resolve(size: number): ResolvedRange {
    const start = Math.min(this.#start, size);
    const end = Math.max(start, Math.min(this.#end, size));
    return { start, end, size };
  }

  /**
   * A lazy view of part of the file (no read). Non-negative offsets need no stat; negative ones
   * count from the end and stat the file now. The slice keeps this file's type unless
   * `contentType` is given (as Bun does, so a sliced file is served with its own type).
   */
  override slice(start?: number, end?: number, contentType?: string): UwsFile {
    let from = toIndex(start, 0);
    let to = toIndex(end, Infinity);
    const type = contentType === undefined ? this.#type : normalizeType(String(contentType));
    if (from < 0 || to < 0) {
      // Counted from the end of this Blob: only its current size can say where that is.
      const size = this.size;
      from = relativeIndex(from, size);
      to = to === Infinity ? size : relativeIndex(to, size);
    }
    // Absolute offsets, kept within this Blob's range; clamping to the file's real size
    // happens when it is read, which gives the spec's result for any size.
    const absStart = Math.min(this.#start + from, this.#end);
    const absEnd = to === Infinity ? this.#end : Math.max(absStart, Math.min(this.#start + to, this.#end));
    return sliceOf(this, absStart, absEnd, type);
  }

  /** True when a file (not a directory) exists at the path. */
  async exists(): Promise<boolean> {
    try {
      return !(await stat(this.#path)).isDirectory();
    } catch (err) {
      if (isMissing(err)) return false;
      throw err;
    }
  }

  /** The bytes, read now; rejects with the `open` error (ENOENT …) when the file can't be read. */
  override async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = await this.bytes();
    return bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer : bytes.slice().buffer;
  }

  async bytes(): Promise<Uint8Array<ArrayBuffer>> {
    const handle = await open(this.#path, "r");
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) return await readToEnd(handle, this.#start, this.#end);
      const { start, end } = this.#resolve(stats.size);
      const out = new Uint8Array(end - start);
      let filled = 0;
      while (filled < out.byteLength) {
        const { bytesRead } = await handle.read(out, filled, out.byteLength - filled, start + filled);
        if (bytesRead === 0) break; // The file shrank since the stat.
        filled += bytesRead;
      }
      return filled === out.byteLength ? out : out.slice(0, filled);
    } finally {
      await handle.close();
    }
  }

  override async text(): Promise<string> {
    return new TextDecoder().decode(await this.bytes());
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  /**
   * The bytes as a stream read from disk FILE_CHUNK_BYTES at a time, only as fast as it is
   * consumed. Nothing is opened until the first read: undici calls `stream()` as soon as a
   * Response is constructed, and the writer usually never reads that stream.
   */
  override stream(): ReadableStream<Uint8Array<ArrayBuffer>> {
    const path = this.#path;
    const range = { start: this.#start, end: this.#end };
    let handle: FileHandle | null = null;
    let position = 0;
    let end = 0;
    const closeHandle = (): Promise<void> => {
      const h = handle;
      handle = null;
      return h === null ? Promise.resolve() : h.close().catch(() => {});
    };
    const stream = new ReadableStream<Uint8Array<ArrayBuffer>>(
      {
        pull: async (controller) => {
          try {
            if (handle === null) {
              handle = await open(path, "r");
              const stats = await handle.stat();
              // Pipes and devices report no size: read them to EOF.
              const size = stats.isFile() ? stats.size : Infinity;
              position = Math.min(range.start, size);
              end = Math.max(position, Math.min(range.end, size));
            }
            const want = Math.min(FILE_CHUNK_BYTES, end - position);
            const chunk = want > 0 ? new Uint8Array(want) : null;
            const bytesRead = chunk === null ? 0 : (await handle.read(chunk, 0, want, position)).bytesRead;
            if (bytesRead === 0) {
              await closeHandle();
              controller.close();
              return;
            }
            position += bytesRead;
            controller.enqueue(bytesRead === want ? chunk! : chunk!.subarray(0, bytesRead));
          } catch (err) {
            await closeHandle();
            controller.error(err);
          }
        },
        cancel: () => closeHandle(),
      },
      // 0: no read ahead of the consumer (and none at all for a stream nobody reads).
      { highWaterMark: 0 },
    );
    streamFiles.set(stream, this);
    return stream;
  }
}

/** Reads a pipe or device from `start` to `end` (Infinity: EOF). */
async function readToEnd(handle: FileHandle, start: number, end: number): Promise<Uint8Array<ArrayBuffer>> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  let skip = start;
  for (;;) {
    const chunk = new Uint8Array(FILE_CHUNK_BYTES);
    const { bytesRead } = await handle.read(chunk, 0, chunk.byteLength, null);
    if (bytesRead === 0) break;
    let part = chunk.subarray(0, bytesRead);
    if (skip > 0) {
      const dropped = Math.min(skip, part.byteLength);
      skip -= dropped;
      part = part.subarray(dropped);
    }
    const room = end - start - total;
    if (part.byteLength > room) part = part.subarray(0, room);
    chunks.push(part);
    total += part.byteLength;
    if (total >= end - start) break;
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of chunks) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

/**
 * Bun's `Bun.file()`: a lazy Blob for the file at `path` (a string or a `file:` URL). Return it
 * (or a `slice()` of it) as a Response body to stream it from disk.
 *
 * @example
 * serve({ fetch: () => new Response(file("./public/index.html")) });
 */
export function file(path: string | URL, options?: FileOptions): UwsFile {
  return new UwsFile(path, options);
}

/**
 * The file() Blob each `stream()` came from. A global Response built from a file() keeps that
 * stream as its body, and on undici 7+ the stream is all the writer can see of the body: this
 * finds the file again, so it is still sent with its length and ranges.
 */
const streamFiles = new WeakMap<ReadableStream, UwsFile>();

/** The file() Blob whose `stream()` returned `stream`, if any. */
export function fileOfStream(stream: ReadableStream): UwsFile | undefined {
  return streamFiles.get(stream);
}

/** For the writer: where the file is and which bytes the Blob covers. */
export function fileParts(file: UwsFile): FileParts {
  return readParts(file);
}

/** True for ENOENT/ENOTDIR: nothing at the path. */
export { isMissing as isMissingFileError };
