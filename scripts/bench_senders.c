/* Gift senders for scripts/bench's money section, in C.
 *
 * The senders measure giftstream's ack latency and rate, so their own
 * delays must stay out of the figures: the Python senders took 40% of the
 * load generator's core at half the maximum rate and their loops woke 15 to
 * 25 ms late at p99, a share of every ack they timed. Here each socket costs
 * a few system calls per frame and nothing else.
 *
 * Usage: bench_senders HOST PORT PATH SUBPROTOCOL QUERIES_FILE
 *   QUERIES_FILE holds one query string per line ("?token=..."): one sender
 *   each, a WebSocket to PATH + query offering SUBPROTOCOL. The senders are
 *   viewers of the room too: they read (and skip) its frames.
 *
 * Once every socket is open (the server's first frame, its welcome, read),
 * it prints {"opened": N, "failed": M}. Then it reads commands on stdin:
 *   window K   count from now; every sender keeps K gifts in flight
 *              (each ack sends the next)
 *   rate R     count from now; R gifts a second in all, from the senders
 *              in turn, sent every 5 ms
 *   stop       stop sending and counting; print the tally as one JSON line
 *              (the fields of scripts/bench_wsclient.py's Tally)
 * and exits at end of input.
 *
 * A gift is MessagePack {"type": "gift", "id": "s<i>-<n>", "gift": "rose",
 * "count": 1} in a masked binary frame (mask key zero). Replies are read as
 * MessagePack maps; only "type", "id", "code" and "temporary" are looked at.
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define OPEN_AT_ONCE 50
#define PACE_NS 5000000LL
#define RING 256 /* gifts in flight per sender that can be timed */
#define MAX_TENTHS 200000 /* 20 s: longer acks count in the last bucket */
#define MAX_CODES 16
#define STDIN_TAG UINT64_MAX

enum state { CONNECTING, HANDSHAKE, WELCOME, OPEN, DEAD };

struct sender {
    int fd;
    enum state state;
    char *request;
    size_t request_len;
    unsigned char *in;
    size_t in_len, in_cap;
    unsigned char *out;
    size_t out_len, out_cap;
    uint64_t sent;
    uint64_t sent_seq[RING];
    int64_t sent_ns[RING];
    int owed; /* closed loop: gifts to send again (after a temporary error) */
};

static struct sender *senders;
static int n_senders, epfd;
static int counting, window, opened, failed;
static int owed_total; /* the senders' owed gifts, summed: most ticks owe none */
static double rate;
static int64_t started_ns, paced_sent;
static uint64_t acks, frames;
static uint32_t *ack_tenths, *lag_tenths;
static char codes[MAX_CODES][48];
static uint64_t code_counts[MAX_CODES];
static int n_codes;

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

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

static void watch(struct sender *s, uint32_t events) {
    struct epoll_event ev = {.events = events, .data.u64 = (uint64_t)(s - senders)};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, s->fd, &ev) < 0) die("epoll_ctl");
}

static void kill_sender(struct sender *s) {
    if (s->state == DEAD) return;
    if (s->state != OPEN) failed++;
    s->state = DEAD;
    epoll_ctl(epfd, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
}

/* Writes what it can now; the rest waits for EPOLLOUT. */
static void send_bytes(struct sender *s, const void *data, size_t len) {
    if (s->state == DEAD) return;
    if (s->out_len == 0) {
        ssize_t n = send(s->fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN) {
            kill_sender(s);
            return;
        }
        if (n < 0) n = 0;
        data = (const char *)data + n;
        len -= (size_t)n;
        if (len == 0) return;
        watch(s, EPOLLIN | EPOLLOUT);
    }
    grow(&s->out, &s->out_cap, s->out_len + len);
    memcpy(s->out + s->out_len, data, len);
    s->out_len += len;
}

static void flush_out(struct sender *s) {
    while (s->out_len) {
        ssize_t n = send(s->fd, s->out, s->out_len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno != EAGAIN) kill_sender(s);
            return;
        }
        memmove(s->out, s->out + n, s->out_len - (size_t)n);
        s->out_len -= (size_t)n;
    }
    watch(s, EPOLLIN);
}

