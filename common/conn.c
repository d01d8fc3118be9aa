/* SPDX-License-Identifier: MIT */
/* Haven client connection (Lazy Pirate over a DEALER socket).
 * A DEALER rather than a REQ: after a timeout we can drop the socket and
 * start again without REQ's lock-step state, and we match replies to
 * requests by id, discarding late replies to earlier attempts. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>
#include "conn.h"
#include "../proto/wire.h"

struct hv_conn {
    void *ctx;
    void *sock;
    void *monitor;
    char *endpoint;
    char server[41];
    const hv_keys_t *keys;
    int timeout_ms;
    int retries;
    uint64_t next_id;
    unsigned serial;
    Haven__Reply *notify;        /* one pushed while a call waited */
};

int
hv_curve_client(void *sock, const hv_keys_t *keys, const char *server_z85)
{
    int linger = 0, hs = HV_HANDSHAKE_MS, hb = HV_HEARTBEAT_MS, hbt = 3 * HV_HEARTBEAT_MS;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_z85, 40) < 0
        || zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, hv_keys_curve_public(keys), 40) < 0
        || zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, hv_keys_curve_secret(keys), 40) < 0
        || zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger) < 0
        || zmq_setsockopt(sock, ZMQ_HANDSHAKE_IVL, &hs, sizeof hs) < 0
        || zmq_setsockopt(sock, ZMQ_HEARTBEAT_IVL, &hb, sizeof hb) < 0
        || zmq_setsockopt(sock, ZMQ_HEARTBEAT_TIMEOUT, &hbt, sizeof hbt) < 0)
        return -errno;
    return 0;
}

int
hv_curve_server(void *sock, const hv_keys_t *keys)
{
    int one = 1, linger = 0, hs = HV_HANDSHAKE_MS, hb = HV_HEARTBEAT_MS, hbt = 3 * HV_HEARTBEAT_MS;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) < 0
        || zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, hv_keys_curve_secret(keys), 40) < 0
        || zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, "haven", 5) < 0
        || zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger) < 0
        || zmq_setsockopt(sock, ZMQ_HANDSHAKE_IVL, &hs, sizeof hs) < 0
        || zmq_setsockopt(sock, ZMQ_HEARTBEAT_IVL, &hb, sizeof hb) < 0
        || zmq_setsockopt(sock, ZMQ_HEARTBEAT_TIMEOUT, &hbt, sizeof hbt) < 0)
        return -errno;
    return 0;
}

hv_conn_t *
hv_conn_new(const char *endpoint, const char *server_z85, const hv_keys_t *keys,
            int timeout_ms, int retries)
{
    hv_conn_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->ctx = zmq_ctx_new();
    self->endpoint = strdup(endpoint);
    if (!self->ctx || !self->endpoint || strlen(server_z85) != 40) {
        hv_conn_destroy(&self);
        return NULL;
    }
    memcpy(self->server, server_z85, 41);
    self->keys = keys;
    self->timeout_ms = timeout_ms > 0 ? timeout_ms : 3000;
    self->retries = retries > 0 ? retries : 1;
    /* Random start so that ids from two runs of a client never collide. */
    randombytes_buf(&self->next_id, sizeof self->next_id);
    self->next_id &= 0x7fffffffffffffffULL;
    return self;
}

static int64_t
s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
s_disconnect(hv_conn_t *self)
{
    if (self->sock)
        zmq_close(self->sock);
    if (self->monitor)
        zmq_close(self->monitor);
    self->sock = self->monitor = NULL;
}

static int
s_connect(hv_conn_t *self)
{
    char mon[64];
    int rc;
    self->sock = zmq_socket(self->ctx, ZMQ_DEALER);
    if (!self->sock)
        return -errno;
    if ((rc = hv_curve_client(self->sock, self->keys, self->server)) < 0)
        goto fail;
    /* The monitor tells us when the broker's ZAP handler refused our key;
     * without it a refused client would just time out. */
    snprintf(mon, sizeof mon, "inproc://hv-conn-monitor-%u", self->serial++);
    if (zmq_socket_monitor(self->sock, mon, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                           | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) < 0) {
        rc = -errno;
        goto fail;
    }
    self->monitor = zmq_socket(self->ctx, ZMQ_PAIR);
    if (!self->monitor || zmq_connect(self->monitor, mon) < 0) {
        rc = -errno;
        goto fail;
    }
    if (zmq_connect(self->sock, self->endpoint) < 0) {
        rc = -errno;
        goto fail;
    }
    return 0;
fail:
    s_disconnect(self);
    return rc;
}

/* Read one monitor event; returns the event number or -1. */
static int
s_monitor_event(void *monitor)
{
    zmq_msg_t m;
    int event = -1;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, monitor, ZMQ_DONTWAIT) >= 6) {
        uint16_t ev;
        memcpy(&ev, zmq_msg_data(&m), 2);
        event = ev;
    }
    while (zmq_msg_more(&m)) {   /* the second frame is the endpoint */
        zmq_msg_close(&m);
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, monitor, ZMQ_DONTWAIT) < 0)
            break;
    }
    zmq_msg_close(&m);
    return event;
}

