// native/hub.h: the process-wide topic hub that carries publishes between worker threads.
//
// Each thread that serves sockets joins the hub once (a "member") and mirrors its sockets'
// topic interest into it. A publish on one member is copied once into a reference-counted
// buffer and queued to every other member of the same group with interest in the topic;
// each member drains its whole queue in one JS call per wake-up of its own event loop.
// lib/hub.ts is the typed JS side; these are the raw functions it wraps.
#pragma once

#include <napi.h>

namespace uwserve {

// Takes (deliver: function, group: string), returns the new member's id (a positive integer).
// `deliver(topics, meta, arena, externals)` is then called on this thread, in a callback scope,
// with every message queued since the last call: message i has topic topics[meta[4i]], flags
// meta[4i+1] (1 binary, 2 compress, 4 external) and its bytes at arena[meta[4i+2], +meta[4i+3])
// or, when external, all of externals[meta[4i+2]] (a read-only view of the shared buffer).
// Members only exchange messages within their group (a string without NUL, "" by default).
// The member leaves by itself when its env is torn down (worker exit, terminate, crash).
Napi::Value HubJoin(const Napi::CallbackInfo& info);

// Takes (member, topic: string, delta: +1 | -1), returns the member's new interest count for
// topic. Throws RangeError when the count would go below 0.
Napi::Value HubInterest(const Napi::CallbackInfo& info);

// Takes (member, topic: string, payload: string | ArrayBuffer | ArrayBufferView, isBinary,
// compress), returns how many other members it was queued to (0: none has interest), or -1
// when at least one target's queue was full (that target's copy is dropped and counted).
Napi::Value HubPublish(const Napi::CallbackInfo& info);

// Takes (member), returns true when it left (false: it had already left). Must run on the
// member's own thread (its uv_async handle is closed there).
Napi::Value HubLeave(const Napi::CallbackInfo& info);

// Takes () or (member), returns the hub's or the member's counters as a plain object.
Napi::Value HubStats(const Napi::CallbackInfo& info);
// Takes (member, topic), returns how many subscribers the other members of its group have for
// topic (the interest counts they reported): with the caller's own, the group's total.
Napi::Value HubSubscribers(const Napi::CallbackInfo& info);

}  // namespace uwserve
