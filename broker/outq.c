/* SPDX-License-Identifier: MIT */
/* Replies waiting for a slow reader (see outq.h). */
#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>
#include "outq.h"

typedef struct {
    GBytes *data;
    int64_t at_ms;
} s_item_t;

typedef struct {
    GQueue items;                /* s_item_t, oldest first */
    char z85[41];
} s_conn_t;

struct brk_outq {
    void *router;
    size_t limit;
    int64_t max_wait_ms;
    GHashTable *conns;           /* GBytes routing id -> s_conn_t */
    GHashTable *bytes;           /* principal Z85 -> bytes waiting (gsize) */
    size_t waiting;
};

static void
s_item_free(gpointer p)
{
    s_item_t *it = p;
    g_bytes_unref(it->data);
    g_free(it);
}

static void
s_conn_free(gpointer p)
{
    s_conn_t *c = p;
    g_queue_clear_full(&c->items, s_item_free);
    g_free(c);
}

brk_outq_t *
brk_outq_new(void *router, size_t limit, int64_t max_wait_ms)
{
    brk_outq_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->router = router;
    self->limit = limit;
    self->max_wait_ms = max_wait_ms;
    self->conns = g_hash_table_new_full(g_bytes_hash, g_bytes_equal, (GDestroyNotify) g_bytes_unref, s_conn_free);
    self->bytes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    return self;
}

void
brk_outq_destroy(brk_outq_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    brk_outq_t *self = *self_p;
    g_hash_table_destroy(self->conns);
    g_hash_table_destroy(self->bytes);
    free(self);
    *self_p = NULL;
}

size_t
brk_outq_bytes(const brk_outq_t *self, const char *z85)
{
    return GPOINTER_TO_SIZE(g_hash_table_lookup(self->bytes, z85));
}

static void
s_account(brk_outq_t *self, const char *z85, size_t len, bool add)
{
    size_t n = brk_outq_bytes(self, z85);
    n = add ? n + len : n - (len < n ? len : n);
    if (n)
        g_hash_table_replace(self->bytes, g_strdup(z85), GSIZE_TO_POINTER(n));
    else
        g_hash_table_remove(self->bytes, z85);
}

/* One try to hand a reply to libzmq. A full queue is tried once more after
 * the socket has read its pending commands (ZMQ_EVENTS makes it read them
 * now): the room may have come back since it last looked. */
static int
s_try(brk_outq_t *self, const void *rid, size_t rid_len, const void *data, size_t len)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (zmq_send(self->router, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
            return zmq_send(self->router, data, len, ZMQ_DONTWAIT) < 0 ? -errno : 0;
        if (errno != EAGAIN)
            return -errno;
        int events;
        size_t sz = sizeof events;
        zmq_getsockopt(self->router, ZMQ_EVENTS, &events, &sz);
    }
    return -EAGAIN;
}

int
brk_outq_send(brk_outq_t *self, const void *rid, size_t rid_len, const char *z85,
              const void *data, size_t len, int64_t now_ms)
{
    GBytes *key = g_bytes_new(rid, rid_len);
    s_conn_t *c = g_hash_table_lookup(self->conns, key);
    int rc = c ? -EAGAIN : s_try(self, rid, rid_len, data, len);   /* keep the order */
    if (rc != -EAGAIN) {
        g_bytes_unref(key);
        return rc;
    }
    if (brk_outq_bytes(self, z85) + len > self->limit) {
        g_bytes_unref(key);
        return -ENOBUFS;
    }
    if (!c) {
        c = g_new0(s_conn_t, 1);
        g_queue_init(&c->items);
        g_strlcpy(c->z85, z85, sizeof c->z85);
        g_hash_table_insert(self->conns, g_bytes_ref(key), c);
    }
    g_bytes_unref(key);
    s_item_t *it = g_new0(s_item_t, 1);
    it->data = g_bytes_new(data, len);
    it->at_ms = now_ms;
    g_queue_push_tail(&c->items, it);
    s_account(self, c->z85, len, true);
    self->waiting++;
    return 0;
}

size_t
brk_outq_flush(brk_outq_t *self, int64_t now_ms)
{
    GHashTableIter iter;
    gpointer key, value;
    g_hash_table_iter_init(&iter, self->conns);
    while (g_hash_table_iter_next(&iter, &key, &value)) {
        s_conn_t *c = value;
        gsize rid_len;
        const void *rid = g_bytes_get_data(key, &rid_len);
        s_item_t *it;
        while ((it = g_queue_peek_head(&c->items))) {
            gsize len;
            const void *data = g_bytes_get_data(it->data, &len);
            /* too old to matter (its client has retried), or the connection is gone */
            int rc = now_ms - it->at_ms > self->max_wait_ms ? -ETIMEDOUT : s_try(self, rid, rid_len, data, len);
            if (rc == -EAGAIN)
                break;
            g_queue_pop_head(&c->items);
            s_account(self, c->z85, len, false);
            self->waiting--;
            s_item_free(it);
        }
        if (g_queue_is_empty(&c->items))
            g_hash_table_iter_remove(&iter);
    }
    return self->waiting;
}
