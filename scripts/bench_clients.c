/* WebSocket clients for scripts/bench, in C: gift senders and viewers.
 *
 * The bench times giftstream's acks and a big gift's reach to every viewer,
 * so the clients' own delays must stay out of the figures. In Python the
 * senders took 40% of the load generator's core at half the maximum gift
 * rate, their loops waking 15 to 25 ms late at p99; and read by 10,000
 * Python viewers, even the reach floor (a C server's one write() per
 * viewer) came out at 144 to 167 ms, above the target: 119 to 122 ms here.
 * Here a socket costs a few system calls per frame and little else.
 *
 * Usage: bench_clients [-b] [-p SUBPROTOCOL] [-s QUERIES_FILE] [-v VIEWERS] [-w] [-z]
 *                      HOST PORT PATH
 *   -s  one gift sender per line of QUERIES_FILE: a query string
 *       ("?token=...") added to PATH
 *   -v  VIEWERS sockets more, to PATH as it is, that only read
 *   -p  the subprotocol every socket offers
 *   -w  a socket is open once it has read the server's first frame
 *       (giftstream's welcome), which is not counted; without -w, once the
 *       handshake is answered
 *   -b  never sleep: poll the sockets without waiting, keeping the clients'
 *       core busy. A reader asleep in epoll_wait is woken by each write of
 *       the server, and on loopback that wake-up is paid on the server's
 *       core, within its write(); a viewer on another machine costs it no
 *       such thing (docs/benchmarks.md has the figures)
 *   -z  the gift senders offer permessage-deflate, as browsers do. The
 *       server then compresses their room frames (never a reply to them,
 *       docs/protocol.md), which a sender only counts and skips, as it
 *       skips every room frame; the viewers offer nothing
 *
 * Every socket counts the frames it reads. A viewer reads the room's frames
 * as scripts/bench_wsclient.py's viewers do: it counts events, checks that
 * seqs follow on, and times each big gift (tier "large" or "fullscreen")
 * from its "ts" to the read. A sender reads replies and skips room frames.
 *
 * Once every socket is open or has failed three times it prints
 * {"opened": N, "failed": M}. Then it reads commands on stdin:
 *   start      count from now (answered {"counting": true}, as are the
 *              next two)
 *   window K   count from now; every sender keeps K gifts in flight
 *              (each ack sends the next)
 *   rate R     count from now; R gifts a second in all, from the senders
 *              in turn, sent every 5 ms
 *   peek       print the tally so far as one JSON line
 *   stop       stop sending and counting; print the tally
 * (the tally has the fields of bench_wsclient.py's Tally) and exits at end
 * of input.
 *
 * A gift is MessagePack {"type": "gift", "id": "s<i>-<n>", "gift": "rose",
 * "count": 1} in a masked binary frame (mask key zero). A reply's "type",
 * "id", "code" and "temporary" are read; a room frame's "type", "events",
 * and its events' "seq", "tier" and "ts".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define OPEN_AT_ONCE 50
#define OPEN_ATTEMPTS 3
#define OPEN_WITHIN_NS 120000000000LL
#define PACE_NS 5000000LL
#define RING 256 /* gifts in flight per sender that can be timed */
#define MAX_TENTHS 200000 /* 20 s: longer acks count in the last bucket */
#define MAX_REACH_MS 120000
#define MAX_CODES 16
#define STDIN_TAG UINT64_MAX

enum state { IDLE, CONNECTING, HANDSHAKE, WELCOME, OPEN, DEAD };

struct client {
    int fd;
    enum state state;
    int attempts;
    char *request;
    size_t request_len;
    unsigned char *in;
    size_t in_len, in_cap;
    unsigned char *out;
    size_t out_len, out_cap;
    uint64_t last_seq; /* the room's, as read */
    uint64_t sent;
    uint64_t sent_seq[RING];
    int64_t sent_ns[RING];
    int owed; /* closed loop: gifts to send again (after a temporary error) */
};

/* A histogram of small non-negative integers; `top` bounds the printing. */
struct histogram {
    uint32_t *counts;
    int size, top;
};

