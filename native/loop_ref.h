// native/loop_ref.h: ref/unref of uWS listen sockets found on the calling env's libuv loop.
#pragma once

#include <napi.h>

namespace uwserve {

// Takes (port: number, path: string | null, ref: boolean), returns how many listen sockets
// bound to that TCP port (path null) or unix path now have the requested ref state.
Napi::Value SetListenRef(const Napi::CallbackInfo& info);

// Takes nothing, returns how many uv_poll handles on the calling env's loop are open and not
// closing: every uWS socket (connections and listen sockets) is one. A graceful stop waits on
// it for WebSockets finishing their close handshake, which uWS ends without telling JavaScript.
Napi::Value OpenSocketCount(const Napi::CallbackInfo& info);

}  // namespace uwserve
