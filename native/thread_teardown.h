// native/thread_teardown.h: lets a worker thread that still holds uWS sockets end without aborting.
#pragma once

#include <napi.h>

namespace uwserve {

// Registers, for this env, a cleanup hook that closes the uv_poll handles still open on its
// libuv loop, and their sockets, when the env is torn down. uWebSockets.js registers every socket as a uv_poll_t and
// frees its apps at env cleanup without closing their sockets; a worker that is terminated (or
// crashes) while a server is open then reaches uv_loop_close() with those handles open, and Node
// aborts the whole process. Closing them at that point can only turn an abort into a clean exit.
void CloseLeftoverSocketsAtTeardown(napi_env env);

}  // namespace uwserve
