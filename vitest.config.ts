import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Servers bind real ports and some tests measure timing: two files at a time on 2 cores.
    maxWorkers: 2,
    execArgv: ["--expose-gc"],
  },
});
