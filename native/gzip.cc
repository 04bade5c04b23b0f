// native/gzip.cc: see gzip.h.
#include "gzip.h"

#include <zlib.h>

#include <vector>

namespace uwserve {

namespace {

// A deflate stream for gzip output (windowBits 15 + 16), created on first use on each thread
// and ended when the thread exits.
class Deflater {
 public:
  ~Deflater() {
    if (ready_) deflateEnd(&stream_);
  }

  // Prepares for a new member at `level`: init once, then reset (and re-level when it changed).
  bool Begin(int level) {
    if (!ready_) {
      stream_ = z_stream{};
      if (deflateInit2(&stream_, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return false;
      ready_ = true;
      level_ = level;
      return true;
    }
    if (deflateReset(&stream_) != Z_OK) return false;
    if (level != level_) {
      if (deflateParams(&stream_, level, Z_DEFAULT_STRATEGY) != Z_OK) return false;
      level_ = level;
    }
    return true;
  }

  z_stream* stream() { return &stream_; }

 private:
  z_stream stream_{};
  bool ready_ = false;
  int level_ = 0;
};

thread_local Deflater deflater;
thread_local std::vector<unsigned char> scratch;

}  // namespace

Napi::Value GzipSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsTypedArray() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "gzipSync(input: Uint8Array, level: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::TypedArray typed = info[0].As<Napi::TypedArray>();
  if (typed.TypedArrayType() != napi_uint8_array) {
    Napi::TypeError::New(env, "gzipSync: input must be a Uint8Array").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Uint8Array input = info[0].As<Napi::Uint8Array>();
  int level = info[1].As<Napi::Number>().Int32Value();
  if (level < 1 || level > 9) level = 6;

  if (!deflater.Begin(level)) {
    Napi::Error::New(env, "gzipSync: zlib could not set up a deflate stream").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  z_stream* stream = deflater.stream();
  const uLong bound = deflateBound(stream, static_cast<uLong>(input.ByteLength()));
  if (scratch.size() < bound) scratch.resize(bound);
  stream->next_in = input.Data();
  stream->avail_in = static_cast<uInt>(input.ByteLength());
  stream->next_out = scratch.data();
  stream->avail_out = static_cast<uInt>(scratch.size());
  // deflateBound() guarantees one Z_FINISH call completes.
  if (deflate(stream, Z_FINISH) != Z_STREAM_END) {
    Napi::Error::New(env, "gzipSync: deflate did not finish").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Buffer<unsigned char>::Copy(env, scratch.data(), stream->total_out);
}

}  // namespace uwserve
