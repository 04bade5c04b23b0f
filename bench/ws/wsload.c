// wsload: a lean WebSocket load generator for bench/ws.mjs (Linux: epoll, non-blocking sockets, one thread).
//
//   wsload echo   -p PORT [-c 64]  [-s 32] [-w 1] [-d 3]        C clients, 1 text message each in flight, echo checked byte for byte
//   wsload fanout -p PORT [-c 500] [-s 32] [-w 1] [-d 3] [-W 32]  C subscribers (/sub) + 1 publisher (/pub), window W
//                 [-S SUBPORT]  the subscribers connect to SUBPORT, the publisher to PORT (a server with a thread per port)
//                 [-R RATE]     publish RATE messages/s on a timer instead of keeping W in flight; reports the
//                               publish -> receive delay of every delivery in the measured phase (p50/p90/p99/max)
//   wsload idle   -p PORT [-c 5000] [-d 600]                     C idle connections, held until SIGTERM/SIGINT or -d seconds
//
// It does the HTTP/1.1 upgrade itself (fixed key, the 101 and its Sec-WebSocket-Accept checked), sends masked
// client frames, parses server frames (7/16/64-bit lengths, fragmentation, ping -> pong, close).
//
// stdout, one line each, flushed at once: "open N" when every connection is up, "phase measure" when the measured
// window starts, "phase done" when it ends, and last "WSLOAD_JSON {...}" with the counts (see report()).
// The runner opens its /proc CPU window on "phase measure" and closes it on "phase done".
//
// fanout: every data message the publisher sends is "D" + 11-digit sequence number, padded to -s bytes. Each
// subscriber checks that it receives 0, 1, 2, ... with no gap and the exact payload, and the client counts for every
// sequence number how many subscribers have it. A message is "in flight" from the moment it is sent until the LAST
// subscriber has received it; the publisher sends only while fewer than W messages are in flight. That bounds every
// subscriber's lag (and the server's outgoing buffers) to W messages, so no server ever reaches its backpressure limit,
// and "deliveries" counts frames that actually arrived (sum over subscribers), not sends.
// Before the measured phase the publisher sends probe messages ("P...", not counted) every 20 ms until every
// subscriber has seen one: so every subscription is in place on the server whatever the server does in open().
// fanout -R: the publisher sends message n at (start + n / RATE) s, each in its own send() (a timerfd wakes the loop
// at that interval), still at most 4095 in flight. The client notes CLOCK_MONOTONIC just before each send and when
// each recv returns; the difference for every delivery received in the measured phase goes into a histogram with
// 1 µs buckets. It includes the client's own work (the n-th subscriber's recv comes after the first n-1), the same
// for every server.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

enum { MODE_ECHO, MODE_FANOUT, MODE_IDLE, MODE_SERVE };
enum { ROLE_ECHO, ROLE_SUB, ROLE_PUB, ROLE_IDLE };
enum { ST_NONE, ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSED };
enum { PH_SETUP, PH_PROBE, PH_WARMUP, PH_MEASURE, PH_DRAIN, PH_HOLD };

#define RBUF_SIZE (4u << 20)   // shared read buffer; a frame must fit in it
#define RING 4096u             // fanout: per-sequence delivery counters (W < RING)
#define MAX_SIZE 65536         // largest message -s accepts
#define SEQ_DIGITS 11

typedef struct conn {
  int fd;
  unsigned char role, state, fragmented, probed;
  unsigned char dirty;         // serve: output waiting for the end of this loop turn
  int index;                   // serve: position in subs[]
  int events;                  // current epoll interest
  unsigned char *partial;      // unparsed bytes kept between reads
  size_t plen, pcap;
  unsigned char *out;          // bytes not yet written
  size_t olen, ooff, ocap;
  unsigned char *msg;          // fragmented message being assembled
  size_t mlen, mcap;
  uint64_t received;           // complete data messages received
  uint64_t next_seq;           // sub: the sequence number expected next
  uint64_t echo_seq;           // echo: number of the message in flight
} conn;

static struct {
  int mode;
  const char *host;
  int port;
  int conns;
  int size;
  double warmup, duration;
  int window;
  int max_pending;             // connections being set up at once
  int sub_port;                // fanout: the subscribers' port (-S), else port
  double rate;                 // fanout -R: messages per second on a timer, 0 = window mode
} cfg = { MODE_ECHO, "127.0.0.1", 0, -1, 32, 1, 3, 32, 256, 0, 0 };

static struct {
  uint64_t epoll, recv, send, pubsend;
} sys_count;

static struct {
  uint64_t connect, handshake, protocol, closed, payload, gap, unexpected, write;
} err;

static int ep;
static conn *cs;               // cfg.conns connections, then (fanout) the publisher
static int nconns;             // entries in cs
static int started, opened, pending;
static int phase = PH_SETUP;
static volatile sig_atomic_t stop_signal;
static unsigned char *rbuf;
static struct sockaddr_in addr, sub_addr;
static char request[512];
static size_t request_len;
static uint64_t rng = 0x9E3779B97F4A7C15ull;

