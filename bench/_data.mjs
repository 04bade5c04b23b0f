// Payloads shared by every bench server and by the runner's response checks, so all peers send the same bytes.

export const HELLO = "Hello, World!";

// What `new Response("…")` reports for a string body (undici, Deno and uwserve's Response; Bun
// writes "charset=utf-8"); the raw servers write it too so every peer sends the same headers.
export const TEXT_TYPE = "text/plain;charset=UTF-8";
export const JSON_TYPE = "application/json";
export const BYTES_TYPE = "application/octet-stream";

// A ~1 KB object shaped like a typical API answer: a few scalars, a nested object, a list.
// Every server serialises it per request (Response.json / JSON.stringify), like a real handler.
export const DATA = {
  id: 4217,
  name: "uwserve benchmark",
  active: true,
  score: 98.25,
  createdAt: "2024-05-01T12:34:56.000Z",
  tags: ["http", "uwebsockets", "node", "bun", "deno", "benchmark"],
  owner: {
    id: 17,
    login: "octo",
    email: "octo@example.com",
    url: "https://example.com/users/octo",
    roles: ["admin", "maintainer"],
  },
  items: Array.from({ length: 8 }, (_, i) => ({
    id: i + 1,
    sku: `SKU-${String(1000 + i * 37)}`,
    title: `Item number ${i + 1}`,
    price: Math.round((i + 1) * 313.7) / 100,
    inStock: i % 3 !== 0,
  })),
  description:
    "A fixed JSON document of about one kilobyte, shared by every server in the benchmark.",
};

export const JSON_TEXT = JSON.stringify(DATA);

// The echo scenario POSTs this body and expects it back byte for byte.
export const ECHO_BODY = JSON_TEXT;

// 1 MiB body, allocated once at startup. A byte pattern (not zeros) so a truncated or shifted
// body fails the check instead of comparing equal by accident.
export const ONE_MIB = new Uint8Array(1 << 20);
for (let i = 0; i < ONE_MIB.length; i++) ONE_MIB[i] = (i * 7 + 3) & 0xff;

// stream: 64 chunks of 16 KiB (1 MiB total), the same chunk enqueued 64 times. Its own buffer
// (not a view into ONE_MIB) so no server is handed a byteOffset it might mishandle.
export const STREAM_CHUNK_COUNT = 64;
export const STREAM_CHUNK = ONE_MIB.slice(0, 16 * 1024);
export const STREAM_BYTES = STREAM_CHUNK.length * STREAM_CHUNK_COUNT;

// json26 / json-gzip: a ~2.6 KB page of an API listing (a realistic mix of repeated keys, ids, dates,
// e-mails and free text: what automatic compression meets in practice). Serialised per request.
const CITIES = ["Lisbon", "Oslo", "Austin", "Kyoto", "Nairobi", "Lyon", "Denver", "Porto", "Tallinn", "Quito"];
const ROLES = [["admin"], ["editor"], ["viewer"], ["editor", "billing"], ["viewer"]];
export const DATA26 = {
  page: 3,
  perPage: 10,
  total: 1287,
  next: "https://api.example.com/v1/users?page=4&per_page=10",
  users: Array.from({ length: 10 }, (_, i) => ({
    id: 10420 + i * 17,
    login: `user${10420 + i * 17}`,
    name: `${["Ada", "Grace", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances", "Guido", "Radia"][i]} ${["Lovelace", "Hopper", "Torvalds", "Liskov", "Thompson", "Hamilton", "Ritchie", "Allen", "Rossum", "Perlman"][i]}`,
    email: `user${10420 + i * 17}@example.com`,
    verified: i % 4 !== 1,
    roles: ROLES[i % ROLES.length],
    city: CITIES[i],
    createdAt: new Date(Date.UTC(2023, i, 3 + i * 2, 9, 15 + i, 7)).toISOString(),
    lastSeen: new Date(Date.UTC(2024, 4, 1 + i, 12, 3 * i, 41)).toISOString(),
    stats: { posts: 12 + i * 31, followers: 100 + ((i * 7919) % 5003) },
  })),
};
export const JSON26_TEXT = JSON.stringify(DATA26);
