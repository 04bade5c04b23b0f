// The access log (option and --access-log), and telemetry plus the access log in a worker group.
import net from "node:net";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Response } from "../dist/index.js";
import { HAS_WORKERS } from "./helpers/core.js";
import { start, trackServers, waitFor, withTimeout } from "./helpers/server.js";
import { getText, killChildren, ROOT, startWorkers } from "./helpers/workers.js";

const track = trackServers();
afterAll(() => killChildren());

const CLF = /^127\.0\.0\.1 - - \[\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000\] "(.*)" (\d{3}|-) (\d+) "(.*)" (\d+\.\d{3})$/;

function logged(format: "common" | "json") {
  const writes: string[] = [];
  const server = track(
    start({
      accessLog: { format, write: (lines: string) => writes.push(lines) },
      routes: {
        "/users/:id": (req: Request & { params: { id: string } }) => new Response(`user ${req.params.id}`),
        "/slow": () => new Promise<Response>((r) => setTimeout(() => r(new Response("late")), 1500)),
      },
      fetch: () => new Response("nothing here", { status: 404 }),
    }),
  );
  const lines = () => writes.join("").split("\n").filter((l) => l !== "");
  return { server, writes, lines };
}

describe("accessLog", () => {
  it("common: the client, time, request line, status, bytes, route and milliseconds, one line per request", async () => {
    const { server, lines } = logged("common");
    const res = await fetch(`http://127.0.0.1:${server.port}/users/7?tab=a%20b`);
    expect(await res.text()).toBe("user 7");
    await fetch(`http://127.0.0.1:${server.port}/missing`).then((r) => r.text());
    await waitFor(() => lines().length === 2, 2000, "two lines");
    const [first, second] = lines().map((l) => CLF.exec(l));
    expect(first, lines()[0]).not.toBeNull();
    expect(first!.slice(1, 5)).toEqual(["GET /users/7?tab=a%20b HTTP/1.1", "200", "6", "/users/:id"]);
    expect(Number(first![5])).toBeLessThan(1000);
    expect(second!.slice(1, 5)).toEqual(["GET /missing HTTP/1.1", "404", "12", "-"]);
  });

  it("json: one object per line with the same fields", async () => {
    const { server, lines } = logged("json");
    await fetch(`http://127.0.0.1:${server.port}/users/9`, { headers: { "user-agent": "log-test" } }).then((r) => r.text());
    await waitFor(() => lines().length === 1, 2000, "a line");
    const entry = JSON.parse(lines()[0]!);
    expect(Date.now() - Date.parse(entry.time)).toBeLessThan(5000);
    delete entry.time;
    expect(entry.duration_ms).toBeGreaterThan(0);
    delete entry.duration_ms;
    expect(entry).toEqual({ remote: "127.0.0.1", method: "GET", path: "/users/9", protocol: "HTTP/1.1", status: 200, bytes: 6, route: "/users/:id", user_agent: "log-test" });
  });

  it("buffered: twenty pipelined requests are one write, not twenty", async () => {
    const { server, writes, lines } = logged("common");
    const socket = net.connect(server.port, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    let got = "";
    socket.on("data", (d) => (got += d));
    socket.write("GET /users/1 HTTP/1.1\r\nHost: x\r\n\r\n".repeat(20));
    await waitFor(() => (got.match(/HTTP\/1\.1 200/g) ?? []).length === 20, 3000, "twenty responses");
    await waitFor(() => lines().length === 20, 2000, "twenty lines");
    socket.destroy();
    expect(writes.length).toBeLessThanOrEqual(2);
  });

  it("a client that leaves before its response is logged with status -", async () => {
    const { server, lines } = logged("common");
    const socket = net.connect(server.port, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    socket.write("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    await waitFor(() => server.pendingRequests === 1, 2000, "the request");
    socket.destroy();
    await waitFor(() => lines().length === 1, 2000, "the line");
    expect(CLF.exec(lines()[0]!)!.slice(1, 5)).toEqual(["GET /slow HTTP/1.1", "-", "0", "/slow"]);
  });

  it("a bad accessLog option is a coded error", () => {
    for (const accessLog of ["xml", 1, { format: "csv" }, { write: "stdout" }]) {
      expect(() => start({ accessLog, fetch: () => new Response("x") })).toThrow(expect.objectContaining({ code: "UWSERVE_ERR_INVALID_OPTION" }));
    }
  });
});

describe.runIf(HAS_WORKERS)("in a worker group", { timeout: 30_000 }, () => {
  it("uwserve --workers 2 --access-log=json: every worker makes spans (with its routes) and access lines on stdout", async () => {
    const cli = startWorkers(join(ROOT, "test", "fixtures", "observability-workers.mjs"), 2, {}, ["--access-log=json"]);
    const url = await withTimeout(cli.url, 15_000, "the listening line");
    const threads = new Set<string>();
    let made = 0;
    for (let i = 0; i < 60 && threads.size < 2; i++) {
      const res = await fetch(new URL(`/work/${i}`, url), { headers: { connection: "close" } });
      threads.add((await res.text()).split(" on ")[1]!);
      made++;
    }
    expect(threads.size).toBe(2);
    // Each thread's own SDK saw its own requests (ask until both threads answered).
    const seen = new Map<number, Array<[string, string, number]>>();
    for (let i = 0; i < 60 && seen.size < 2; i++) {
      const report = JSON.parse(await getText(url, "/spans")) as { thread: number; spans: Array<[string, string, number]> };
      seen.set(report.thread, report.spans);
    }
    expect(seen.size).toBe(2);
    let workSpans = 0;
    for (const spans of seen.values()) {
      const work = spans.filter(([name]) => name === "GET /work/:n");
      expect(work.length).toBeGreaterThan(0);
      expect(work.every(([, route, status]) => route === "/work/:n" && status === 200)).toBe(true);
      workSpans += work.length;
    }
    expect(workSpans).toBe(made);
    await waitFor(() => cli.stdout().split("\n").filter((l) => l.includes('"/work/:n"')).length === made, 5000, "an access line per request");
    const entries = cli.stdout().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { route: string; status: number });
    expect(entries.filter((e) => e.route === "/work/:n" && e.status === 200)).toHaveLength(made);
    cli.child.kill("SIGINT");
    expect(await withTimeout(cli.exited, 10_000, "exit")).toBe(0);
  });
});
