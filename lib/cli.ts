#!/usr/bin/env node
// The `uwserve` command: imports an entry module and serves its default export, like `bun ENTRY` and `deno serve ENTRY`.
import { readFileSync, statSync } from "node:fs";
import { extname, resolve } from "node:path";
import { inspect } from "node:util";
import { serve } from "./index.js";
import { ENTRY_EXTENSIONS, importEntry, importEntryAgain } from "./entry.js";
import { launchWorkersWith, reportEarlyExit, reportWorkerFailure, resolveWorkerCount, serveAsWorker, workerRole } from "./workers/workers.js";
import { ENGINE_CHOICES } from "./engines/select.js";
import { backplaneKind } from "./backplane/from-url.js";
import { doctorReport } from "./doctor.js";

const USAGE = `Usage: uwserve [options] ENTRY [-- ARGS...]

Imports ENTRY (.js, .mjs, .cjs, .ts, .mts, .cts) and serves its default export,
like \`bun ENTRY\` and \`deno serve ENTRY\`:

  export default {
    port: 3000,
    fetch(req, server) {
      return new Response("Hello from uwserve");
    },
  };

An entry that calls serve() itself and exports nothing is simply run.

Options:
  -p, --port N       port to listen on, 0 for a free one (overrides the export's
                     port; default: the export's port, else $PORT, $NODE_PORT, 3000)
      --hostname H   address to listen on (overrides the export's hostname;
                     default 0.0.0.0)
      --compression  compress responses automatically (gzip/br, Deno's rules;
                     same as compression: true in the export)
      --workers N    serve on N worker threads sharing the port ("auto": one per
                     core; same as workers: N in the export); pub/sub spans them
      --engine E     auto, uws or node (default auto: the uWS core where it loads,
                     else node:http); same as UWSERVE_ENGINE=E, so it also applies
                     to an entry that calls serve() itself
      --backplane URL  carry publish() to other uwserve processes through a broker:
                     redis://[user:pass@]host:6379, rediss:// (TLS), nats://host:4222
                     or tls:// (needs the package redis or @nats-io/transport-node;
                     same as backplane: URL in the export)
      --access-log[=F]  one line per request on stdout, buffered: common (the
                     default: common log format plus route and milliseconds) or
                     json; same as UWSERVE_ACCESS_LOG=F
      --telemetry    OpenTelemetry spans and metrics through @opentelemetry/api
                     (register the SDK with node --import); same as UWSERVE_OTEL=1
  -h, --help         show this help
  -v, --version      print the version

uwserve doctor       what this install can do here: Node, the uWS core (or why it
                     doesn't load), the engine "auto" picks, the native addon

ARGS after -- reach the entry as process.argv.slice(2).
SIGINT/SIGTERM stop the server gracefully (exit 0); a second signal closes all
connections at once (exit 1). SIGHUP evaluates ENTRY again and swaps in its
fetch, error and routes (in every worker), keeping connections open.
`;

// serve() options read from a default export that is a class instance rather than a plain object.
const APP_OPTION_KEYS = [
  "fetch", "routes", "static", "error", "websocket", "port", "hostname", "unix", "tls", "idleTimeout",
  "maxRequestBodySize", "compression", "automaticCompression", "workers", "development", "reusePort", "maxHeaderSize", "id", "onListen",
  "backplane", "telemetry", "accessLog",
];
// How long a forced stop (second signal) may take before the process exits anyway.
const FORCE_STOP_DEADLINE_MS = 2000;

interface RunArgs {
  entry: string;
  port?: number;
  hostname?: string;
  compression?: boolean;
  workers?: string;
  engine?: string;
  backplane?: string;
  accessLog?: "common" | "json";
  telemetry?: boolean;
  entryArgs: string[];
}

type Command = { kind: "help" } | { kind: "version" } | { kind: "doctor" } | ({ kind: "run" } & RunArgs);

/** The slice of `Server` the CLI relies on. */
interface CliServer {
  url: URL;
  stop(closeActiveConnections?: boolean): Promise<unknown>;
  /** A uwserve Server's reload (the entry's export may be another kind of server). */
  reload?(options: Record<string, unknown>): void;
  /** The same for this thread alone: a worker reloading because another one did. */
  reloadThisThread?(options: Record<string, unknown>): void;
}

/** A problem the user can fix: printed without a stack, exit code 1. */
class CliError extends Error {}
/** A malformed command line: printed with a pointer to --help. */
class UsageError extends CliError {}

// ---------------------------------------------------------------------------
// Argument parsing

