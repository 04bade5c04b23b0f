// native/addon.cc: module init only; attaches the functions the other native/*.cc files own.
#include <napi.h>

#include "loop_ref.h"
#include "memfd.h"
#include "quiet_stdout.h"
#include "gzip.h"
#include "hub.h"
#include "thread_teardown.h"

namespace {

// Takes the env and the exports object, returns exports with every native function attached.
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("setListenRef", Napi::Function::New(env, uwserve::SetListenRef, "setListenRef"));
  exports.Set("openSocketCount", Napi::Function::New(env, uwserve::OpenSocketCount, "openSocketCount"));
  exports.Set("createMemoryFile", Napi::Function::New(env, uwserve::CreateMemoryFile, "createMemoryFile"));
  exports.Set("gzipSync", Napi::Function::New(env, uwserve::GzipSync, "gzipSync"));
  exports.Set("callWithQuietStdout", Napi::Function::New(env, uwserve::CallWithQuietStdout, "callWithQuietStdout"));
  exports.Set("hubJoin", Napi::Function::New(env, uwserve::HubJoin, "hubJoin"));
  exports.Set("hubInterest", Napi::Function::New(env, uwserve::HubInterest, "hubInterest"));
  exports.Set("hubPublish", Napi::Function::New(env, uwserve::HubPublish, "hubPublish"));
  exports.Set("hubLeave", Napi::Function::New(env, uwserve::HubLeave, "hubLeave"));
  exports.Set("hubStats", Napi::Function::New(env, uwserve::HubStats, "hubStats"));
  exports.Set("hubSubscribers", Napi::Function::New(env, uwserve::HubSubscribers, "hubSubscribers"));
  uwserve::CloseLeftoverSocketsAtTeardown(env);
  return exports;
}

}  // namespace

// NODE_API_MODULE registers through napi_register_module_v1, so the addon is context aware
// and loads in worker threads as well as on the main thread.
NODE_API_MODULE(uwserve_native, Init)
