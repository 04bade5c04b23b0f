// The backplane's API misuse and packaging (issue 15, item 1): coded errors for a wrong option,
// a URL that no driver takes, a missing optional peer (named), and drivers that do nothing until a
// server starts with them. No broker is needed here.
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { serve } from "../dist/index.js";
import { natsBackplane } from "../dist/backplane/nats.js";
import { redisBackplane } from "../dist/backplane/redis.js";
import { ROOT } from "./helpers/client.js";
import { thrown, trackServers } from "./helpers/server.js";

const track = trackServers();
const CLI = join(ROOT, "dist", "cli.js");
const scratch: string[] = [];
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

const handler = { port: 0, hostname: "127.0.0.1", fetch: () => new Response("ok") };

describe("backplane option", () => {
  it("a server without one has server.backplane === null", () => {
    expect(track(serve(handler)).backplane).toBeNull();
  });

  it.each([
    [42, "UWSERVE_ERR_INVALID_OPTION"],
    [{ kind: "redis" }, "UWSERVE_ERR_INVALID_OPTION"],
    ["http://user:hunter22@cache:6379", "UWSERVE_ERR_INVALID_OPTION"],
  ])("serve({ backplane: %j }) throws %s, never echoing a credential", (value, code) => {
    const error = thrown(() => serve({ ...handler, backplane: value as never }));
    expect(error.code).toBe(code);
    expect(error.message).toContain("backplane");
    expect(error.message).not.toContain("hunter22");
  });

  it("drivers check their options at once, with coded errors", () => {
    expect(thrown(() => redisBackplane({})).code).toBe("UWSERVE_ERR_INVALID_OPTION");
    expect(thrown(() => redisBackplane("nats://x:4222")).code).toBe("UWSERVE_ERR_INVALID_OPTION");
    expect(thrown(() => redisBackplane("redis://x", { maxPending: 0 })).code).toBe("UWSERVE_ERR_INVALID_OPTION");
    expect(thrown(() => redisBackplane("redis://x", { onError: "log" as never })).code).toBe("UWSERVE_ERR_INVALID_OPTION");
    const unparsable = thrown(() => redisBackplane("redis://user:hunter22@cache:99999"));
    expect(unparsable.code).toBe("UWSERVE_ERR_INVALID_OPTION");
    expect(unparsable.message).not.toContain("hunter22");
    const unparsableNats = thrown(() => natsBackplane("nats://user:hunter22@cache:99999"));
    expect(unparsableNats.code).toBe("UWSERVE_ERR_INVALID_OPTION");
    expect(unparsableNats.message).not.toContain("hunter22");
    expect(thrown(() => natsBackplane("redis://x")).code).toBe("UWSERVE_ERR_INVALID_OPTION");
    expect(thrown(() => natsBackplane("nats://x", { prefix: "has space" })).code).toBe("UWSERVE_ERR_INVALID_OPTION");
    expect(thrown(() => natsBackplane({ connection: {} as never })).code).toBe("UWSERVE_ERR_INVALID_OPTION");
    const redis = redisBackplane("redis://user:s3cret-value@cache.internal:6380/2");
    expect(redis.where).toBe("redis://cache.internal:6380/2");
    const nats = natsBackplane("nats://tok3n-value@a:4222,tls://b");
    expect(nats.where).toBe("nats://a:4222,tls://b");
  });

  it("a driver connects only when a server starts with it: making one keeps nothing open", () => {
    const run = spawnSync(process.execPath, ["--input-type=module", "-e", `
      const { redisBackplane } = await import(${JSON.stringify(join(ROOT, "dist/backplane/redis.js"))});
      const { natsBackplane } = await import(${JSON.stringify(join(ROOT, "dist/backplane/nats.js"))});
      redisBackplane("redis://127.0.0.1:1"); natsBackplane("nats://127.0.0.1:1");
      console.log("made");
    `], { encoding: "utf8", timeout: 10_000 });
    expect(run.stdout.trim()).toBe("made");
    expect(run.status).toBe(0);
    expect(run.stderr).toBe("");
  });

  it.each([
    ["uwserve/redis", "redisBackplane", "redis://127.0.0.1:6379", "redis"],
    ["uwserve/nats", "natsBackplane", "nats://127.0.0.1:4222", "@nats-io/transport-node"],
  ])("without its optional peer, %s throws UWSERVE_ERR_PEER_MISSING naming the package", (specifier, fn, url, peer) => {
    // An app whose node_modules holds uwserve but not the peer.
    const app = mkdtempSync(join(tmpdir(), "uwserve-peer-"));
    scratch.push(app);
    const installed = join(app, "node_modules", "uwserve");
    mkdirSync(installed, { recursive: true });
    cpSync(join(ROOT, "dist"), join(installed, "dist"), { recursive: true });
    cpSync(join(ROOT, "package.json"), join(installed, "package.json"));
    writeFileSync(join(app, "main.mjs"), `
      const m = await import(${JSON.stringify(specifier)});
      try { m.${fn}(${JSON.stringify(url)}); console.log("no error"); }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
    `);
    const run = spawnSync(process.execPath, ["main.mjs"], { cwd: app, encoding: "utf8", timeout: 10_000 });
    const result = JSON.parse(run.stdout.trim()) as { code: string; message: string };
    expect(result.code).toBe("UWSERVE_ERR_PEER_MISSING");
    expect(result.message).toContain(`npm install ${peer}`);
  });
});

describe("a server that can't start", () => {
  it("closes the broker connection it opened: the process still exits", () => {
    const run = spawnSync(process.execPath, ["--input-type=module", "-e", `
      import net from "node:net";
      const { serve } = await import(${JSON.stringify(join(ROOT, "dist/index.js"))});
      const taken = net.createServer().listen(0, "127.0.0.1", () => {
        const port = taken.address().port;
        for (const backplane of ["redis://127.0.0.1:1", "nats://127.0.0.1:1"]) {
          try { serve({ port, hostname: "127.0.0.1", backplane, fetch: () => new Response("x") }); console.log("started?"); }
          catch (e) { console.log(e.code); }
        }
        taken.close();
      });
    `], { encoding: "utf8", timeout: 10_000 });
    expect(run.signal).toBeNull(); // not killed by the timeout: nothing kept it alive
    expect(run.stdout.trim().split("\n")).toEqual(["UWSERVE_ERR_PORT_IN_USE", "UWSERVE_ERR_PORT_IN_USE"]);
  });
});

describe("uwserve --backplane", () => {
  it("a URL no driver takes is a usage error (exit 1) that names the flag", () => {
    const run = spawnSync(process.execPath, [CLI, "--backplane", "amqp://broker", "--port", "0", "examples/bun-style.mjs"], { cwd: ROOT, encoding: "utf8", timeout: 10_000 });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("--backplane must be a redis://, rediss://, nats:// or tls:// URL");
  });

  it("is listed in --help", () => {
    const run = spawnSync(process.execPath, [CLI, "--help"], { encoding: "utf8", timeout: 10_000 });
    expect(run.stdout).toContain("--backplane URL");
  });
});