// fanout state
static conn *pub;
static uint64_t sent;          // data messages the publisher has queued
static uint64_t done;          // leading messages every subscriber has received
static uint64_t delivered;     // data frames received by all subscribers together
static uint32_t *ring;
static int probes_seen;        // subscribers that have seen a probe
static double last_probe;
// echo state
static uint64_t echoes;

// fanout -R state
#define LAT_BUCKETS 100000     // 1 µs each: 0 .. 99,999 µs, then one overflow bucket
static double *sent_at;        // per sequence number (mod RING): CLOCK_MONOTONIC just before its send()
static uint32_t *lat_hist;
static uint64_t lat_count, lat_over;
static double lat_sum, lat_max;
static double t_recv;          // when the recv being parsed returned
static double t_rate0;         // when the paced publishing started
static uint64_t behind;        // messages sent late because 4095 were already in flight
static int tfd = -1;
static conn ticker;            // epoll tag of the timerfd

static double t_phase, t_measure, t_done;
static uint64_t m0_msgs, m0_deliv, m1_msgs, m1_deliv;
static double cpu0, cpu1;
static struct { uint64_t epoll, recv, send, pubsend; } sc0, sc1;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_self(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what) {
  fprintf(stderr, "wsload: %s\n", what);
  exit(2);
}

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n);
  if (!p) die("out of memory");
  return p;
}

static void line(const char *s) {
  fputs(s, stdout);
  fputc('\n', stdout);
  fflush(stdout);
}

static void set_events(conn *c, int events) {
  if (c->events == events) return;
  struct epoll_event ev = { .events = (uint32_t)events, .data.ptr = c };
  if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) == 0) c->events = events;
}

static void server_close(conn *c);

static void close_conn(conn *c) {
  if (c->state == ST_CLOSED) return;
  if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE) pending--;
  if (c->state == ST_OPEN) opened--;
  c->state = ST_CLOSED;
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;
}

static void out_append(conn *c, const void *data, size_t n) {
  if (c->olen + n > c->ocap) {
    if (c->ooff) {  // compact first
      memmove(c->out, c->out + c->ooff, c->olen - c->ooff);
      c->olen -= c->ooff;
      c->ooff = 0;
    }
    if (c->olen + n > c->ocap) {
      c->ocap = (c->olen + n) * 2;
      c->out = xrealloc(c->out, c->ocap);
    }
  }
  memcpy(c->out + c->olen, data, n);
  c->olen += n;
}

static void flush(conn *c) {
  while (c->ooff < c->olen) {
    ssize_t r = send(c->fd, c->out + c->ooff, c->olen - c->ooff, MSG_NOSIGNAL);
    sys_count.send++;
    if (c->role == ROLE_PUB) sys_count.pubsend++;
    if (r > 0) {
      c->ooff += (size_t)r;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      set_events(c, EPOLLIN | EPOLLOUT);
      return;
    }
    err.write++;
    if (cfg.mode == MODE_SERVE) server_close(c);
    else close_conn(c);
    return;
  }
  c->ooff = c->olen = 0;
  if (c->events & EPOLLOUT) set_events(c, EPOLLIN);
}

/** Appends one masked client frame (FIN set) to c's output. */
static void frame(conn *c, int opcode, const unsigned char *payload, size_t n) {
  unsigned char h[14];
  size_t hl = 0;
  h[hl++] = (unsigned char)(0x80 | opcode);
  if (n < 126) {
    h[hl++] = (unsigned char)(0x80 | n);
  } else if (n < 65536) {
    h[hl++] = 0x80 | 126;
    h[hl++] = (unsigned char)(n >> 8);
    h[hl++] = (unsigned char)n;
  } else {
    h[hl++] = 0x80 | 127;
    for (int i = 7; i >= 0; i--) h[hl++] = (unsigned char)((uint64_t)n >> (8 * i));
  }
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  unsigned char mask[4];
  memcpy(mask, &rng, 4);
  memcpy(h + hl, mask, 4);
  hl += 4;
  out_append(c, h, hl);
  unsigned char *dst = c->out + c->olen;
  if (c->olen + n > c->ocap) {
    out_append(c, payload, n);  // grows the buffer; masked in place below
    dst = c->out + c->olen - n;
  } else {
    c->olen += n;
  }
  for (size_t i = 0; i < n; i++) dst[i] = payload[i] ^ mask[i & 3];
}

static unsigned char payload_buf[MAX_SIZE];
static unsigned char *fillers;  // 26 rows of cfg.size bytes: 'a'... 'z'

/** Fills payload_buf with a tag letter, the number as SEQ_DIGITS digits, then filler letter salt % 26 up to cfg.size. */
static void make_payload(char tag, uint64_t n, uint64_t salt) {
  payload_buf[0] = (unsigned char)tag;
  for (int i = SEQ_DIGITS; i >= 1; i--, n /= 10) payload_buf[i] = (unsigned char)('0' + n % 10);
  memcpy(payload_buf + 1 + SEQ_DIGITS, fillers + (salt % 26) * (size_t)cfg.size + 1 + SEQ_DIGITS, (size_t)cfg.size - 1 - SEQ_DIGITS);
}

