// native/hub.cc: see hub.h.
//
// Locking: one process-wide mutex guards the member table, the topic index, every member's
// queue and the counters. Every critical section is a few hash lookups and vector pushes (the
// payload is copied before the lock is taken), so publishers on different threads contend
// only briefly, and a plain mutex avoids the writer starvation a reader/writer lock invites
// when interest changes race a publish storm.
//
// Lifetime: a Member is created, closed and freed on its own thread only. Other threads touch
// it (queue, uv_async_send) only under the mutex and only while it is in the member table;
// Close() takes it out of the table first, so after that nobody else can reach it.
//
// Wake-ups: a publish queues its message at once but doesn't wake the receiving threads; the
// publishing thread notes whom it owes a wake-up and sends one uv_async_send per receiver at
// the end of its loop turn (a uv_check handle, with an idle handle so the loop doesn't block in
// poll first). A receiver woken per message on a busy machine drains one message per context
// switch; woken per publisher turn, it takes everything that turn published in one batch.
#include "hub.h"

#include <uv.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace uwserve {
namespace {

// Per-member queue bound: a member whose loop falls this far behind loses further messages
// (counted in `dropped`, and the publish returns -1) instead of growing without limit.
constexpr size_t kMaxQueuedMessages = 65536;
// Per-member byte bound (payload bytes referenced by its queue). A single message larger than
// this is still queued when the queue is empty, so an oversize message isn't undeliverable.
constexpr size_t kMaxQueuedBytes = size_t{64} << 20;
// Payloads at least this large reach JS as an external ArrayBuffer over the shared copy; smaller
// ones are copied into the batch's one arena ArrayBuffer, which is cheaper than an external
// buffer's bookkeeping (a finalizer per buffer, run through a SetImmediate after GC).
#ifndef UWSERVE_HUB_EXTERNAL_MIN
#define UWSERVE_HUB_EXTERNAL_MIN (16 * 1024)
#endif
constexpr size_t kExternalMinBytes = UWSERVE_HUB_EXTERNAL_MIN;
// A drained queue's spare vector keeps its capacity for the next batch up to this many entries.
constexpr size_t kKeepCapacity = 4096;

enum MessageFlags : uint32_t { kBinary = 1, kCompress = 2, kExternal = 4 };

// One publish: topic bytes then payload bytes in a single allocation, shared by every member
// queue (and external ArrayBuffer) holding it; freed when the last reference goes.
struct Payload {
  std::atomic<uint32_t> refs;
  uint32_t topic_len;
  size_t size;
  char* topic() { return reinterpret_cast<char*>(this + 1); }
  char* data() { return topic() + topic_len; }
};

std::atomic<int64_t> live_payloads{0};
std::atomic<int64_t> live_payload_bytes{0};

// Takes the topic and the payload size, returns a payload with 0 references (null when out of memory).
Payload* NewPayload(const std::string& topic, size_t size) {
  // +1: napi_get_value_string_utf8 always writes a terminating NUL.
  void* raw = malloc(sizeof(Payload) + topic.size() + size + 1);
  if (raw == nullptr) return nullptr;
  Payload* p = new (raw) Payload();
  p->refs.store(0, std::memory_order_relaxed);
  p->topic_len = static_cast<uint32_t>(topic.size());
  p->size = size;
  memcpy(p->topic(), topic.data(), topic.size());
  live_payloads.fetch_add(1, std::memory_order_relaxed);
  live_payload_bytes.fetch_add(static_cast<int64_t>(size), std::memory_order_relaxed);
  return p;
}

void FreePayload(Payload* p) {
  live_payloads.fetch_sub(1, std::memory_order_relaxed);
  live_payload_bytes.fetch_sub(static_cast<int64_t>(p->size), std::memory_order_relaxed);
  p->~Payload();
  free(p);
}

// Drops one reference; any thread.
void Release(Payload* p) {
  if (p->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) FreePayload(p);
}

// napi_finalize for an external ArrayBuffer over a payload: its queue reference moved there.
void ReleaseExternal(napi_env, void*, void* hint) { Release(static_cast<Payload*>(hint)); }

struct Message {
  Payload* payload;
  uint32_t flags;
};

struct Member {
  uint32_t id = 0;
  napi_env env = nullptr;
  std::string prefix;  // group + '\0': prepended to topics in the index
  uv_async_t* async = nullptr;
  uv_check_t* flush = nullptr;        // end of this thread's loop turn: sends the owed wake-ups
  uv_idle_t* keep_turning = nullptr;  // active while wake-ups are owed: poll must not block first
  int open_handles = 0;               // own thread only: handles not yet closed by Close()
  std::vector<uint32_t> owed;         // own thread only: members this thread's publishes queued to
  napi_ref deliver = nullptr;
  napi_async_context context = nullptr;
  napi_async_cleanup_hook_handle cleanup = nullptr;
  bool closing = false;  // own thread only
  std::vector<Message> spare;  // own thread only: the batch being delivered
  // Guarded by the registry mutex:
  std::vector<Message> queue;
  size_t queued_bytes = 0;
  bool wake_pending = false;  // a uv_async_send is outstanding: later pushes need not send
  std::unordered_map<std::string, uint32_t> interest;  // topic -> sockets subscribed
  uint64_t received = 0;
  uint64_t dropped = 0;
  uint64_t delivered = 0;
  uint64_t wakeups = 0;
  uint64_t published = 0;
};

struct Registry {
  std::mutex mu;
  uint32_t next_id = 1;
  std::unordered_map<uint32_t, Member*> members;
  // prefix + topic -> members with interest > 0.
  std::unordered_map<std::string, std::vector<Member*>> topics;
  uint64_t publishes = 0;
  uint64_t queued = 0;
  uint64_t dropped = 0;
  uint64_t dropped_by_left = 0;  // messages still queued to members that left
};

// Never destroyed: worker threads may still leave the hub while the process runs its static
// destructors after process.exit().
Registry& Hub() {
  static Registry* registry = new Registry();
  return *registry;
}

// Takes the env and a message, returns undefined after scheduling a TypeError.
Napi::Value ThrowType(Napi::Env env, const char* message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
  return env.Undefined();
}

// Takes a typed array's element type, returns its element size in bytes.
size_t ElementSize(napi_typedarray_type type) {
  switch (type) {
    case napi_int16_array:
    case napi_uint16_array:
      return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array:
      return 4;
    case napi_float64_array:
    case napi_bigint64_array:
    case napi_biguint64_array:
      return 8;
    default:
      return 1;
  }
}

// Takes a JS string, sets out to its UTF-8 bytes; returns false (exception pending) on failure.
bool ReadString(napi_env env, napi_value value, std::string* out) {
  char stack[256];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, value, stack, sizeof(stack), &len) != napi_ok) return false;
  if (len < sizeof(stack) - 1) {
    out->assign(stack, len);
    return true;
  }
  // Possibly truncated: ask for the full length.
  if (napi_get_value_string_utf8(env, value, nullptr, 0, &len) != napi_ok) return false;
  out->resize(len + 1);
  if (napi_get_value_string_utf8(env, value, &(*out)[0], len + 1, &len) != napi_ok) return false;
  out->resize(len);
  return true;
}