static struct client *clients;
static int n_clients, n_senders, epfd, wait_welcome, busy_poll, senders_deflate;
static int counting, window, opened, failed, closed, opening;
static int owed_total; /* the senders' owed gifts, summed: most ticks owe none */
static double rate;
static int64_t started_ns, paced_sent;
static uint64_t acks, frames, events, gaps;
static struct histogram ack_tenths, lag_tenths, reach_ms;
static char codes[MAX_CODES][48];
static uint64_t code_counts[MAX_CODES];
static int n_codes;

/* Senders come first in `clients`. */
static int is_sender(const struct client *c) { return c - clients < n_senders; }

static int64_t clock_ns(clockid_t which) {
    struct timespec t;
    clock_gettime(which, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int64_t now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void grow(unsigned char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return;
    size_t cap2 = *cap ? *cap : 4096;
    while (cap2 < need) cap2 *= 2;
    *buf = realloc(*buf, cap2);
    if (!*buf) die("realloc");
    *cap = cap2;
}

static void histogram_init(struct histogram *h, int size) {
    h->counts = calloc((size_t)size, sizeof *h->counts);
    if (!h->counts) die("calloc");
    h->size = size;
    h->top = 0;
}

static void histogram_clear(struct histogram *h) {
    memset(h->counts, 0, (size_t)h->top * sizeof *h->counts);
    h->top = 0;
}

static void histogram_add(struct histogram *h, int64_t value) {
    int at = value < 0 ? 0 : value < h->size ? (int)value : h->size - 1;
    h->counts[at]++;
    if (at >= h->top) h->top = at + 1;
}

static void count_error(const char *code, size_t len) {
    if (len >= sizeof codes[0]) len = sizeof codes[0] - 1;
    for (int i = 0; i < n_codes; i++)
        if (strlen(codes[i]) == len && memcmp(codes[i], code, len) == 0) {
            code_counts[i]++;
            return;
        }
    if (n_codes == MAX_CODES) return;
    memcpy(codes[n_codes], code, len);
    codes[n_codes][len] = 0;
    code_counts[n_codes++] = 1;
}

static void watch(struct client *c, uint32_t ev_mask) {
    struct epoll_event ev = {.events = ev_mask, .data.u64 = (uint64_t)(c - clients)};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
}

/* A socket that was still opening is tried again, up to OPEN_ATTEMPTS times:
 * a busy server may drop a handshake, and a browser would try again too. */
static void drop(struct client *c) {
    if (c->state == DEAD || c->state == IDLE) return;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->in_len = c->out_len = 0;
    if (c->state == OPEN) {
        c->state = DEAD;
        return;
    }
    opening--;
    if (c->attempts < OPEN_ATTEMPTS) {
        c->state = IDLE;
        return;
    }
    c->state = DEAD;
    failed++;
}

static void became_open(struct client *c) {
    c->state = OPEN;
    opening--;
    opened++;
}

/* Writes what it can now; the rest waits for EPOLLOUT. */
static void send_bytes(struct client *c, const void *data, size_t len) {
    if (c->state == DEAD || c->state == IDLE) return;
    if (c->out_len == 0) {
        ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN) {
            drop(c);
            return;
        }
        if (n < 0) n = 0;
        data = (const char *)data + n;
        len -= (size_t)n;
        if (len == 0) return;
        watch(c, EPOLLIN | EPOLLOUT);
    }
    grow(&c->out, &c->out_cap, c->out_len + len);
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
}

static void flush_out(struct client *c) {
    while (c->out_len) {
        ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno != EAGAIN) drop(c);
            return;
        }
        memmove(c->out, c->out + n, c->out_len - (size_t)n);
        c->out_len -= (size_t)n;
    }
    watch(c, EPOLLIN);
}

static void send_gift(struct client *c) {
    if (c->state != OPEN || !is_sender(c)) return;
    char id[32];
    uint64_t seq = ++c->sent;
    int id_len = snprintf(id, sizeof id, "s%d-%llu", (int)(c - clients), (unsigned long long)seq);
    unsigned char frame[128];
    unsigned char *p = frame + 6;
    *p++ = 0x84; /* map of 4 */
    *p++ = 0xa4; memcpy(p, "type", 4); p += 4;
    *p++ = 0xa4; memcpy(p, "gift", 4); p += 4;
    *p++ = 0xa2; memcpy(p, "id", 2); p += 2;
    *p++ = (unsigned char)(0xa0 | id_len); memcpy(p, id, (size_t)id_len); p += id_len;
    *p++ = 0xa4; memcpy(p, "gift", 4); p += 4;
    *p++ = 0xa4; memcpy(p, "rose", 4); p += 4;
    *p++ = 0xa5; memcpy(p, "count", 5); p += 5;
    *p++ = 0x01;
    size_t payload = (size_t)(p - frame - 6);
    frame[0] = 0x82; /* FIN, binary */
    frame[1] = (unsigned char)(0x80 | payload);
    memset(frame + 2, 0, 4); /* mask key: zero, so the payload goes as is */
    c->sent_seq[seq % RING] = seq;
    c->sent_ns[seq % RING] = now_ns();
    send_bytes(c, frame, 6 + payload);
}