static uint64_t parse_seq(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 1; i <= SEQ_DIGITS; i++) {
    if (p[i] < '0' || p[i] > '9') return UINT64_MAX;
    v = v * 10 + (uint64_t)(p[i] - '0');
  }
  return v;
}

/** Takes a received payload, returns whether it is exactly make_payload(tag, its number, salt); *seq = that number. */
static int check_payload(const unsigned char *p, size_t n, char tag, uint64_t salt_or_seq, int salt_is_seq, uint64_t *seq) {
  if (n != (size_t)cfg.size || p[0] != (unsigned char)tag) return 0;
  *seq = parse_seq(p);
  if (*seq == UINT64_MAX) return 0;
  uint64_t salt = salt_is_seq ? *seq : salt_or_seq;
  return memcmp(p + 1 + SEQ_DIGITS, fillers + (salt % 26) * (size_t)cfg.size + 1 + SEQ_DIGITS, n - 1 - SEQ_DIGITS) == 0;
}

static void echo_send(conn *c) {
  make_payload('E', c->echo_seq, (uint64_t)(c - cs));
  frame(c, 0x1, payload_buf, (size_t)cfg.size);
}

static void on_message(conn *c, const unsigned char *p, size_t n) {
  c->received++;
  switch (c->role) {
    case ROLE_ECHO: {
      uint64_t seq = UINT64_MAX;
      if (!check_payload(p, n, 'E', (uint64_t)(c - cs), 0, &seq) || seq != c->echo_seq) err.payload++;
      echoes++;
      c->echo_seq++;
      if (phase == PH_WARMUP || phase == PH_MEASURE) echo_send(c);
      break;
    }
    case ROLE_SUB: {
      if (n == (size_t)cfg.size && p[0] == 'P') {
        if (!c->probed) {
          c->probed = 1;
          probes_seen++;
        }
        break;
      }
      uint64_t seq = UINT64_MAX;
      if (!check_payload(p, n, 'D', 0, 1, &seq)) {
        err.payload++;
        if (seq == UINT64_MAX || n != (size_t)cfg.size || p[0] != 'D') break;
      }
      if (!c->probed || seq != c->next_seq || seq >= sent) {
        err.gap++;
        if (seq < c->next_seq || seq >= sent) break;  // duplicate or invented: not counted
      }
      c->next_seq = seq + 1;
      delivered++;
      ring[seq % RING]++;
      if (cfg.rate > 0 && phase == PH_MEASURE) {
        double d = (t_recv - sent_at[seq % RING]) * 1e6;
        if (d < 0) d = 0;
        lat_count++;
        lat_sum += d;
        if (d > lat_max) lat_max = d;
        if (d < LAT_BUCKETS) lat_hist[(uint32_t)d]++;
        else lat_over++;
      }
      while (done < sent && ring[done % RING] >= (uint32_t)cfg.conns) {
        ring[done % RING] = 0;
        done++;
      }
      break;
    }
    default:
      err.unexpected++;  // the publisher and idle connections expect nothing
  }
}

/** Parses every complete frame in p[0..n); returns how many bytes were consumed. */
static size_t parse(conn *c, const unsigned char *p, size_t n) {
  size_t off = 0;
  while (c->state == ST_OPEN && n - off >= 2) {
    const unsigned char *f = p + off;
    int fin = f[0] & 0x80, op = f[0] & 0x0f;
    uint64_t len = f[1] & 0x7f;
    size_t hl = 2;
    if (f[0] & 0x70) {
      err.protocol++;
      close_conn(c);
      break;
    }
    if (len == 126) {
      if (n - off < 4) break;
      len = ((uint64_t)f[2] << 8) | f[3];
      hl = 4;
    } else if (len == 127) {
      if (n - off < 10) break;
      len = 0;
      for (int i = 0; i < 8; i++) len = (len << 8) | f[2 + i];
      hl = 10;
    }
    if (f[1] & 0x80) {  // a server must not mask
      err.protocol++;
      close_conn(c);
      break;
    }
    if (len > RBUF_SIZE / 2) {
      err.protocol++;
      close_conn(c);
      break;
    }
    if (n - off < hl + len) break;
    const unsigned char *pl = f + hl;
    off += hl + (size_t)len;
    if (op >= 0x8) {
      if (op == 0x9) {
        frame(c, 0xA, pl, (size_t)len);
      } else if (op == 0x8) {
        err.closed++;
        close_conn(c);
        break;
      }
      continue;
    }
    if (op == 0x0 && !c->fragmented) {
      err.protocol++;
      close_conn(c);
      break;
    }
    if (!fin || c->fragmented) {
      if (c->mlen + len > c->mcap) {
        c->mcap = (c->mlen + (size_t)len) * 2;
        c->msg = xrealloc(c->msg, c->mcap);
      }
      memcpy(c->msg + c->mlen, pl, (size_t)len);
      c->mlen += (size_t)len;
      c->fragmented = !fin;
      if (fin) {
        on_message(c, c->msg, c->mlen);
        c->mlen = 0;
      }
    } else {
      on_message(c, pl, (size_t)len);
    }
  }
  return off;
}