// Takes the call's env and a member id value; returns the member, or null after throwing when
// the id is unknown or belongs to another thread. Caller holds the registry mutex.
Member* FindOwnMember(Napi::Env env, const Napi::Value& value, const char* fn) {
  if (!value.IsNumber()) {
    ThrowType(env, (std::string(fn) + ": member must be a number").c_str());
    return nullptr;
  }
  const uint32_t id = value.As<Napi::Number>().Uint32Value();
  auto it = Hub().members.find(id);
  if (it == Hub().members.end()) {
    Napi::Error::New(env, std::string(fn) + ": member " + std::to_string(id) + " is not in the hub (it left)")
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  if (it->second->env != static_cast<napi_env>(env)) {
    Napi::Error::New(env, std::string(fn) + ": member " + std::to_string(id) + " belongs to another thread")
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  return it->second;
}

// Takes a member and a topic index key; removes the member from that key's list. Caller holds the mutex.
void Unindex(Registry& hub, Member* m, const std::string& key) {
  auto it = hub.topics.find(key);
  if (it == hub.topics.end()) return;
  std::vector<Member*>& list = it->second;
  for (size_t i = 0; i < list.size(); i++) {
    if (list[i] == m) {
      list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
      break;
    }
  }
  if (list.empty()) hub.topics.erase(it);
}

void OnClosed(uv_handle_t* handle);

// Takes a publishing member on its own thread; wakes every member its publishes queued to
// since the last call (once each, and not one already woken), then stops the turn-end handles.
// Caller holds the registry mutex (a target can't leave while it is signalled).
void SendOwedWakes(Member* self) {
  Registry& hub = Hub();
  for (uint32_t id : self->owed) {
    auto it = hub.members.find(id);
    if (it == hub.members.end()) continue;
    Member* target = it->second;
    if (target->wake_pending || target->queue.empty()) continue;
    target->wake_pending = true;
    uv_async_send(target->async);
  }
  self->owed.clear();
  uv_check_stop(self->flush);
  uv_idle_stop(self->keep_turning);
}

void OnTurnEnd(uv_check_t* check) {
  Member* m = static_cast<Member*>(uv_handle_get_data(reinterpret_cast<uv_handle_t*>(check)));
  std::lock_guard<std::mutex> lock(Hub().mu);
  SendOwedWakes(m);
}

// Takes a member on its own thread; leaves the hub (sending the wake-ups it owes), drops its
// queue and starts closing its handles (OnClosed frees it after the last). Idempotent.
void Close(Member* m) {
  if (m->closing) return;
  m->closing = true;
  std::vector<Message> orphans;
  {
    Registry& hub = Hub();
    std::lock_guard<std::mutex> lock(hub.mu);
    SendOwedWakes(m);
    hub.members.erase(m->id);
    for (const auto& entry : m->interest) Unindex(hub, m, m->prefix + entry.first);
    m->interest.clear();
    orphans.swap(m->queue);
    m->queued_bytes = 0;
    hub.dropped_by_left += orphans.size();
  }
  for (const Message& msg : orphans) Release(msg.payload);
  for (const Message& msg : m->spare) Release(msg.payload);
  m->spare.clear();
  m->open_handles = 3;
  uv_close(reinterpret_cast<uv_handle_t*>(m->async), OnClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(m->flush), OnClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(m->keep_turning), OnClosed);
}

// Frees a member's handles and the member itself.
void FreeMember(Member* m) {
  free(m->async);
  free(m->flush);
  free(m->keep_turning);
  delete m;
}

// uv_close callback: once the last handle is gone from the loop, the env may finish tearing down.
void OnClosed(uv_handle_t* handle) {
  Member* m = static_cast<Member*>(uv_handle_get_data(handle));
  if (--m->open_handles > 0) return;
  // Not in Close(): Close may run inside m's own deliver call, which still uses both.
  napi_delete_reference(m->env, m->deliver);
  napi_async_destroy(m->env, m->context);
  // Removing the hook also tells a teardown that is waiting on it (async cleanup) we're done.
  napi_remove_async_cleanup_hook(m->cleanup);
  FreeMember(m);
}

// napi async cleanup hook: the member's env is going away (worker exit, terminate, crash, or
// the main thread's teardown). Node keeps running the loop until OnClosed removes the hook,
// so the handle is really closed before uv_loop_close (an open one would abort the process).
void OnEnvCleanup(napi_async_cleanup_hook_handle, void* arg) { Close(static_cast<Member*>(arg)); }

// Topic strings of one batch, each created once however many messages name it.
class TopicTable {
 public:
  explicit TopicTable(napi_env env) : env_(env) { napi_create_array(env, &array_); }

  // Takes a payload, returns its topic's index in the array (-1 when V8 failed).
  int64_t IndexOf(Payload* p) {
    std::string_view topic(p->topic(), p->topic_len);
    if (!list_.empty() && list_.back().first == topic) return list_.back().second;
    for (const auto& entry : list_) {
      if (entry.first == topic) return entry.second;
    }
    napi_value str;
    if (napi_create_string_utf8(env_, topic.data(), topic.size(), &str) != napi_ok) return -1;
    const uint32_t index = static_cast<uint32_t>(count_++);
    if (napi_set_element(env_, array_, index, str) != napi_ok) return -1;
    // Keep the most recent topic last: runs of one topic hit the fast path above.
    list_.emplace_back(topic, index);
    if (list_.size() > 64) list_.erase(list_.begin());
    return index;
  }

  napi_value array() const { return array_; }

 private:
  napi_env env_;
  napi_value array_ = nullptr;
  size_t count_ = 0;
  std::vector<std::pair<std::string_view, uint32_t>> list_;
};

// Takes a member and its batch (m->spare); builds the JS arguments and calls deliver. Every
// payload reference in the batch is consumed (released, or moved into an external buffer).
void Deliver(Member* m) {
  napi_env env = m->env;
  std::vector<Message>& batch = m->spare;
  const size_t n = batch.size();

  size_t arena_size = 0;
  for (const Message& msg : batch) {
    if (msg.payload->size < kExternalMinBytes) arena_size += msg.payload->size;
  }

  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) {
    for (const Message& msg : batch) Release(msg.payload);
    batch.clear();
    return;
  }
  bool ok = true;
  TopicTable topics(env);
  napi_value meta_buffer, meta, arena = nullptr, externals = nullptr, undefined;
  void* meta_data = nullptr;
  void* arena_data = nullptr;
  napi_get_undefined(env, &undefined);
  ok = napi_create_arraybuffer(env, n * 4 * sizeof(uint32_t), &meta_data, &meta_buffer) == napi_ok &&
       napi_create_typedarray(env, napi_uint32_array, n * 4, meta_buffer, 0, &meta) == napi_ok;
  if (ok && arena_size > 0) {
    ok = napi_create_arraybuffer(env, arena_size, &arena_data, &arena) == napi_ok;
  }
  uint32_t* out = static_cast<uint32_t*>(meta_data);
  size_t arena_at = 0;
  uint32_t external_count = 0;
  for (size_t i = 0; ok && i < n; i++) {
    Payload* p = batch[i].payload;
    const int64_t topic = topics.IndexOf(p);
    if (topic < 0) {
      ok = false;
      break;
    }
    out[4 * i] = static_cast<uint32_t>(topic);
    out[4 * i + 1] = batch[i].flags;
    if (p->size < kExternalMinBytes) {
      memcpy(static_cast<char*>(arena_data) + arena_at, p->data(), p->size);
      out[4 * i + 2] = static_cast<uint32_t>(arena_at);
      out[4 * i + 3] = static_cast<uint32_t>(p->size);
      arena_at += p->size;
      // Released after the loop: `topics` still compares against this payload's topic bytes.
      continue;
    }
    if (externals == nullptr && napi_create_array(env, &externals) != napi_ok) {
      ok = false;
      break;
    }
    const size_t size = p->size;
    napi_value buffer;
    // The queue's reference moves to the buffer; ReleaseExternal drops it after GC (never
    // during this loop: Node runs buffer finalizers from a SetImmediate).
    napi_status status = napi_create_external_arraybuffer(env, p->data(), size, ReleaseExternal, p, &buffer);
    if (status == napi_ok) {
      batch[i].payload = nullptr;
    } else {
      // A runtime without external buffers (napi_no_external_buffers_allowed): copy instead.
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value ignored;
        napi_get_and_clear_last_exception(env, &ignored);
      }
      void* copy = nullptr;
      if (napi_create_arraybuffer(env, size, &copy, &buffer) != napi_ok) {
        ok = false;
        break;
      }
      memcpy(copy, p->data(), size);
    }
    out[4 * i] = static_cast<uint32_t>(topic);
    out[4 * i + 1] = batch[i].flags | kExternal;
    out[4 * i + 2] = external_count;
    out[4 * i + 3] = static_cast<uint32_t>(size > UINT32_MAX ? UINT32_MAX : size);
    ok = napi_set_element(env, externals, external_count++, buffer) == napi_ok;
  }
  // Every reference not moved into an external buffer. Had V8 failed part way (out of memory),
  // the batch is dropped: deliver isn't called with half of it.
  for (const Message& msg : batch) {
    if (msg.payload != nullptr) Release(msg.payload);
  }
  batch.clear();
  if (batch.capacity() > kKeepCapacity) std::vector<Message>().swap(batch);

  napi_value fn;
  if (ok && napi_get_reference_value(env, m->deliver, &fn) == napi_ok && fn != nullptr) {
    napi_value argv[4] = {topics.array(), meta, arena != nullptr ? arena : undefined,
                          externals != nullptr ? externals : undefined};
    // make_callback: a callback scope around the call, so microtasks and nextTicks run after it.
    // recv must be an object here (undefined would throw): the global, as for a plain call.
    napi_value global;
    napi_get_global(env, &global);
    napi_status status = napi_make_callback(env, m->context, global, fn, 4, argv, nullptr);
    bool pending = false;
    // Other failures (the env is stopping and can't run JS) have no exception to report.
    if (status == napi_pending_exception && napi_is_exception_pending(env, &pending) == napi_ok && pending) {
      // Like any event callback: a throw becomes an uncaughtException.
      napi_value error;
      napi_get_and_clear_last_exception(env, &error);
      napi_fatal_exception(env, error);
    }
  }
  napi_close_handle_scope(env, scope);
}