/* ---- MessagePack: just enough to read replies and room frames ---- */

struct cursor {
    const unsigned char *p, *end;
};

static int need(const struct cursor *c, size_t n) { return (size_t)(c->end - c->p) >= n; }

static uint64_t be(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

/* A string's bytes and length, or -1 if the next value is not a string. */
static int read_str(struct cursor *c, const char **s, size_t *len) {
    if (!need(c, 1)) return -1;
    unsigned char t = *c->p;
    size_t hdr, n;
    if ((t & 0xe0) == 0xa0) hdr = 1, n = t & 0x1f;
    else if (t == 0xd9 && need(c, 2)) hdr = 2, n = c->p[1];
    else if (t == 0xda && need(c, 3)) hdr = 3, n = be(c->p + 1, 2);
    else if (t == 0xdb && need(c, 5)) hdr = 5, n = be(c->p + 1, 4);
    else return -1;
    if (!need(c, hdr + n)) return -1;
    *s = (const char *)c->p + hdr;
    *len = n;
    c->p += hdr + n;
    return 0;
}

static int is_str(const struct cursor *c) {
    if (!need(c, 1)) return 0;
    unsigned char t = *c->p;
    return (t & 0xe0) == 0xa0 || t == 0xd9 || t == 0xda || t == 0xdb;
}

static int str_is(const char *s, size_t len, const char *word) {
    return len == strlen(word) && memcmp(s, word, len) == 0;
}

/* A map's or an array's size (kind 0x80 map, 0x90 array), or -1. */
static int64_t read_container(struct cursor *c, unsigned char kind) {
    if (!need(c, 1)) return -1;
    unsigned char t = *c->p;
    unsigned char wide16 = kind == 0x80 ? 0xde : 0xdc, wide32 = kind == 0x80 ? 0xdf : 0xdd;
    int64_t size;
    if ((t & 0xf0) == kind) size = t & 0x0f, c->p += 1;
    else if (t == wide16 && need(c, 3)) size = (int64_t)be(c->p + 1, 2), c->p += 3;
    else if (t == wide32 && need(c, 5)) size = (int64_t)be(c->p + 1, 4), c->p += 5;
    else size = -1;
    return size;
}

/* An integer (or a float, truncated), or -1 if the next value is neither. */
static int read_number(struct cursor *c, int64_t *v) {
    if (!need(c, 1)) return -1;
    unsigned char t = *c->p;
    if (t <= 0x7f || t >= 0xe0) { /* fixints, positive and negative */
        *v = t <= 0x7f ? (int64_t)t : (int64_t)(int8_t)t;
        c->p++;
        return 0;
    }
    int size = t == 0xcc || t == 0xd0 ? 1 : t == 0xcd || t == 0xd1 ? 2
             : t == 0xce || t == 0xd2 || t == 0xca ? 4 : t == 0xcf || t == 0xd3 || t == 0xcb ? 8 : 0;
    if (!size || !need(c, 1 + (size_t)size)) return -1;
    uint64_t raw = be(c->p + 1, size);
    c->p += 1 + size;
    if (t == 0xca) {
        float f;
        uint32_t bits = (uint32_t)raw;
        memcpy(&f, &bits, sizeof f);
        *v = (int64_t)f;
    } else if (t == 0xcb) {
        double d;
        memcpy(&d, &raw, sizeof d);
        *v = (int64_t)d;
    } else if (t >= 0xd0) {
        int shift = 64 - 8 * size;
        *v = (int64_t)(raw << shift) >> shift;
    } else {
        *v = (int64_t)raw;
    }
    return 0;
}

static int skip(struct cursor *c, int depth);

static int skip_n(struct cursor *c, uint64_t items, int depth) {
    for (uint64_t i = 0; i < items; i++)
        if (skip(c, depth + 1) < 0) return -1;
    return 0;
}

static int skip(struct cursor *c, int depth) {
    if (depth > 32 || !need(c, 1)) return -1;
    unsigned char t = *c->p++;
    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) return 0;
    if ((t & 0xf0) == 0x80) return skip_n(c, 2ULL * (t & 0x0f), depth);
    if ((t & 0xf0) == 0x90) return skip_n(c, t & 0x0f, depth);
    if ((t & 0xe0) == 0xa0) {
        size_t n = t & 0x1f;
        if (!need(c, n)) return -1;
        c->p += n;
        return 0;
    }
    size_t fixed = 0, len_bytes = 0;
    int container = 0; /* 1 array, 2 map */
    switch (t) {
    case 0xcc: case 0xd0: fixed = 1; break;
    case 0xcd: case 0xd1: fixed = 2; break;
    case 0xca: case 0xce: case 0xd2: fixed = 4; break;
    case 0xcb: case 0xcf: case 0xd3: fixed = 8; break;
    case 0xc4: case 0xd9: len_bytes = 1; break;
    case 0xc5: case 0xda: len_bytes = 2; break;
    case 0xc6: case 0xdb: len_bytes = 4; break;
    case 0xdc: len_bytes = 2; container = 1; break;
    case 0xdd: len_bytes = 4; container = 1; break;
    case 0xde: len_bytes = 2; container = 2; break;
    case 0xdf: len_bytes = 4; container = 2; break;
    default: return -1; /* extension types: never sent by the server */
    }
    if (fixed) {
        if (!need(c, fixed)) return -1;
        c->p += fixed;
        return 0;
    }
    if (!need(c, len_bytes)) return -1;
    uint64_t n = be(c->p, (int)len_bytes);
    c->p += len_bytes;
    if (container == 1) return skip_n(c, n, depth);
    if (container == 2) return skip_n(c, 2 * n, depth);
    if (!need(c, n)) return -1;
    c->p += n;
    return 0;
}

