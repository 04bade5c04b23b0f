/**
 * Static routes (Bun's "static responses"): a Response serialised once at serve()/reload()
 * time and written straight from the uWS callback on every request, without a Request, a
 * context or a handler call: only the native writes uWS needs.
 */
import { coreByteString } from "../engines/uws/core-bytes.js";
import { isMissingFileError } from "../transport/file.js";
import type { Exchange } from "./exchange.js";
import { UwsResponse } from "./response.js";
import { endHead, NO_BODY_STATUS, staticParts, TEXT_PLAIN, type StaticParts } from "./writer.js";

export class StaticRoute {
  #statusLine: string | Buffer | null;
  #status: number;
  #statusText: string;
  #plainHeaders: string[];
  /** Flat [name, value, …], values as the ByteStrings the core writes. */
  #headers: Array<string | Buffer>;
  #body: Uint8Array | null;
  /** Set while a Blob/FormData body is still being read; null once the bytes are here. */
  ready: Promise<void> | null;

  constructor(response: Response) {
    const parts: StaticParts = staticParts(response);
    this.#statusLine = parts.statusLine === null ? null : coreByteString(parts.statusLine);
    this.#status = parts.status;
    this.#statusText = parts.statusText;
    this.#plainHeaders = parts.headers;
    this.#headers = parts.headers.map((item, i) => (i % 2 === 1 ? coreByteString(item) : item));
    if (parts.body instanceof Promise) {
      this.#body = null;
      this.ready = parts.body.then(
        (bytes) => {
          this.#body = bytes;
          this.ready = null;
        },
        (err: unknown) => {
          if (!isMissingFileError(err)) throw err;
          // A file() that isn't there: this route answers 404, as a file() body does.
          this.#notFound();
          this.ready = null;
        },
      );
      // A body that can't be read otherwise fails each request through the error handler; at
      // serve() it must not be an unhandled rejection that ends the process.
      this.ready.catch(() => {});
    } else {
      this.#body = parts.body;
      this.ready = null;
    }
  }

  #notFound(): void {
    this.#statusLine = "404 Not Found";
    this.#status = 404;
    this.#statusText = "Not Found";
    this.#plainHeaders = ["content-type", TEXT_PLAIN];
    this.#headers = [...this.#plainHeaders];
    this.#body = new TextEncoder().encode("Not Found");
  }

  /**
   * The route's answer as a uwserve Response, for a request that came while the body was still
   * being read: once it is, the bytes are served like every later request's, never the
   * original Response again (whose body, on undici 7+, is a stream that reads only once).
   */
  response(): Response {
    const headers: Array<[string, string]> = [];
    const list = this.#plainHeaders;
    for (let i = 0; i < list.length; i += 2) headers.push([list[i]!, list[i + 1]!]);
    return new UwsResponse(this.#body as Uint8Array<ArrayBuffer> | null, { status: this.#status, statusText: this.#statusText, headers });
  }

  /** Writes the response; must run corked. `close` asks uWS to close the connection after. */
  write(res: Exchange, isHead: boolean, close: boolean): void {
    if (this.#statusLine !== null) res.writeStatus(this.#statusLine);
    const headers = this.#headers;
    for (let i = 0; i < headers.length; i += 2) res.writeHeader(headers[i] as string, headers[i + 1]!);
    const body = this.#body ?? new Uint8Array(0);
    if (NO_BODY_STATUS.has(this.#status)) res.endWithoutBody();
    else if (isHead) endHead(res, body.byteLength, close);
    else if (close) res.end(body, true);
    else res.end(body);
  }
}
