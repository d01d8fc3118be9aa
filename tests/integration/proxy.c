/* SPDX-License-Identifier: MIT */
/* A TCP relay that can lose a reply (see proxy.h). */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "proxy.h"

#define S_PAIRS 16
#define S_GREETING 64            /* ZMTP 3: the greeting is 64 bytes */

typedef struct {
    int client, broker;          /* -1 when closed */
    /* broker -> client: whole frames are passed on once read, so that a
     * reply can be held back. */
    uint8_t *buf;
    size_t len, cap;
    size_t greeting;             /* greeting bytes still to pass */
} s_pair_t;

struct hh_proxy {
    int listen_fd;
    int wake[2];
    struct sockaddr_in broker;
    pthread_t thread;
    s_pair_t pairs[S_PAIRS];
    atomic_int to_pass;          /* replies to pass before losing one */
    atomic_int to_lose;
    atomic_int lost, passed;
    pthread_mutex_t lock;        /* with `moved`: a reply passed */
    pthread_cond_t moved;
};

static void
s_close(s_pair_t *p)
{
    if (p->client >= 0)
        close(p->client);
    if (p->broker >= 0)
        close(p->broker);
    free(p->buf);
    memset(p, 0, sizeof *p);
    p->client = p->broker = -1;
}

static int
s_write_all(int fd, const uint8_t *data, size_t len)
{
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t) n;
    }
    return 0;
}

/* Pass on every whole frame buffered from the broker; at a MESSAGE (a
 * reply) that is to be lost, cut the connection instead. Returns -1 once
 * the pair is closed. */
static int
s_pass_frames(hh_proxy_t *self, s_pair_t *p)
{
    size_t off = 0;
    if (p->greeting) {
        size_t n = p->len < p->greeting ? p->len : p->greeting;
        if (s_write_all(p->client, p->buf, n) < 0)
            return -1;
        p->greeting -= n;
        off = n;
    }
    while (!p->greeting && p->len - off >= 2) {
        const uint8_t *f = p->buf + off;
        size_t head = (f[0] & 0x02) ? 9 : 2;
        if (p->len - off < head)
            break;
        uint64_t size = 0;
        if (head == 9)
            for (int i = 1; i < 9; i++)
                size = size << 8 | f[i];
        else
            size = f[1];
        if (p->len - off < head + size)
            break;
        bool message = size >= 8 && memcmp(f + head, "\x07MESSAGE", 8) == 0;
        if (message && atomic_load(&self->to_lose) > 0 && atomic_load(&self->to_pass) == 0) {
            atomic_fetch_sub(&self->to_lose, 1);
            atomic_fetch_add(&self->lost, 1);
            s_close(p);
            return -1;
        }
        if (s_write_all(p->client, f, head + size) < 0)
            return -1;
        if (message) {
            pthread_mutex_lock(&self->lock);
            atomic_fetch_add(&self->passed, 1);
            pthread_cond_broadcast(&self->moved);
            pthread_mutex_unlock(&self->lock);
            if (atomic_load(&self->to_pass) > 0)
                atomic_fetch_sub(&self->to_pass, 1);
        }
        off += head + size;
    }
    memmove(p->buf, p->buf + off, p->len - off);
    p->len -= off;
    return 0;
}

