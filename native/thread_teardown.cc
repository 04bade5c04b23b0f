// native/thread_teardown.cc: see thread_teardown.h.
#include "thread_teardown.h"

#include <uv.h>

#ifdef _WIN32
#include <winsock2.h>
#else
#include <unistd.h>
#endif

namespace uwserve {

namespace {

void CloseIfPoll(uv_handle_t* handle, void* /*arg*/) {
  if (handle->type != UV_POLL || uv_is_closing(handle)) return;
  uv_os_fd_t fd;
  const bool hasFd = uv_fileno(handle, &fd) == 0;
  // The handle's memory belongs to uSockets, which will never free it now: leave it (the
  // thread ends). uv_close stops polling at once, so the socket can be closed right after:
  // clients see the connection end, and a listen socket stops taking connections.
  uv_close(handle, nullptr);
  if (!hasFd) return;
#ifdef _WIN32
  closesocket(reinterpret_cast<SOCKET>(fd));
#else
  close(fd);
#endif
}

void CloseLeftoverPolls(void* arg) {
  uv_walk(static_cast<uv_loop_t*>(arg), CloseIfPoll, nullptr);
}

}  // namespace

void CloseLeftoverSocketsAtTeardown(napi_env env) {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) return;
  napi_add_env_cleanup_hook(env, CloseLeftoverPolls, loop);
}

}  // namespace uwserve