static void on_open(conn *c);

/** Handles the 101 response in p[0..n); returns bytes consumed, or 0 when the head is not complete yet. */
static size_t handshake(conn *c, const unsigned char *p, size_t n) {
  const unsigned char *end = memmem(p, n, "\r\n\r\n", 4);
  if (!end) {
    if (n > 8192) {
      err.handshake++;
      close_conn(c);
    }
    return 0;
  }
  size_t head = (size_t)(end - p) + 4;
  char *h = strndup((const char *)p, head);
  int ok = strncmp(h, "HTTP/1.1 101", 12) == 0;
  // The accept value for the fixed key dGhlIHNhbXBsZSBub25jZQ== (RFC 6455 section 1.3).
  char *a = strcasestr(h, "\r\nsec-websocket-accept:");
  if (a) {
    a += 23;
    while (*a == ' ' || *a == '\t') a++;
  }
  ok = ok && a && strncmp(a, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", 28) == 0;
  if (!ok) {
    if (err.handshake++ == 0) fprintf(stderr, "wsload: bad upgrade response:\n%s", h);
    free(h);
    close_conn(c);
    return 0;
  }
  free(h);
  c->state = ST_OPEN;
  pending--;
  opened++;
  on_open(c);
  return head;
}

static void on_readable(conn *c) {
  // The kept partial frame goes in front of the new bytes in the shared buffer.
  size_t have = c->plen;
  if (have) memcpy(rbuf, c->partial, have);
  ssize_t r = recv(c->fd, rbuf + have, RBUF_SIZE - have, 0);
  sys_count.recv++;
  if (cfg.rate > 0) t_recv = now();
  if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
    err.closed++;  // the server never closes first in these scenarios
    close_conn(c);
    return;
  }
  if (r < 0) return;
  size_t n = have + (size_t)r, off = 0;
  if (c->state == ST_HANDSHAKE) {
    off = handshake(c, rbuf, n);
    if (c->state != ST_OPEN) {
      if (c->state == ST_HANDSHAKE) goto keep;
      return;
    }
  }
  off += parse(c, rbuf + off, n - off);
  if (c->state == ST_CLOSED) return;
keep:
  c->plen = n - off;
  if (c->plen) {
    if (c->plen > c->pcap) {
      c->pcap = c->plen < 256 ? 256 : c->plen;
      c->partial = xrealloc(c->partial, c->pcap);
    }
    memcpy(c->partial, rbuf + off, c->plen);
  }
  if (c->olen) flush(c);
}

static void start_conn(conn *c) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket() failed (too many open files? raise ulimit -n)");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->fd = fd;
  c->state = ST_CONNECTING;
  pending++;
  started++;
  const struct sockaddr_in *to = c->role == ROLE_SUB ? &sub_addr : &addr;
  int r = connect(fd, (const struct sockaddr *)to, sizeof *to);
  if (r < 0 && errno != EINPROGRESS) {
    err.connect++;
    close_conn(c);
    return;
  }
  c->events = EPOLLOUT;
  struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
}

static void on_connected(conn *c) {
  int e = 0;
  socklen_t l = sizeof e;
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &l);
  if (e) {
    if (err.connect++ == 0) fprintf(stderr, "wsload: connect: %s\n", strerror(e));
    close_conn(c);
    return;
  }
  const char *path = c->role == ROLE_SUB ? "/sub" : c->role == ROLE_PUB ? "/pub" : c->role == ROLE_ECHO ? "/echo" : "/idle";
  request_len = (size_t)snprintf(request, sizeof request,
    "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    path, cfg.host, c->role == ROLE_SUB ? cfg.sub_port : cfg.port);
  c->state = ST_HANDSHAKE;
  c->events = 0;
  set_events(c, EPOLLIN);
  out_append(c, request, request_len);
  flush(c);
}

static void start_more(void) {
  while (started < cfg.conns && pending < cfg.max_pending) start_conn(&cs[started]);
}

static void begin_run(double t) {
  phase = PH_WARMUP;
  t_phase = t;
  t_rate0 = t;
  if (cfg.rate > 0 && tfd < 0) {
    // Wakes the loop once per message interval; publish_more() then sends whatever is due.
    long long ns = (long long)(1e9 / cfg.rate);
    if (ns < 1000) ns = 1000;
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct itimerspec its = { .it_interval = { ns / 1000000000, ns % 1000000000 }, .it_value = { ns / 1000000000, ns % 1000000000 } };
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &ticker };
    if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev) < 0) die("timerfd");
  }
  if (cfg.warmup <= 0) {
    phase = PH_MEASURE;
    t_measure = t;
    cpu0 = cpu_self();
    memcpy(&sc0, &sys_count, sizeof sc0);
    line("phase measure");
  }
  if (cfg.mode == MODE_ECHO) {
    for (int i = 0; i < cfg.conns; i++) {
      if (cs[i].state != ST_OPEN) continue;
      echo_send(&cs[i]);
      flush(&cs[i]);
    }
  }
}

