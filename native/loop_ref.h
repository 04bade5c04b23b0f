// native/loop_ref.h: ref/unref of uWS listen sockets found on the calling env's libuv loop.
#pragma once

#include <napi.h>

namespace uwserve {

// Takes (port: number, path: string | null, ref: boolean), returns how many listen sockets
// bound to that TCP port (path null) or unix path now have the requested ref state.
Napi::Value SetListenRef(const Napi::CallbackInfo& info);

}  // namespace uwserve