static void send_gift(struct sender *s) {
    if (s->state != OPEN) return;
    char id[32];
    uint64_t seq = ++s->sent;
    int id_len = snprintf(id, sizeof id, "s%d-%llu", (int)(s - senders), (unsigned long long)seq);
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
    s->sent_seq[seq % RING] = seq;
    s->sent_ns[seq % RING] = now_ns();
    send_bytes(s, frame, 6 + payload);
}

/* ---- MessagePack: just enough to read a reply's top-level fields ---- */

struct cursor {
    const unsigned char *p, *end;
};

static int need(struct cursor *c, size_t n) { return (size_t)(c->end - c->p) >= n; }

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
    if (!need((struct cursor *)c, 1)) return 0;
    unsigned char t = *c->p;
    return (t & 0xe0) == 0xa0 || t == 0xd9 || t == 0xda || t == 0xdb;
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

static void on_reply(struct sender *s, const unsigned char *payload, size_t len) {
    struct cursor c = {payload, payload + len};
    if (!need(&c, 1)) return;
    unsigned char t = *c.p++;
    uint64_t pairs;
    if ((t & 0xf0) == 0x80) pairs = t & 0x0f;
    else if (t == 0xde && need(&c, 2)) pairs = be(c.p, 2), c.p += 2;
    else return;
    const char *type = NULL, *id = NULL, *code = NULL;
    size_t type_len = 0, id_len = 0, code_len = 0;
    int temporary = 0;
    for (uint64_t i = 0; i < pairs; i++) {
        const char *key;
        size_t key_len;
        if (read_str(&c, &key, &key_len) < 0) return;
        if (key_len == 4 && memcmp(key, "type", 4) == 0) {
            if (read_str(&c, &type, &type_len) < 0) return;
            /* Room frames are most of what arrives: leave them at once. */
            if (!(type_len == 3 && memcmp(type, "ack", 3) == 0) &&
                !(type_len == 5 && memcmp(type, "error", 5) == 0))
                return;
        } else if (key_len == 2 && memcmp(key, "id", 2) == 0 && is_str(&c)) {
            read_str(&c, &id, &id_len);
        } else if (key_len == 4 && memcmp(key, "code", 4) == 0 && is_str(&c)) {
            read_str(&c, &code, &code_len);
        } else if (key_len == 9 && memcmp(key, "temporary", 9) == 0 && need(&c, 1) &&
                   (*c.p == 0xc3 || *c.p == 0xc2)) {
            temporary = *c.p++ == 0xc3;
        } else if (skip(&c, 0) < 0) {
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
        if (seq && s->sent_seq[seq % RING] == seq) {
            int64_t tenths = (now_ns() - s->sent_ns[seq % RING]) / 100000;
            ack_tenths[tenths < MAX_TENTHS ? tenths : MAX_TENTHS - 1]++;
        }
    }
    if (!is_ack) {
        count_error(code ? code : "unknown", code ? code_len : 7);
        if (temporary && window) s->owed++, owed_total++;
        return;
    }
    if (window) send_gift(s);
}

static void on_frame(struct sender *s, int opcode, const unsigned char *payload, size_t len) {
    if (opcode == 0x9) { /* ping: answer it */
        unsigned char pong[6 + 125];
        if (len > 125) return;
        pong[0] = 0x8a;
        pong[1] = (unsigned char)(0x80 | len);
        memset(pong + 2, 0, 4);
        memcpy(pong + 6, payload, len);
        send_bytes(s, pong, 6 + len);
        return;
    }
    if (opcode == 0x8) {
        kill_sender(s);
        return;
    }
    if (s->state == WELCOME) { /* the server's first frame: the socket is open */
        s->state = OPEN;
        opened++;
        return;
    }
    if (counting) frames++;
    on_reply(s, payload, len);
}

static void parse_frames(struct sender *s) {
    size_t pos = 0;
    while (s->state != DEAD && s->in_len - pos >= 2) {
        const unsigned char *b = s->in + pos;
        size_t avail = s->in_len - pos, hdr = 2;
        uint64_t len = b[1] & 0x7f;
        if (len == 126) {
            if (avail < 4) break;
            len = be(b + 2, 2), hdr = 4;
        } else if (len == 127) {
            if (avail < 10) break;
            len = be(b + 2, 8), hdr = 10;
        }
        if (avail < hdr + len) break;
        on_frame(s, b[0] & 0x0f, b + hdr, (size_t)len);
        pos += hdr + (size_t)len;
    }
    if (s->state == DEAD) return;
    memmove(s->in, s->in + pos, s->in_len - pos);
    s->in_len -= pos;
}

static void on_readable(struct sender *s) {
    for (;;) {
        grow(&s->in, &s->in_cap, s->in_len + 65536);
        size_t space = s->in_cap - s->in_len;
        ssize_t n = recv(s->fd, s->in + s->in_len, space, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            kill_sender(s);
            return;
        }
        if (n < 0) break;
        s->in_len += (size_t)n;
        if ((size_t)n < space) break; /* drained for now */
    }
    if (s->state == HANDSHAKE) {
        unsigned char *end = memmem(s->in, s->in_len, "\r\n\r\n", 4);
        if (!end) return;
        if (s->in_len < 12 || memcmp(s->in, "HTTP/1.1 101", 12) != 0) {
            kill_sender(s);
            return;
        }
        size_t rest = s->in_len - (size_t)(end + 4 - s->in);
        memmove(s->in, end + 4, rest);
        s->in_len = rest;
        s->state = WELCOME;
    }
    parse_frames(s);
}

static void start_connect(struct sender *s, struct sockaddr_in *addr) {
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (s->fd < 0) die("socket");
    int one = 1;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(s->fd, (struct sockaddr *)addr, sizeof *addr) < 0 && errno != EINPROGRESS) {
        s->state = DEAD;
        close(s->fd);
        failed++;
        return;
    }
    s->state = CONNECTING;
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = (uint64_t)(s - senders)};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0) die("epoll_ctl");
}