static void on_open(conn *c) {
  if (c->role == ROLE_PUB) {
    phase = PH_PROBE;
    last_probe = 0;
    return;
  }
  start_more();
  if (opened == cfg.conns && started == cfg.conns) {
    char s[64];
    snprintf(s, sizeof s, "open %d", opened);
    line(s);
    if (cfg.mode == MODE_FANOUT) {
      pub = &cs[cfg.conns];
      pub->role = ROLE_PUB;
      start_conn(pub);
    } else if (cfg.mode == MODE_ECHO) {
      begin_run(now());
    } else {
      phase = PH_HOLD;
      t_phase = now();
    }
  }
}

/** Publisher: keep W messages in flight (sent but not yet received by every subscriber). */
static void publish_more(void) {
  if (!pub || pub->state != ST_OPEN || (phase != PH_WARMUP && phase != PH_MEASURE)) return;
  if (cfg.rate > 0) {
    // Every message due by now, each stamped and sent on its own.
    uint64_t due = (uint64_t)((now() - t_rate0) * cfg.rate) + 1;
    while (sent < due) {
      if (sent - done >= RING - 1) {
        behind++;
        break;
      }
      make_payload('D', sent, sent);
      frame(pub, 0x1, payload_buf, (size_t)cfg.size);
      sent_at[sent % RING] = now();
      sent++;
      flush(pub);
    }
    return;
  }
  while (sent - done < (uint64_t)cfg.window) {
    make_payload('D', sent, sent);
    frame(pub, 0x1, payload_buf, (size_t)cfg.size);
    sent++;
  }
  if (pub->olen) flush(pub);
}

/** The smallest latency (µs, bucket's upper edge) that at least fraction q of the recorded deliveries did not exceed. */
static double lat_quantile(double q) {
  if (lat_count == 0) return -1;
  uint64_t need = (uint64_t)(q * (double)lat_count + 0.999999), seen = 0;
  if (need < 1) need = 1;
  for (uint32_t i = 0; i < LAT_BUCKETS; i++) {
    seen += lat_hist[i];
    if (seen >= need) return i + 1;
  }
  return lat_max;
}

static void report(void) {
  double secs = t_done > t_measure ? t_done - t_measure : 0;
  uint64_t msgs = m1_msgs - m0_msgs, deliv = m1_deliv - m0_deliv;
  const char *mode = cfg.mode == MODE_ECHO ? "echo" : cfg.mode == MODE_FANOUT ? "fanout" : "idle";
  uint64_t lost = 0;
  if (cfg.mode == MODE_FANOUT) lost = sent * (uint64_t)cfg.conns - delivered;
  printf("WSLOAD_JSON {\"mode\":\"%s\",\"connections\":%d,\"size\":%d,\"window\":%d,\"open\":%d,\"seconds\":%.6f,"
    "\"messages\":%llu,\"deliveries\":%llu,\"sent\":%llu,\"delivered\":%llu,\"lost\":%llu,\"cpuPct\":%.1f,"
    "\"errors\":{\"connect\":%llu,\"handshake\":%llu,\"protocol\":%llu,\"closed\":%llu,\"payload\":%llu,\"gap\":%llu,"
    "\"unexpected\":%llu,\"write\":%llu},\"syscalls\":{\"epoll_wait\":%llu,\"recv\":%llu,\"send\":%llu,\"publisherSend\":%llu},"
    "\"rate\":%.1f,\"behind\":%llu,\"latency\":{\"count\":%llu,\"p50Us\":%.0f,\"p90Us\":%.0f,\"p99Us\":%.0f,\"maxUs\":%.1f,\"meanUs\":%.1f}}\n",
    mode, cfg.conns, cfg.size, cfg.mode == MODE_FANOUT ? cfg.window : 0, opened, secs,
    (unsigned long long)msgs, (unsigned long long)deliv, (unsigned long long)sent, (unsigned long long)delivered,
    (unsigned long long)lost, secs > 0 ? 100 * (cpu1 - cpu0) / secs : 0,
    (unsigned long long)err.connect, (unsigned long long)err.handshake, (unsigned long long)err.protocol,
    (unsigned long long)err.closed, (unsigned long long)err.payload, (unsigned long long)err.gap,
    (unsigned long long)err.unexpected, (unsigned long long)err.write,
    (unsigned long long)(sc1.epoll - sc0.epoll), (unsigned long long)(sc1.recv - sc0.recv),
    (unsigned long long)(sc1.send - sc0.send), (unsigned long long)(sc1.pubsend - sc0.pubsend),
    cfg.rate, (unsigned long long)behind, (unsigned long long)lat_count, lat_quantile(0.5), lat_quantile(0.9),
    lat_quantile(0.99), lat_count ? lat_max : -1, lat_count ? lat_sum / (double)lat_count : -1);
  fflush(stdout);
}

static void on_signal(int sig) {
  stop_signal = sig;
}

