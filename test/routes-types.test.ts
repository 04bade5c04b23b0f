// req.params is typed from the route pattern: tsc over a fixture that must compile, and over one that must fail on exactly its BAD lines.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, expectTypeOf, it } from "vitest";
import type { RouteRequest } from "../dist/index.js";
import { ROOT } from "./helpers/client.js";

const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");
const FIXTURES = join(ROOT, "test", "fixtures");

/** Runs tsc -p `project` (relative to test/fixtures) and resolves with its exit code and output. */
function tsc(project: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [TSC, "-p", join(FIXTURES, project), "--pretty", "false"], { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : null;
      resolve({ code, output: stdout + stderr });
    });
  });
}

/** 1-based line numbers of `file` (in test/fixtures) that carry `marker`. */
function markedLines(file: string, marker: string): number[] {
  return readFileSync(join(FIXTURES, file), "utf8")
    .split("\n")
    .flatMap((line, i) => (line.includes(marker) ? [i + 1] : []));
}

describe("route parameter types (tsc over fixtures)", () => {
  it("test/fixtures/routes-types.ts compiles under strict mode (every @ts-expect-error is used)", async () => {
    const { code, output } = await tsc("tsconfig.json");
    expect(output).toBe("");
    expect(code).toBe(0);
  }, 60_000);

  it("test/fixtures/routes-types-bad.ts fails, on exactly its BAD lines", async () => {
    const { code, output } = await tsc("tsconfig.bad.json");
    expect(code).not.toBe(0);
    const errorLines = [...output.matchAll(/routes-types-bad\.ts\((\d+),\d+\): error TS\d+/g)].map((m) => Number(m[1]));
    const bad = markedLines("routes-types-bad.ts", "// BAD");
    expect(bad.length).toBeGreaterThan(0);
    // Every BAD line is an error, and nothing else is (no error from a missing export or a broken import).
    expect([...new Set(errorLines)].sort((a, b) => a - b), output).toEqual(bad);
    expect(output).not.toMatch(/error TS2305|error TS2307/);
  }, 60_000);
});

describe("route parameter types (expectTypeOf; checked by the fixtures above, cheap at runtime)", () => {
  it("RouteRequest<'/orgs/:orgId/repos/:repoId'>['params'] is { orgId: string; repoId: string }", () => {
    expectTypeOf<RouteRequest<"/orgs/:orgId/repos/:repoId">["params"]>().toEqualTypeOf<{ orgId: string; repoId: string }>();
  });
});