// uv_async callback on the member's thread: takes the whole queue and delivers it as one batch.
void OnWake(uv_async_t* async) {
  Member* m = static_cast<Member*>(uv_handle_get_data(reinterpret_cast<uv_handle_t*>(async)));
  if (m->closing) return;
  {
    Registry& hub = Hub();
    std::lock_guard<std::mutex> lock(hub.mu);
    m->wake_pending = false;
    if (m->queue.empty()) return;
    m->spare.swap(m->queue);
    m->queued_bytes = 0;
    m->wakeups++;
    m->delivered += m->spare.size();
  }
  Deliver(m);
}

}  // namespace

Napi::Value HubJoin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) {
    return ThrowType(env, "hubJoin(deliver, group): deliver must be a function");
  }
  std::string group;
  if (info.Length() >= 2 && !info[1].IsUndefined()) {
    if (!info[1].IsString()) return ThrowType(env, "hubJoin(deliver, group): group must be a string");
    if (!ReadString(env, info[1], &group)) return env.Undefined();
    if (group.find('\0') != std::string::npos) return ThrowType(env, "hubJoin: group must not contain NUL");
  }
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    Napi::Error::New(env, "hubJoin: this runtime does not expose its libuv loop").ThrowAsJavaScriptException();
    return env.Undefined();
  }

  Member* m = new Member();
  m->env = env;
  m->prefix = group;
  m->prefix.push_back('\0');
  // uv_handle_size: libuv's exported size, not this header's struct layout.
  m->async = static_cast<uv_async_t*>(malloc(uv_handle_size(UV_ASYNC)));
  m->flush = static_cast<uv_check_t*>(malloc(uv_handle_size(UV_CHECK)));
  m->keep_turning = static_cast<uv_idle_t*>(malloc(uv_handle_size(UV_IDLE)));
  napi_value name;
  // check and idle init can't fail once allocated; only the async needs an fd (eventfd).
  if (m->async == nullptr || m->flush == nullptr || m->keep_turning == nullptr || uv_async_init(loop, m->async, OnWake) != 0) {
    FreeMember(m);
    Napi::Error::New(env, "hubJoin: could not create the wake-up handle").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uv_check_init(loop, m->flush);
  uv_idle_init(loop, m->keep_turning);
  uv_handle_set_data(reinterpret_cast<uv_handle_t*>(m->async), m);
  uv_handle_set_data(reinterpret_cast<uv_handle_t*>(m->flush), m);
  uv_handle_set_data(reinterpret_cast<uv_handle_t*>(m->keep_turning), m);
  // The hub never keeps a thread alive by itself: its sockets and timers decide that.
  uv_unref(reinterpret_cast<uv_handle_t*>(m->async));
  uv_unref(reinterpret_cast<uv_handle_t*>(m->flush));
  uv_unref(reinterpret_cast<uv_handle_t*>(m->keep_turning));
  napi_create_reference(env, info[0], 1, &m->deliver);
  napi_create_string_utf8(env, "uwserve.hub", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, nullptr, name, &m->context);
  if (napi_add_async_cleanup_hook(env, OnEnvCleanup, m, &m->cleanup) != napi_ok) {
    // Without the hook a worker exit would leave the handle open: don't join.
    m->closing = true;
    napi_delete_reference(env, m->deliver);
    napi_async_destroy(env, m->context);
    m->open_handles = 3;
    const uv_close_cb free_last = [](uv_handle_t* handle) {
      Member* dead = static_cast<Member*>(uv_handle_get_data(handle));
      if (--dead->open_handles == 0) FreeMember(dead);
    };
    uv_close(reinterpret_cast<uv_handle_t*>(m->async), free_last);
    uv_close(reinterpret_cast<uv_handle_t*>(m->flush), free_last);
    uv_close(reinterpret_cast<uv_handle_t*>(m->keep_turning), free_last);
    Napi::Error::New(env, "hubJoin: could not register the env cleanup hook").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Registry& hub = Hub();
  std::lock_guard<std::mutex> lock(hub.mu);
  m->id = hub.next_id++;
  hub.members[m->id] = m;
  return Napi::Number::New(env, m->id);
}

Napi::Value HubInterest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[1].IsString() || !info[2].IsNumber()) {
    return ThrowType(env, "hubInterest(member, topic: string, delta: number)");
  }
  std::string topic;
  if (!ReadString(env, info[1], &topic)) return env.Undefined();
  const int64_t delta = info[2].As<Napi::Number>().Int64Value();
  Registry& hub = Hub();
  std::lock_guard<std::mutex> lock(hub.mu);
  Member* m = FindOwnMember(env, info[0], "hubInterest");
  if (m == nullptr) return env.Undefined();
  auto it = m->interest.find(topic);
  const int64_t before = it == m->interest.end() ? 0 : it->second;
  const int64_t after = before + delta;
  if (after < 0 || after > UINT32_MAX) {
    Napi::RangeError::New(env, "hubInterest: the interest count for \"" + topic + "\" would be " +
                                   std::to_string(after))
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (before == 0 && after > 0) {
    m->interest.emplace(topic, static_cast<uint32_t>(after));
    hub.topics[m->prefix + topic].push_back(m);
  } else if (before > 0 && after == 0) {
    m->interest.erase(it);
    Unindex(hub, m, m->prefix + topic);
  } else if (after > 0) {
    it->second = static_cast<uint32_t>(after);
  }
  return Napi::Number::New(env, static_cast<double>(after));
}

