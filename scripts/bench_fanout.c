/*
 * The kernel's floor for fan-out: one write() of a pre-built frame per
 * connection, nothing else.
 *
 * scripts/bench compiles this with gcc into a temporary directory at run
 * time. It listens on 127.0.0.1 (port 0: the kernel picks), prints
 * "PORT <n>", accepts <viewers> TCP connections and answers each one's
 * WebSocket handshake (RFC 6455 section 4.2.2: SHA-1 of the key and the
 * GUID, in base64), then writes <rounds> times the same unmasked binary
 * frame of <payload> bytes to every connection, one write() each. It prints
 * one JSON line with the frames written, the wall time and the CPU time of
 * that loop alone, and stays until its standard input is closed, so that the
 * readers can finish reading before the sockets go.
 *
 * With "reach" as a fourth argument it is the floor for a big gift's reach
 * instead: before each round it waits for a line on its standard input (the
 * bench sends one once every viewer has read the round before), then writes
 * one frame to every connection: a room frame of one fullscreen gift in
 * MessagePack, as giftstream's, whose "ts" is the time of that round's first
 * write in milliseconds, padded to <payload> bytes. The readers time each
 * frame from that "ts" to their read.
 *
 *     bench_fanout <viewers> <rounds> <payload bytes> [reach]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* ------------------------------------------------------------ SHA-1 */

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1_block(uint32_t h[5], const unsigned char *p) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
        else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
        else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
        else { f = b ^ c ^ d; k = 0xCA62C1D6; }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d; d = c; c = rol(b, 30); b = a; a = t;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
}

/* Messages here are short (a key of 24 characters plus the GUID). */
static void sha1(const unsigned char *msg, size_t len, unsigned char out[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    unsigned char buf[192];
    size_t full = len / 64 * 64;
    for (size_t i = 0; i < full; i += 64) sha1_block(h, msg + i);
    size_t rest = len - full;
    memset(buf, 0, sizeof buf);
    memcpy(buf, msg + full, rest);
    buf[rest] = 0x80;
    size_t total = rest + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) buf[total - 1 - i] = (unsigned char)(bits >> (8 * i));
    for (size_t i = 0; i < total; i += 64) sha1_block(h, buf + i);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = h[i] >> 24; out[4 * i + 1] = h[i] >> 16;
        out[4 * i + 2] = h[i] >> 8; out[4 * i + 3] = h[i];
    }
}

static void base64(const unsigned char *in, size_t len, char *out) {
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len) v |= in[i + 2];
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        out[o++] = i + 1 < len ? abc[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? abc[v & 63] : '=';
    }
    out[o] = 0;
}

/* ------------------------------------------------------------ handshake */

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w; n -= (size_t)w;
    }
    return 0;
}

