// A chat backend on uwserve's Bun-style WebSockets: rooms are pub/sub topics, with join/leave
// notices, the last messages of a room for newcomers, and a browser page. Mount it in any server:
//
//   const chat = createChat();
//   serve({ routes: { ...chat.routes }, websocket: chat.websocket, fetch: ... });
//
// The page is GET /chat; the socket is /chat/ws?name=NAME&room=ROOM. Everything the server sends is
// JSON text:
//   { type: "welcome", name, room, members: string[], history: Message[] }  to a socket that joined a room
//   { type: "join" | "leave", name, room, time }                             to the others in the room
//   { type: "message", id, room, name, text, time }                          to everyone in the room, sender included
//   { type: "error", error }                                                 to a socket that sent something invalid
// and a client sends { type: "message", text } or { type: "join", room } (moves it to another room).
//
// It also runs under `uwserve --workers N` (N threads on one port): see "Worker threads" below.
import { readFileSync } from "node:fs";
import { BroadcastChannel, isMainThread, threadId } from "node:worker_threads";
import { Response, type Server, type ServerWebSocket } from "uwserve";

export interface ChatMessage {
  type: "message";
  /** 1, 2, 3… on one thread; under workers "THREAD-N" (e.g. "2-17"), unique across the threads. */
  id: number | string;
  room: string;
  name: string;
  text: string;
  time: number;
}

export interface ChatOptions {
  /** Where the page is served; the socket lives at `${path}/ws`. Default "/chat". */
  path?: string;
  /** Messages kept per room and sent to newcomers. Default 50. */
  historySize?: number;
  /** Rooms whose history is kept; the oldest empty room's history goes first. Default 1000. */
  maxRooms?: number;
  /** Messages a socket may send in a burst, and how many it regains per second. Default 20 and 5. */
  burst?: number;
  perSecond?: number;
  /**
   * Under workers: the BroadcastChannel on which the threads share members and history. Two chats
   * in one process need different names (or paths) to stay apart. Default `uwserve-chat:${path}`.
   */
  channel?: string;
}

/** What the server keeps per socket in `ws.data`. */
export interface ChatData {
  name: string;
  room: string;
  /** The server that upgraded the socket: its publish() still works in close(), when ws.publish() no longer does. */
  server: Server;
  /** Rate limit: messages the socket may still send, topped up over time. */
  tokens: number;
  refilledAt: number;
  warned: boolean;
}

export type ChatSocket = ServerWebSocket<ChatData>;

export const NAME_MAX = 24;
export const ROOM_MAX = 32;
export const TEXT_MAX = 1000;
// A frame bigger than this closes the socket (1009) before any JSON is parsed: TEXT_MAX characters
// of 4-byte UTF-8, or all escaped as \uXXXX, plus the JSON around them.
const MAX_PAYLOAD = 8 * 1024;