/** Splits `--port=80` into `["--port", "80"]`; other arguments come back whole. */
function splitInlineValue(arg: string): [string, string | undefined] {
  const eq = arg.indexOf("=");
  return arg.startsWith("-") && eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
}

function parsePort(value: string, flag: string): number {
  const port = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new UsageError(`${flag} expects an integer from 0 to 65535, got ${JSON.stringify(value)}`);
  }
  return port;
}

/** Flags may come before or after ENTRY; everything after `--` belongs to the entry. */
function parseArgs(argv: string[]): Command {
  // An entry needs an extension, so a bare "doctor" is never one.
  if (argv.length === 1 && argv[0] === "doctor") return { kind: "doctor" };
  const positionals: string[] = [];
  const run: Omit<RunArgs, "entry"> = { entryArgs: [] };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = splitInlineValue(argv[i]);
    const takeValue = (): string => {
      if (inline !== undefined) return inline;
      if (i + 1 >= argv.length) throw new UsageError(`${flag} needs a value`);
      return argv[++i];
    };
    switch (flag) {
      case "-h":
      case "--help":
        return { kind: "help" };
      case "-v":
      case "--version":
        return { kind: "version" };
      case "-p":
      case "--port":
        run.port = parsePort(takeValue(), flag);
        break;
      case "--hostname": {
        const hostname = takeValue();
        if (hostname === "") throw new UsageError("--hostname needs a non-empty value");
        run.hostname = hostname;
        break;
      }
      case "--workers":
        run.workers = takeValue();
        try {
          resolveWorkerCount(run.workers, "--workers");
        } catch (err) {
          throw new UsageError((err as Error).message.replace(/^uwserve: /, ""));
        }
        break;
      case "--engine": {
        const engine = takeValue();
        if (!(ENGINE_CHOICES as readonly string[]).includes(engine)) throw new UsageError(`--engine must be auto, uws or node, not ${JSON.stringify(engine)}`);
        run.engine = engine;
        break;
      }
      case "--backplane": {
        const url = takeValue();
        if (backplaneKind(url) === null || url.endsWith("://")) throw new UsageError("--backplane must be a redis://, rediss://, nats:// or tls:// URL");
        run.backplane = url;
        break;
      }
      case "--compression":
        if (inline !== undefined) throw new UsageError("--compression takes no value");
        run.compression = true;
        break;
      case "--access-log": {
        // The format is optional: --access-log, --access-log=json, --access-log json.
        const format = inline ?? (argv[i + 1] === "common" || argv[i + 1] === "json" ? argv[++i] : "common");
        if (format !== "common" && format !== "json") throw new UsageError(`--access-log must be common or json, not ${JSON.stringify(format)}`);
        run.accessLog = format;
        break;
      }
      case "--telemetry":
        if (inline !== undefined) throw new UsageError("--telemetry takes no value");
        run.telemetry = true;
        break;
      case "--":
        run.entryArgs = argv.slice(i + 1);
        i = argv.length;
        break;
      default:
        if (flag.startsWith("-") && flag !== "-") throw new UsageError(`unknown option ${JSON.stringify(flag)}`);
        positionals.push(argv[i]);
    }
  }
  if (positionals.length === 0) throw new UsageError("missing ENTRY: the module to serve, e.g. uwserve server.ts");
  if (positionals.length > 1) {
    throw new UsageError(`expected one ENTRY, got ${positionals.length}: ${positionals.join(" ")} (pass arguments for the entry after --)`);
  }
  return { kind: "run", entry: positionals[0], ...run };
}

// ---------------------------------------------------------------------------
// Loading the entry

/** Resolves ENTRY against the working directory and checks it is a file we can import. */
function resolveEntry(entry: string): string {
  const path = resolve(entry);
  const stats = statSync(path, { throwIfNoEntry: false });
  if (!stats) throw new CliError(`cannot find entry ${JSON.stringify(entry)} (looked for ${path})`);
  if (!stats.isFile()) throw new CliError(`entry ${JSON.stringify(entry)} is not a file (${path})`);
  if (!ENTRY_EXTENSIONS.includes(extname(path))) {
    throw new CliError(`entry ${JSON.stringify(entry)} has an unsupported extension; expected one of ${ENTRY_EXTENSIONS.join(", ")}`);
  }
  return path;
}