static void usage(void) {
  fprintf(stderr,
    "usage: wsload echo|fanout|idle|serve -p PORT [-h HOST] [-c CONNS] [-s SIZE] [-w WARMUP_S] [-d DURATION_S] [-W WINDOW]\n"
    "              fanout only: [-S SUBSCRIBER_PORT] [-R MESSAGES_PER_S]\n");
  exit(2);
}

// ---------------------------------------------------------------------------------------------------------------------
// serve: a minimal WebSocket server for calibrating the client, not a peer. Same paths as bench/servers/ws-*.mjs.
// Every write is corked to the end of the loop turn (one send() per socket per turn), the best any server can do,
// so what the client reaches against it is the client's own ceiling on this machine. It answers only wsload's fixed
// Sec-WebSocket-Key (no SHA-1 here) and does not take fragmented client messages. Closed connections are not freed
// (an event for them may still be pending in this turn): fine for a benchmark's lifetime.

static conn **subs, **dirty;
static int nsubs, ndirty, subs_cap, dirty_cap;

static void mark_dirty(conn *c) {
  if (c->dirty) return;
  if (ndirty == dirty_cap) {
    dirty_cap = dirty_cap ? dirty_cap * 2 : 1024;
    dirty = xrealloc(dirty, (size_t)dirty_cap * sizeof *dirty);
  }
  c->dirty = 1;
  dirty[ndirty++] = c;
}

/** Appends an unmasked server frame (FIN set) to c's output. */
static void server_frame(conn *c, int opcode, const unsigned char *payload, size_t n) {
  unsigned char h[10];
  size_t hl = 0;
  h[hl++] = (unsigned char)(0x80 | opcode);
  if (n < 126) {
    h[hl++] = (unsigned char)n;
  } else if (n < 65536) {
    h[hl++] = 126;
    h[hl++] = (unsigned char)(n >> 8);
    h[hl++] = (unsigned char)n;
  } else {
    h[hl++] = 127;
    for (int i = 7; i >= 0; i--) h[hl++] = (unsigned char)((uint64_t)n >> (8 * i));
  }
  out_append(c, h, hl);
  out_append(c, payload, n);
  mark_dirty(c);
}

static void server_close(conn *c) {
  if (c->state == ST_CLOSED) return;
  if (c->role == ROLE_SUB && c->state == ST_OPEN) {
    subs[c->index] = subs[--nsubs];
    subs[c->index]->index = c->index;
  }
  c->state = ST_CLOSED;
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;
}

/** Handles the upgrade request in p[0..n); returns bytes consumed, 0 while incomplete (or on close). */
static size_t server_handshake(conn *c, const unsigned char *p, size_t n) {
  const unsigned char *end = memmem(p, n, "\r\n\r\n", 4);
  if (!end) {
    if (n > 8192) server_close(c);
    return 0;
  }
  size_t head = (size_t)(end - p) + 4;
  if (!memmem(p, head, "dGhlIHNhbXBsZSBub25jZQ==", 24) || n < 5 || memcmp(p, "GET /", 5) != 0) {
    static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    if (send(c->fd, bad, sizeof bad - 1, MSG_NOSIGNAL) < 0) { /* closing anyway */ }
    server_close(c);
    return 0;
  }
  c->role = !memcmp(p + 4, "/sub ", 5) ? ROLE_SUB : !memcmp(p + 4, "/pub ", 5) ? ROLE_PUB
          : !memcmp(p + 4, "/echo ", 6) ? ROLE_ECHO : ROLE_IDLE;
  static const char ok[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
  out_append(c, ok, sizeof ok - 1);
  mark_dirty(c);
  c->state = ST_OPEN;
  if (c->role == ROLE_SUB) {
    if (nsubs == subs_cap) {
      subs_cap = subs_cap ? subs_cap * 2 : 1024;
      subs = xrealloc(subs, (size_t)subs_cap * sizeof *subs);
    }
    c->index = nsubs;
    subs[nsubs++] = c;
  }
  return head;
}

/** Parses the complete client frames in p[0..n) (unmasking them in place); returns bytes consumed. */
static size_t server_parse(conn *c, unsigned char *p, size_t n) {
  size_t off = 0;
  while (c->state == ST_OPEN && n - off >= 6) {
    unsigned char *f = p + off;
    int fin = f[0] & 0x80, op = f[0] & 0x0f;
    uint64_t len = f[1] & 0x7f;
    size_t hl = 2;
    if (len == 126) {
      len = ((uint64_t)f[2] << 8) | f[3];
      hl = 4;
    } else if (len == 127) {
      if (n - off < 14) break;
      len = 0;
      for (int i = 0; i < 8; i++) len = (len << 8) | f[2 + i];
      hl = 10;
    }
    if (!(f[1] & 0x80) || !fin || (f[0] & 0x70) || op == 0 || len > RBUF_SIZE / 2) {  // unmasked, fragmented, reserved bits
      server_close(c);
      break;
    }
    if (n - off < hl + 4 + len) break;
    unsigned char *mask = f + hl, *pl = f + hl + 4;
    for (size_t i = 0; i < len; i++) pl[i] ^= mask[i & 3];
    off += hl + 4 + (size_t)len;
    if (op == 0x8) {
      server_frame(c, 0x8, pl, len >= 2 ? 2 : 0);
      flush(c);
      server_close(c);
      break;
    }
    if (op == 0x9) server_frame(c, 0xA, pl, (size_t)len);
    if (op != 0x1 && op != 0x2) continue;
    if (c->role == ROLE_ECHO) {
      server_frame(c, op, pl, (size_t)len);
    } else if (c->role == ROLE_PUB) {
      for (int i = 0; i < nsubs; i++) server_frame(subs[i], op, pl, (size_t)len);
    }
  }
  return off;
}

static void server_readable(conn *c) {
  size_t have = c->plen;
  if (have) memcpy(rbuf, c->partial, have);
  ssize_t r = recv(c->fd, rbuf + have, RBUF_SIZE - have, 0);
  if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
    server_close(c);
    return;
  }
  if (r < 0) return;
  size_t n = have + (size_t)r, off = 0;
  if (c->state == ST_HANDSHAKE) {
    off = server_handshake(c, rbuf, n);
    if (c->state != ST_OPEN) {
      if (c->state == ST_CLOSED) return;
      goto keep;  // the head is not complete yet
    }
  }
  off += server_parse(c, rbuf + off, n - off);
  if (c->state == ST_CLOSED) return;
keep:
  c->plen = n - off;
  if (c->plen) {
    if (c->plen > c->pcap) {
      c->pcap = c->plen < 256 ? 256 : c->plen;
      c->partial = xrealloc(c->partial, c->pcap);
    }
    memcpy(c->partial, rbuf + off, c->plen);
  }
}

