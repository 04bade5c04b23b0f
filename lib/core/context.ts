/**
 * One in-flight HTTP request on the uWS side: its Exchange, abort and body wiring, and the
 * bookkeeping that must happen exactly once when it completes or the client goes away.
 */
import type { CookieMap } from "./cookies.js";
import type { Exchange } from "./exchange.js";
import { RequestBody, type BodyFlowControl } from "./body.js";
import { abortServerRequest, type ServerRequest } from "./request.js";
import type { BackedServerRequest } from "./request-backed.js";
import type { Handshake } from "../websocket/upgrade.js";
import type { PendingUpgrade } from "../websocket/deno-websocket.js";
import type { Observation } from "../observability/observer.js";

/** What a context needs from its server. */
export interface ContextOwner {
  /** Called exactly once per context, when the response is complete or the client is gone. */
  requestFinished(ctx: RequestContext): void;
  readonly maxRequestBodySize: number;
  /** A graceful stop is under way: responses close their connection. */
  readonly stopping: boolean;
  /** Automatic response compression is on (`compression` / `automaticCompression`). */
  readonly compression: boolean;
  /** The engine has the uWS core's fixed idle timer, which uploads must keep restarting. */
  readonly coreIdleTimer: boolean;
  /** Keep an eye on this upload's idle time (it was paused, or idleTimeout isn't the core's). */
  watchUpload(ctx: RequestContext): void;
}

/** How long a refused (too large) chunked upload is still read and dropped before the 413. */
const REFUSED_UPLOAD_DRAIN_MS = 500;
/**
 * The core cuts a connection after 10 s without a request completing, also while an upload is
 * still arriving below its minimum rate. `pause()` + `resume()` restarts that timer: do it at
 * most this often while body data arrives, so an upload that keeps sending is never cut.
 */
const CORE_TIMER_RESET_MS = 1000;

