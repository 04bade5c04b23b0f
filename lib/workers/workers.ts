/**
 * Running one server on N worker threads that serve one port: `uwserve --workers N ENTRY`, or
 * `serve({ workers: N })` in code, which re-runs the main module in each worker as `cluster`
 * does. The main thread starts the workers and blocks until every one listens (so `serve()`
 * returns a listening server, as without workers), stops them (gracefully first), restarts one
 * that crashes, and relays a `reload()` to the others.
 *
 * Connections are spread by the kernel: every worker listens with SO_REUSEPORT on the same
 * explicit port. A uWS acceptor (a main-thread App handing accepted sockets to the workers' Apps
 * through addChildAppDescriptor) was measured against it (bench/workers-distribution.mjs) and
 * rejected: uwebsockets@3.0.6 lacks it on Node 20 (its Node >= 22 builds have it); it was no
 * faster with keep-alive and 6-8 % slower under connection churn (every accept runs on one
 * thread); and a worker that ends before removeChildAppDescriptor makes the next hand-off
 * segfault the process, which rules out replacing crashed workers. Its one gain, an exact
 * round-robin spread, matters little: the kernel's hash was within 1.2x of even with 100
 * keep-alive connections over 4 workers, and within 6 % under churn.
 *
 * Pub/sub topics span the workers through the native hub (lib/hub.ts), which a server joins
 * when it runs in such a worker.
 */
import { availableParallelism } from "node:os";
import { resolve as resolvePath } from "node:path";
import { MessageChannel, receiveMessageOnPort, Worker, workerData, type MessagePort } from "node:worker_threads";
import { uwserveError } from "../errors.js";
import { loadNative } from "../transport/native.js";
import type { BridgeShare } from "../backplane/relay.js";

/** What a worker started by a WorkerGroup knows about its role. */
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
  /** The worker's line to the main thread (reports up, "stop" and "reload" down). */
  control?: MessagePort;
  /** One Int32 the worker bumps after each report, so a main thread blocked on it wakes. */
  signal?: SharedArrayBuffer;
  /** `serve({ workers })`: the main module this worker re-runs (absent under the CLI). */
  entry?: string;
  /** With a broker backplane: its bridge on the main thread, reached through the hub (backplane/bridge.ts). */
  backplane?: BridgeShare;
}

/** Where worker `index` keeps its counts in WorkerRole.counters. */
export const REQUESTS_SLOT = 0;
export const WEBSOCKETS_SLOT = 1;
export const SLOTS_PER_WORKER = 2;

/** How long the main thread waits for the workers to listen before giving up. */
const START_DEADLINE_MS = 30_000;

/** Sums one kind of count over every worker of the group. */
export function groupTotal(counters: Int32Array, slot: number): number {
  let total = 0;
  for (let i = slot; i < counters.length; i += SLOTS_PER_WORKER) total += Atomics.load(counters, i);
  return total;
}

