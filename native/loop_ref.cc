// native/loop_ref.cc: finds uWS listen sockets (uv_poll_t handles) on the env's libuv loop and sets their ref state.
//
// uWebSockets.js runs uSockets on Node's own libuv loop (node::GetCurrentEventLoop) and
// registers every socket, listen sockets included, as a ref'd uv_poll_t. Node's own sockets
// are uv_tcp_t/uv_pipe_t, so a UV_POLL handle whose fd is a listening socket bound to the
// requested address can only be a uWS listen socket (or another addon's, which is fine to
// treat alike). uv_ref/uv_unref only change whether the handle keeps the loop alive; the
// socket keeps accepting, and accepted connections are separate, ref'd handles.
#include "loop_ref.h"

#include <uv.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#ifdef _WIN32
// Order matters: afunix.h needs winsock2.h first.
#include <winsock2.h>
#include <ws2tcpip.h>
#include <afunix.h>
using SockLen = int;
#else
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
using SockLen = socklen_t;
#endif

namespace uwserve {
namespace {

// What one setListenRef call looks for, and how many handles it touched.
struct ListenMatch {
  int port;                 // TCP port, used when path is null
  const std::string* path;  // unix socket path, leading '\0' = Linux abstract name; null for TCP
  bool ref;
  uint32_t matched;
};

#ifdef _WIN32
using SockFd = SOCKET;
#else
using SockFd = int;
#endif

// Takes a socket fd, returns true when listen() was called on it (SO_ACCEPTCONN).
bool IsListening(SockFd fd) {
  int accepting = 0;
  SockLen len = sizeof(accepting);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, reinterpret_cast<char*>(&accepting), &len) != 0) {
    return false;
  }
  return accepting != 0;
}

// Takes a unix socket's address as getsockname returned it and the wanted path, returns true on a match.
bool UnixPathMatches(const sockaddr_un* un, SockLen len, const std::string& want) {
  const size_t offset = offsetof(sockaddr_un, sun_path);
  if (static_cast<size_t>(len) <= offset) return false;  // unnamed socket
  size_t n = static_cast<size_t>(len) - offset;
  if (n > sizeof(un->sun_path)) n = sizeof(un->sun_path);
  if (un->sun_path[0] != '\0') {
    // Pathname socket: the kernel may count the terminating NUL (Linux does), so stop at it.
    n = strnlen(un->sun_path, n);
    return n == want.size() && memcmp(un->sun_path, want.data(), n) == 0;
  }
  // Abstract name: every byte counts, NULs included. A binder that passed the whole
  // sizeof(sockaddr_un) as the length pads the name with NULs; accept that padding.
  if (want.empty() || want[0] != '\0' || n < want.size()) return false;
  if (memcmp(un->sun_path, want.data(), want.size()) != 0) return false;
  for (size_t i = want.size(); i < n; i++) {
    if (un->sun_path[i] != '\0') return false;
  }
  return true;
}

// Takes a listening socket fd and the wanted address, returns true when getsockname names it.
bool AddressMatches(SockFd fd, const ListenMatch& m) {
  sockaddr_storage storage;
  memset(&storage, 0, sizeof(storage));
  SockLen len = sizeof(storage);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &len) != 0) return false;
  switch (storage.ss_family) {
    case AF_INET:
      return m.path == nullptr &&
             ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port) == m.port;
    case AF_INET6:
      return m.path == nullptr &&
             ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port) == m.port;
    case AF_UNIX:
      return m.path != nullptr &&
             UnixPathMatches(reinterpret_cast<const sockaddr_un*>(&storage), len, *m.path);
    default:
      return false;
  }
}

