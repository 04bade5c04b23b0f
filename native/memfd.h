// native/memfd.h: anonymous in-memory files (Linux memfd_create) for TLS material uWS reads by path.
#pragma once

#include <napi.h>

namespace uwserve {

// Takes (name: string, contents: Uint8Array), returns the fd of a new close-on-exec memfd holding
// exactly contents, sealed against further writes; readable at /proc/self/fd/<fd> until the
// caller closes it. Throws TypeError on bad arguments, and an Error whose code is the errno name
// (ENOSYS off Linux or on kernels older than 3.17, EMFILE, ENOMEM, ...) when it cannot.
Napi::Value CreateMemoryFile(const Napi::CallbackInfo& info);

}  // namespace uwserve