Napi::Value HubPublish(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[1].IsString()) {
    return ThrowType(env, "hubPublish(member, topic: string, payload, isBinary, compress)");
  }
  std::string topic;
  if (!ReadString(env, info[1], &topic)) return env.Undefined();
  if (topic.size() > UINT32_MAX) return ThrowType(env, "hubPublish: topic too long");
  const napi_value payload = info[2];
  uint32_t flags = 0;
  if (info.Length() > 3 && info[3].ToBoolean().Value()) flags |= kBinary;
  if (info.Length() > 4 && info[4].ToBoolean().Value()) flags |= kCompress;

  // Where the payload's bytes are (string: written straight into the shared copy).
  const char* bytes = nullptr;
  size_t size = 0;
  bool is_string = false;
  Napi::Value value = info[2];
  if (value.IsString()) {
    is_string = true;
    if (napi_get_value_string_utf8(env, payload, nullptr, 0, &size) != napi_ok) return env.Undefined();
  } else if (value.IsArrayBuffer()) {
    Napi::ArrayBuffer ab = value.As<Napi::ArrayBuffer>();
    bytes = static_cast<const char*>(ab.Data());
    size = ab.ByteLength();
  } else if (value.IsTypedArray() || value.IsDataView()) {
    void* data = nullptr;
    napi_value ab;
    size_t offset = 0;
    if (value.IsTypedArray()) {
      napi_typedarray_type type;
      size_t length;
      if (napi_get_typedarray_info(env, payload, &type, &length, &data, &ab, &offset) != napi_ok) return env.Undefined();
      size = length * ElementSize(type);
    } else {
      if (napi_get_dataview_info(env, payload, &size, &data, &ab, &offset) != napi_ok) return env.Undefined();
    }
    bytes = static_cast<const char*>(data);
  } else {
    return ThrowType(env, "hubPublish: payload must be a string, an ArrayBuffer or an ArrayBufferView");
  }

  Registry& hub = Hub();
  Member* self;
  std::string key;
  {
    std::lock_guard<std::mutex> lock(hub.mu);
    self = FindOwnMember(env, info[0], "hubPublish");
    if (self == nullptr) return env.Undefined();
    self->published++;
    hub.publishes++;
    key = self->prefix + topic;
    auto it = hub.topics.find(key);
    // Nobody else listens: no copy at all.
    if (it == hub.topics.end() || (it->second.size() == 1 && it->second[0] == self)) {
      return Napi::Number::New(env, 0);
    }
  }
  // `self` stays valid: only this thread can make it leave.

  // The one copy, made outside the lock.
  Payload* p = NewPayload(topic, size);
  if (p == nullptr) {
    Napi::Error::New(env, "hubPublish: out of memory").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (is_string) {
    size_t written = 0;
    napi_get_value_string_utf8(env, payload, p->data(), size + 1, &written);
  } else if (size > 0) {
    memcpy(p->data(), bytes, size);
  }

  int32_t queued = 0;
  bool full = false;
  {
    std::lock_guard<std::mutex> lock(hub.mu);
    auto it = hub.topics.find(key);
    if (it != hub.topics.end()) {
      for (Member* target : it->second) {
        if (target == self) continue;
        if (target->queue.size() >= kMaxQueuedMessages ||
            (!target->queue.empty() && target->queued_bytes + size > kMaxQueuedBytes)) {
          target->dropped++;
          hub.dropped++;
          full = true;
          continue;
        }
        target->queue.push_back(Message{p, flags});
        target->queued_bytes += size;
        target->received++;
        p->refs.fetch_add(1, std::memory_order_relaxed);
        queued++;
        // Woken at the end of this thread's loop turn (SendOwedWakes), once per turn.
        if (!target->wake_pending && std::find(self->owed.begin(), self->owed.end(), target->id) == self->owed.end()) {
          if (self->owed.empty()) {
            uv_check_start(self->flush, OnTurnEnd);
            uv_idle_start(self->keep_turning, [](uv_idle_t*) {});
          }
          self->owed.push_back(target->id);
        }
      }
    }
    hub.queued += static_cast<uint64_t>(queued);
  }
  if (queued == 0) FreePayload(p);
  return Napi::Number::New(env, full ? -1 : queued);
}