// Takes one handle of the loop (uv_walk callback) and the ListenMatch, returns nothing; refs or unrefs it on a match.
void VisitHandle(uv_handle_t* handle, void* arg) {
  ListenMatch* m = static_cast<ListenMatch*>(arg);
  // uv_handle_get_type rather than handle->type: only libuv's exported functions are a
  // stable ABI across Node versions, struct layouts are not.
  if (uv_handle_get_type(handle) != UV_POLL || uv_is_closing(handle)) return;
  uv_os_fd_t os_fd;
  if (uv_fileno(handle, &os_fd) != 0) return;
#ifdef _WIN32
  SockFd fd = reinterpret_cast<SockFd>(os_fd);
#else
  SockFd fd = os_fd;
#endif
  if (!IsListening(fd) || !AddressMatches(fd, *m)) return;
  if (m->ref) {
    uv_ref(handle);
  } else {
    uv_unref(handle);
  }
  m->matched++;
}

// Takes a JS value, returns its type in words for error messages.
const char* TypeName(const Napi::Value& value) {
  switch (value.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "a boolean";
    case napi_number: return "a number";
    case napi_string: return "a string";
    case napi_symbol: return "a symbol";
    case napi_object: return "an object";
    case napi_function: return "a function";
    case napi_external: return "an external";
    case napi_bigint: return "a bigint";
  }
  return "an unknown value";
}

// Takes the env and a message, returns undefined after scheduling a TypeError (C++ exceptions are off).
Napi::Value ThrowTypeError(Napi::Env env, const std::string& message) {
  Napi::TypeError::New(env, "setListenRef: " + message).ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace

Napi::Value SetListenRef(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3) {
    return ThrowTypeError(env, "expected 3 arguments (port, path, ref), received " +
                                   std::to_string(info.Length()));
  }

  // port: an integer 0..65535; must name a real port (1..65535) when path is null.
  if (!info[0].IsNumber()) {
    return ThrowTypeError(env, std::string("port must be a number, received ") + TypeName(info[0]));
  }
  const double port = info[0].As<Napi::Number>().DoubleValue();
  if (!(port >= 0 && port <= 65535) || std::floor(port) != port) {
    return ThrowTypeError(env, "port must be an integer from 0 to 65535, received " +
                                   info[0].ToString().Utf8Value());
  }

  // path: null for TCP, else the exact string given to listen_unix.
  std::string path;
  const bool has_path = !info[1].IsNull();
  if (has_path) {
    if (!info[1].IsString()) {
      return ThrowTypeError(env, std::string("path must be a string or null, received ") +
                                     TypeName(info[1]));
    }
    path = info[1].As<Napi::String>().Utf8Value();  // keeps embedded NULs (abstract names)
    if (path.empty()) return ThrowTypeError(env, "path must not be empty (pass null for a TCP port)");
    if (path.size() > sizeof(sockaddr_un::sun_path)) {
      return ThrowTypeError(env, "path is " + std::to_string(path.size()) +
                                     " bytes, longer than a unix socket address can hold (" +
                                     std::to_string(sizeof(sockaddr_un::sun_path)) + ")");
    }
  } else if (port == 0) {
    return ThrowTypeError(env, "port must be the bound port (1 to 65535) when path is null, received 0; "
                               "read it with uWS.us_socket_local_port(listenSocket)");
  }

  if (!info[2].IsBoolean()) {
    return ThrowTypeError(env, std::string("ref must be a boolean, received ") + TypeName(info[2]));
  }

  // The env's own loop: the main loop, or a worker thread's loop when called from a worker,
  // which is the loop uWebSockets.js registered that thread's sockets on.
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    Napi::Error::New(env, "setListenRef: this runtime does not expose its libuv loop")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }

  ListenMatch match{static_cast<int>(port), has_path ? &path : nullptr,
                    info[2].As<Napi::Boolean>().Value(), 0};
  uv_walk(loop, VisitHandle, &match);
  return Napi::Number::New(env, match.matched);
}

Napi::Value OpenSocketCount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    Napi::Error::New(env, "openSocketCount: this runtime does not expose its libuv loop").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t open = 0;
  uv_walk(
      loop,
      [](uv_handle_t* handle, void* arg) {
        if (handle->type == UV_POLL && !uv_is_closing(handle)) ++*static_cast<uint32_t*>(arg);
      },
      &open);
  return Napi::Number::New(env, open);
}

}  // namespace uwserve