int
hv_conn_call(hv_conn_t *self, Haven__Request *req, Haven__Reply **reply_out)
{
    uint8_t *buf = NULL;
    size_t len;
    int rc;

    /* A caller that must survive its own restart (the agent's outbox)
     * brings its own id; every retry here resends the same bytes, so the
     * broker answers a repeat with its first reply (design.md section 7). */
    bool assigned = req->id == 0;
    if (assigned)
        req->id = ++self->next_id;
    uint64_t id = req->id;
    rc = hv_pack(&req->base, &buf, &len);
    if (assigned)
        req->id = 0;             /* a caller that sends this struct again makes a new request */
    if (rc < 0)
        return rc;
    rc = -ETIMEDOUT;
    for (int attempt = 0; attempt < self->retries; attempt++) {
        if (!self->sock) {
            int crc = s_connect(self);
            if (crc < 0) {
                rc = crc;
                break;
            }
        }
        if (zmq_send(self->sock, buf, len, 0) < 0) {
            rc = -errno;
            break;
        }
        int64_t deadline = self->timeout_ms;
        int done = 0;
        while (!done && deadline > 0) {
            zmq_pollitem_t items[] = {
                { self->sock, 0, ZMQ_POLLIN, 0 },
                { self->monitor, 0, ZMQ_POLLIN, 0 },
            };
            int64_t t0 = s_now_ms();
            int n = zmq_poll(items, 2, (long) deadline);
            deadline -= s_now_ms() - t0;
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                rc = -errno;
                done = 1;
                break;
            }
            if (items[1].revents & ZMQ_POLLIN) {
                int ev = s_monitor_event(self->monitor);
                if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                    || ev == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
                    rc = -EACCES;
                    done = 1;
                    break;
                }
            }
            if (items[0].revents & ZMQ_POLLIN) {
                zmq_msg_t m;
                zmq_msg_init(&m);
                if (zmq_msg_recv(&m, self->sock, 0) >= 0) {
                    Haven__Reply *r = NULL;
                    if (hv_reply_decode(zmq_msg_data(&m), zmq_msg_size(&m), &r) < 0) {
                        rc = -EBADMSG;
                        done = 1;
                    } else if (r->id == 0 && r->body_case == HAVEN__REPLY__BODY_NOTIFY) {
                        /* pushed, not an answer: keep the latest for wait_notify */
                        if (self->notify)
                            haven__reply__free_unpacked(self->notify, NULL);
                        self->notify = r;
                    } else if (r->id != id && r->id != 0) {
                        /* id 0: the broker could not read our id; with one
                         * request in flight, the answer is ours. */
                        haven__reply__free_unpacked(r, NULL);   /* late reply to an earlier try */
                    } else {
                        *reply_out = r;
                        rc = 0;
                        done = 1;
                    }
                }
                zmq_msg_close(&m);
            }
        }
        if (done)
            break;
        /* Lazy Pirate: the socket may be wedged; start again. */
        s_disconnect(self);
    }
    free(buf);
    return rc;
}

int
hv_conn_wait_notify(hv_conn_t *self, int timeout_ms, Haven__Reply **notify_out)
{
    if (self->notify) {
        *notify_out = self->notify;
        self->notify = NULL;
        return 0;
    }
    if (!self->sock)
        return -ENOTCONN;
    int64_t deadline = s_now_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - s_now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        zmq_pollitem_t item = { self->sock, 0, ZMQ_POLLIN, 0 };
        int n = zmq_poll(&item, 1, (long) left);
        if (n < 0)
            return errno == EINTR ? -EINTR : -errno;
        if (n == 0)
            continue;
        zmq_msg_t m;
        zmq_msg_init(&m);
        Haven__Reply *r = NULL;
        if (zmq_msg_recv(&m, self->sock, 0) >= 0
            && hv_reply_decode(zmq_msg_data(&m), zmq_msg_size(&m), &r) == 0) {
            if (r->id == 0 && r->body_case == HAVEN__REPLY__BODY_NOTIFY) {
                zmq_msg_close(&m);
                *notify_out = r;
                return 0;
            }
            haven__reply__free_unpacked(r, NULL);   /* a late reply: not for us now */
        }
        zmq_msg_close(&m);
    }
}

void
hv_conn_destroy(hv_conn_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    hv_conn_t *self = *self_p;
    if (self->notify)
        haven__reply__free_unpacked(self->notify, NULL);
    s_disconnect(self);
    if (self->ctx)
        zmq_ctx_term(self->ctx);
    free(self->endpoint);
    free(self);
    *self_p = NULL;
}
