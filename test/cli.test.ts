// The `uwserve` CLI as a user runs it: dist/cli.js in a child process, real sockets, real fetch.
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CORE_LOADS, HAS_WORKERS } from "./helpers/core.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CLI = join(ROOT, "dist", "cli.js");
const INDEX_URL = pathToFileURL(join(ROOT, "dist", "index.js")).href;
const VERSION = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
const DEADLINE_MS = 10_000;
const TEST_TIMEOUT_MS = 20_000;

let fixtures: string;
const children = new Set<ChildProcess>();

interface Cli {
  child: ChildProcess;
  /** Resolves with the URL from the "uwserve listening on" line (0.0.0.0 mapped to 127.0.0.1). */
  url: Promise<URL>;
  /** Resolves when the child exits. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout(): string;
  stderr(): string;
}

function withDeadline<T>(promise: Promise<T>, what: string, ms = DEADLINE_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

function startCli(args: string[], env: Record<string, string | undefined> = {}, cli = CLI): Cli {
  const child = spawn(process.execPath, [cli, ...args], {
    cwd: ROOT,
    env: { ...process.env, PORT: undefined, NODE_PORT: undefined, NODE_ENV: undefined, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let out = "";
  let err = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => (out += s));
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (err += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  const url = new Promise<URL>((resolve, reject) => {
    const check = () => {
      const match = /uwserve listening on (\S+)/.exec(out);
      if (!match) return;
      const url = new URL(match[1]);
      if (url.hostname === "0.0.0.0") url.hostname = "127.0.0.1";
      resolve(url);
    };
    child.stdout!.on("data", check);
    void exited.then(({ code, signal }) =>
      reject(new Error(`uwserve exited (code ${code}, signal ${signal}) before listening\nstdout: ${out}\nstderr: ${err}`)),
    );
  });
  url.catch(() => {}); // tests that expect a failure never await it
  return { child, url, exited, stdout: () => out, stderr: () => err };
}

/** Runs the CLI to completion. */
async function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCliAt(CLI, args);
}

/** Runs a CLI script (another copy of dist/cli.js) to completion. */
async function runCliAt(script: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const cli = startCli(args, { UWSERVE_NATIVE: undefined }, script);
  const { code } = await withDeadline(cli.exited, `uwserve ${args.join(" ")} to exit`);
  return { code, stdout: cli.stdout(), stderr: cli.stderr() };
}

function fixture(name: string, source: string): string {
  const path = join(fixtures, name);
  writeFileSync(path, source);
  return path;
}

