import { spawnSync } from "node:child_process";
import { defineConfig } from "vitest/config";

/**
 * Whether this Node loads the uWS core (a child process tries, so this process loads nothing).
 * Where it can't (Node 26, glibc < 2.38, musl) only the node-engine run applies: the suite's
 * uws-engine runs would test an engine that cannot start here.
 */
const CORE_LOADS = spawnSync(process.execPath, ["-e", 'require("uWebSockets.js")'], { stdio: "ignore" }).status === 0;

/**
 * The files whose behaviour depends on how uwserve reads undici's Request/Response: on undici 7+
 * (Node 24+) it can only use their public members. They run a second time with that path forced
 * (UWSERVE_UNDICI_INTERNALS=off), so the fallback is tested on every Node, not only on Node 24.
 */
const UNDICI_SENSITIVE = [
  "test/request-bridge.test.ts",
  "test/response-writer.test.ts",
  "test/response-class.test.ts",
  "test/routes-static.test.ts",
  "test/file-response.test.ts",
  "test/file-stream.test.ts",
  "test/file-blob.test.ts",
  "test/protocol-disconnect.test.ts",
  "test/compression.test.ts",
  "test/errors.test.ts",
  "test/examples-bun.test.ts",
  "test/ws-hono.test.ts",
  "test/core-bytes.test.ts",
];

/**
 * Files the node-engine run leaves out: what only the uws engine has (the addon's hold on uWS
 * listen sockets, the uWS core's TLS files) and what no engine is involved in (the native
 * hub's and the backplane's own API). Mixed files mark such tests themselves
 * (test/helpers/core.ts: ON_NODE_ENGINE).
 */
const UWS_ENGINE_ONLY = [
  "test/hub-native.test.ts",
  "test/native.test.ts",
  "test/tls-material.test.ts",
  "test/backplane.test.ts",
];

/**
 * The node engine writes WebSocket frames itself, built by `ws`'s undocumented Sender.frame
 * (checked at load). These files run once more with that path off (UWSERVE_WS_FRAMING=ws: every
 * message through ws.send()), so the fallback is tested wherever the fast path works.
 */
const WS_FRAMING_SENSITIVE = [
  "test/ws-pubsub.test.ts",
  "test/ws-socket.test.ts",
  "test/ws-backpressure.test.ts",
  "test/ws-handlers.test.ts",
  "test/ws-node-engine.test.ts",
];

const shared = {
  testTimeout: 30_000,
  hookTimeout: 30_000,
  execArgv: ["--expose-gc"],
};

export default defineConfig({
  test: {
    // Servers bind real ports and some tests measure timing: two files at a time on 2 cores.
    maxWorkers: 2,
    projects: [
      ...(CORE_LOADS ? [{ test: { ...shared, name: "main", include: ["test/**/*.test.ts"] } }] : []),
      // The same suite on the node engine (node:http), not a copy of it.
      {
        test: {
          ...shared,
          name: "node-engine",
          include: ["test/**/*.test.ts"],
          exclude: UWS_ENGINE_ONLY,
          env: { UWSERVE_ENGINE: "node" },
        },
      },
      {
        test: {
          ...shared,
          name: "node-engine-ws-send",
          include: WS_FRAMING_SENSITIVE,
          env: { UWSERVE_ENGINE: "node", UWSERVE_WS_FRAMING: "ws" },
        },
      },
      ...(CORE_LOADS
        ? [
            {
              test: {
                ...shared,
                name: "undici-public",
                include: UNDICI_SENSITIVE,
                env: { UWSERVE_UNDICI_INTERNALS: "off" },
              },
            },
          ]
        : []),
    ],
  },
});