/* ---- Room frames: decoded once, as every socket gets the same bytes ---- */

struct event {
    int64_t seq, ts;
    int big;
};

/* A room frame's events, first and last seq, and its big gifts' "ts". */
struct digest {
    uint64_t count, first, last;
    int64_t *big;
    size_t n_big, big_cap;
};

static unsigned char *cached_payload;
static size_t cached_len, cached_cap;
static struct digest cached, scratch;

/* Reads one of an event's fields, or skips a value that is none of them. */
static int read_event_field(struct cursor *c, const char *key, size_t key_len, struct event *e) {
    if (str_is(key, key_len, "seq")) return read_number(c, &e->seq);
    if (str_is(key, key_len, "ts")) return read_number(c, &e->ts);
    if (str_is(key, key_len, "tier") && is_str(c)) {
        const char *tier;
        size_t tier_len;
        read_str(c, &tier, &tier_len);
        e->big = str_is(tier, tier_len, "large") || str_is(tier, tier_len, "fullscreen");
        return 0;
    }
    return skip(c, 1);
}

static void digest_add(struct digest *d, const struct event *e) {
    if (d->count++ == 0) d->first = (uint64_t)e->seq;
    d->last = (uint64_t)e->seq;
    if (!e->big) return;
    if (d->n_big == d->big_cap) {
        d->big_cap = d->big_cap ? d->big_cap * 2 : 16;
        d->big = realloc(d->big, d->big_cap * sizeof *d->big);
        if (!d->big) die("realloc");
    }
    d->big[d->n_big++] = e->ts;
}