Napi::Value HubLeave(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) return ThrowType(env, "hubLeave(member: number)");
  const uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  Member* m = nullptr;
  {
    Registry& hub = Hub();
    std::lock_guard<std::mutex> lock(hub.mu);
    auto it = hub.members.find(id);
    if (it == hub.members.end()) return Napi::Boolean::New(env, false);
    if (it->second->env != static_cast<napi_env>(env)) {
      Napi::Error::New(env, "hubLeave: member " + std::to_string(id) +
                                " belongs to another thread; leave on that thread")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    m = it->second;
  }
  Close(m);
  return Napi::Boolean::New(env, true);
}

Napi::Value HubSubscribers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[1].IsString()) return ThrowType(env, "hubSubscribers(member, topic: string)");
  std::string topic;
  if (!ReadString(env, info[1], &topic)) return env.Undefined();
  Registry& hub = Hub();
  std::lock_guard<std::mutex> lock(hub.mu);
  Member* self = FindOwnMember(env, info[0], "hubSubscribers");
  if (self == nullptr) return env.Undefined();
  double total = 0;
  auto it = hub.topics.find(self->prefix + topic);
  if (it != hub.topics.end()) {
    for (Member* m : it->second) {
      if (m == self) continue;
      auto count = m->interest.find(topic);
      if (count != m->interest.end()) total += count->second;
    }
  }
  return Napi::Number::New(env, total);
}

