// native/gzip.h: one-shot gzip with a deflate stream kept per thread and reset between calls.
#pragma once

#include <napi.h>

namespace uwserve {

// Takes (input: Uint8Array, level: number 1-9), returns a Buffer with the gzip member of input.
// Node's zlib.gzipSync() sets up (and allocates ~270 KB for) a new deflate stream and a JS
// stream object on every call, which dominates the cost for the small bodies servers compress;
// this keeps one z_stream per thread and only resets it. Uses the zlib inside the Node binary
// (Node exports its symbols and ships zlib.h with its headers), so nothing is linked in.
// Throws an Error when zlib fails (it doesn't, short of running out of memory).
Napi::Value GzipSync(const Napi::CallbackInfo& info);

}  // namespace uwserve
