/*
 * A minimal WebSocket (RFC 6455) echo/broadcast server in C: the ceiling a Node server can be
 * compared against on this machine (same kernel, same loopback, same load generator). Not a
 * library and not hardened: no extensions, no UTF-8 validation, no fragmentation reassembly
 * (frames are echoed one by one), a 1 MiB frame limit. What it does do is what a fast server
 * does: one epoll loop, one read() per readiness, frames parsed and unmasked in place, every
 * reply of a read (or, for broadcast, of a whole loop pass) queued in a per-connection buffer
 * and written with one write() per connection.
 *
 *   cc -O2 -Wall -o /tmp/c-echo bench/c-echo/echo.c
 *   /tmp/c-echo [--port 0] [--mode echo|broadcast]     prints "ready <port>" when listening
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FRAME (1u << 20)
#define READ_SIZE (256 * 1024)
#define MAX_HANDSHAKE 8192

/* ---- SHA-1 (FIPS 180-4), just enough for Sec-WebSocket-Accept ---------------------------- */

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1_block(uint32_t h[5], const uint8_t *p) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) f = (b & c) | (~b & d), k = 0x5A827999;
        else if (i < 40) f = b ^ c ^ d, k = 0x6ED9EBA1;
        else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
        else f = b ^ c ^ d, k = 0xCA62C1D6;
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d, d = c, c = rol(b, 30), b = a, a = t;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

static void sha1(const uint8_t *msg, size_t len, uint8_t out[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    uint8_t block[64];
    size_t i = 0;
    for (; i + 64 <= len; i += 64) sha1_block(h, msg + i);
    size_t rest = len - i;
    memset(block, 0, 64);
    memcpy(block, msg + i, rest);
    block[rest] = 0x80;
    if (rest >= 56) {
        sha1_block(h, block);
        memset(block, 0, 64);
    }
    uint64_t bits = (uint64_t)len * 8;
    for (int j = 0; j < 8; j++) block[63 - j] = (uint8_t)(bits >> (8 * j));
    sha1_block(h, block);
    for (int j = 0; j < 5; j++) {
        out[4 * j] = h[j] >> 24, out[4 * j + 1] = h[j] >> 16, out[4 * j + 2] = h[j] >> 8, out[4 * j + 3] = h[j];
    }
}

static size_t base64(const uint8_t *in, size_t len, char *out) {
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < len ? in[i + 2] : 0);
        out[o++] = abc[v >> 18 & 63];
        out[o++] = abc[v >> 12 & 63];
        out[o++] = i + 1 < len ? abc[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? abc[v & 63] : '=';
    }
    out[o] = 0;
    return o;
}

/* ---- connections -------------------------------------------------------------------------- */

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
} buf;

static void buf_reserve(buf *b, size_t more) {
    if (b->len + more <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more) cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p) abort();
    b->cap = cap;
}

static void buf_append(buf *b, const void *p, size_t n) {
    buf_reserve(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void buf_free(buf *b) {
    free(b->p);
    b->p = NULL, b->len = b->cap = 0;
}

typedef struct conn {
    int fd;
    int open;         /* handshake done */
    int closing;      /* close after the output is written */
    int dirty;        /* in the flush list */
    int index;        /* position in `conns` (broadcast), -1 if none */
    buf in;           /* unparsed bytes (handshake, partial frame); empty when idle */
    buf out;          /* bytes not yet written */
} conn;

static int ep;
static int broadcast_mode;
static uint8_t readbuf[READ_SIZE];
static conn **conns;      /* open connections, for broadcast */
static int nconns, capconns;
static conn **dirty;      /* connections with output queued in this loop pass */
static int ndirty, capdirty;

static void mark_dirty(conn *c) {
    if (c->dirty) return;
    if (ndirty == capdirty) {
        capdirty = capdirty ? capdirty * 2 : 1024;
        dirty = realloc(dirty, sizeof *dirty * capdirty);
    }
    dirty[ndirty++] = c;
    c->dirty = 1;
}

static void conn_free(conn *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->index >= 0) {
        conns[c->index] = conns[--nconns];
        conns[c->index]->index = c->index;
    }
    buf_free(&c->in);
    buf_free(&c->out);
    c->fd = -1; /* freed after the loop pass (it may still be in `dirty`) */
}

/* Write queued output; 0 if the connection is gone. */
static int conn_flush(conn *c) {
    while (c->out.len > 0) {
        ssize_t n = write(c->fd, c->out.p, c->out.len);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                return 1;
            }
            conn_free(c);
            return 0;
        }
        memmove(c->out.p, c->out.p + n, c->out.len - n);
        c->out.len -= n;
    }
    /* An idle connection holds no buffer (malloc of a small one is cheap); a busy bulk
       connection keeps one of up to 1 MiB rather than regrow it for every read. */
    if (c->out.cap <= 4096 || c->out.cap > (1u << 20)) buf_free(&c->out);
    if (c->closing) {
        conn_free(c);
        return 0;
    }
    return 1;
}