/* Reads the request up to its blank line and answers 101; -1 on anything odd. */
static int handshake(int fd) {
    char req[8192];
    size_t got = 0;
    while (got < sizeof req - 1) {
        ssize_t r = read(fd, req + got, sizeof req - 1 - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        got += (size_t)r;
        req[got] = 0;
        if (strstr(req, "\r\n\r\n")) break;
    }
    char *line = strcasestr(req, "\r\nSec-WebSocket-Key:");
    if (!line) return -1;
    line += strlen("\r\nSec-WebSocket-Key:");
    while (*line == ' ') line++;
    char joined[128];
    size_t key_len = strcspn(line, "\r\n ");
    if (key_len == 0 || key_len + sizeof GUID > sizeof joined) return -1;
    memcpy(joined, line, key_len);
    memcpy(joined + key_len, GUID, sizeof GUID);
    unsigned char digest[20];
    sha1((unsigned char *)joined, key_len + sizeof GUID - 1, digest);
    char accept[32];
    base64(digest, 20, accept);
    char resp[256];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
    return write_all(fd, resp, (size_t)n);
}

/* ------------------------------------------------------------ main */

/* ------------------------------------------------------------ reach frames */

static unsigned char *put_str(unsigned char *p, const char *text) {
    size_t n = strlen(text); /* short strings only: MessagePack fixstr */
    *p++ = (unsigned char)(0xa0 | n);
    memcpy(p, text, n);
    return p + n;
}

static unsigned char *put_be(unsigned char *p, uint64_t value, int bytes) {
    for (int i = bytes - 1; i >= 0; i--) *p++ = (unsigned char)(value >> (8 * i));
    return p;
}

/*
 * {"type": "events", "events": [{"seq": seq, "tier": "fullscreen", "ts": ms,
 * "pad": "aaa..."}]} in MessagePack, in a binary frame; returns the frame's
 * length. The padding makes the payload <payload> bytes when it can.
 */
static size_t reach_frame(unsigned char *frame, uint32_t seq, uint64_t ms, int payload) {
    unsigned char body[256], *p = body;
    *p++ = 0x82;
    p = put_str(p, "type");
    p = put_str(p, "events");
    p = put_str(p, "events");
    *p++ = 0x91;
    *p++ = 0x84;
    p = put_str(p, "seq");
    *p++ = 0xce;
    p = put_be(p, seq, 4);
    p = put_str(p, "tier");
    p = put_str(p, "fullscreen");
    p = put_str(p, "ts");
    *p++ = 0xcf;
    p = put_be(p, ms, 8);
    p = put_str(p, "pad");
    int pad = payload - (int)(p - body) - 2; /* str8: a marker and a length */
    if (pad < 0) pad = 0;
    *p++ = 0xd9;
    *p++ = (unsigned char)pad;
    memset(p, 'a', (size_t)pad);
    p += pad;
    size_t len = (size_t)(p - body);
    frame[0] = 0x82; /* FIN, binary */
    frame[1] = (unsigned char)len;
    memcpy(frame + 2, body, len);
    return 2 + len;
}

static uint64_t now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static double seconds(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 4 && !(argc == 5 && strcmp(argv[4], "reach") == 0)) {
        fprintf(stderr, "usage: %s <viewers> <rounds> <payload bytes> [reach]\n", argv[0]);
        return 2;
    }
    int viewers = atoi(argv[1]), rounds = atoi(argv[2]), payload = atoi(argv[3]);
    int reach = argc == 5;
    if (viewers < 1 || rounds < 1 || payload < 1 || payload > 125) {
        fprintf(stderr, "viewers and rounds >= 1, payload 1..125\n");
        return 2;
    }
    /* Many sockets: as many descriptors as the hard limit allows. */
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof addr;
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) || listen(lfd, 4096) ||
        getsockname(lfd, (struct sockaddr *)&addr, &alen)) {
        perror("listen");
        return 1;
    }
    printf("PORT %d\n", ntohs(addr.sin_port));
    fflush(stdout);

    int *fds = calloc((size_t)viewers, sizeof *fds);
    int opened = 0;
    while (opened < viewers) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR) continue;
            perror("accept");
            return 1;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (handshake(fd) != 0) { close(fd); continue; }
        fds[opened++] = fd;
    }
    /* Let the readers take their handshake answers before the clock starts. */
    usleep(500 * 1000);

    unsigned char frame[2 + 256];
    frame[0] = 0x82; /* FIN, binary */
    frame[1] = (unsigned char)payload;
    for (int i = 0; i < payload; i++) frame[2 + i] = (unsigned char)('a' + i % 26);
    size_t frame_len = 2 + (size_t)payload;

    long written = 0, failed = 0;
    double wall0 = seconds(CLOCK_MONOTONIC), cpu0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
    char go[64];
    for (int r = 0; r < rounds; r++) {
        if (reach) {
            if (!fgets(go, sizeof go, stdin)) break;
            frame_len = reach_frame(frame, (uint32_t)r + 1, now_ms(), payload);
        }
        for (int i = 0; i < viewers; i++) {
            if (write(fds[i], frame, frame_len) == (ssize_t)frame_len) written++;
            else failed++;
        }
    }
    double wall = seconds(CLOCK_MONOTONIC) - wall0, cpu = seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    printf("{\"frames\": %ld, \"failed\": %ld, \"seconds\": %.6f, \"cpu_seconds\": %.6f}\n",
           written, failed, wall, cpu);
    fflush(stdout);

    char sink[64];
    while (read(0, sink, sizeof sink) > 0) {}
    for (int i = 0; i < opened; i++) close(fds[i]);
    return 0;
}
