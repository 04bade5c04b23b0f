// The published type declarations: what `import … from "uwserve"` shows a TypeScript user. No
// uWS types and no internals (the engines, the pipeline, the worker hooks) reach it.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const DIST = fileURLToPath(new URL("../dist/", import.meta.url));

/** Every .d.ts reachable from the package's entry points through relative imports. */
function reachable(): Map<string, string> {
  const files = new Map<string, string>();
  const queue = [join(DIST, "index.d.ts"), join(DIST, "global.d.ts"), join(DIST, "backplane", "redis.d.ts"), join(DIST, "backplane", "nats.d.ts")];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (files.has(file) || !existsSync(file)) continue;
    const text = readFileSync(file, "utf8");
    files.set(file, text);
    for (const match of text.matchAll(/from "(\.[^"]+)\.js"/g)) queue.push(join(dirname(file), `${match[1]}.d.ts`));
  }
  return files;
}

describe("the public .d.ts", () => {
  const files = reachable();

  it("stays within the public modules", () => {
    const names = [...files.keys()].map((f) => f.slice(DIST.length)).sort();
    expect(names).not.toContain("core/dispatch.d.ts");
    expect(names.some((n) => n.startsWith("engines/"))).toBe(false);
    expect(names).toContain("server.d.ts");
  });

  it("imports no type of an optional peer (uwserve/redis and uwserve/nats compile without redis or nats installed)", () => {
    expect([...files.keys()].map((f) => f.slice(DIST.length))).toEqual(expect.arrayContaining(["backplane/redis.d.ts", "backplane/nats.d.ts"]));
    for (const [file, text] of files) expect(text, file).not.toMatch(/from "(redis|@redis\/[^"]*|@nats-io\/[^"]*)"/);
  });

  it("imports no uWebSockets.js type", () => {
    for (const [file, text] of files) expect(text, file).not.toMatch(/from "uWebSockets\.js"|from "[^"]*\/uws\.js"/);
  });

  it("shows no internals on Server or DenoWebSocket", () => {
    const server = files.get(join(DIST, "server.d.ts"))!;
    for (const internal of ["requestFinished", "adoptHandlers", "reloadThisThread", "webSocketHub", "constructor("]) {
      expect(server).not.toContain(internal);
    }
    expect(files.get(join(DIST, "websocket", "deno-websocket.d.ts"))!).not.toContain("onMessage(");
  });
});
