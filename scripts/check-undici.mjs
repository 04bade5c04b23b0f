#!/usr/bin/env node
// Checks, without a server, how uwserve reads undici's Request and Response on the running Node:
// for Node lines the uWS core has no binary for (26) or that can't load it here (glibc), so the
// undici side is still proven there. Run after `npm run build`: `node scripts/check-undici.mjs`.
// Prints one line per check and exits 1 if any failed.
import assert from "node:assert/strict";
import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dist = new URL("../dist/", import.meta.url);
const { lazyRequests, createServerRequest } = await import(new URL("core/request.js", dist).href);
const { readNativeResponse, undiciInternals } = await import(new URL("core/_undici.js", dist).href);
const { file } = await import(new URL("transport/file.js", dist).href);
const { RequestBody } = await import(new URL("core/body.js", dist).href);

const undiciMajor = Number(process.versions.undici.split(".")[0]);
const forcedOff = process.env.UWSERVE_UNDICI_INTERNALS === "off";
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${err && err.message ? err.message.split("\n")[0] : err}`);
  }
}

console.log(`node ${process.version}, undici ${process.versions.undici}: fast path ${undiciInternals ? "on" : "off"}, lazy requests ${lazyRequests ? "on" : "off"}`);

await check("the fast path is on exactly on undici 6 (unless forced off)", () => {
  assert.equal(undiciInternals, undiciMajor === 6 && !forcedOff);
  assert.equal(lazyRequests, undiciMajor === 6 && !forcedOff);
});

function bridgeRequest(method, rawHeaders, bodyText) {
  let body = null;
  if (bodyText !== null) {
    body = new RequestBody({ pause() {}, resume() {} });
    body.push(new TextEncoder().encode(bodyText).buffer, true);
  }
  return createServerRequest(method, "/p/caf%C3%A9", "q=1", rawHeaders, "example.test", "http://127.0.0.1:1", body, null, { id: "7" });
}

await check("new Request(req) copies method, url, headers and body", async () => {
  const req = bridgeRequest("POST", ["content-type", "text/plain", "x-a", "1", "x-a", "2"], "héllo");
  assert.ok(req instanceof Request);
  const copy = new Request(req);
  assert.equal(copy.method, "POST");
  assert.equal(copy.url, "http://example.test/p/caf%C3%A9?q=1");
  assert.equal(copy.headers.get("x-a"), "1, 2");
  assert.equal(await copy.text(), "héllo");
  assert.deepEqual(req.params, { id: "7" });
});

await check("req.clone() and every body reader", async () => {
  const req = bridgeRequest("PUT", ["content-type", "application/json"], '{"a":"é"}');
  const clone = req.clone();
  assert.deepEqual(await req.json(), { a: "é" });
  assert.equal(req.bodyUsed, true);
  assert.equal(await clone.text(), '{"a":"é"}');
});

await check("members answer as a real Request's do", () => {
  const req = bridgeRequest("GET", ["accept", "*/*"], null);
  const real = new Request("http://example.test/p/caf%C3%A9?q=1", { headers: { accept: "*/*" } });
  for (const key of ["method", "url", "cache", "credentials", "destination", "integrity", "keepalive", "mode", "redirect", "referrer", "referrerPolicy", "bodyUsed"]) {
    assert.equal(req[key], real[key], key);
  }
  assert.equal(req.body, null);
  assert.equal(Object.prototype.toString.call(req), "[object Request]");
  assert.equal(req.signal.aborted, false);
});

const dir = mkdtempSync(join(tmpdir(), "uwserve-undici-"));
try {
  writeFileSync(join(dir, "f.txt"), "0123456789");
  await check("a global Response is read: status, headers, cookies and the body's source", async () => {
    const parts = readNativeResponse(new Response("héllo", { status: 201, statusText: "Made", headers: [["x-a", "1"], ["set-cookie", "a=1"], ["set-cookie", "b=2"]] }));
    assert.equal(parts.status, 201);
    assert.equal(parts.statusText, "Made");
    assert.deepEqual(parts.headers.filter(([n]) => n === "set-cookie").map(([, v]) => v), ["a=1", "b=2"]);
    assert.ok(parts.headers.some(([n, v]) => n === "x-a" && v === "1"));
    if (parts.source !== undefined) assert.equal(parts.source, "héllo");
    else assert.equal(parts.fromSource, true);
  });
  await check("a file() body is found again (ranges and length survive)", () => {
    const slice = file(join(dir, "f.txt")).slice(2, 5);
    const parts = readNativeResponse(new Response(slice));
    assert.equal(parts.source, slice);
  });
  await check("a user's stream is not taken for a whole-body source", () => {
    const parts = readNativeResponse(new Response(new ReadableStream({ pull(c) { c.close(); } })));
    assert.equal(parts.source, undefined);
    assert.equal(parts.fromSource, false);
  });
  await check("no body: source null", () => {
    assert.equal(readNativeResponse(new Response(null, { status: 204 })).source, null);
  });
} finally {
  rmSync(dir, { recursive: true, force: true });
}

console.log(failed === 0 ? "check-undici: all checks ok" : `check-undici: ${failed} check(s) failed`);
process.exit(failed === 0 ? 0 : 1);