static void on_event(struct sender *s, uint32_t events) {
    if (s->state == DEAD) return;
    if (s->state == CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            kill_sender(s);
            return;
        }
        s->state = HANDSHAKE;
        watch(s, EPOLLIN);
        send_bytes(s, s->request, s->request_len);
        return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(s);
    if (s->state != DEAD && (events & EPOLLOUT)) flush_out(s);
}

static void print_tally(void) {
    double seconds = (double)(now_ns() - started_ns) / 1e9;
    printf("{\"opened\": %d, \"failed\": %d, \"closed\": 0, \"frames\": %llu, \"events\": 0, "
           "\"gaps\": 0, \"acks\": %llu, \"deflated\": 0, \"seconds\": %.6f, \"reach_ms\": {}, "
           "\"errors\": {",
           opened, failed, (unsigned long long)frames, (unsigned long long)acks, seconds);
    for (int i = 0; i < n_codes; i++)
        printf("%s\"%s\": %llu", i ? ", " : "", codes[i], (unsigned long long)code_counts[i]);
    const char *names[2] = {"ack_tenths_ms", "pace_lag_tenths_ms"};
    uint32_t *histograms[2] = {ack_tenths, lag_tenths};
    for (int h = 0; h < 2; h++) {
        printf("}, \"%s\": {", names[h]);
        int first = 1;
        for (int i = 0; i < MAX_TENTHS; i++)
            if (histograms[h][i]) {
                printf("%s\"%d\": %u", first ? "" : ", ", i, histograms[h][i]);
                first = 0;
            }
    }
    printf("}}\n");
    fflush(stdout);
}

static void start_counting(void) {
    counting = 1;
    acks = frames = 0;
    n_codes = 0;
    memset(ack_tenths, 0, MAX_TENTHS * sizeof *ack_tenths);
    memset(lag_tenths, 0, MAX_TENTHS * sizeof *lag_tenths);
    started_ns = now_ns();
    paced_sent = 0;
    for (int i = 0; i < n_senders; i++) senders[i].owed = 0; /* the last phase's */
    owed_total = 0;
}

