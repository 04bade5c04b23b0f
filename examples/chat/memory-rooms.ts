// The chat's rooms in this process's memory: members and the last messages of each room, kept in
// Maps. On one thread that is all. Under `uwserve --workers N` the threads keep copies in step
// through a BroadcastChannel (below). Across processes use redis-rooms.ts.
import { BroadcastChannel, isMainThread, threadId } from "node:worker_threads";
import type { ChatMessage, Member, Rooms } from "./chat.js";

export interface MemoryRoomsOptions {
  historySize: number;
  /** Rooms whose history is kept; the oldest empty room's history goes first. */
  maxRooms: number;
  /** Under workers: the BroadcastChannel the threads share on. */
  channel: string;
}

export function memoryRooms({ historySize, maxRooms, channel: channelName }: MemoryRoomsOptions): Rooms {
  /** The last `historySize` messages per room, oldest first. Insertion order = room age. */
  const history = new Map<string, ChatMessage[]>();
  /** Who is in each room now: a name per socket, in the order they joined. */
  const members = new Map<string, string[]>();
  let nextId = 1;

  // Worker threads. Under `uwserve --workers N` every thread runs this module, so each has its own
  // `members` and `history`. Pub/sub already spans the threads (a message reaches the room on all
  // of them), but these maps would only know the sockets of their own thread. So each thread tells
  // the others of every join, leave and message on a BroadcastChannel (which reaches the channels
  // of that name on every other thread of the process) and applies theirs just like its own: every
  // thread keeps a copy of the whole chat. On one thread there is nobody to tell: no channel.
  //
  // Good enough for an example, not exact: a copy lags by a moment (a message sent on another
  // thread as someone joins may be missing from their history, or come twice), and a worker that
  // crashes takes its members' leaves with it (its replacement starts with empty copies).
  const channel = isMainThread ? null : new BroadcastChannel(channelName);
  // An open channel would keep a worker alive after its server stopped.
  channel?.unref();
  if (channel) channel.onmessage = (event) => apply(event.data);

  /** Changes this thread applies to its copies, and tells the other threads about. */
  type Change = { type: "join"; room: string; name: string } | { type: "leave"; room: string; name: string } | ChatMessage;

  /** Applies a change (from this thread or another); false for a leave of someone not there. */
  function apply(change: Change): boolean {
    const { room } = change;
    if (change.type === "join") {
      const here = members.get(room);
      if (here) here.push(change.name);
      else members.set(room, [change.name]);
    } else if (change.type === "leave") {
      const here = members.get(room);
      const at = here?.indexOf(change.name) ?? -1;
      if (!here || at < 0) return false;
      here.splice(at, 1);
      if (here.length === 0) members.delete(room);
    } else {
      const list = historyOf(room);
      list.push(change);
      if (list.length > historySize) list.splice(0, list.length - historySize);
    }
    return true;
  }

  /** Applies a change made here and passes it on to the other threads. */
  function share(change: Change): boolean {
    if (!apply(change)) return false;
    channel?.postMessage(change);
    return true;
  }

  /** Keeps at most `maxRooms` histories, forgetting the oldest rooms nobody is in. */
  function historyOf(room: string): ChatMessage[] {
    let list = history.get(room);
    if (list) return list;
    list = [];
    history.set(room, list);
    if (history.size > maxRooms) {
      for (const old of history.keys()) {
        if (old !== room && !members.has(old)) {
          history.delete(old);
          if (history.size <= maxRooms) break;
        }
      }
    }
    return list;
  }

  return {
    join(room: string, { name }: Member) {
      share({ type: "join", room, name });
      return { members: [...members.get(room)!], history: [...historyOf(room)] };
    },
    leave(room: string, { name }: Member) {
      return share({ type: "leave", room, name });
    },
    add(draft) {
      // Each thread counts on its own: under workers the thread id in front keeps ids unique.
      const id = channel ? `${threadId}-${nextId++}` : nextId++;
      const message: ChatMessage = { type: "message", id, ...draft };
      share(message);
      return message;
    },
    members(room: string) {
      return [...(members.get(room) ?? [])];
    },
    history(room: string) {
      return history.get(room) ?? [];
    },
  };
}
