/**
 * Running one entry on N worker threads that serve one port (`uwserve --workers N`). The main
 * thread starts the workers, each re-runs the CLI on the same entry and listens on the same
 * port, and the main thread stops them (gracefully first) and restarts one that crashes.
 *
 * Connections are spread by the kernel: every worker listens with SO_REUSEPORT on the same
 * explicit port. (The alternative, a uWS acceptor app handing sockets to child apps, puts every
 * accept on one thread; not measured yet.) Pub/sub topics span the workers through the native
 * hub (lib/hub.ts), which a server joins when it runs in such a worker.
 */
import { availableParallelism } from "node:os";
import { createServer } from "node:net";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { uwserveError } from "./errors.js";

/** What a worker started by startWorkers() knows about its role. */
export interface WorkerRole {
  index: number;
  port: number;
  /** The hub group: the workers of one group exchange publishes. */
  group: string;
  /**
   * Shared counters, two Int32 per worker (open requests, open WebSockets), so that every
   * worker's server reports totals across the group.
   */
  counters: SharedArrayBuffer;
}

/** Where worker `index` keeps its counts in WorkerRole.counters. */
export const REQUESTS_SLOT = 0;
export const WEBSOCKETS_SLOT = 1;
export const SLOTS_PER_WORKER = 2;

/** Sums one kind of count over every worker of the group. */
export function groupTotal(counters: Int32Array, slot: number): number {
  let total = 0;
  for (let i = slot; i < counters.length; i += SLOTS_PER_WORKER) total += Atomics.load(counters, i);
  return total;
}

/** The role of this thread, when startWorkers() started it; null on the main thread or elsewhere. */
export function workerRole(): WorkerRole | null {
  if (isMainThread) return null;
  return (workerData as { uwserveWorker?: WorkerRole } | null)?.uwserveWorker ?? null;
}

/** `workers` as given (a count or "auto") → a count of threads. */
export function resolveWorkerCount(value: unknown, source: string): number {
  if (value === "auto") return availableParallelism();
  if (typeof value === "string" && /^\d+$/.test(value)) value = Number(value);
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 256) {
    throw uwserveError(RangeError, "UWSERVE_ERR_INVALID_OPTION", `uwserve: ${source} must be "auto" or a whole number from 1 to 256`);
  }
  return value;
}

/** A free port on `hostname`, for workers asked to listen on port 0 (SO_REUSEPORT needs a real one). */
export function freePort(hostname: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, hostname, () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

interface WorkerMessage {
  type: "ready" | "failed" | "stop-all";
  detail?: string;
  force?: boolean;
}

/** The workers of one `--workers` run, seen from the main thread. */
export class WorkerGroup {
  readonly url: URL;
  readonly #script: URL;
  readonly #argv: string[];
  readonly #role: Omit<WorkerRole, "index">;
  readonly #counters: Int32Array;
  readonly #workers: Array<Worker | null>;
  #stopping: Promise<void> | null;

  private constructor(script: URL, argv: string[], count: number, port: number, url: URL) {
    this.#script = script;
    this.#argv = argv;
    const counters = new SharedArrayBuffer(count * SLOTS_PER_WORKER * Int32Array.BYTES_PER_ELEMENT);
    this.#counters = new Int32Array(counters);
    this.#role = { port, group: `uwserve:${process.pid}:${port}`, counters };
    this.#workers = new Array<Worker | null>(count).fill(null);
    this.#stopping = null;
    this.url = url;
  }

  /** Starts `count` workers running `script` with `argv`; resolves once every one listens. */
  static async start(script: URL, argv: string[], count: number, port: number, url: URL): Promise<WorkerGroup> {
    const group = new WorkerGroup(script, argv, count, port, url);
    try {
      await Promise.all(group.#workers.map((_, index) => group.#spawn(index)));
    } catch (err) {
      await group.stop(true);
      throw err;
    }
    return group;
  }

  get size(): number {
    return this.#workers.length;
  }

  /** Starts worker `index`; resolves when it listens, rejects when it fails to start. */
  #spawn(index: number): Promise<void> {
    const worker = new Worker(this.#script, {
      argv: this.#argv,
      workerData: { uwserveWorker: { ...this.#role, index } satisfies WorkerRole },
    });
    this.#workers[index] = worker;
    return new Promise<void>((resolve, reject) => {
      let started = false;
      worker.on("message", (message: WorkerMessage) => {
        if (message.type === "ready") {
          started = true;
          resolve();
        } else if (message.type === "failed") {
          reject(new Error(message.detail ?? "the worker failed to start"));
        } else if (message.type === "stop-all") {
          // server.stop() inside one worker stops them all.
          void this.stop(message.force === true);
        }
      });
      worker.on("error", (err) => {
        if (!started) reject(err);
        else console.error(`uwserve: worker ${index} failed:`, err);
      });
      worker.on("exit", (code) => {
        if (this.#workers[index] === worker) this.#workers[index] = null;
        // What it counted is gone with it.
        for (let slot = 0; slot < SLOTS_PER_WORKER; slot++) Atomics.store(this.#counters, index * SLOTS_PER_WORKER + slot, 0);
        if (!started) {
          reject(new Error(`worker ${index} exited (${code}) before listening`));
          return;
        }
        if (this.#stopping === null) {
          // A crash: say so and start a replacement on the same port.
          console.error(`uwserve: worker ${index} exited with code ${code}; starting a new one`);
          this.#spawn(index).catch((err) => console.error(`uwserve: worker ${index} could not be restarted:`, err));
        }
      });
    });
  }

  /** Stops every worker: graceful by default (each stops its server, then exits), `true` cuts connections. */
  stop(closeActiveConnections = false): Promise<void> {
    for (const worker of this.#workers) worker?.postMessage({ type: "stop", force: closeActiveConnections });
    if (this.#stopping !== null && !closeActiveConnections) return this.#stopping;
    const exits = this.#workers.map((worker) => (worker === null ? Promise.resolve() : new Promise<void>((resolve) => worker.once("exit", () => resolve()))));
    this.#stopping = Promise.all(exits).then(() => {});
    return this.#stopping;
  }
}

/**
 * In a worker: tells the main thread the server listens, and stops it when asked (the worker
 * then ends by itself: every uWS handle is closed first, so its loop closes cleanly).
 */
export function serveAsWorker(server: { stop(force?: boolean): Promise<unknown> }): void {
  parentPort!.postMessage({ type: "ready" } satisfies WorkerMessage);
  parentPort!.on("message", (message: { type?: string; force?: boolean }) => {
    if (message?.type !== "stop") return;
    void server.stop(message.force === true).finally(() => parentPort!.close());
  });
}

/** In a worker: its server's stop() was called; every worker of the group stops. */
export function requestStopAll(force: boolean): void {
  parentPort?.postMessage({ type: "stop-all", force } satisfies WorkerMessage);
}

/** In a worker whose server couldn't start. */
export function reportWorkerFailure(detail: string): void {
  parentPort!.postMessage({ type: "failed", detail } satisfies WorkerMessage);
}
