/**
 * The request clocks of a server: `server.timeout(req, s)` deadlines (one 250 ms sweep for all)
 * and the idle rules for uploads (one 1 s sweep). The uws engine's core has its own fixed idle
 * timer (10 s) that must be kept running for uploads allowed longer; node has none to keep.
 */
import type { RequestContext } from "./context.js";
import { Sweep } from "./sweep.js";

export class RequestTimers {
  /** Requests with a server.timeout() deadline. */
  readonly #timed: Sweep<RequestContext>;
  /** Uploads under an idleTimeout the engine doesn't apply itself, or paused. */
  readonly #uploads: Sweep<RequestContext>;
  readonly #idleTimeoutS: number;
  /** The engine's own idle timeout that must be restarted (seconds), or null. */
  readonly #coreIdleS: number | null;

  constructor(idleTimeoutS: number, coreIdleS: number | null) {
    this.#idleTimeoutS = idleTimeoutS;
    this.#coreIdleS = coreIdleS;
    this.#timed = new Sweep(250, (ctx, now) => checkDeadline(ctx, now));
    this.#uploads = new Sweep(1000, (ctx, now) => this.#checkUpload(ctx, now));
  }

  /** Whether every upload needs watching (else only paused ones, which ask for it). */
  get watchesAllUploads(): boolean {
    return this.#coreIdleS === null || this.#idleTimeoutS !== this.#coreIdleS;
  }

  /** Aborts the request of `ctx` once `seconds` have passed (0 clears its deadline). */
  setDeadline(ctx: RequestContext, seconds: number): void {
    if (ctx.finished) return;
    if (seconds === 0) {
      ctx.deadline = 0;
      this.#timed.delete(ctx);
      return;
    }
    ctx.deadline = Date.now() + seconds * 1000;
    this.#timed.add(ctx);
  }

  /** The request completed: nothing keeps its context. */
  forget(ctx: RequestContext): void {
    if (ctx.deadline !== 0) this.#timed.delete(ctx);
    if (ctx.body !== null) this.#uploads.delete(ctx);
  }

  watchUpload(ctx: RequestContext): void {
    this.#uploads.add(ctx);
  }

  clear(): void {
    this.#timed.clear();
    this.#uploads.clear();
  }

  /**
   * idleTimeout for uploads: cuts one idle longer than it, and (uws) keeps restarting the
   * core's timer for one allowed longer than the core's (or 0 = never). An upload uwserve
   * paused (its handler isn't reading yet) is never idle.
   */
  #checkUpload(ctx: RequestContext, now: number): boolean {
    if (ctx.finished || ctx.body === null || ctx.body.ended) return false;
    if (ctx.lastData === 0) {
      // First look at an upload that hasn't had a partial chunk yet: its clock starts now.
      ctx.lastData = ctx.coreTimerReset = now;
    }
    const core = this.#coreIdleS;
    if (ctx.flowPaused) {
      if (core !== null && now - ctx.coreTimerReset >= core * 500) ctx.restartCoreTimer(now);
      return true;
    }
    if (!ctx.receiving) return true;
    const limit = this.#idleTimeoutS * 1000;
    if (limit > 0 && now - ctx.lastData >= limit) {
      ctx.abortConnection("upload idle timeout");
      return false;
    }
    if (core !== null && (limit === 0 || limit > core * 1000) && now - ctx.coreTimerReset >= core * 500) {
      ctx.restartCoreTimer(now);
    }
    return true;
  }
}

/** Keeps `ctx` in the deadline sweep until its deadline passes (then cuts it). */
function checkDeadline(ctx: RequestContext, now: number): boolean {
  if (ctx.deadline === 0 || ctx.deadline > now) return ctx.deadline !== 0;
  ctx.abortConnection("request timed out");
  return false;
}