/** One phrase describing what an entry exported, for error messages. */
function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  switch (typeof value) {
    case "undefined":
      return "nothing";
    case "function":
      return `a function${value.name ? ` (${value.name})` : ""}`;
    case "object": {
      const keys = Object.keys(value as object);
      const kind = isPlainObject(value) ? "an object" : `an instance of ${(value as object).constructor?.name || "a class"}`;
      return keys.length ? `${kind} with keys: ${keys.join(", ")}` : `${kind} without keys`;
    }
    case "string":
      return `a string ${JSON.stringify(value)}`;
    default:
      return `a ${typeof value} (${String(value)})`;
  }
}

/** True when the entry exported a server it already started (`export default serve(...)`). */
function isServer(value: object): value is CliServer {
  const candidate = value as Partial<CliServer>;
  return typeof candidate.stop === "function" && candidate.url instanceof URL;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** A class instance (a Hono app, say) is an app, not an options object: take only the serve() options it carries. */
function pickServeOptions(app: object): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  for (const key of APP_OPTION_KEYS) {
    const value = (app as Record<string, unknown>)[key];
    if (value !== undefined) options[key] = typeof value === "function" ? value.bind(app) : value;
  }
  return options;
}

/** The default export's server options with the CLI flags applied over them; throws on a bad shape. */
function serveOptions(entry: string, exported: unknown, args: RunArgs): Record<string, unknown> {
  // A plain object goes through whole, so serve() can point out misspelt options.
  const options = isPlainObject(exported)
    ? { ...exported }
    : typeof exported === "object" && exported !== null && !Array.isArray(exported)
      ? pickServeOptions(exported)
      : undefined;
  // Hono apps carry `routes` as an array of route records, not a route table.
  const routes = options?.routes;
  const hasRoutes = typeof routes === "object" && routes !== null && !Array.isArray(routes);
  if (!options || (typeof options.fetch !== "function" && !hasRoutes)) {
    throw new CliError(
      `the default export of ${entry} needs a fetch function or a routes object, but it is ${describe(exported)}\n` +
        `  expected: export default { fetch(req) { return new Response("hi"); } }`,
    );
  }
  if (!hasRoutes) delete options.routes;
  if (args.port !== undefined) options.port = args.port;
  if (args.hostname !== undefined) options.hostname = args.hostname;
  if (args.backplane !== undefined) options.backplane = args.backplane;
  if (args.compression === true) {
    delete options.automaticCompression;
    options.compression = true;
  }
  return options;
}

// ---------------------------------------------------------------------------
// Running

