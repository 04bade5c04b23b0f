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
// Members and history live in a `Rooms` store: this process's memory (memory-rooms.ts, which also
// serves `uwserve --workers N`), or Redis to span processes that share pub/sub through a backplane
// (redis-rooms.ts; README.md, "Across processes").
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { Response, type Server, type ServerWebSocket } from "uwserve";
import { memoryRooms } from "./memory-rooms.js";
import { redisRooms } from "./redis-rooms.js";

export interface ChatMessage {
  type: "message";
  /**
   * 1, 2, 3… on one thread; under workers "THREAD-N" (e.g. "2-17"), unique across the threads;
   * with Redis 1, 2, 3… per room, counted in Redis, so unique across the processes.
   */
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
  /**
   * A Redis URL (redis://host:6379): keep members and history there, shared by every process and
   * thread that runs the chat with the same URL (redis-rooms.ts). Needs the `redis` package.
   * Default: env CHAT_REDIS_URL; unset (or null): in this process's memory.
   */
  redis?: string | null;
  /** With `redis`: the prefix of the chat's keys. Default `uwserve-chat:${path}`. */
  redisPrefix?: string;
}

/** Someone in a room: `id` is unique per socket (across processes), `name` is what others see. */
export interface Member {
  id: string;
  name: string;
}

/** What a newcomer's welcome shows: who is in the room (it included) and its last messages. */
export interface RoomView {
  members: string[];
  history: ChatMessage[];
}

/**
 * Where the members and history of the rooms live: this process's memory (memoryRooms below) or
 * Redis (redis-rooms.ts). The Redis one answers with Promises; the chat awaits either.
 */
export interface Rooms {
  /** Adds `member` to `room`; who is there now (it included) and the room's history. */
  join(room: string, member: Member): RoomView | Promise<RoomView>;
  /** Takes `member` out of `room`; false if it was not there. */
  leave(room: string, member: Member): boolean | Promise<boolean>;
  /** Gives the message its id and keeps it in the room's history. */
  add(message: Omit<ChatMessage, "type" | "id">): ChatMessage | Promise<ChatMessage>;
  members(room: string): string[] | Promise<string[]>;
  history(room: string): readonly ChatMessage[] | Promise<readonly ChatMessage[]>;
}

/** What the server keeps per socket in `ws.data`. */
export interface ChatData {
  name: string;
  room: string;
  /** Unique per socket, across threads and processes (the Redis rooms key members by it). */
  member: string;
  /** The socket's steps (join, message, leave) run one after another: each waits for the one before. */
  steps: Promise<void>;
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
  const burst = options.burst ?? 20;
  const perSecond = options.perSecond ?? 5;
  const redis = options.redis === undefined ? process.env.CHAT_REDIS_URL || null : options.redis;
  const rooms: Rooms = redis
    ? redisRooms(redis, { prefix: options.redisPrefix ?? `uwserve-chat:${path}`, historySize })
    : memoryRooms({ historySize, maxRooms: options.maxRooms ?? 1000, channel: options.channel ?? `uwserve-chat:${path}` });

  const send = (ws: ChatSocket, message: object): void => {
    // The socket may have closed while a step awaited Redis: sending then would be an error.
    if (ws.readyState === 1) ws.send(JSON.stringify(message));
  };
  const fail = (ws: ChatSocket, error: string): void => send(ws, { type: "error", error });
  const memberOf = (ws: ChatSocket): Member => ({ id: ws.data.member, name: ws.data.name });

  /**
   * Queues a step for the socket: its joins, messages and leave run in the order they came, each
   * after the one before is done (with Redis a join awaits the welcome's members and history).
   */
  function queue(ws: ChatSocket, step: () => Promise<void>): void {
    ws.data.steps = ws.data.steps.then(step).catch((err: unknown) => {
      console.error(`chat: ${ws.data.name} in ${ws.data.room}: ${String(err)}`);
      fail(ws, "the chat's store is unavailable: try again");
    });
  }

  async function join(ws: ChatSocket, room: string): Promise<void> {
    const { name } = ws.data;
    let view: RoomView;
    try {
      view = await rooms.join(room, memberOf(ws));
    } catch (err) {
      console.error(`chat: ${name} could not join ${room}: ${String(err)}`);
      if (ws.readyState === 1) ws.close(1011, "chat store unavailable");
      return;
    }
    // Closed while we waited: its close() step, queued after this one, takes it out again.
    if (ws.readyState !== 1) return;
    ws.subscribe(topic(room));
    send(ws, { type: "welcome", name, room, members: view.members, history: view.history });
    // ws.publish() reaches every subscriber but ws itself (publishToSelf is false by default).
    ws.publish(topic(room), JSON.stringify({ type: "join", name, room, time: Date.now() }));
  }

  /** Takes ws out of `room`; `closed` when the socket is gone (ws.unsubscribe/publish are no-ops then). */
  async function leave(ws: ChatSocket, room: string, closed: boolean): Promise<void> {
    const { name, server } = ws.data;
    if (!closed) ws.unsubscribe(topic(room));
    if (!(await rooms.leave(room, memberOf(ws)))) return;
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
      // ws.data.room is where the socket's queued joins lead: the message goes to the room it was sent in.
      const draft = { room: ws.data.room, name: ws.data.name, text, time: Date.now() };
      queue(ws, async () => {
        // Kept (and, with Redis, numbered) before it goes out: whoever saw it finds it in the history.
        const entry = await rooms.add(draft);
        // server.publish() reaches the sender too, so every client shows messages in the server's order.
        ws.data.server.publish(topic(entry.room), JSON.stringify(entry));
      });
    } else if (type === "join") {
      const next = validRoom(room);
      if (next === null) return fail(ws, `room must be 1-${ROOM_MAX} characters of a-z, 0-9, _ and -`);
      const from = ws.data.room;
      if (next === from) return;
      ws.data.room = next;
      queue(ws, async () => {
        await leave(ws, from, false);
        await join(ws, next);
      });
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
        const data: ChatData = {
          name, room, member: randomUUID(), steps: Promise.resolve(), server,
          tokens: burst, refilledAt: Date.now(), warned: false,
        };
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
        queue(ws, () => join(ws, ws.data.room));
      },
      message: onMessage,
      close(ws: ChatSocket) {
        queue(ws, () => leave(ws, ws.data.room, true));
      },
    },
    /** Who is in `room` now (for tests and monitoring); with Redis, a Promise. */
    members: (room: string) => rooms.members(room),
    /** The kept messages of `room`, oldest first; with Redis, a Promise. */
    history: (room: string) => rooms.history(room),
  };
}

export type Chat = ReturnType<typeof createChat>;