/* Fills `d` from a room frame ("events", "gift" or "combo_end"); 0 for any other. */
static int digest_room_frame(const unsigned char *payload, size_t len, struct digest *d) {
    struct cursor c = {payload, payload + len}, events_at = {NULL, NULL};
    int64_t pairs = read_container(&c, 0x80);
    const char *type = NULL;
    size_t type_len = 0;
    struct event top = {0, 0, 0};
    for (int64_t i = 0; i < pairs; i++) {
        const char *key;
        size_t key_len;
        if (read_str(&c, &key, &key_len) < 0) return 0;
        if (str_is(key, key_len, "type")) {
            if (read_str(&c, &type, &type_len) < 0) return 0;
        } else if (str_is(key, key_len, "events")) {
            events_at = c;
            if (skip(&c, 1) < 0) return 0;
        } else if (read_event_field(&c, key, key_len, &top) < 0) {
            return 0;
        }
    }
    if (!type) return 0;
    d->count = d->n_big = 0;
    if (str_is(type, type_len, "gift") || str_is(type, type_len, "combo_end")) {
        digest_add(d, &top);
        return 1;
    }
    if (!str_is(type, type_len, "events") || !events_at.p) return 0;
    int64_t n = read_container(&events_at, 0x90);
    for (int64_t i = 0; i < n; i++) {
        struct event e = {0, 0, 0};
        int64_t fields = read_container(&events_at, 0x80);
        for (int64_t f = 0; f < fields; f++) {
            const char *key;
            size_t key_len;
            if (read_str(&events_at, &key, &key_len) < 0) return 0;
            if (read_event_field(&events_at, key, key_len, &e) < 0) return 0;
        }
        if (fields < 0) return 0;
        digest_add(d, &e);
    }
    return d->count > 0;
}

/* The digest of a room frame, or NULL for other frames. */
static const struct digest *room_frame(const unsigned char *payload, size_t len) {
    if (cached_len == len && cached_payload && memcmp(cached_payload, payload, len) == 0)
        return &cached;
    /* Other frames (the viewer count) leave the cache as it is. */
    if (!digest_room_frame(payload, len, &scratch)) return NULL;
    struct digest swap = cached;
    cached = scratch;
    scratch = swap;
    grow(&cached_payload, &cached_cap, len);
    memcpy(cached_payload, payload, len);
    cached_len = len;
    return &cached;
}

/* A reach's histogram bucket: whole milliseconds rounded up, at least 1.
 * Truncating would put every sub-millisecond reach (a small room on loopback)
 * in bucket 0 and report a p99 of 0 ms, which is no measurement: rounded up,
 * a bucket is an upper bound at the histogram's 1 ms resolution. */
static int64_t reach_bucket(double elapsed_ms) {
    int64_t ms = (int64_t)elapsed_ms;
    if ((double)ms < elapsed_ms) ms++;
    return ms < 1 ? 1 : ms;
}

static void on_room_frame(struct client *c, const struct digest *d) {
    int fresh = d->last > c->last_seq;
    if (c->last_seq && d->first != c->last_seq + 1 && d->first > c->last_seq) gaps++;
    if (fresh) c->last_seq = d->last;
    if (!counting) return;
    events += d->count;
    if (!fresh || !d->n_big) return;
    double now_ms = (double)clock_ns(CLOCK_REALTIME) / 1e6;
    for (size_t i = 0; i < d->n_big; i++) histogram_add(&reach_ms, reach_bucket(now_ms - (double)d->big[i]));
}

static void on_reply(struct client *c, const unsigned char *payload, size_t len) {
    struct cursor cur = {payload, payload + len};
    int64_t pairs = read_container(&cur, 0x80);
    const char *type = NULL, *id = NULL, *code = NULL;
    size_t type_len = 0, id_len = 0, code_len = 0;
    int temporary = 0;
    for (int64_t i = 0; i < pairs; i++) {
        const char *key;
        size_t key_len;
        if (read_str(&cur, &key, &key_len) < 0) return;
        if (str_is(key, key_len, "type")) {
            if (read_str(&cur, &type, &type_len) < 0) return;
            if (!str_is(type, type_len, "ack") && !str_is(type, type_len, "error")) return;
        } else if (str_is(key, key_len, "id") && is_str(&cur)) {
            read_str(&cur, &id, &id_len);
        } else if (str_is(key, key_len, "code") && is_str(&cur)) {
            read_str(&cur, &code, &code_len);
        } else if (str_is(key, key_len, "temporary") && need(&cur, 1) &&
                   (*cur.p == 0xc3 || *cur.p == 0xc2)) {
            temporary = *cur.p++ == 0xc3;
        } else if (skip(&cur, 0) < 0) {
            return;
        }
    }
    if (!type) return;
    int is_ack = type_len == 3;
    if (is_ack && counting) {
        acks++;
        unsigned long long seq = 0;
        if (id && id_len < 31) {
            char text[32];
            memcpy(text, id, id_len);
            text[id_len] = 0;
            const char *dash = strchr(text, '-');
            if (dash) seq = strtoull(dash + 1, NULL, 10);
        }
        if (seq && c->sent_seq[seq % RING] == seq)
            histogram_add(&ack_tenths, (now_ns() - c->sent_ns[seq % RING]) / 100000);
    }
    if (!is_ack) {
        count_error(code ? code : "unknown", code ? code_len : 7);
        if (temporary && window) c->owed++, owed_total++;
        return;
    }
    if (window) send_gift(c);
}