static void *
s_run(void *arg)
{
    hh_proxy_t *self = arg;
    for (;;) {
        struct pollfd fds[2 + 2 * S_PAIRS];
        int map[2 + 2 * S_PAIRS];
        int n = 0;
        fds[n++] = (struct pollfd) { self->wake[0], POLLIN, 0 };
        fds[n++] = (struct pollfd) { self->listen_fd, POLLIN, 0 };
        for (int i = 0; i < S_PAIRS; i++)
            if (self->pairs[i].client >= 0) {
                map[n] = i;
                fds[n++] = (struct pollfd) { self->pairs[i].client, POLLIN, 0 };
                map[n] = i;
                fds[n++] = (struct pollfd) { self->pairs[i].broker, POLLIN, 0 };
            }
        if (poll(fds, (nfds_t) n, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (fds[0].revents)
            break;
        if (fds[1].revents & POLLIN) {
            int c = accept(self->listen_fd, NULL, NULL);
            int b = c >= 0 ? socket(AF_INET, SOCK_STREAM, 0) : -1;
            int slot = -1;
            for (int i = 0; i < S_PAIRS && slot < 0; i++)
                if (self->pairs[i].client < 0)
                    slot = i;
            if (b >= 0 && slot >= 0 && connect(b, (struct sockaddr *) &self->broker, sizeof self->broker) == 0) {
                s_pair_t *p = &self->pairs[slot];
                p->client = c;
                p->broker = b;
                p->greeting = S_GREETING;
            } else {
                if (c >= 0)
                    close(c);
                if (b >= 0)
                    close(b);
            }
            continue;            /* the pollfd set changed */
        }
        for (int k = 2; k < n; k++) {
            s_pair_t *p = &self->pairs[map[k]];
            if (!fds[k].revents || p->client < 0 || fds[k].fd != (k % 2 == 0 ? p->client : p->broker))
                continue;
            uint8_t chunk[65536];
            ssize_t got = read(fds[k].fd, chunk, sizeof chunk);
            if (got <= 0) {
                s_close(p);
                continue;
            }
            if (fds[k].fd == p->client) {
                if (s_write_all(p->broker, chunk, (size_t) got) < 0)
                    s_close(p);
                continue;
            }
            if (p->len + (size_t) got > p->cap) {
                size_t cap = (p->len + (size_t) got) * 2;
                uint8_t *nb = realloc(p->buf, cap);
                if (!nb) {
                    s_close(p);
                    continue;
                }
                p->buf = nb;
                p->cap = cap;
            }
            memcpy(p->buf + p->len, chunk, (size_t) got);
            p->len += (size_t) got;
            if (s_pass_frames(self, p) < 0 && p->client >= 0)
                s_close(p);
        }
    }
    return NULL;
}

hh_proxy_t *
hh_proxy_start(hh_t *h, char *endpoint_out, size_t len)
{
    hh_proxy_t *self = calloc(1, sizeof *self);
    cr_assert_not_null(self);
    for (int i = 0; i < S_PAIRS; i++)
        self->pairs[i].client = self->pairs[i].broker = -1;
    int port = 0;
    cr_assert_eq(sscanf(h->endpoint, "tcp://127.0.0.1:%d", &port), 1, "endpoint %s", h->endpoint);
    self->broker.sin_family = AF_INET;
    self->broker.sin_port = htons((uint16_t) port);
    self->broker.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof a;
    self->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(self->listen_fd >= 0);
    cr_assert_eq(bind(self->listen_fd, (struct sockaddr *) &a, sizeof a), 0);
    cr_assert_eq(listen(self->listen_fd, 16), 0);
    cr_assert_eq(getsockname(self->listen_fd, (struct sockaddr *) &a, &alen), 0);
    cr_assert_eq(pipe(self->wake), 0);
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->moved, NULL);
    cr_assert_eq(pthread_create(&self->thread, NULL, s_run, self), 0);
    snprintf(endpoint_out, len, "tcp://127.0.0.1:%d", ntohs(a.sin_port));
    return self;
}

void
hh_proxy_stop(hh_proxy_t **self_p)
{
    hh_proxy_t *self = *self_p;
    if (!self)
        return;
    cr_assert_eq(write(self->wake[1], "x", 1), 1);
    pthread_join(self->thread, NULL);
    for (int i = 0; i < S_PAIRS; i++)
        if (self->pairs[i].client >= 0)
            s_close(&self->pairs[i]);
    close(self->listen_fd);
    close(self->wake[0]);
    close(self->wake[1]);
    pthread_cond_destroy(&self->moved);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

void
hh_proxy_lose_reply(hh_proxy_t *self, int pass)
{
    atomic_store(&self->to_pass, pass);
    atomic_store(&self->to_lose, 1);
}

int
hh_proxy_passed(hh_proxy_t *self)
{
    return atomic_load(&self->passed);
}

int
hh_proxy_lost(hh_proxy_t *self)
{
    return atomic_load(&self->lost);
}

void
hh_proxy_conf(hh_t *h, const char *conf, const char *endpoint, const char *name, char *out, size_t len)
{
    char text[8192], result[8400];
    FILE *f = fopen(conf, "r");
    cr_assert_not_null(f, "cannot read %s", conf);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char *line = strstr(text, "endpoint = ");
    cr_assert_not_null(line, "%s has no endpoint", conf);
    char *eol = strchr(line, '\n');
    cr_assert_not_null(eol);
    snprintf(result, sizeof result, "%.*sendpoint = %s%s", (int) (line - text), text, endpoint, eol);
    char file[256];
    snprintf(file, sizeof file, "%s.conf", name);
    hh_write(h, file, result, out, len);
}

bool
hh_proxy_wait_passed(hh_proxy_t *self, int n, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&self->lock);
    int rc = 0;
    while (atomic_load(&self->passed) < n && rc == 0)
        rc = pthread_cond_timedwait(&self->moved, &self->lock, &until);
    bool ok = atomic_load(&self->passed) >= n;
    pthread_mutex_unlock(&self->lock);
    return ok;
}