/** The role of this thread, when a WorkerGroup started it; null on the main thread or elsewhere. */
export function workerRole(): WorkerRole | null {
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

/** How a group's workers start when not through worker-entry.js (the main module again). */
export interface WorkerLauncher {
  /** The module each worker runs. */
  script: URL;
  /** Its process.argv after the script. */
  argv: string[];
}

let launcher: WorkerLauncher | null = null;

/** The CLI's workers re-run the CLI itself on the entry; set before its serve({ workers }) call. */
export function launchWorkersWith(how: WorkerLauncher): void {
  launcher = how;
}

/** The launcher the CLI set, else null (the workers re-run the main module). */
export function workerLauncher(): WorkerLauncher | null {
  return launcher;
}

/**
 * Workers need the native addon (its hub carries pub/sub between threads); one thread doesn't.
 * Checked on the main thread before any worker starts, so the error comes once and says so.
 */
export function checkWorkersSupported(count: number): void {
  try {
    loadNative();
  } catch (err) {
    const cause = err instanceof Error ? err.message.replace(/^uwserve: /, "") : String(err);
    throw uwserveError(
      Error,
      "UWSERVE_ERR_NATIVE_UNAVAILABLE",
      `uwserve: workers: ${count} needs uwserve's native addon (its hub carries pub/sub between the threads); without it only one thread can serve (workers: 1). ${cause}`,
    );
  }
}

/**
 * The main thread picked the port (listening proved it free, and port 0 became a real one that
 * SO_REUSEPORT can share) and stopped listening; the workers re-run the main module (its
 * serve() call makes each one's server, serve.ts) or, under the CLI, the CLI on its entry.
 * Blocks until all of them listen. `abandon` undoes the main thread's server if they can't start.
 */
export function startWorkerGroup(
  count: number,
  port: number,
  plan: GroupPlan,
  onStopAll: (force: boolean) => void,
  abandon: () => void,
): WorkerGroup {
  const main = process.argv[1];
  try {
    if (launcher === null && (main === undefined || main === "")) {
      throw uwserveError(
        Error,
        "UWSERVE_ERR_WORKER",
        "uwserve: serve({ workers }) runs the main module again in each worker, and this process has none (node -e, a REPL); put the server in a file, or run it with `uwserve --workers N entry`",
      );
    }
    const group = new WorkerGroup({
      ...(launcher ?? { script: new URL("./worker-entry.js", import.meta.url), argv: process.argv.slice(2), entry: resolvePath(main!) }),
      count,
      port,
      ...plan,
    });
    group.onStopAll = onStopAll;
    group.start();
    return group;
  } catch (err) {
    abandon();
    throw err;
  }
}

let groups = 0;

/** What the workers of a group share: the hub group, the counters, the broker bridge when there is one. */
export interface GroupPlan {
  group: string;
  counters: SharedArrayBuffer;
  backplane?: BridgeShare;
}

/** A hub group name and counters for a new WorkerGroup of `count` workers. */
export function planGroup(count: number): GroupPlan {
  return {
    group: `uwserve:${process.pid}:${++groups}`,
    counters: new SharedArrayBuffer(count * SLOTS_PER_WORKER * Int32Array.BYTES_PER_ELEMENT),
  };
}

/** Worker → main thread. */
type Report =
  | { type: "ready" }
  | { type: "failed"; detail: string }
  | { type: "stop-all"; force: boolean }
  | { type: "reload-all" };

/** Main thread → worker. */
type Command = { type: "stop"; force: boolean } | { type: "reload" };

export interface WorkerGroupOptions {
  /** The module each worker runs. */
  script: URL;
  /** Its process.argv after the script. */
  argv: string[];
  count: number;
  port: number;
  group: string;
  counters: SharedArrayBuffer;
  /** The main module the workers re-run (`serve({ workers })`), else absent (the CLI). */
  entry?: string;
  backplane?: BridgeShare;
}

interface Member {
  worker: Worker;
  control: MessagePort;
  started: boolean;
}

/** The workers of one group, seen from the main thread. */
export class WorkerGroup {
  readonly #options: WorkerGroupOptions;
  readonly #counters: Int32Array;
  readonly #signal: Int32Array;
  readonly #members: Array<Member | null>;
  #stopping: Promise<void> | null;
  #refed: boolean;
  /** A worker's server.stop(): by default the whole group stops. */
  onStopAll: (force: boolean) => void;

  constructor(options: WorkerGroupOptions) {
    this.#options = options;
    this.#counters = new Int32Array(options.counters);
    this.#signal = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));
    this.#members = new Array<Member | null>(options.count).fill(null);
    this.#stopping = null;
    this.#refed = true;
    this.onStopAll = (force) => void this.stop(force);
  }

  get size(): number {
    return this.#members.length;
  }
  get port(): number {
    return this.#options.port;
  }

  /**
   * Starts every worker and blocks until each one listens: the workers are threads of their
   * own, so they start while this one waits. Throws (after ending the others) when one fails,
   * naming it and why.
   */
  start(deadlineMs = START_DEADLINE_MS): void {
    for (let index = 0; index < this.#members.length; index++) this.#spawn(index);
    const deadline = Date.now() + deadlineMs;
    let ready = 0;
    let failure: string | null = null;
    while (ready < this.#members.length && failure === null) {
      const seen = Atomics.load(this.#signal, 0);
      for (let index = 0; index < this.#members.length && failure === null; index++) {
        const member = this.#members[index]!;
        for (let received = receiveMessageOnPort(member.control); received !== undefined; received = receiveMessageOnPort(member.control)) {
          const report = received.message as Report;
          if (report.type === "ready" && !member.started) {
            member.started = true;
            ready++;
          } else if (report.type === "failed") {
            failure = `worker ${index} failed to start: ${report.detail}`;
            break;
          }
        }
      }
      if (ready === this.#members.length || failure !== null) break;
      const left = deadline - Date.now();
      if (left <= 0) {
        failure = `${this.#members.length - ready} of ${this.#members.length} workers did not start a server within ${deadlineMs / 1000} s`;
        break;
      }
      Atomics.wait(this.#signal, 0, seen, left);
    }
    if (failure !== null) {
      this.#stopping = Promise.resolve();
      for (const member of this.#members) void member?.worker.terminate();
      throw uwserveError(Error, "UWSERVE_ERR_WORKER", `uwserve: ${failure}`);
    }
    for (let index = 0; index < this.#members.length; index++) this.#listen(index, this.#members[index]!);
  }

  /** Starts worker `index`; its reports are read by start() (the first time) or #listen(). */
  #spawn(index: number): Member {
    const { port1, port2 } = new MessageChannel();
    const { port, group, counters, entry, backplane } = this.#options;
    const role: WorkerRole = { index, port, group, counters, control: port2, signal: this.#signal.buffer as SharedArrayBuffer, entry, backplane };
    const worker = new Worker(this.#options.script, {
      argv: this.#options.argv,
      workerData: { uwserveWorker: role },
      transferList: [port2],
    });
    if (!this.#refed) worker.unref();
    const member: Member = { worker, control: port1, started: false };
    this.#members[index] = member;
    worker.on("error", (err) => console.error(`uwserve: worker ${index} failed:`, err));
    worker.on("exit", (code) => {
      port1.close();
      if (this.#members[index] === member) this.#members[index] = null;
      // What it counted is gone with it.
      for (let slot = 0; slot < SLOTS_PER_WORKER; slot++) Atomics.store(this.#counters, index * SLOTS_PER_WORKER + slot, 0);
      if (this.#stopping === null && member.started) {
        // A crash: say so and start a replacement on the same port.
        console.error(`uwserve: worker ${index} exited with code ${code}; starting a new one`);
        this.#listen(index, this.#spawn(index));
      }
    });
    return member;
  }

  /** After start(): the worker's reports arrive as events (the port doesn't hold the process). */
  #listen(index: number, member: Member): void {
    member.control.on("message", (report: Report) => {
      if (report.type === "ready") {
        member.started = true;
      } else if (report.type === "failed") {
        console.error(`uwserve: worker ${index} could not be restarted: ${report.detail}`);
      } else if (report.type === "stop-all") {
        // server.stop() inside one worker stops them all.
        this.onStopAll(report.force);
      } else if (report.type === "reload-all") {
        // server.reload() inside one worker: the others re-run the entry.
        this.reload(index);
      }
    });
    member.control.unref();
  }

  /** Stops every worker: graceful by default (each stops its server, then exits), `true` cuts connections. */
  stop(closeActiveConnections = false): Promise<void> {
    const members = this.#members.filter((member): member is Member => member !== null);
    for (const member of members) member.control.postMessage({ type: "stop", force: closeActiveConnections } satisfies Command);
    if (this.#stopping !== null && !closeActiveConnections) return this.#stopping;
    const exits = members.map((member) => new Promise<void>((resolve) => member.worker.once("exit", () => resolve())));
    this.#stopping = Promise.all(exits).then(() => {});
    return this.#stopping;
  }

  /** Asks every worker but `except` to reload its server from the entry. */
  reload(except = -1): void {
    this.#members.forEach((member, index) => {
      if (member !== null && index !== except) member.control.postMessage({ type: "reload" } satisfies Command);
    });
  }

  /** Whether the workers keep the process alive (server.ref()/unref()). */
  setRef(ref: boolean): void {
    this.#refed = ref;
    for (const member of this.#members) {
      if (ref) member?.worker.ref();
      else member?.worker.unref();
    }
  }
}

// ---- inside a worker --------------------------------------------------------------------------

let reported = false;

/** Sends a report to the main thread and wakes it if it is blocked in WorkerGroup.start(). */
function report(message: Report): void {
  const role = workerRole();
  if (role?.control === undefined) return;
  role.control.postMessage(message);
  if (role.signal !== undefined) {
    const signal = new Int32Array(role.signal);
    Atomics.add(signal, 0, 1);
    Atomics.notify(signal, 0);
  }
}

/**
 * In a worker, before it runs the entry: a worker that dies or ends before its server listens
 * tells the main thread why, so start() fails at once with the reason instead of waiting.
 */
export function reportEarlyExit(): void {
  process.on("uncaughtExceptionMonitor", (err) => {
    if (!reported) reportWorkerFailure(err instanceof Error ? (err.stack ?? err.message) : String(err));
  });
  process.once("exit", (code) => {
    if (!reported) reportWorkerFailure(`it exited (code ${code}) without starting a server; in a worker the entry must call serve({ workers }) again`);
  });
}

/**
 * In a worker: tells the main thread the server listens, and follows its commands: "stop"
 * stops the server (the worker then ends by itself: every uWS handle is closed first, so its
 * loop closes cleanly), "reload" runs `reload` (re-evaluating the entry).
 */
export function serveAsWorker(server: { stop(force?: boolean): Promise<unknown> }, reload: () => Promise<void>): void {
  const control = workerRole()?.control;
  if (control === undefined) return;
  reported = true;
  report({ type: "ready" });
  control.on("message", (command: Command) => {
    if (command.type === "stop") {
      void server.stop(command.force).finally(() => control.close());
    } else if (command.type === "reload") {
      reload().catch((err: unknown) => console.error(`uwserve: worker ${workerRole()!.index} could not reload, it keeps its handlers:`, err));
    }
  });
}

/** In a worker: its server's stop() was called; every worker of the group stops. */
export function requestStopAll(force: boolean): void {
  report({ type: "stop-all", force });
}

/** In a worker: its server's reload() was called; the other workers reload from the entry. */
export function requestReloadAll(): void {
  report({ type: "reload-all" });
}

/** In a worker whose server couldn't start. */
export function reportWorkerFailure(detail: string): void {
  reported = true;
  report({ type: "failed", detail });
}