static void on_frame(struct client *c, int first_byte, const unsigned char *payload, size_t len) {
    int opcode = first_byte & 0x0f;
    if (opcode == 0x9) { /* ping: answer it */
        unsigned char pong[6 + 125];
        if (len > 125) return;
        pong[0] = 0x8a;
        pong[1] = (unsigned char)(0x80 | len);
        memset(pong + 2, 0, 4);
        memcpy(pong + 6, payload, len);
        send_bytes(c, pong, 6 + len);
        return;
    }
    if (opcode == 0x8) {
        if (c->state == OPEN) closed++;
        drop(c);
        return;
    }
    if (c->state == WELCOME) { /* the server's first frame: the socket is open */
        became_open(c);
        return;
    }
    if (counting) frames++;
    if (is_sender(c)) {
        /* A sender's acks are what is timed: room frames are only skipped,
         * a compressed one (RSV1) without a look: replies go uncompressed. */
        if (!(first_byte & 0x40)) on_reply(c, payload, len);
        return;
    }
    const struct digest *room = room_frame(payload, len);
    if (room) on_room_frame(c, room);
}

static void parse_frames(struct client *c) {
    size_t pos = 0;
    while ((c->state == OPEN || c->state == WELCOME) && c->in_len - pos >= 2) {
        const unsigned char *b = c->in + pos;
        size_t avail = c->in_len - pos, hdr = 2;
        uint64_t len = b[1] & 0x7f;
        if (len == 126) {
            if (avail < 4) break;
            len = be(b + 2, 2), hdr = 4;
        } else if (len == 127) {
            if (avail < 10) break;
            len = be(b + 2, 8), hdr = 10;
        }
        if (avail < hdr + len) break;
        on_frame(c, b[0], b + hdr, (size_t)len);
        pos += hdr + (size_t)len;
    }
    if (c->state != OPEN && c->state != WELCOME) return;
    memmove(c->in, c->in + pos, c->in_len - pos);
    c->in_len -= pos;
}

static void on_readable(struct client *c) {
    for (;;) {
        grow(&c->in, &c->in_cap, c->in_len + 65536);
        size_t space = c->in_cap - c->in_len;
        ssize_t n = recv(c->fd, c->in + c->in_len, space, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            drop(c);
            return;
        }
        if (n < 0) break;
        c->in_len += (size_t)n;
        if ((size_t)n < space) break; /* drained for now */
    }
    if (c->state == HANDSHAKE) {
        unsigned char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (!end) return;
        if (c->in_len < 12 || memcmp(c->in, "HTTP/1.1 101", 12) != 0) {
            drop(c);
            return;
        }
        size_t rest = c->in_len - (size_t)(end + 4 - c->in);
        memmove(c->in, end + 4, rest);
        c->in_len = rest;
        if (wait_welcome) c->state = WELCOME;
        else became_open(c);
    }
    parse_frames(c);
}

static void start_connect(struct client *c, struct sockaddr_in *addr) {
    c->attempts++;
    opening++;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->state = CONNECTING;
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = (uint64_t)(c - clients)};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
    if (connect(c->fd, (struct sockaddr *)addr, sizeof *addr) < 0 && errno != EINPROGRESS)
        drop(c);
}

static void on_event(struct client *c, uint32_t ev_mask) {
    if (c->state == DEAD || c->state == IDLE) return;
    if (c->state == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            drop(c);
            return;
        }
        c->state = HANDSHAKE;
        watch(c, EPOLLIN);
        send_bytes(c, c->request, c->request_len);
        return;
    }
    if (ev_mask & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
    if ((c->state == OPEN || c->state == WELCOME || c->state == HANDSHAKE) && (ev_mask & EPOLLOUT))
        flush_out(c);
}

