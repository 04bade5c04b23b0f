// uWebSockets.js loading and listening for the two raw-uWS peers (the package is CommonJS).
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
export const uWS = require("uWebSockets.js");

/** Takes a uWS app, listens on 127.0.0.1:$PORT and prints "ready <port>" for the runner. */
export function listen(app) {
  const port = Number(process.env.PORT ?? 3000);
  app.listen("127.0.0.1", port, (token) => {
    if (!token) {
      console.error(`uWS could not listen on 127.0.0.1:${port}`);
      process.exit(1);
    }
    console.log(`ready ${uWS.us_socket_local_port(token)}`);
  });
}

/**
 * Takes a response and something that yields chunks, writes each with one `res.write()`
 * (chunked encoding), waiting for onWritable whenever a write reports backpressure, then ends.
 * `next()` returns a chunk, `undefined` when done, or a Promise of either.
 */
export function writeChunks(res, next) {
  let aborted = false;
  let resumeWrite = null;
  res.onAborted(() => {
    aborted = true;
    resumeWrite?.();
  });
  res.onWritable(() => {
    const resume = resumeWrite;
    resumeWrite = null;
    resume?.();
    return true;
  });
  const pump = async () => {
    for (;;) {
      let chunk = next();
      if (chunk instanceof Promise) chunk = await chunk;
      if (aborted) return;
      let ok = true;
      // Cork every write: after the first await we are outside uWS's own cork (hazard H3).
      res.cork(() => {
        if (chunk === undefined) res.end();
        else ok = res.write(chunk);
      });
      if (chunk === undefined) return;
      if (!ok) await new Promise((resolve) => (resumeWrite = resolve));
      if (aborted) return;
    }
  };
  return pump();
}

/**
 * Takes a response and `onBody(bytes)`, reads the request body and calls `onBody` inside the last
 * onData callback (unless the client left). A one-piece body is handed over without a copy, so
 * `bytes` is valid only during that call (uWS detaches it when the callback returns).
 */
export function readBody(res, onBody) {
  let aborted = false;
  let chunks = null;
  res.onAborted(() => (aborted = true));
  res.onData((chunk, isLast) => {
    if (!isLast) {
      (chunks ??= []).push(Buffer.from(chunk.slice(0)));
      return;
    }
    if (aborted) return;
    onBody(chunks === null ? Buffer.from(chunk) : Buffer.concat([...chunks, Buffer.from(chunk)]));
  });
}
