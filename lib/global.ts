/**
 * Opt-in: `import "uwserve/global"` makes uwserve's fast Response the global `Response`, for
 * code that cannot change its imports. Trade-offs: every `new Response()` in the process
 * (libraries included) becomes uwserve's; `instanceof Response` still holds for both kinds,
 * and `fetch()` keeps returning undici's own Responses. uwserve never does this by itself (H17).
 */
import { UwsResponse } from "./core/response.js";

if (globalThis.Response !== UwsResponse) {
  Object.defineProperty(globalThis, "Response", {
    value: UwsResponse,
    writable: true,
    configurable: true,
    enumerable: false,
  });
}