/** A port that was free a moment ago. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function get(url: URL | string, init?: RequestInit): Promise<Response> {
  return withDeadline(fetch(url, init), `response from ${url}`);
}

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  fixtures = mkdtempSync(join(tmpdir(), "uwserve-cli-"));
  fixture("hello.mjs", `export default { fetch: (req) => new Response("hello " + new URL(req.url).pathname) };\n`);
});

afterEach(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  children.clear();
});

afterAll(() => {
  if (fixtures) rmSync(fixtures, { recursive: true, force: true });
});

describe("uwserve --help / --version", () => {
  it("prints usage for --help and -h", { timeout: TEST_TIMEOUT_MS }, async () => {
    for (const flag of ["--help", "-h"]) {
      const { code, stdout } = await runCli([flag]);
      expect(code).toBe(0);
      expect(stdout).toContain("Usage: uwserve");
      expect(stdout).toContain("--port");
    }
  });

  it("prints the package version for --version and -v", { timeout: TEST_TIMEOUT_MS }, async () => {
    for (const flag of ["--version", "-v"]) {
      const { code, stdout } = await runCli([flag]);
      expect(code).toBe(0);
      expect(stdout.trim()).toBe(`uwserve ${VERSION}`);
    }
  });
});

describe("uwserve doctor", () => {
  it("reports Node, the uWS core, the engine auto picks and the native addon", { timeout: TEST_TIMEOUT_MS }, async () => {
    const { code, stdout } = await runCli(["doctor"]);
    expect(code).toBe(0);
    const lines = stdout.trim().split("\n");
    expect(lines[0]).toBe(`uwserve ${VERSION}`);
    expect(stdout).toMatch(new RegExp(`^node +${process.version.replace(/\./g, "\\.")} \\(ABI ${process.versions.modules}\\)`, "m"));
    // The same verdicts the server makes: where the core loads, auto serves with it.
    expect(stdout).toMatch(CORE_LOADS ? /^uws core +loads/m : /^uws core +does not load: /m);
    const engine = process.env.UWSERVE_ENGINE;
    if (engine === "node" || engine === "uws") expect(stdout).toMatch(new RegExp(`^engine +${engine} \\(UWSERVE_ENGINE\\)$`, "m"));
    else expect(stdout).toMatch(CORE_LOADS ? /^engine +auto → uws$/m : /^engine +auto → node/m);
    expect(stdout).toMatch(/^addon +uwserve_native loads/m);
    // The backplane peers installed here (devDependencies of this checkout).
    expect(stdout).toMatch(/^backplane +redis \(redis \d+\.\d+\.\d+\), nats \(@nats-io\/transport-node \d+\.\d+\.\d+\)$/m);
    expect(stdout).toMatch(/^telemetry +@opentelemetry\/api \d+\.\d+\.\d+: telemetry: true/m);
  });

  it("a tree without the built addon says so, with the paths it tried and how to build it", { timeout: TEST_TIMEOUT_MS }, async () => {
    // dist/ and package.json without build/: the addon is looked for beside them.
    const tree = mkdtempSync(join(tmpdir(), "uwserve-doctor-"));
    try {
      cpSync(join(ROOT, "dist"), join(tree, "dist"), { recursive: true });
      cpSync(join(ROOT, "package.json"), join(tree, "package.json"));
      symlinkSync(join(ROOT, "node_modules"), join(tree, "node_modules"));
      const { code, stdout } = await runCliAt(join(tree, "dist", "cli.js"), ["doctor"]);
      expect(code).toBe(0);
      expect(stdout).toMatch(/^addon +NOT AVAILABLE: workers can't start/m);
      expect(stdout).toContain(join(tree, "build", "Release", "uwserve_native.node"));
      expect(stdout).toContain("npm rebuild uwserve");
    } finally {
      rmSync(tree, { recursive: true, force: true });
    }
  });
});

describe("uwserve ENTRY", () => {
  it("serves the default export of a .mjs entry on --port 0", { timeout: TEST_TIMEOUT_MS }, async () => {
    const cli = startCli(["--port", "0", join(fixtures, "hello.mjs")]);
    const url = await withDeadline(cli.url, "the listening line");
    expect(Number(url.port)).toBeGreaterThan(0);
    const res = await get(new URL("/abc", url));
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("hello /abc");
  });

  it("serves a .ts entry with type annotations, resolved relative to cwd", { timeout: TEST_TIMEOUT_MS }, async () => {
    fixture(
      "typed.ts",
      `interface Greeting { text: string }\n` +
        `const greet = (name: string): Greeting => ({ text: \`hi \${name}\` });\n` +
        `export default { fetch(req: Request): Response { return Response.json(greet("ts")); } };\n`,
    );
    const cli = startCli(["--port=0", "--hostname", "127.0.0.1", join(fixtures, "typed.ts")]);
    const url = await withDeadline(cli.url, "the listening line");
    expect(url.hostname).toBe("127.0.0.1");
    expect(await (await get(url)).json()).toEqual({ text: "hi ts" });
  });

  it("--compression turns on automatic compression for the export", { timeout: TEST_TIMEOUT_MS }, async () => {
    fixture("compress.mjs", `export default { fetch: () => new Response("compress me please ".repeat(20)) };\n`);
    const cli = startCli(["-p", "0", "--compression", join(fixtures, "compress.mjs")]);
    const url = await withDeadline(cli.url, "the listening line");
    const res = await get(url);
    expect(res.headers.get("content-encoding")).toBe("gzip");
    expect(await res.text()).toBe("compress me please ".repeat(20));
  });

  it("serves a CommonJS entry (module.exports is the default export)", { timeout: TEST_TIMEOUT_MS }, async () => {
    fixture("common.cjs", `module.exports = { fetch: () => new Response("from CommonJS") };\n`);
    const cli = startCli(["-p", "0", join(fixtures, "common.cjs")]);
    const url = await withDeadline(cli.url, "the listening line");
    expect(await (await get(url)).text()).toBe("from CommonJS");
  });

  it("serves an export with routes and no fetch", { timeout: TEST_TIMEOUT_MS }, async () => {
    fixture("routes.mjs", `export default { routes: { "/r": new Response("from a route") } };\n`);
    const cli = startCli(["-p", "0", join(fixtures, "routes.mjs")]);
    const url = await withDeadline(cli.url, "the listening line");
    expect(await (await get(new URL("/r", url))).text()).toBe("from a route");
  });

  it("serves an app instance (Hono-style `export default app`) through its fetch method", { timeout: TEST_TIMEOUT_MS }, async () => {
    const entry = fixture(
      "app.mjs",
      `class App {\n` +
        `  greeting = "from an app";\n` +
        `  routes = [{ path: "/", method: "GET" }]; // route records, not a route table\n` +
        `  onError = () => this; // a registrar, not an error handler\n` +
        `  fetch(req) { return new Response(this.greeting); }\n` +
        `}\n` +
        `export default new App();\n`,
    );
    const cli = startCli(["--port", "0", entry]);
    const url = await withDeadline(cli.url, "the listening line");
    expect(await (await get(url)).text()).toBe("from an app");
  });

  it("lets --port override the export's port, which applies without the flag", { timeout: TEST_TIMEOUT_MS }, async () => {
    const exported = await freePort();
    const entry = fixture("with-port.mjs", `export default { port: ${exported}, fetch: () => new Response("ok") };\n`);

    const plain = startCli([entry]);
    expect((await withDeadline(plain.url, "the listening line")).port).toBe(String(exported));
    plain.child.kill("SIGKILL");
    await withDeadline(plain.exited, "the first server to exit");

    const flag = await freePort();
    const overridden = startCli([`--port=${flag}`, entry]);
    const url = await withDeadline(overridden.url, "the listening line");
    expect(url.port).toBe(String(flag));
    expect(await (await get(url)).text()).toBe("ok");
  });

  it("takes the port from $PORT when neither flag nor export sets one", { timeout: TEST_TIMEOUT_MS }, async () => {
    const port = await freePort();
    const cli = startCli([join(fixtures, "hello.mjs")], { PORT: String(port) });
    expect((await withDeadline(cli.url, "the listening line")).port).toBe(String(port));
  });

  it("runs an entry that calls serve() itself and exports nothing", { timeout: TEST_TIMEOUT_MS }, async () => {
    const entry = fixture(
      "self-serving.mjs",
      `import { serve } from ${JSON.stringify(INDEX_URL)};\n` +
        `const server = serve({ port: 0, fetch: () => new Response("self") });\n` +
        `console.log("own server on " + server.port);\n`,
    );
    const cli = startCli([entry]);
    await withDeadline(
      new Promise<void>((resolve) => cli.child.stdout!.on("data", () => cli.stdout().includes("own server on") && resolve())),
      "the entry's own log line",
    );
    const port = /own server on (\d+)/.exec(cli.stdout())![1];
    expect(await (await get(`http://127.0.0.1:${port}/`)).text()).toBe("self");
    expect(cli.stdout()).not.toContain("uwserve listening on");
  });

  it("passes arguments after -- to the entry", { timeout: TEST_TIMEOUT_MS }, async () => {
    const entry = fixture("argv.mjs", `console.log("argv " + JSON.stringify(process.argv.slice(2)));\nexport default { fetch: () => new Response("") };\n`);
    const cli = startCli(["--port", "0", entry, "--", "--flag", "x"]);
    await withDeadline(cli.url, "the listening line");
    expect(cli.stdout()).toContain(`argv ["--flag","x"]`);
  });
});

describe("uwserve errors (exit code 1)", () => {
  it("reports a missing entry argument", { timeout: TEST_TIMEOUT_MS }, async () => {
    const { code, stderr } = await runCli(["--port", "0"]);
    expect(code).toBe(1);
    expect(stderr).toContain("missing ENTRY");
  });

  it("reports an entry file that does not exist", { timeout: TEST_TIMEOUT_MS }, async () => {
    const { code, stderr } = await runCli([join(fixtures, "nope.ts")]);
    expect(code).toBe(1);
    expect(stderr).toContain("cannot find entry");
    expect(stderr).toContain("nope.ts");
  });

  it("shows the error an entry throws while loading", { timeout: TEST_TIMEOUT_MS }, async () => {
    const entry = fixture("throws.mjs", `setInterval(() => {}, 1000);\nthrow new Error("boom at import");\n`);
    const { code, stderr } = await runCli([entry]);
    expect(code).toBe(1);
    expect(stderr).toContain("threw while loading");
    expect(stderr).toContain("boom at import");
  });

  it("says what a default export without fetch or routes contains", { timeout: TEST_TIMEOUT_MS }, async () => {
    const entry = fixture("no-fetch.mjs", `export default { port: 1234, hostname: "localhost" };\n`);
    const { code, stderr } = await runCli([entry]);
    expect(code).toBe(1);
    expect(stderr).toContain("needs a fetch function or a routes object");
    expect(stderr).toContain("an object with keys: port, hostname");

    const fn = fixture("fn.mjs", `export default function handler() {}\n`);
    const second = await runCli([fn]);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain("a function (handler)");
  });

  it("rejects bad --port values", { timeout: TEST_TIMEOUT_MS }, async () => {
    for (const args of [["--port", "abc"], ["--port=70000"], ["-p", "-1"], ["--port=1.5"], ["--port="]]) {
      const { code, stderr } = await runCli([...args, join(fixtures, "hello.mjs")]);
      expect(code, args.join(" ")).toBe(1);
      expect(stderr, args.join(" ")).toMatch(/(--port|-p) expects an integer from 0 to 65535/);
    }
    const trailing = await runCli([join(fixtures, "hello.mjs"), "--port"]);
    expect(trailing.code).toBe(1);
    expect(trailing.stderr).toContain("--port needs a value");
  });

  it("--access-log writes one common-log line per request to stdout; --access-log json a JSON line; a bad format is refused", { timeout: TEST_TIMEOUT_MS }, async () => {
    for (const [args, check] of [
      [["--access-log"], (line: string) => expect(line).toMatch(/^127\.0\.0\.1 - - \[[^\]]+\] "GET \/logged\?q=1 HTTP\/1\.1" 200 13 "-" \d+\.\d{3}$/)],
      [["--access-log", "json"], (line: string) => expect(JSON.parse(line)).toMatchObject({ method: "GET", path: "/logged", query: "q=1", status: 200, bytes: 13, route: null })],
    ] as const) {
      const cli = startCli([...args, "--port", "0", join(fixtures, "hello.mjs")]);
      const url = await withDeadline(cli.url, "the listening line");
      expect(await (await get(new URL("/logged?q=1", url))).text()).toBe("hello /logged");
      await withDeadline(
        (async () => {
          while (!cli.stdout().includes("/logged")) await new Promise((r) => setTimeout(r, 20));
        })(),
        "the access line",
      );
      const line = cli.stdout().split("\n").find((l) => l.includes("/logged"))!;
      check(line);
      cli.child.kill("SIGINT");
      expect((await withDeadline(cli.exited, "exit")).code).toBe(0);
    }
    const bad = await runCli(["--access-log=xml", join(fixtures, "hello.mjs")]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--access-log must be common or json, not "xml"');
  });

  it("rejects unknown flags", { timeout: TEST_TIMEOUT_MS }, async () => {
    const { code, stderr } = await runCli(["--nope", "2", join(fixtures, "hello.mjs")]);
    expect(code).toBe(1);
    expect(stderr).toContain('unknown option "--nope"');
  });

  it("reports a port that is already taken", { timeout: TEST_TIMEOUT_MS }, async () => {
    const first = startCli(["--port", "0", join(fixtures, "hello.mjs")]);
    const url = await withDeadline(first.url, "the first server");
    const { code, stderr } = await runCli(["--port", url.port, join(fixtures, "hello.mjs")]);
    expect(code).toBe(1);
    expect(stderr).toContain("cannot start the server");
  });
});

describe("uwserve signals", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(`stops gracefully and exits 0 on ${signal}`, { timeout: TEST_TIMEOUT_MS }, async () => {
      const cli = startCli(["--port", "0", join(fixtures, "hello.mjs")]);
      const url = await withDeadline(cli.url, "the listening line");
      expect((await get(url)).status).toBe(200);
      cli.child.kill(signal);
      const { code } = await withDeadline(cli.exited, `exit after ${signal}`);
      expect(code).toBe(0);
    });
  }

  it("lets an in-flight request finish before exiting", { timeout: TEST_TIMEOUT_MS }, async () => {
    const entry = fixture(
      "slow.mjs",
      `export default { async fetch() { await new Promise((r) => setTimeout(r, 500)); return new Response("late but whole"); } };\n`,
    );
    const cli = startCli(["--port", "0", entry]);
    const url = await withDeadline(cli.url, "the listening line");
    const pending = get(url);
    await new Promise((resolve) => setTimeout(resolve, 100));
    cli.child.kill("SIGTERM");
    expect(await (await pending).text()).toBe("late but whole");
    expect((await withDeadline(cli.exited, "exit after SIGTERM")).code).toBe(0);
  });

  it("closes everything and exits 1 on a second signal", { timeout: TEST_TIMEOUT_MS }, async () => {
    const entry = fixture(
      "endless.mjs",
      `export default { fetch: () => new Response(new ReadableStream({\n` +
        `  start(c) { this.t = setInterval(() => c.enqueue(new TextEncoder().encode("tick\\n")), 50); },\n` +
        `  cancel() { clearInterval(this.t); },\n` +
        `})) };\n`,
    );
    const cli = startCli(["--port", "0", entry]);
    const url = await withDeadline(cli.url, "the listening line");
    const reader = (await get(url)).body!.getReader();
    await withDeadline(reader.read(), "the first chunk");
    cli.child.kill("SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(cli.child.exitCode).toBe(null); // still draining the endless response
    cli.child.kill("SIGTERM");
    expect((await withDeadline(cli.exited, "exit after the second SIGTERM")).code).toBe(1);
    await reader.cancel().catch(() => {});
  });
});

describe("uwserve SIGHUP", () => {
  /** Answers of `times` requests on new connections (so every worker gets some). */
  async function answers(url: URL, times = 20): Promise<Set<string>> {
    const seen = new Set<string>();
    for (let i = 0; i < times; i++) seen.add(await (await get(url, { headers: { connection: "close" } })).text());
    return seen;
  }

  for (const workers of [null, "3"]) {
    // Workers on the node engine need Node 22.12+.
    it.runIf(workers === null || HAS_WORKERS)(`evaluates the entry again and swaps its handlers ${workers === null ? "in place" : "in every worker"}, keeping connections`, { timeout: TEST_TIMEOUT_MS }, async () => {
      const version = fixture("version.txt", "v1");
      const entry = fixture(
        "versioned.mjs",
        `import { readFileSync } from "node:fs";\n` +
          `const version = readFileSync(${JSON.stringify(version)}, "utf8");\n` +
          `export default { fetch: () => new Response(version) };\n`,
      );
      const cli = startCli([...(workers === null ? [] : ["--workers", workers]), "--port", "0", "--hostname", "127.0.0.1", entry]);
      const url = await withDeadline(cli.url, "the listening line");
      expect(await answers(url)).toEqual(new Set(["v1"]));
      // A keep-alive connection opened before the reload is served after it.
      const agent = await import("node:http");
      const keepAlive = new agent.Agent({ keepAlive: true, maxSockets: 1 });
      const viaAgent = () =>
        new Promise<string>((resolve, reject) => {
          agent.get(url, { agent: keepAlive }, (res) => {
            let body = "";
            res.setEncoding("utf8").on("data", (chunk: string) => (body += chunk)).on("end", () => resolve(body));
          }).on("error", reject);
        });
      expect(await viaAgent()).toBe("v1");

      fixture("version.txt", "v2");
      cli.child.kill("SIGHUP");
      const deadline = Date.now() + 5000;
      let seen = await answers(url);
      while (Date.now() < deadline && !(seen.size === 1 && seen.has("v2"))) seen = await answers(url, 10);
      expect(seen).toEqual(new Set(["v2"]));
      expect(await viaAgent()).toBe("v2");
      keepAlive.destroy();
      if (workers === null) expect(cli.stderr()).toContain("uwserve: SIGHUP, reloaded the entry");

      cli.child.kill("SIGINT");
      expect((await withDeadline(cli.exited, "exit after SIGINT")).code).toBe(0);
    });
  }

  it("keeps the old handlers when the entry no longer loads", { timeout: TEST_TIMEOUT_MS }, async () => {
    const entry = fixture("breaks.mjs", `export default { fetch: () => new Response("still here") };\n`);
    const cli = startCli(["--port", "0", "--hostname", "127.0.0.1", entry]);
    const url = await withDeadline(cli.url, "the listening line");
    fixture("breaks.mjs", `throw new Error("broken on purpose");\n`);
    cli.child.kill("SIGHUP");
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && !cli.stderr().includes("could not be reloaded")) await new Promise((r) => setTimeout(r, 20));
    expect(cli.stderr()).toContain("the entry could not be reloaded; the server keeps its handlers");
    expect(cli.stderr()).toContain("broken on purpose");
    expect(await (await get(url)).text()).toBe("still here");
    cli.child.kill("SIGINT");
    expect((await withDeadline(cli.exited, "exit after SIGINT")).code).toBe(0);
  });
});