const ROOM_PATTERN = /^[a-z0-9][a-z0-9_-]*$/;
// Control characters, line/paragraph separators and bidi overrides have no place in a name.
const BAD_NAME_CHARS = /[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

/** A room name, or null: 1..ROOM_MAX of a-z 0-9 _ - (lower case), starting with a letter or digit. */
export function validRoom(value: unknown): string | null {
  return typeof value === "string" && value.length <= ROOM_MAX && ROOM_PATTERN.test(value) ? value : null;
}

/** A user name with the spaces around it trimmed, or null: 1..NAME_MAX characters, no control characters. */
export function validName(value: unknown): string | null {
  if (typeof value !== "string") return null;
  const name = value.trim();
  const length = [...name].length;
  return length >= 1 && length <= NAME_MAX && !BAD_NAME_CHARS.test(name) ? name : null;
}

const topic = (room: string): string => "room:" + room;

const PAGE = readFileSync(new URL("./page.html", import.meta.url), "utf8");

export function createChat(options: ChatOptions = {}) {
  const path = (options.path ?? "/chat").replace(/\/+$/, "");
  const historySize = options.historySize ?? 50;
  const maxRooms = options.maxRooms ?? 1000;
  const burst = options.burst ?? 20;
  const perSecond = options.perSecond ?? 5;

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
  const channel = isMainThread ? null : new BroadcastChannel(options.channel ?? `uwserve-chat:${path}`);
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

  const send = (ws: ChatSocket, message: object): void => {
    ws.send(JSON.stringify(message));
  };
  const fail = (ws: ChatSocket, error: string): void => send(ws, { type: "error", error });

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

  function join(ws: ChatSocket, room: string): void {
    const { name } = ws.data;
    ws.data.room = room;
    share({ type: "join", room, name });
    ws.subscribe(topic(room));
    send(ws, { type: "welcome", name, room, members: members.get(room), history: historyOf(room) });
    // ws.publish() reaches every subscriber but ws itself (publishToSelf is false by default).
    ws.publish(topic(room), JSON.stringify({ type: "join", name, room, time: Date.now() }));
  }

  /** Takes ws out of its room; `closed` when the socket is gone (ws.unsubscribe/publish are no-ops then). */
  function leave(ws: ChatSocket, closed: boolean): void {
    const { name, room, server } = ws.data;
    if (!share({ type: "leave", room, name })) return;
    if (!closed) ws.unsubscribe(topic(room));
    server.publish(topic(room), JSON.stringify({ type: "leave", name, room, time: Date.now() }));
  }

  /** Token bucket: false (and one warning per empty bucket) when the socket sends too fast. */
  function allow(ws: ChatSocket): boolean {
    const data = ws.data;
    const now = Date.now();
    data.tokens = Math.min(burst, data.tokens + ((now - data.refilledAt) / 1000) * perSecond);
    data.refilledAt = now;
    if (data.tokens >= 1) {
      data.tokens -= 1;
      data.warned = false;
      return true;
    }
    if (!data.warned) fail(ws, "too many messages: slow down");
    data.warned = true;
    return false;
  }

  function onMessage(ws: ChatSocket, raw: string | Buffer): void {
    if (!allow(ws)) return;
    if (typeof raw !== "string") return fail(ws, "send JSON text frames, not binary ones");
    let message: unknown;
    try {
      message = JSON.parse(raw);
    } catch {
      return fail(ws, "not JSON");
    }
    if (typeof message !== "object" || message === null || Array.isArray(message)) {
      return fail(ws, 'expected an object like {"type":"message","text":"hi"}');
    }
    const { type, text, room } = message as Record<string, unknown>;
    if (type === "message") {
      if (typeof text !== "string" || text.trim() === "") return fail(ws, "text must be a non-empty string");
      if (text.length > TEXT_MAX) return fail(ws, `text is longer than ${TEXT_MAX} characters`);
      // Each thread counts on its own: under workers the thread id in front keeps ids unique.
      const id = channel ? `${threadId}-${nextId++}` : nextId++;
      const entry: ChatMessage = { type: "message", id, room: ws.data.room, name: ws.data.name, text, time: Date.now() };
      share(entry);
      // server.publish() reaches the sender too, so every client shows messages in the server's order.
      ws.data.server.publish(topic(entry.room), JSON.stringify(entry));
    } else if (type === "join") {
      const next = validRoom(room);
      if (next === null) return fail(ws, `room must be 1-${ROOM_MAX} characters of a-z, 0-9, _ and -`);
      if (next === ws.data.room) return;
      leave(ws, false);
      join(ws, next);
    } else {
      fail(ws, 'type must be "message" or "join"');
    }
  }

  const page = new Response(PAGE, { headers: { "content-type": "text/html; charset=utf-8" } });

  return {
    /** GET `${path}`: the page; `${path}/ws?name=&room=`: the socket. Spread into `routes`. */
    routes: {
      [path]: page,
      [`${path}/ws`]: (req: Request, server: Server): Response | undefined => {
        const query = new URL(req.url).searchParams;
        const name = validName(query.get("name"));
        const room = validRoom(query.get("room"));
        if (name === null) return new Response(`name must be 1-${NAME_MAX} characters, no control characters\n`, { status: 400 });
        if (room === null) return new Response(`room must be 1-${ROOM_MAX} characters of a-z, 0-9, _ and -\n`, { status: 400 });
        const data: ChatData = { name, room, server, tokens: burst, refilledAt: Date.now(), warned: false };
        if (server.upgrade(req, { data })) return undefined;
        return new Response("This is a WebSocket endpoint: connect with new WebSocket(url)\n", { status: 426, headers: { upgrade: "websocket" } });
      },
    },
    /** The `websocket` option of serve(). */
    websocket: {
      maxPayloadLength: MAX_PAYLOAD,
      // A client that stops reading is cut off rather than buffered for without end.
      backpressureLimit: 1024 * 1024,
      closeOnBackpressureLimit: true,
      open(ws: ChatSocket) {
        join(ws, ws.data.room);
      },
      message: onMessage,
      close(ws: ChatSocket) {
        leave(ws, true);
      },
    },
    /** Who is in `room` now (for tests and monitoring). */
    members(room: string): string[] {
      return [...(members.get(room) ?? [])];
    },
    /** The kept messages of `room`, oldest first. */
    history(room: string): readonly ChatMessage[] {
      return history.get(room) ?? [];
    },
  };
}

export type Chat = ReturnType<typeof createChat>;
