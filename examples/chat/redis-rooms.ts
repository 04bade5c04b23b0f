// The chat's rooms in Redis, for a chat that runs as several processes (each maybe with workers):
// `uwserve --backplane redis://… ` carries the room's pub/sub (messages, join and leave notices)
// between the processes, but each process only knows its own sockets. Members and history must be
// somewhere they all see, so with `createChat({ redis: url })` (or env CHAT_REDIS_URL) they are
// kept in Redis, under `${prefix}:…`:
//
//   members:ROOM  hash     "NODE SOCKET" → {"name":…,"since":…}, one field per socket in the room
//   history:ROOM  list     the room's last `historySize` messages as JSON (RPUSH + LTRIM)
//   seq:ROOM      counter  INCR numbers the room's messages 1, 2, 3… whichever process sends them
//   alive:NODE    string   this chat's heartbeat, expires ALIVE_MS after the last one
//
// NODE is a random id per createChat() (one per process, or per worker thread). A socket's field
// goes when it leaves or closes; a process that crashes can't do that, so when its heartbeat
// expires the next join in the room drops its fields. History and counters expire a week after
// a room's last message. node-redis (the `redis` package) is imported when the first socket joins.
import { randomUUID } from "node:crypto";
import type { createClient } from "redis";
import type { ChatMessage, Member, Rooms } from "./chat.js";

type RedisClient = ReturnType<typeof createClient>;

/** A heartbeat every ALIVE_MS / 3; a node silent for ALIVE_MS is gone. */
const ALIVE_MS = 15_000;
const HISTORY_TTL_MS = 7 * 24 * 3600 * 1000;

export interface RedisRoomsOptions {
  /** Key prefix: chats with the same prefix on the same Redis share their rooms. */
  prefix: string;
  historySize: number;
}

export function redisRooms(url: string, { prefix, historySize }: RedisRoomsOptions): Rooms {
  const node = randomUUID();
  const keys = {
    members: (room: string) => `${prefix}:members:${room}`,
    history: (room: string) => `${prefix}:history:${room}`,
    seq: (room: string) => `${prefix}:seq:${room}`,
    alive: (id: string) => `${prefix}:alive:${id}`,
  };
  const fieldOf = (member: Member) => `${node} ${member.id}`;
  const nodeOf = (field: string) => field.slice(0, field.indexOf(" "));

  let connecting: Promise<RedisClient> | null = null;
  /** The client, connected on first use: a thread that never gets a socket never connects. */
  const client = (): Promise<RedisClient> =>
    (connecting ??= connect(url, (redis) => redis.set(keys.alive(node), "1", { expiration: { type: "PX", value: ALIVE_MS } })));

  /** The names in `room` (oldest member first), dropping the fields of nodes whose heartbeat stopped. */
  async function namesIn(redis: RedisClient, room: string, entries: Record<string, string>): Promise<string[]> {
    const fields = Object.keys(entries);
    // Ours are alive; other nodes have a heartbeat key while they run.
    const others = [...new Set(fields.map(nodeOf))].filter((id) => id !== node);
    const beats = others.length === 0 ? [] : await redis.mGet(others.map(keys.alive));
    const gone = new Set(others.filter((_, i) => beats[i] === null));
    const stale = fields.filter((field) => gone.has(nodeOf(field)));
    if (stale.length > 0) await redis.hDel(keys.members(room), stale);
    return fields
      .filter((field) => !gone.has(nodeOf(field)))
      .map((field) => JSON.parse(entries[field]!) as { name: string; since: number })
      .sort((a, b) => a.since - b.since)
      .map((member) => member.name);
  }

  return {
    async join(room: string, member: Member) {
      const redis = await client();
      // One round trip: add the member, then read who is there and what was said.
      const [, entries, history] = (await redis
        .multi()
        .hSet(keys.members(room), fieldOf(member), JSON.stringify({ name: member.name, since: Date.now() }))
        .hGetAll(keys.members(room))
        .lRange(keys.history(room), 0, -1)
        .exec()) as unknown as [number, Record<string, string>, string[]];
      return { members: await namesIn(redis, room, entries), history: history.map((json) => JSON.parse(json) as ChatMessage) };
    },

    async leave(room: string, member: Member) {
      const redis = await client();
      return (await redis.hDel(keys.members(room), fieldOf(member))) > 0;
    },

    async add(draft) {
      const redis = await client();
      const message: ChatMessage = { type: "message", id: await redis.incr(keys.seq(draft.room)), ...draft };
      const list = keys.history(draft.room);
      await redis
        .multi()
        .rPush(list, JSON.stringify(message))
        .lTrim(list, -historySize, -1)
        .pExpire(list, HISTORY_TTL_MS)
        .pExpire(keys.seq(draft.room), HISTORY_TTL_MS)
        .exec();
      return message;
    },

    async members(room: string) {
      const redis = await client();
      return namesIn(redis, room, await redis.hGetAll(keys.members(room)));
    },

    async history(room: string) {
      const redis = await client();
      return (await redis.lRange(keys.history(room), 0, -1)).map((json) => JSON.parse(json) as ChatMessage);
    },
  };
}

/** Connects to Redis, sends a first heartbeat, and keeps beating every ALIVE_MS / 3. */
async function connect(url: string, beat: (redis: RedisClient) => Promise<unknown>): Promise<RedisClient> {
  let redis: typeof import("redis");
  try {
    redis = await import("redis");
  } catch {
    throw new Error("the chat keeps its rooms in Redis (CHAT_REDIS_URL, or createChat({ redis })), which needs the redis package: npm install redis");
  }
  // No offline queue: while Redis is away a command fails at once (the chat says so) instead of waiting.
  const client = redis.createClient({ url, disableOfflineQueue: true });
  let reported = false;
  client.on("error", (err: Error) => {
    if (!reported) console.error(`chat: Redis: ${err.message}`);
    reported = true;
  });
  client.on("ready", () => (reported = false));
  // Neither the connection nor the heartbeat keeps the process alive once its server has stopped.
  client.unref();
  await client.connect();
  await beat(client);
  setInterval(() => beat(client).catch(() => {}), ALIVE_MS / 3).unref();
  return client;
}