export class RequestContext implements BodyFlowControl {
  /** An upload grew too large: it is being drained before the 413 is sent. */
  #refusing: boolean;
  /** The body is paused because nobody reads it (the core's timer is off meanwhile). */
  #flowPaused: boolean;
  /** When body data last arrived, and when the core's idle timer was last restarted (ms). */
  lastData: number;
  coreTimerReset: number;
  readonly res: Exchange;
  readonly owner: ContextOwner;
  readonly isHead: boolean;
  /** The client hung up (or the connection was cut): `res` must not be touched again. */
  aborted: boolean;
  /** The response has been handed to uWS (`end`/`tryEnd`/`write` started). */
  responded: boolean;
  /** `requestFinished` was called. */
  finished: boolean;
  /** True while running synchronously inside the uWS callback, which is already corked. */
  corked: boolean;
  /** Close the connection after this response (server stopping, or a protocol error). */
  closeConnection: boolean;
  body: RequestBody | null;
  request: ServerRequest | BackedServerRequest | null;
  /** Absolute time (ms) after which `server.timeout()` aborts this request; 0 = none. */
  deadline: number;
  /** Cancels a response body still being streamed (client gone). */
  cancelStream: ((reason: string) => void) | null;
  /** Deno's `info.completed`, created only when a handler asks for it. */
  completion: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } | null;
  /** The WebSocket handshake, when the request came through a uWS WebSocket route. */
  handshake: Handshake | null;
  /** The connection became a WebSocket: `res` is gone, the handler's return value is ignored. */
  upgraded: boolean;
  /** Deno's upgradeWebSocket() was called: returning this response upgrades. */
  pendingUpgrade: PendingUpgrade | null;
  /** `req.cookies`, once read: its changes become Set-Cookie headers on the response. */
  cookies: CookieMap | null;
  /** server.upgrade() refused an invalid handshake: the status to answer if the handler returns nothing (426 or 400). */
  refusedUpgrade: number;
  /** The status written (0 until the head is out). */
  status: number;
  /** Response body bytes handed to the exchange. */
  bodyBytes: number;
  /** Telemetry, the access log or a diagnostics channel watches this request (else null). */
  observation: Observation | null;
  /** Arrow fields so uWS gets the same function object without a bind per call. */
  readonly onAborted: () => void;
  readonly onData: (chunk: ArrayBuffer | Uint8Array, isLast: boolean) => void;

  constructor(res: Exchange, owner: ContextOwner, isHead: boolean) {
    this.#refusing = false;
    this.#flowPaused = false;
    this.lastData = 0;
    this.coreTimerReset = 0;
    this.res = res;
    this.owner = owner;
    this.isHead = isHead;
    this.aborted = false;
    this.responded = false;
    this.finished = false;
    this.corked = true;
    this.closeConnection = false;
    this.body = null;
    this.request = null;
    this.deadline = 0;
    this.cancelStream = null;
    this.completion = null;
    this.handshake = null;
    this.upgraded = false;
    this.pendingUpgrade = null;
    this.cookies = null;
    this.refusedUpgrade = 0;
    this.status = 0;
    this.bodyBytes = 0;
    this.observation = null;
    this.onAborted = () => this.#handleAbort("client disconnected");
    this.onData = (chunk, isLast) => this.#handleData(chunk, isLast);
  }

  /** Starts receiving the body: must run synchronously inside the uWS callback (H4). */
  acceptBody(): RequestBody {
    const body = new RequestBody(this);
    this.body = body;
    // lastData/coreTimerReset stay 0 ("not yet"): most bodies arrive whole in one chunk, and
    // the upload check fills them in on its first look.
    this.res.onData(this.onData);
    return body;
  }

  /** BodyFlowControl: throttles the upload while nobody reads it. */
  pause(): void {
    if (this.aborted || this.finished) return;
    this.#flowPaused = true;
    this.res.pause();
    // The core's timer keeps running while paused: the server restarts it (the handler is
    // still working, just not reading yet).
    this.owner.watchUpload(this);
  }
  resume(): void {
    if (this.aborted || this.finished) return;
    this.#flowPaused = false;
    // resume() also restarts the core's idle timer.
    this.lastData = this.coreTimerReset = Date.now();
    this.res.resume();
  }

  /** An upload is arriving and not paused by uwserve: the idle rules apply to it. */
  get receiving(): boolean {
    return this.body !== null && !this.body.ended && !this.#flowPaused && !this.aborted && !this.#refusing;
  }

  /** Paused by uwserve because nobody reads the body yet. */
  get flowPaused(): boolean {
    return this.#flowPaused && !this.aborted && !this.finished;
  }

  /** Restarts the core's 10 s idle timer for this connection: resume() restarts it. */
  restartCoreTimer(now: number): void {
    this.coreTimerReset = now;
    if (this.#flowPaused) {
      this.res.resume();
      this.res.pause();
    } else {
      this.res.pause();
      this.res.resume();
    }
  }

  #handleData(chunk: ArrayBuffer | Uint8Array, isLast: boolean): void {
    const body = this.body;
    if (body === null) return;
    if (!isLast && !this.finished) {
      // Only an upload still arriving needs the clock (idle checks, the core's timer); once the
      // response is complete `res` is gone (the rest of an unread body is only being drained).
      const now = Date.now();
      this.lastData = now;
      if (this.owner.coreIdleTimer && !this.#flowPaused && now - this.coreTimerReset >= CORE_TIMER_RESET_MS) this.restartCoreTimer(now);
    }
    if (this.#refusing) {
      // Draining a refused upload: drop it, and answer as soon as the client has sent it all.
      if (isLast) setImmediate(() => this.#sendRefusal());
      return;
    }
    if (body.received + chunk.byteLength > this.owner.maxRequestBodySize) {
      // A chunked upload grew past the limit. Answering 413 and closing right away would close
      // on unread data, which resets the connection, and a client still sending (fetch with a
      // stream body) then sees the reset instead of the 413 (H21). So keep reading and dropping
      // the upload until it ends or for a short while, then answer 413 and close. (The 413
      // can't go first: this uWS build can't close a connection after a response has started.)
      body.fail(new RangeError("Request body is larger than maxRequestBodySize"));
      if (!this.responded && !this.aborted) {
        this.responded = true;
        this.closeConnection = true;
        this.#refusing = true;
        body.discard();
        // Not from inside this callback: a close requested here doesn't stop the core from
        // running requests pipelined behind the upload.
        if (isLast) setImmediate(() => this.#sendRefusal());
        else setTimeout(() => this.#sendRefusal(), REFUSED_UPLOAD_DRAIN_MS).unref();
      }
      return;
    }
    body.push(chunk, isLast);
  }

  /** Sends the 413 for a refused upload and closes the connection (once; not if the client left). */
  #sendRefusal(): void {
    if (this.aborted || this.finished) return;
    this.run(() => this.res.writeStatus("413 Payload Too Large").end("Payload Too Large", true));
    this.finish();
  }

  /** Runs `write` corked: directly when already inside a uWS callback, else through `cork()` (H3). */
  run(write: () => void): void {
    if (this.corked) write();
    else this.res.cork(write);
  }

  /** Cuts the connection now (timeouts, errors after headers, `stop(true)`). */
  abortConnection(reason: string): void {
    if (this.aborted || this.finished) return;
    // close() fires onAborted synchronously, which does the rest.
    this.res.close();
    this.#handleAbort(reason);
  }

  #handleAbort(reason: string): void {
    if (this.aborted) return;
    this.aborted = true;
    if (this.request !== null) abortServerRequest(this.request, reason);
    else this.body?.fail(new DOMException(reason, "AbortError"));
    const cancel = this.cancelStream;
    this.cancelStream = null;
    cancel?.(reason);
    if (this.completion !== null && !this.finished) {
      this.completion.reject(new DOMException(reason, "AbortError"));
    }
    this.finish();
  }

  /**
   * Call right before the final write: an unread upload must not stall the connection, so
   * drop what is queued and resume the socket while `res` is still valid (H21).
   */
  releaseBody(): void {
    if (this.body !== null && !this.body.ended) this.body.discard();
  }

  /** The response is fully handed to uWS (or abandoned): count the request as done. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (!this.aborted) this.completion?.resolve();
    this.owner.requestFinished(this);
    this.observation?.finished(this);
  }

  /** Deno's `info.completed`. */
  completed(): Promise<void> {
    if (this.completion === null) {
      let resolve!: () => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      promise.catch(() => {});
      this.completion = { promise, resolve, reject };
      if (this.finished) {
        if (this.aborted) reject(new DOMException("client disconnected", "AbortError"));
        else resolve();
      }
    }
    return this.completion.promise;
  }
}