/* Returns 0 at end of input. */
static int on_command(char *line) {
    if (strncmp(line, "window ", 7) == 0) {
        start_counting();
        window = atoi(line + 7);
        rate = 0;
        for (int i = 0; i < n_senders; i++)
            for (int k = 0; k < window; k++) send_gift(&senders[i]);
    } else if (strncmp(line, "rate ", 5) == 0) {
        start_counting();
        window = 0;
        rate = atof(line + 5);
    } else if (strncmp(line, "stop", 4) == 0) {
        window = 0;
        rate = 0;
        counting = 0;
        print_tally();
    }
    return 1;
}

static char stdin_buf[4096];
static size_t stdin_len;

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
    if (counting) {
        int64_t late = (now - due_ns) / 100000;
        lag_tenths[late < 0 ? 0 : late < MAX_TENTHS ? late : MAX_TENTHS - 1]++;
    }
    if (rate > 0 && n_senders > 0) {
        int64_t due = (int64_t)((double)(now - started_ns) / 1e9 * rate) - paced_sent;
        for (int64_t i = 0; i < due; i++) {
            send_gift(&senders[paced_sent % n_senders]);
            paced_sent++;
        }
    }
    if (window && owed_total)
        for (int i = 0; i < n_senders; i++)
            for (; senders[i].owed > 0; senders[i].owed--, owed_total--) send_gift(&senders[i]);
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s HOST PORT PATH SUBPROTOCOL QUERIES_FILE\n", argv[0]);
        return 2;
    }
    const char *host = argv[1], *path = argv[3], *subprotocol = argv[4];
    int port = atoi(argv[2]);
    FILE *queries = fopen(argv[5], "r");
    if (!queries) die("queries file");
    char line[2048];
    int cap = 0;
    while (fgets(line, sizeof line, queries)) {
        line[strcspn(line, "\r\n")] = 0;
        if (n_senders == cap) {
            cap = cap ? cap * 2 : 256;
            senders = realloc(senders, (size_t)cap * sizeof *senders);
            if (!senders) die("realloc");
        }
        struct sender *s = &senders[n_senders++];
        memset(s, 0, sizeof *s);
        if (asprintf(&s->request,
                     "GET %s%s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n\r\n",
                     path, line, host, port, subprotocol) < 0)
            die("asprintf");
        s->request_len = strlen(s->request);
    }
    fclose(queries);
    ack_tenths = calloc(MAX_TENTHS, sizeof *ack_tenths);
    lag_tenths = calloc(MAX_TENTHS, sizeof *lag_tenths);
    epfd = epoll_create1(0);
    if (epfd < 0 || !ack_tenths || !lag_tenths) die("setup");

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) die("HOST must be an IPv4 address");
    struct epoll_event events[256];
    int next = 0;
    int64_t deadline = now_ns() + 120000000000LL;
    while (opened + failed < n_senders) {
        while (next < n_senders && next - opened - failed < OPEN_AT_ONCE)
            start_connect(&senders[next++], &addr);
        int n = epoll_wait(epfd, events, 256, 100);
        for (int i = 0; i < n; i++) on_event(&senders[events[i].data.u64], events[i].events);
        if (now_ns() > deadline) break;
    }
    printf("{\"opened\": %d, \"failed\": %d}\n", opened, n_senders - opened);
    fflush(stdout);

    struct epoll_event in = {.events = EPOLLIN, .data.u64 = STDIN_TAG};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &in) < 0) die("epoll_ctl stdin");
    int64_t next_tick = now_ns() + PACE_NS;
    for (;;) {
        int64_t now = now_ns();
        int timeout_ms = next_tick > now ? (int)((next_tick - now + 999999) / 1000000) : 0;
        int n = epoll_wait(epfd, events, 256, timeout_ms);
        for (int i = 0; i < n; i++) {
            if (events[i].data.u64 == STDIN_TAG) {
                if (!read_stdin()) return 0;
            } else {
                on_event(&senders[events[i].data.u64], events[i].events);
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