static void queue_frame(conn *c, uint8_t b0, const uint8_t *payload, size_t len) {
    uint8_t h[10];
    size_t hl = 2;
    h[0] = b0;
    if (len < 126) h[1] = (uint8_t)len;
    else if (len < 65536) h[1] = 126, h[2] = len >> 8, h[3] = (uint8_t)len, hl = 4;
    else {
        h[1] = 127;
        for (int i = 0; i < 8; i++) h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        hl = 10;
    }
    buf_reserve(&c->out, hl + len);
    memcpy(c->out.p + c->out.len, h, hl);
    memcpy(c->out.p + c->out.len + hl, payload, len);
    c->out.len += hl + len;
    mark_dirty(c);
}

static void unmask(uint8_t *p, size_t len, const uint8_t key[4]) {
    uint32_t k;
    memcpy(&k, key, 4);
    size_t i = 0;
    uint64_t k8 = (uint64_t)k << 32 | k;
    for (; i + 8 <= len; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        v ^= k8;
        memcpy(p + i, &v, 8);
    }
    for (; i < len; i++) p[i] ^= key[i & 3];
}

/* Parse frames in p[0..len); returns bytes consumed, or -1 to drop the connection. */
static long parse_frames(conn *c, uint8_t *p, size_t len) {
    size_t off = 0;
    while (len - off >= 2) {
        uint8_t b0 = p[off], b1 = p[off + 1];
        if (!(b1 & 0x80) || (b0 & 0x70)) return -1; /* unmasked client frame, or RSV bits */
        uint64_t plen = b1 & 0x7f;
        size_t hl = 2;
        if (plen == 126) {
            if (len - off < 4) break;
            plen = (uint64_t)p[off + 2] << 8 | p[off + 3], hl = 4;
        } else if (plen == 127) {
            if (len - off < 10) break;
            plen = 0;
            for (int i = 0; i < 8; i++) plen = plen << 8 | p[off + 2 + i];
            hl = 10;
        }
        if (plen > MAX_FRAME) return -1;
        if (len - off < hl + 4 + plen) break;
        uint8_t *payload = p + off + hl + 4;
        unmask(payload, plen, p + off + hl);
        uint8_t opcode = b0 & 0x0f;
        if (opcode == 0x8) { /* close: answer with the same code, then close */
            queue_frame(c, 0x88, payload, plen >= 2 ? 2 : 0);
            c->closing = 1;
            return (long)len;
        } else if (opcode == 0x9) {
            queue_frame(c, 0x8A, payload, plen);
        } else if (opcode == 0xA) {
            /* pong: nothing */
        } else if (broadcast_mode) {
            for (int i = 0; i < nconns; i++) queue_frame(conns[i], b0, payload, plen);
        } else {
            queue_frame(c, b0, payload, plen);
        }
        off += hl + 4 + plen;
    }
    return (long)off;
}

static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* Handle a complete request req[0..end) (writable; req[end] is overwritten); 0 on a bad request. */
static int handshake(conn *c, char *req, size_t end) {
    req[end] = 0;
    const char *key = NULL;
    size_t keylen = 0;
    for (char *line = strstr(req, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Sec-WebSocket-Key:", 18) == 0) {
            key = line + 20;
            while (*key == ' ' || *key == '\t') key++;
            keylen = strcspn(key, " \t\r");
            break;
        }
    }
    if (strncmp(req, "GET ", 4) != 0 || !key || keylen == 0 || keylen > 64) return 0;
    char src[128];
    memcpy(src, key, keylen);
    memcpy(src + keylen, GUID, sizeof GUID - 1);
    uint8_t digest[20];
    sha1((uint8_t *)src, keylen + sizeof GUID - 1, digest);
    char accept[32];
    base64(digest, 20, accept);
    char resp[256];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n", accept);
    buf_append(&c->out, resp, (size_t)n);
    mark_dirty(c);
    c->open = 1;
    if (broadcast_mode) {
        if (nconns == capconns) {
            capconns = capconns ? capconns * 2 : 1024;
            conns = realloc(conns, sizeof *conns * capconns);
        }
        c->index = nconns;
        conns[nconns++] = c;
    }
    return 1;
}

