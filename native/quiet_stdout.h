// native/quiet_stdout.h: runs a JS callback with file descriptor 1 pointed at /dev/null.
#pragma once

#include <napi.h>

namespace uwserve {

// Takes (callback: () => unknown) and returns what it returns. While it runs, fd 1 is
// /dev/null: the uWS core prints a line to stdout for every SNI domain it is asked to route
// (app.domain()), and a server's startup should not write to the user's stdout. Synchronous:
// no JS other than the callback runs meanwhile, so nothing else of the process writes to fd 1.
// Where /dev/null can't be opened (or off POSIX) the callback simply runs.
Napi::Value CallWithQuietStdout(const Napi::CallbackInfo& info);

}  // namespace uwserve
