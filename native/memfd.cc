// native/memfd.cc: createMemoryFile, an anonymous memfd holding given bytes, so TLS keys reach uWS without touching a disk.
//
// uSockets loads certificates and keys only from file names (SSL_CTX_use_PrivateKey_file and
// friends). A memfd lives in memory (swap aside), has no name in any file system, and
// /proc/self/fd/<fd> opens it as a file for as long as the fd stays open; lib/tls.ts closes it
// right after the SSL context has been built. MFD_CLOEXEC keeps it out of child processes.
#include "memfd.h"

#include <uv.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#ifdef __linux__
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

// Older glibc headers (< 2.27) lack the memfd_create wrapper and its flags; the syscall is older.
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002U
#endif
#ifdef SYS_memfd_create
#define UWSERVE_HAVE_MEMFD 1
#endif
#endif

namespace uwserve {
namespace {

// memfd_create(2): the name (shown in /proc/self/fd links) may be at most 249 bytes.
constexpr size_t kMaxNameBytes = 249;

// Takes the env and a message, returns undefined after scheduling a TypeError (C++ exceptions are off).
Napi::Value ThrowTypeError(Napi::Env env, const std::string& message) {
  Napi::TypeError::New(env, "createMemoryFile: " + message).ThrowAsJavaScriptException();
  return env.Undefined();
}

#ifdef UWSERVE_HAVE_MEMFD
// Takes the env, what failed and an errno, returns undefined after scheduling an Error whose
// code is the errno's name (as Node's fs errors have) and whose errno is the negative value
// (libuv's error numbers are negated errnos on Unix).
Napi::Value ThrowErrno(Napi::Env env, const char* what, int err) {
  const char* name = uv_err_name(-err);
  Napi::Error error = Napi::Error::New(
      env, std::string("createMemoryFile: ") + what + " failed: " + name + " (" + std::strerror(err) + ")");
  error.Set("code", Napi::String::New(env, name));
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, what));
  error.ThrowAsJavaScriptException();
  return env.Undefined();
}
#endif

}  // namespace

Napi::Value CreateMemoryFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2) {
    return ThrowTypeError(env, "expected 2 arguments (name, contents), received " + std::to_string(info.Length()));
  }
  if (!info[0].IsString()) return ThrowTypeError(env, "name must be a string");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name.empty() || name.size() > kMaxNameBytes || name.find('\0') != std::string::npos) {
    return ThrowTypeError(env, "name must be 1 to 249 bytes without NUL characters");
  }
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    return ThrowTypeError(env, "contents must be a Uint8Array (or Buffer)");
  }
  Napi::Uint8Array contents = info[1].As<Napi::Uint8Array>();

#ifdef UWSERVE_HAVE_MEMFD
  // Sealing is a nicety (nothing can grow, shrink or rewrite the file after us); a kernel
  // without it rejects the flag with EINVAL, so retry plain.
  int fd = static_cast<int>(syscall(SYS_memfd_create, name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
  bool sealable = fd >= 0;
  if (fd < 0 && errno == EINVAL) fd = static_cast<int>(syscall(SYS_memfd_create, name.c_str(), MFD_CLOEXEC));
  if (fd < 0) return ThrowErrno(env, "memfd_create", errno);

  const uint8_t* data = contents.Data();
  size_t left = contents.ByteLength();
  while (left > 0) {
    const ssize_t n = write(fd, data, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      close(fd);
      return ThrowErrno(env, "write", err);
    }
    data += n;
    left -= static_cast<size_t>(n);
  }

#ifdef F_ADD_SEALS
  if (sealable) fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
#else
  (void)sealable;
#endif
  return Napi::Number::New(env, fd);
#else
  (void)contents;
  Napi::Error error = Napi::Error::New(env, "createMemoryFile: memfd_create is not available on this platform (ENOSYS)");
  error.Set("code", Napi::String::New(env, "ENOSYS"));
  error.Set("syscall", Napi::String::New(env, "memfd_create"));
  error.ThrowAsJavaScriptException();
  return env.Undefined();
#endif
}

}  // namespace uwserve