/** First SIGINT/SIGTERM: graceful stop, exit 0. Second: close everything now, exit 1. */
function stopOnSignals(server: CliServer): void {
  let forced = false;
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      forced = true;
      console.error(`uwserve: ${signal} again, closing all connections`);
      setTimeout(() => process.exit(1), FORCE_STOP_DEADLINE_MS).unref();
      server.stop(true).finally(() => process.exit(1));
      return;
    }
    stopping = true;
    console.error(`uwserve: ${signal}, stopping (send it again to close all connections at once)`);
    server.stop().then(
      // A forced stop also settles this graceful one; its exit code wins.
      () => process.exit(forced ? 1 : 0),
      (err: unknown) => {
        console.error(`uwserve: stop failed: ${inspect(err)}`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
}

function startServer(options: Record<string, unknown>, what = "the server"): CliServer {
  // The export is handed to serve() as is; serve() validates every option at run time.
  const start = serve as unknown as (options: Record<string, unknown>) => CliServer;
  try {
    return start(options);
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    // Coded errors (port in use, bad option) are self-explanatory; anything else gets its stack.
    const detail =
      typeof code === "string" && err instanceof Error ? `${err.message.replace(/^uwserve: /, "")} (${code})` : inspect(err);
    throw new CliError(`cannot start ${what}: ${detail}`);
  }
}

function warnFlagsIgnored(args: RunArgs, why: string): void {
  if (args.port !== undefined || args.hostname !== undefined || args.compression === true || args.backplane !== undefined) {
    console.error(`uwserve: ${args.entry} ${why}; --port/--hostname/--compression/--backplane are ignored`);
  }
}

/** The entry's default export (TypeScript compiled to CommonJS nests it one level down). */
function defaultExport(module: Record<string, unknown>): unknown {
  const exported = module.default;
  // Flagged by __esModule, as Babel and TypeScript do.
  if ((exported as { __esModule?: unknown } | null)?.__esModule === true) return (exported as { default?: unknown }).default;
  return exported;
}

/** What reload() takes from a re-evaluated entry's export. */
function reloadOptions(options: Record<string, unknown>): Record<string, unknown> {
  const { fetch, error, routes } = options;
  return { fetch, error, routes, static: options.static };
}

async function run(args: RunArgs): Promise<void> {
  const path = resolveEntry(args.entry);
  process.argv = [process.argv[0], path, ...args.entryArgs];
  // The process is the CLI's: its engine choice is the process default (workers inherit it).
  if (args.engine !== undefined) process.env.UWSERVE_ENGINE = args.engine;
  // So are the access log and telemetry: an entry that calls serve() itself gets them too.
  if (args.accessLog !== undefined) process.env.UWSERVE_ACCESS_LOG = args.accessLog;
  if (args.telemetry === true) process.env.UWSERVE_OTEL = "1";
  let module: Record<string, unknown>;
  try {
    module = await importEntry(path);
  } catch (err) {
    throw new CliError(`${args.entry} threw while loading:\n${inspect(err)}`);
  }
  const exported = defaultExport(module);
  // An entry that started its own server and exports nothing just keeps running. CommonJS
  // modules always have a default export (module.exports), an empty object when they export nothing.
  const commonjsEmpty = /\.c[jt]s$/.test(path) && isPlainObject(exported) && Object.keys(exported).length === 0;
  if (exported === undefined || commonjsEmpty) {
    warnFlagsIgnored(args, "has no default export to serve");
    return;
  }
  let server: CliServer;
  /** SIGHUP: the entry is evaluated again and the server takes its new handlers. */
  let reload: (() => Promise<void>) | null = null;
  if (typeof exported === "object" && exported !== null && isServer(exported)) {
    warnFlagsIgnored(args, "exports a server it already started");
    server = exported;
  } else {
    const options = serveOptions(args.entry, exported, args);
    const workers = args.workers ?? options.workers;
    delete options.workers;
    const freshOptions = async (): Promise<Record<string, unknown>> =>
      reloadOptions(serveOptions(args.entry, defaultExport(await importEntryAgain(path)), args));
    const role = workerRole();
    if (role !== null) {
      // One of several workers: the main thread chose the port; share it with the others.
      options.port = role.port;
      options.reusePort = true;
      let started: CliServer;
      try {
        started = startServer(options);
      } catch (err) {
        reportWorkerFailure(err instanceof Error ? err.message : String(err));
        return;
      }
      serveAsWorker(started, async () => started.reloadThisThread!(await freshOptions()));
      return;
    }
    const count = workers === undefined ? 1 : resolveWorkerCount(workers, args.workers !== undefined ? "--workers" : "the export's workers");
    if (count > 1) {
      // The workers re-run this CLI on the entry (not the main module, as serve({ workers }) in code does).
      launchWorkersWith({ script: new URL(import.meta.url), argv: CLI_ARGV });
      options.workers = count;
    }
    const started = startServer(options, count > 1 ? "the workers" : "the server");
    server = started;
    // reload() on the main thread reaches every worker.
    reload = async () => started.reload!(await freshOptions());
  }
  // Signal handlers first: whoever reads the line below may signal at once (SIGHUP's default ends the process).
  stopOnSignals(server);
  if (reload !== null) reloadOnHangup(reload);
  const engine = (server as { engine?: string }).engine;
  console.log(`uwserve listening on ${server.url.href}${engine === undefined ? "" : ` (${engine} engine)`}`);
}

/** SIGHUP re-evaluates the entry and swaps in its handlers, in every worker: code changes without dropped connections. */
function reloadOnHangup(reload: () => Promise<void>): void {
  process.on("SIGHUP", () => {
    reload().then(
      () => console.error("uwserve: SIGHUP, reloaded the entry"),
      (err: unknown) => console.error(`uwserve: SIGHUP, the entry could not be reloaded; the server keeps its handlers:\n${inspect(err)}`),
    );
  });
}

function readVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<void> {
  try {
    const command = parseArgs(argv);
    if (command.kind === "help") process.stdout.write(USAGE);
    else if (command.kind === "version") console.log(`uwserve ${readVersion()}`);
    else if (command.kind === "doctor") console.log(doctorReport(readVersion()).join("\n"));
    else await run(command);
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    // In a worker the main thread says it (once, for the group).
    if (workerRole() !== null) {
      reportWorkerFailure(err.message);
      process.exit(1);
    }
    console.error(`uwserve: ${err.message}`);
    if (err instanceof UsageError) console.error("Run uwserve --help for usage.");
    // Exit now: a half-loaded entry may hold timers or sockets that would keep the process alive.
    process.exit(1);
  }
}

// Kept before run() rewrites process.argv for the entry: workers re-run the CLI with it.
const CLI_ARGV = process.argv.slice(2);
if (workerRole() !== null) reportEarlyExit();
await main(CLI_ARGV);