// The demo has a WebSocket chat: the uws engine only, until the node engine gets WebSockets.
describe("examples/demo.ts", () => {
  it("answers /, /api/time, POST /echo, /stream and /error", { timeout: TEST_TIMEOUT_MS }, async () => {
    const cli = startCli(["--port", "0", "examples/demo.ts"]);
    const url = await withDeadline(cli.url, "the demo's listening line");

    const home = await get(new URL("/", url), { headers: { "x-demo": "<yes>" } });
    expect(home.status).toBe(200);
    expect(home.headers.get("content-type")).toContain("text/html");
    const html = await home.text();
    expect(html).toContain(`<form method="post" action="/echo">`);
    expect(html).toContain("x-demo");
    expect(html).toContain("&#60;yes&#62;"); // header values are escaped
    expect(html).toMatch(/127\.0\.0\.1|::1|::ffff:127\.0\.0\.1/); // client IP from server.requestIP()

    const time = await get(new URL("/api/time", url));
    expect(time.headers.get("content-type")).toContain("application/json");
    const { now } = (await time.json()) as { now: string };
    expect(Math.abs(Date.parse(now) - Date.now())).toBeLessThan(60_000);

    const echo = await get(new URL("/echo", url), {
      method: "POST",
      body: new URLSearchParams({ name: "Ada", message: "hi <b>" }),
    });
    expect(echo.status).toBe(200);
    const echoed = await echo.text();
    expect(echoed).toContain("Ada");
    expect(echoed).toContain("hi &#60;b&#62;");

    const stream = await get(new URL("/stream", url));
    const lines = (await withDeadline(stream.text(), "the whole /stream body")).trim().split("\n");
    expect(lines).toHaveLength(10);
    expect(lines[9]).toMatch(/^tick 10 at /);

    const error = await get(new URL("/error", url));
    expect(error.status).toBe(500);
    await error.text();
  });
});
