// The backplane seam: the hub driver keeps the contract (no echo to the publishing node,
// interest-based skipping), and a failing driver never stops local delivery.
import { describe, expect, it, vi } from "vitest";
import { hubBackplane, relaySafely, type Backplane } from "../dist/websocket/backplane.js";

describe("relaySafely", () => {
  it("reports a driver that throws (once) and answers 0, so the local publish goes on", () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    const broken: Backplane = {
      id: "broken",
      publish: () => {
        throw new Error("transport down");
      },
      subscribe: () => {},
      unsubscribe: () => {},
      close: () => {},
    };
    expect(relaySafely(broken, "t", "hello", false, false)).toBe(0);
    expect(relaySafely(broken, "t", "hello", false, false)).toBe(0);
    expect(error).toHaveBeenCalledTimes(1);
    expect(String(error.mock.calls[0]![0])).toContain("backplane broken");
    error.mockRestore();
  });
});

describe.skipIf(process.env.UWSERVE_SKIP_NATIVE === "1")("hubBackplane (the in-process driver)", () => {
  it("delivers to another node of the group with interest, never back to the sender, and skips nodes without interest", async () => {
    const group = `test-${process.pid}-${Date.now()}`;
    const toA: string[] = [];
    const toB: string[] = [];
    // Two nodes on one thread: the hub tells members apart, not threads.
    const a = hubBackplane((topic, payload) => toA.push(`${topic}:${Buffer.from(payload).toString()}`), group);
    const b = hubBackplane((topic, payload) => toB.push(`${topic}:${Buffer.from(payload).toString()}`), group);
    try {
      expect(a.id).not.toBe(b.id);
      expect(a.publish("room", "nobody listens", false, false)).toBe(0);
      b.subscribe("room");
      expect(a.publish("room", "hi", false, false)).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(toB).toEqual(["room:hi"]);
      expect(toA).toEqual([]);
      b.unsubscribe("room");
      expect(a.publish("room", "after", false, false)).toBe(0);
    } finally {
      a.close();
      b.close();
    }
  });
});
