// native/quiet_stdout.cc: see quiet_stdout.h.
#include "quiet_stdout.h"

#include <cstdio>

#ifndef _WIN32
#include <fcntl.h>
#include <unistd.h>
#endif

namespace uwserve {

Napi::Value CallWithQuietStdout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) {
    Napi::TypeError::New(env, "callWithQuietStdout(callback): callback must be a function").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Function callback = info[0].As<Napi::Function>();
#ifndef _WIN32
  fflush(stdout);
  int saved = dup(STDOUT_FILENO);
  int devnull = saved < 0 ? -1 : open("/dev/null", O_WRONLY | O_CLOEXEC);
  bool redirected = devnull >= 0 && dup2(devnull, STDOUT_FILENO) >= 0;
  if (devnull >= 0) close(devnull);
  Napi::Value result = callback.Call({});
  if (redirected) {
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
  }
  if (saved >= 0) close(saved);
  return result;
#else
  return callback.Call({});
#endif
}

}  // namespace uwserve