static void print_histogram(const char *name, const struct histogram *h) {
    printf(", \"%s\": {", name);
    int first = 1;
    for (int i = 0; i < h->top; i++)
        if (h->counts[i]) {
            printf("%s\"%d\": %u", first ? "" : ", ", i, h->counts[i]);
            first = 0;
        }
    printf("}");
}

static void print_tally(void) {
    double seconds = (double)(now_ns() - started_ns) / 1e9;
    printf("{\"opened\": %d, \"failed\": %d, \"closed\": %d, \"frames\": %llu, \"events\": %llu, "
           "\"gaps\": %llu, \"acks\": %llu, \"deflated\": 0, \"seconds\": %.6f, \"errors\": {",
           opened, failed, closed, (unsigned long long)frames, (unsigned long long)events,
           (unsigned long long)gaps, (unsigned long long)acks, seconds);
    for (int i = 0; i < n_codes; i++)
        printf("%s\"%s\": %llu", i ? ", " : "", codes[i], (unsigned long long)code_counts[i]);
    printf("}");
    print_histogram("reach_ms", &reach_ms);
    print_histogram("ack_tenths_ms", &ack_tenths);
    print_histogram("pace_lag_tenths_ms", &lag_tenths);
    printf("}\n");
    fflush(stdout);
}

/* Counting starts before the command's answer is printed: whatever its
 * sender does next (a frame to the viewers) is counted. */
static void start_counting(void) {
    counting = 1;
    acks = frames = events = gaps = 0;
    closed = 0;
    n_codes = 0;
    histogram_clear(&ack_tenths);
    histogram_clear(&lag_tenths);
    histogram_clear(&reach_ms);
    started_ns = now_ns();
    paced_sent = 0;
    for (int i = 0; i < n_clients; i++) clients[i].owed = 0; /* the last phase's */
    owed_total = 0;
    printf("{\"counting\": true}\n");
    fflush(stdout);
}

static void on_command(char *line) {
    if (strncmp(line, "start", 5) == 0) {
        start_counting();
        window = 0;
        rate = 0;
    } else if (strncmp(line, "window ", 7) == 0) {
        start_counting();
        window = atoi(line + 7);
        rate = 0;
        for (int i = 0; i < n_clients; i++)
            for (int k = 0; k < window; k++) send_gift(&clients[i]);
    } else if (strncmp(line, "rate ", 5) == 0) {
        start_counting();
        window = 0;
        rate = atof(line + 5);
    } else if (strncmp(line, "peek", 4) == 0) {
        print_tally();
    } else if (strncmp(line, "stop", 4) == 0) {
        window = 0;
        rate = 0;
        counting = 0;
        print_tally();
    }
}

static char stdin_buf[4096];
static size_t stdin_len;

/* Returns 0 at end of input. */
static int read_stdin(void) {
    ssize_t n = read(0, stdin_buf + stdin_len, sizeof stdin_buf - stdin_len - 1);
    if (n <= 0) return 0;
    stdin_len += (size_t)n;
    char *newline;
    while ((newline = memchr(stdin_buf, '\n', stdin_len))) {
        *newline = 0;
        on_command(stdin_buf);
        size_t used = (size_t)(newline + 1 - stdin_buf);
        memmove(stdin_buf, newline + 1, stdin_len - used);
        stdin_len -= used;
    }
    return 1;
}

/* Every 5 ms: paced gifts that are due, and closed-loop gifts owed. */
static void tick(int64_t due_ns, int64_t now) {
    if (counting) histogram_add(&lag_tenths, (now - due_ns) / 100000);
    if (rate > 0 && n_senders > 0) {
        int64_t due = (int64_t)((double)(now - started_ns) / 1e9 * rate) - paced_sent;
        for (int64_t i = 0; i < due; i++) {
            send_gift(&clients[paced_sent % n_senders]);
            paced_sent++;
        }
    }
    if (window && owed_total)
        for (int i = 0; i < n_senders; i++)
            for (; clients[i].owed > 0; clients[i].owed--, owed_total--) send_gift(&clients[i]);
}

static struct client *add_client(void) {
    static int cap;
    if (n_clients == cap) {
        cap = cap ? cap * 2 : 256;
        clients = realloc(clients, (size_t)cap * sizeof *clients);
        if (!clients) die("realloc");
    }
    struct client *c = &clients[n_clients++];
    memset(c, 0, sizeof *c);
    return c;
}