static int serve_main(void) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 4096) < 0) die("cannot listen");
  struct sockaddr_in bound;
  socklen_t bl = sizeof bound;
  getsockname(lfd, (struct sockaddr *)&bound, &bl);
  struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
  char s[32];
  snprintf(s, sizeof s, "ready %d", ntohs(bound.sin_port));
  line(s);
  struct epoll_event evs[1024];
  while (!stop_signal) {
    int n = epoll_wait(ep, evs, 1024, 500);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      conn *c = evs[i].data.ptr;
      if (!c) {
        int fd;
        while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          c = calloc(1, sizeof *c);
          if (!c) die("out of memory");
          c->fd = fd;
          c->state = ST_HANDSHAKE;
          c->events = EPOLLIN;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        }
        continue;
      }
      if (c->state == ST_CLOSED) continue;
      if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) server_readable(c);
      if (c->state != ST_CLOSED && (evs[i].events & EPOLLOUT)) flush(c);
    }
    // The cork: one send per socket that got output in this turn.
    for (int i = 0; i < ndirty; i++) {
      conn *c = dirty[i];
      c->dirty = 0;
      if (c->state != ST_CLOSED && c->olen) flush(c);
    }
    ndirty = 0;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) usage();
  if (!strcmp(argv[1], "echo")) cfg.mode = MODE_ECHO;
  else if (!strcmp(argv[1], "fanout")) cfg.mode = MODE_FANOUT;
  else if (!strcmp(argv[1], "idle")) cfg.mode = MODE_IDLE;
  else if (!strcmp(argv[1], "serve")) cfg.mode = MODE_SERVE;
  else usage();
  if (cfg.mode == MODE_IDLE) cfg.duration = 600;
  int opt;
  optind = 2;
  while ((opt = getopt(argc, argv, "h:p:c:s:w:d:W:S:R:")) != -1) {
    switch (opt) {
      case 'h': cfg.host = optarg; break;
      case 'p': cfg.port = atoi(optarg); break;
      case 'c': cfg.conns = atoi(optarg); break;
      case 's': cfg.size = atoi(optarg); break;
      case 'w': cfg.warmup = atof(optarg); break;
      case 'd': cfg.duration = atof(optarg); break;
      case 'W': cfg.window = atoi(optarg); break;
      case 'S': cfg.sub_port = atoi(optarg); break;
      case 'R': cfg.rate = atof(optarg); break;
      default: usage();
    }
  }
  if (cfg.conns < 0) cfg.conns = cfg.mode == MODE_ECHO ? 64 : cfg.mode == MODE_FANOUT ? 500 : 5000;
  if ((cfg.mode == MODE_SERVE ? cfg.port < 0 : cfg.port <= 0) || cfg.port > 65535 || cfg.conns < 1 || cfg.size < 1 + SEQ_DIGITS || cfg.size > MAX_SIZE || cfg.window < 1 ||
      cfg.window >= (int)RING || cfg.duration <= 0 || cfg.warmup < 0 || cfg.sub_port < 0 || cfg.sub_port > 65535 ||
      cfg.rate < 0 || ((cfg.sub_port || cfg.rate > 0) && cfg.mode != MODE_FANOUT))
    usage();
  if (cfg.sub_port == 0) cfg.sub_port = cfg.port;

  // Room for every connection's descriptor.
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)cfg.conns + 64) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  signal(SIGPIPE, SIG_IGN);
  signal(SIGUSR2, SIG_IGN);  // the runner's "collect garbage now" for the JS servers: nothing to collect here
  struct sigaction sa = { .sa_handler = on_signal };
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)cfg.port);  // serve -p 0: any free port
  if (inet_pton(AF_INET, cfg.host, &addr.sin_addr) != 1) die("host must be an IPv4 address");
  sub_addr = addr;
  sub_addr.sin_port = htons((uint16_t)cfg.sub_port);

  nconns = cfg.conns + (cfg.mode == MODE_FANOUT ? 1 : 0);
  cs = calloc((size_t)nconns, sizeof *cs);
  rbuf = malloc(RBUF_SIZE);
  ring = calloc(RING, sizeof *ring);
  fillers = malloc(26 * (size_t)cfg.size);
  if (!cs || !rbuf || !ring || !fillers) die("out of memory");
  if (cfg.rate > 0) {
    sent_at = calloc(RING, sizeof *sent_at);
    lat_hist = calloc(LAT_BUCKETS, sizeof *lat_hist);
    if (!sent_at || !lat_hist) die("out of memory");
  }
  for (int i = 0; i < 26; i++) memset(fillers + (size_t)i * (size_t)cfg.size, 'a' + i, (size_t)cfg.size);
  for (int i = 0; i < nconns; i++) {
    cs[i].fd = -1;
    cs[i].role = cfg.mode == MODE_ECHO ? ROLE_ECHO : cfg.mode == MODE_FANOUT ? ROLE_SUB : ROLE_IDLE;
  }
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  if (cfg.mode == MODE_SERVE) return serve_main();

  double t_start = now();
  start_more();
  struct epoll_event evs[1024];
  int status = 0;
  for (;;) {
    int timeout = phase == PH_HOLD ? 200 : phase == PH_PROBE ? 5 : 10;
    int n = epoll_wait(ep, evs, 1024, timeout);
    sys_count.epoll++;
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      conn *c = evs[i].data.ptr;
      if (c == &ticker) {
        uint64_t expirations;
        if (read(tfd, &expirations, sizeof expirations) < 0) { /* EAGAIN: nothing due yet */ }
        continue;  // publish_more() below sends what is due
      }
      if (c->state == ST_CLOSED) continue;
      uint32_t e = evs[i].events;
      if (c->state == ST_CONNECTING) {
        if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(c);
        continue;
      }
      if (e & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c);
      if (c->state != ST_CLOSED && (e & EPOLLOUT)) flush(c);
    }
    double t = now();
    if (stop_signal) break;
    if (phase == PH_SETUP) {
      if (pending == 0 && started == cfg.conns && opened < cfg.conns && (cfg.mode != MODE_FANOUT || !pub)) {
        fprintf(stderr, "wsload: only %d of %d connections opened\n", opened, cfg.conns);
        status = 1;
        break;
      }
      if (pub && pub->state == ST_CLOSED) {
        fprintf(stderr, "wsload: the publisher connection failed\n");
        status = 1;
        break;
      }
      if (t - t_start > 30) {
        fprintf(stderr, "wsload: setup timed out: %d of %d connections open\n", opened, cfg.conns);
        status = 1;
        break;
      }
      continue;
    }
    if (phase == PH_PROBE) {
      if (probes_seen == cfg.conns) {
        begin_run(t);
      } else if (t - last_probe >= 0.02) {
        if (t - t_start > 30) {
          fprintf(stderr, "wsload: only %d of %d subscribers received a probe\n", probes_seen, cfg.conns);
          status = 1;
          break;
        }
        make_payload('P', 0, 0);
        frame(pub, 0x1, payload_buf, (size_t)cfg.size);
        flush(pub);
        last_probe = t;
      }
    }
    if (phase == PH_HOLD) {
      if (t - t_phase >= cfg.duration) break;
      continue;
    }
    if (phase == PH_WARMUP && t - t_phase >= cfg.warmup) {
      phase = PH_MEASURE;
      t_measure = t;
      cpu0 = cpu_self();
      memcpy(&sc0, &sys_count, sizeof sc0);
      m0_msgs = cfg.mode == MODE_ECHO ? echoes : done;
      m0_deliv = cfg.mode == MODE_ECHO ? echoes : delivered;
      line("phase measure");
    } else if (phase == PH_MEASURE && t - t_measure >= cfg.duration) {
      t_done = t;
      cpu1 = cpu_self();
      memcpy(&sc1, &sys_count, sizeof sc1);
      m1_msgs = cfg.mode == MODE_ECHO ? echoes : done;
      m1_deliv = cfg.mode == MODE_ECHO ? echoes : delivered;
      line("phase done");
      phase = PH_DRAIN;
      t_phase = t;
    }
    if (cfg.mode == MODE_FANOUT) publish_more();
    if (phase == PH_DRAIN) {
      // fanout: wait (up to 3 s) until every sent message has reached every subscriber, so "lost" is exact.
      if (cfg.mode != MODE_FANOUT || done == sent || t - t_phase > 3) break;
    }
  }
  if (phase == PH_HOLD || phase == PH_SETUP || phase == PH_PROBE) t_done = t_measure = 0;
  report();
  return status;
}