static void on_readable(conn *c) {
    ssize_t n = read(c->fd, readbuf, sizeof readbuf);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_free(c);
        return;
    }
    if (n < 0) return;
    if (!c->open && c->in.len == 0) {
        /* The usual case: the whole request in one read, parsed where it lies (no allocation). */
        uint8_t *end = memmem(readbuf, (size_t)n, "\r\n\r\n", 4);
        if (end) {
            size_t reqlen = end - readbuf + 4;
            if (!handshake(c, (char *)readbuf, reqlen - 2)) return conn_free(c);
            if ((size_t)n > reqlen) {
                long used = parse_frames(c, readbuf + reqlen, n - reqlen);
                if (used < 0) return conn_free(c);
                if (reqlen + used < (size_t)n) buf_append(&c->in, readbuf + reqlen + used, n - reqlen - used);
            }
            return;
        }
    }
    if (!c->open) {
        if (c->in.len + n > MAX_HANDSHAKE) return conn_free(c);
        buf_append(&c->in, readbuf, n);
        uint8_t *end = memmem(c->in.p, c->in.len, "\r\n\r\n", 4);
        if (!end) return;
        size_t reqlen = end - c->in.p + 4;
        buf_reserve(&c->in, 1);
        if (!handshake(c, (char *)c->in.p, reqlen - 2)) return conn_free(c);
        size_t rest = c->in.len - reqlen;
        memmove(c->in.p, c->in.p + reqlen, rest);
        c->in.len = rest;
        if (rest == 0) buf_free(&c->in);
        else {
            long used = parse_frames(c, c->in.p, c->in.len);
            if (used < 0) return conn_free(c);
            memmove(c->in.p, c->in.p + used, c->in.len - used);
            c->in.len -= used;
        }
        return;
    }
    uint8_t *p = readbuf;
    size_t len = (size_t)n;
    if (c->in.len > 0) { /* a partial frame was left over: append and parse in place */
        buf_append(&c->in, readbuf, len);
        p = c->in.p, len = c->in.len;
    }
    long used = parse_frames(c, p, len);
    if (used < 0) return conn_free(c);
    size_t rest = len - (size_t)used;
    if (p == c->in.p) {
        memmove(c->in.p, c->in.p + used, rest);
        c->in.len = rest;
        if (rest == 0 && c->in.cap > 4096) buf_free(&c->in); /* an idle connection holds nothing big */
    } else if (rest > 0) {
        buf_append(&c->in, p + used, rest);
    }
}

int main(int argc, char **argv) {
    int port = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) broadcast_mode = strcmp(argv[++i], "broadcast") == 0;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Keep buffers of a few hundred KiB on the heap: glibc would otherwise mmap/munmap (and
       page-fault) a fresh one on every large read or write. */
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 4096) < 0) {
        perror("listen");
        return 1;
    }
    socklen_t alen = sizeof addr;
    getsockname(lfd, (struct sockaddr *)&addr, &alen);
    printf("ready %d\n", ntohs(addr.sin_port));
    fflush(stdout);
    ep = epoll_create1(0);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
    struct epoll_event events[512];
    conn **freed = NULL;
    int nfreed = 0, capfreed = 0;
    for (;;) {
        int n = epoll_wait(ep, events, 512, -1);
        if (n < 0 && errno != EINTR) return 1;
        for (int i = 0; i < n; i++) {
            conn *c = events[i].data.ptr;
            if (!c) { /* accept everything pending */
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
                    if (fd < 0) break;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conn *nc = calloc(1, sizeof *nc);
                    nc->fd = fd, nc->index = -1;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            if (c->fd < 0) continue;
            if (events[i].events & EPOLLOUT) {
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                mark_dirty(c);
            }
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
            if (c->fd < 0) {
                if (nfreed == capfreed) freed = realloc(freed, sizeof *freed * (capfreed = capfreed ? capfreed * 2 : 256));
                freed[nfreed++] = c;
            }
        }
        /* End of the loop pass: one write per connection with output (a cork per pass). */
        for (int i = 0; i < ndirty; i++) {
            conn *c = dirty[i];
            c->dirty = 0;
            if (c->fd >= 0 && !conn_flush(c)) {
                if (nfreed == capfreed) freed = realloc(freed, sizeof *freed * (capfreed = capfreed ? capfreed * 2 : 256));
                freed[nfreed++] = c;
            }
        }
        ndirty = 0;
        for (int i = 0; i < nfreed; i++) free(freed[i]);
        nfreed = 0;
    }
}