Napi::Value HubStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  Registry& hub = Hub();
  std::lock_guard<std::mutex> lock(hub.mu);
  if (info.Length() >= 1 && !info[0].IsUndefined()) {
    if (!info[0].IsNumber()) return ThrowType(env, "hubStats(member?: number)");
    auto it = hub.members.find(info[0].As<Napi::Number>().Uint32Value());
    if (it == hub.members.end()) return env.Null();
    const Member* m = it->second;
    out.Set("queued", Napi::Number::New(env, static_cast<double>(m->queue.size())));
    out.Set("queuedBytes", Napi::Number::New(env, static_cast<double>(m->queued_bytes)));
    out.Set("received", Napi::Number::New(env, static_cast<double>(m->received)));
    out.Set("delivered", Napi::Number::New(env, static_cast<double>(m->delivered)));
    out.Set("dropped", Napi::Number::New(env, static_cast<double>(m->dropped)));
    out.Set("wakeups", Napi::Number::New(env, static_cast<double>(m->wakeups)));
    out.Set("published", Napi::Number::New(env, static_cast<double>(m->published)));
    out.Set("topics", Napi::Number::New(env, static_cast<double>(m->interest.size())));
    return out;
  }
  size_t queued_now = 0;
  for (const auto& entry : hub.members) queued_now += entry.second->queue.size();
  out.Set("members", Napi::Number::New(env, static_cast<double>(hub.members.size())));
  out.Set("topics", Napi::Number::New(env, static_cast<double>(hub.topics.size())));
  out.Set("publishes", Napi::Number::New(env, static_cast<double>(hub.publishes)));
  out.Set("queuedTotal", Napi::Number::New(env, static_cast<double>(hub.queued)));
  out.Set("queued", Napi::Number::New(env, static_cast<double>(queued_now)));
  out.Set("dropped", Napi::Number::New(env, static_cast<double>(hub.dropped)));
  out.Set("droppedByLeave", Napi::Number::New(env, static_cast<double>(hub.dropped_by_left)));
  out.Set("livePayloads", Napi::Number::New(env, static_cast<double>(live_payloads.load())));
  out.Set("livePayloadBytes", Napi::Number::New(env, static_cast<double>(live_payload_bytes.load())));
  out.Set("maxQueuedMessages", Napi::Number::New(env, static_cast<double>(kMaxQueuedMessages)));
  out.Set("maxQueuedBytes", Napi::Number::New(env, static_cast<double>(kMaxQueuedBytes)));
  out.Set("externalMinBytes", Napi::Number::New(env, static_cast<double>(kExternalMinBytes)));
  return out;
}

}  // namespace uwserve
