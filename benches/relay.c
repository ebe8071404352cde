/* The floor of any proxy's work on this machine, for the bulk figures (`harness.py --relay`):
 * a transparent TCP relay that understands nothing (no HTTP, no WebSocket, no pool, no
 * timers), one connection at a time, one thread, non-blocking sockets and poll(2).
 *
 *     relay LISTEN_PORT BACKEND_PORT copy|splice [BYTES]
 *
 * copy:   recv into a BYTES buffer (default 16384, HAProxy's bufsize), send it, until the
 *         source is empty or the destination full; per direction.
 * splice: socket -> pipe -> socket with splice(2), the pipe enlarged to BYTES (default 65536,
 *         Linux's default pipe size) with F_SETPIPE_SZ.
 *
 * Whatever MB/s and CPU per GiB it shows is what moving the bytes costs here (client, relay,
 * backend and the loopback TCP stack on the machine's cores), with no proxy logic at all.
 * Built by the harness with `cc -O2`; Linux only. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int use_splice;
static size_t cap;

/* One direction: bytes staged in `buf` (copy) or in the pipe (splice). */
struct dir {
    int from, to;
    char *buf;
    size_t have, off;
    int pipe[2];
    size_t in_pipe;
    int eof;
};

static int pending(const struct dir *d) { return d->off < d->have || d->in_pipe > 0; }

/* Moves what it can without blocking; returns whether any byte was sent. */
static int pump(struct dir *d) {
    int moved = 0;
    for (;;) {
        ssize_t n;
        if (!pending(d) && !d->eof) {
            if (use_splice)
                n = splice(d->from, NULL, d->pipe[1], NULL, cap, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            else
                n = recv(d->from, d->buf, cap, 0);
            if (n > 0) {
                if (use_splice)
                    d->in_pipe = (size_t)n;
                else
                    d->have = (size_t)n, d->off = 0;
            } else if (n == 0 || errno != EAGAIN) {
                d->eof = 1;
            }
        }
        if (!pending(d))
            return moved;
        if (use_splice)
            n = splice(d->pipe[0], NULL, d->to, NULL, d->in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        else
            n = send(d->to, d->buf + d->off, d->have - d->off, MSG_NOSIGNAL);
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN)
                d->eof = 1, d->in_pipe = 0, d->have = d->off = 0;
            return moved;
        }
        moved = 1;
        if (use_splice)
            d->in_pipe -= (size_t)n;
        else
            d->off += (size_t)n;
        if (pending(d))
            return moved; /* the destination took part: it is full */
    }
}

static void relay(int c, int b) {
    struct dir d[2] = {{.from = c, .to = b}, {.from = b, .to = c}};
    for (int i = 0; i < 2; i++) {
        if (use_splice) {
            if (pipe2(d[i].pipe, O_NONBLOCK) < 0) {
                perror("pipe2");
                exit(1);
            }
            fcntl(d[i].pipe[1], F_SETPIPE_SZ, (int)cap);
        } else {
            d[i].buf = malloc(cap);
        }
    }
    /* Until either side ends (the harness's clients close after the response). */
    while (!d[0].eof && !d[1].eof) {
        int moved = pump(&d[0]) | pump(&d[1]);
        if (moved || d[0].eof || d[1].eof)
            continue;
        struct pollfd p[2] = {{.fd = c}, {.fd = b}};
        p[0].events = pending(&d[0]) ? 0 : POLLIN;
        p[1].events = pending(&d[1]) ? 0 : POLLIN;
        if (pending(&d[0]))
            p[1].events |= POLLOUT;
        if (pending(&d[1]))
            p[0].events |= POLLOUT;
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
    }
    for (int i = 0; i < 2; i++) {
        if (use_splice)
            close(d[i].pipe[0]), close(d[i].pipe[1]);
        free(d[i].buf);
    }
}

int main(int argc, char **argv) {
    if (argc < 4 || (strcmp(argv[3], "copy") && strcmp(argv[3], "splice"))) {
        fprintf(stderr, "usage: relay LISTEN_PORT BACKEND_PORT copy|splice [BYTES]\n");
        return 2;
    }
    use_splice = !strcmp(argv[3], "splice");
    cap = argc > 4 ? (size_t)atol(argv[4]) : use_splice ? 65536 : 16384;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    struct sockaddr_in back = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    back.sin_addr = a.sin_addr;
    int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 128)) {
        perror("listen");
        return 1;
    }
    for (;;) {
        int c = accept(l, NULL, NULL);
        if (c < 0)
            continue;
        int b = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(b, (struct sockaddr *)&back, sizeof back) == 0) {
            for (int i = 0; i < 2; i++) {
                int s = i ? b : c;
                setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                fcntl(s, F_SETFL, O_NONBLOCK);
            }
            relay(c, b);
        }
        close(c);
        close(b);
    }
}