static void set_request(struct client *c, const char *host, int port, const char *path,
                        const char *query, const char *subprotocol, int deflate) {
    char protocol_line[256] = "";
    if (subprotocol)
        snprintf(protocol_line, sizeof protocol_line, "Sec-WebSocket-Protocol: %s\r\n", subprotocol);
    const char *deflate_line =
        deflate ? "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" : "";
    if (asprintf(&c->request,
                 "GET %s%s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n%s%s\r\n",
                 path, query, host, port, protocol_line, deflate_line) < 0)
        die("asprintf");
    c->request_len = strlen(c->request);
}

/* Opens every socket, at most OPEN_AT_ONCE at a time, each tried again if it fails. */
static void open_all(struct sockaddr_in *addr) {
    struct epoll_event ready[256];
    int64_t deadline = now_ns() + OPEN_WITHIN_NS;
    while (opened + failed < n_clients && now_ns() < deadline) {
        for (int i = 0; i < n_clients && opening < OPEN_AT_ONCE; i++)
            if (clients[i].state == IDLE) start_connect(&clients[i], addr);
        int n = epoll_wait(epfd, ready, 256, 100);
        for (int i = 0; i < n; i++) on_event(&clients[ready[i].data.u64], ready[i].events);
    }
}

int main(int argc, char **argv) {
    const char *subprotocol = NULL, *queries_file = NULL;
    int viewers = 0, option;
    while ((option = getopt(argc, argv, "bp:s:v:wz")) != -1) {
        if (option == 'b') busy_poll = 1;
        else if (option == 'p') subprotocol = optarg;
        else if (option == 's') queries_file = optarg;
        else if (option == 'v') viewers = atoi(optarg);
        else if (option == 'w') wait_welcome = 1;
        else if (option == 'z') senders_deflate = 1;
        else optind = argc + 1;
    }
    if (optind != argc - 3) {
        fprintf(stderr, "usage: %s [-b] [-p SUBPROTOCOL] [-s QUERIES_FILE] [-v VIEWERS] [-w] "
                        "[-z] HOST PORT PATH\n", argv[0]);
        return 2;
    }
    const char *host = argv[optind], *path = argv[optind + 2];
    int port = atoi(argv[optind + 1]);
    struct rlimit files;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0) {
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }
    if (queries_file) {
        FILE *queries = fopen(queries_file, "r");
        if (!queries) die("queries file");
        char line[2048];
        while (fgets(line, sizeof line, queries)) {
            line[strcspn(line, "\r\n")] = 0;
            set_request(add_client(), host, port, path, line, subprotocol, senders_deflate);
        }
        fclose(queries);
        n_senders = n_clients;
    }
    for (int i = 0; i < viewers; i++)
        set_request(add_client(), host, port, path, "", subprotocol, 0);
    histogram_init(&ack_tenths, MAX_TENTHS);
    histogram_init(&lag_tenths, MAX_TENTHS);
    histogram_init(&reach_ms, MAX_REACH_MS);
    epfd = epoll_create1(0);
    if (epfd < 0) die("epoll_create1");

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) die("HOST must be an IPv4 address");
    open_all(&addr);
    printf("{\"opened\": %d, \"failed\": %d}\n", opened, n_clients - opened);
    fflush(stdout);

    struct epoll_event ready[256];
    struct epoll_event in = {.events = EPOLLIN, .data.u64 = STDIN_TAG};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &in) < 0) die("epoll_ctl stdin");
    int64_t next_tick = now_ns() + PACE_NS;
    for (;;) {
        int64_t now = now_ns();
        int timeout_ms = busy_poll || next_tick <= now ? 0 : (int)((next_tick - now + 999999) / 1000000);
        int n = epoll_wait(epfd, ready, 256, timeout_ms);
        for (int i = 0; i < n; i++) {
            if (ready[i].data.u64 == STDIN_TAG) {
                if (!read_stdin()) return 0;
            } else {
                on_event(&clients[ready[i].data.u64], ready[i].events);
            }
        }
        now = now_ns();
        if (now >= next_tick) {
            tick(next_tick, now);
            next_tick += PACE_NS;
            if (next_tick < now) next_tick = now + PACE_NS;
        }
    }
}
