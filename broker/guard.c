/* SPDX-License-Identifier: MIT */
/* What each principal may cost the broker (see guard.h). */
#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "guard.h"

typedef struct {
    double tokens;
    int64_t at_ms;
    bool used;
} s_bucket_t;

typedef struct {
    s_bucket_t rate[BRK_RATE__COUNT];
    uint32_t in_batch;           /* requests in this poll cycle */
    uint32_t conns;              /* connections that sent a request */
    int64_t *admitted;           /* when ZAP admitted connections that have not spoken yet */
    uint32_t n_admitted;
} s_key_t;

typedef struct {
    char *z85;                   /* NULL until its first request */
    int64_t opened_ms;
} s_conn_t;

struct brk_guard {
    const brk_config_t *cfg;
    GHashTable *keys;            /* curve Z85 -> s_key_t */
    GHashTable *conns;           /* fd -> s_conn_t */
    GHashTable *refused;         /* principal name ("" for unknown keys) -> uint32_t[] */
    ProtobufCAllocator alloc;
    size_t used, budget;         /* this batch's decode memory */
    bool key_full;               /* a key reached requests_in_flight this batch */
};

static const char *const s_refusal_names[BRK_REFUSE__COUNT] = {
    "unknown-key", "revoked", "too-many-connections", "silent-connection", "malformed",
    "wrong-role", "too-large", "rate", "too-many-in-flight", "memory",
};

const char *
brk_refusal_name(brk_refusal_t why)
{
    return why < BRK_REFUSE__COUNT ? s_refusal_names[why] : "?";
}

static void *
s_alloc(void *data, size_t size)
{
    brk_guard_t *self = data;
    if (size > self->budget - self->used)
        return NULL;
    void *p = malloc(size);
    if (p)
        self->used += size;
    return p;
}

static void
s_free(void *data, void *p)
{
    (void) data;
    free(p);
}

static void
s_key_free(void *p)
{
    s_key_t *k = p;
    g_free(k->admitted);
    g_free(k);
}

static void
s_conn_free(void *p)
{
    s_conn_t *c = p;
    g_free(c->z85);
    g_free(c);
}

brk_guard_t *
brk_guard_new(const brk_config_t *cfg)
{
    brk_guard_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = cfg;
    self->keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, s_key_free);
    self->conns = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, s_conn_free);
    self->refused = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    self->budget = (size_t) cfg->batch_memory_mb << 20;
    self->alloc = (ProtobufCAllocator) { s_alloc, s_free, self };
    return self;
}

void
brk_guard_destroy(brk_guard_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    brk_guard_t *self = *self_p;
    g_hash_table_destroy(self->keys);
    g_hash_table_destroy(self->conns);
    g_hash_table_destroy(self->refused);
    free(self);
    *self_p = NULL;
}

static s_key_t *
s_key(brk_guard_t *self, const char *z85)
{
    s_key_t *k = g_hash_table_lookup(self->keys, z85);
    if (!k) {
        k = g_new0(s_key_t, 1);
        g_hash_table_insert(self->keys, g_strdup(z85), k);
    }
    return k;
}

/* ---------------------------------------------------------------- connections */

void
brk_guard_conn_open(brk_guard_t *self, int fd, int64_t now_ms)
{
    s_conn_t *c = g_hash_table_lookup(self->conns, GINT_TO_POINTER(fd));
    if (c && !c->opened_ms) {
        /* its first request came before this event: the same connection */
        c->opened_ms = now_ms;
        return;
    }
    /* a reused fd number: the old connection's close was missed */
    brk_guard_conn_close(self, fd);
    c = g_new0(s_conn_t, 1);
    c->opened_ms = now_ms;
    g_hash_table_insert(self->conns, GINT_TO_POINTER(fd), c);
}

void
brk_guard_conn_close(brk_guard_t *self, int fd)
{
    s_conn_t *c = g_hash_table_lookup(self->conns, GINT_TO_POINTER(fd));
    if (!c)
        return;
    if (c->z85) {
        s_key_t *k = g_hash_table_lookup(self->keys, c->z85);
        if (k && k->conns)
            k->conns--;
    }
    g_hash_table_remove(self->conns, GINT_TO_POINTER(fd));
}

int
brk_guard_conn_attach(brk_guard_t *self, int fd, const char *z85, const char *name)
{
    (void) name;
    s_conn_t *c = g_hash_table_lookup(self->conns, GINT_TO_POINTER(fd));
    if (!c) {
        /* accepted before the monitor told us (or the event is still queued) */
        c = g_new0(s_conn_t, 1);
        g_hash_table_insert(self->conns, GINT_TO_POINTER(fd), c);
    }
    if (c->z85)
        return 0;
    s_key_t *k = s_key(self, z85);
    if (k->n_admitted) {         /* it is one ZAP admitted: it spoke now */
        memmove(k->admitted, k->admitted + 1, --k->n_admitted * sizeof *k->admitted);
    }
    if ((int64_t) k->conns >= self->cfg->connections_per_key)
        return -EMFILE;
    c->z85 = g_strdup(z85);
    k->conns++;
    return 0;
}

/* Admissions older than silent_connection have spoken or been closed. */
static void
s_expire_admitted(const brk_guard_t *self, s_key_t *k, int64_t now_ms)
{
    uint32_t keep = 0;
    for (uint32_t i = 0; i < k->n_admitted; i++)
        if (now_ms - k->admitted[i] <= self->cfg->silent_connection_s * 1000)
            k->admitted[keep++] = k->admitted[i];
    k->n_admitted = keep;
}

bool
brk_guard_conn_admit(brk_guard_t *self, const char *z85, int64_t now_ms)
{
    s_key_t *k = s_key(self, z85);
    s_expire_admitted(self, k, now_ms);
    if ((int64_t) (k->conns + k->n_admitted) >= self->cfg->connections_per_key)
        return false;
    k->admitted = g_renew(int64_t, k->admitted, k->n_admitted + 1);
    k->admitted[k->n_admitted++] = now_ms;
    return true;
}

bool
brk_guard_conn_full(const brk_guard_t *self, const char *z85)
{
    const s_key_t *k = g_hash_table_lookup(self->keys, z85);
    return k && (int64_t) k->conns >= self->cfg->connections_per_key;
}

unsigned
brk_guard_conn_count(const brk_guard_t *self, const char *z85)
{
    const s_key_t *k = g_hash_table_lookup(self->keys, z85);
    return k ? k->conns : 0;
}

void
brk_guard_conn_each_to_drop(brk_guard_t *self, int64_t now_ms, int64_t silent_ms, const char *z85,
                            void (*fn)(void *arg, int fd), void *arg)
{
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, self->conns);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        s_conn_t *c = value;
        bool silent = !c->z85 && c->opened_ms > 0 && now_ms - c->opened_ms > silent_ms;
        if (silent || (z85 && c->z85 && strcmp(c->z85, z85) == 0)) {
            if (silent)
                c->opened_ms = -1;   /* told once; its close event will follow */
            fn(arg, GPOINTER_TO_INT(key));
        }
    }
}

/* ---------------------------------------------------------------- rates */

bool
brk_guard_rate(brk_guard_t *self, const char *z85, brk_rate_t rate, int64_t now_ms)
{
    /* Token buckets: a burst of the whole allowance, refilled evenly. */
    int64_t per, window_ms;
    switch (rate) {
    case BRK_RATE_SEARCH: per = self->cfg->searches_per_minute; window_ms = 60000; break;
    case BRK_RATE_WRITE: per = self->cfg->writes_per_minute; window_ms = 60000; break;
    default: per = self->cfg->holds_per_hour; window_ms = 3600000; break;
    }
    s_bucket_t *b = &s_key(self, z85)->rate[rate];
    if (!b->used) {
        b->used = true;
        b->tokens = (double) per;
        b->at_ms = now_ms;
    }
    b->tokens += (double) (now_ms - b->at_ms) * (double) per / (double) window_ms;
    if (b->tokens > (double) per)
        b->tokens = (double) per;
    b->at_ms = now_ms;
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}

/* ---------------------------------------------------------------- batches */

bool
brk_guard_take(brk_guard_t *self, const char *z85)
{
    s_key_t *k = s_key(self, z85);
    if ((int64_t) k->in_batch >= self->cfg->requests_in_flight)
        return false;
    if ((int64_t) ++k->in_batch >= self->cfg->requests_in_flight)
        self->key_full = true;
    return true;
}

bool
brk_guard_batch_full(const brk_guard_t *self)
{
    return self->key_full || self->used >= self->budget;
}

ProtobufCAllocator *
brk_guard_allocator(brk_guard_t *self)
{
    return &self->alloc;
}

void
brk_guard_batch_end(brk_guard_t *self)
{
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, self->keys);
    while (g_hash_table_iter_next(&it, &key, &value))
        ((s_key_t *) value)->in_batch = 0;
    self->used = 0;
    self->key_full = false;
}

/* ---------------------------------------------------------------- refusals */

void
brk_guard_refused(brk_guard_t *self, const char *name, brk_refusal_t why)
{
    const char *k = name && *name ? name : "";
    uint32_t *counts = g_hash_table_lookup(self->refused, k);
    if (!counts) {
        counts = g_new0(uint32_t, BRK_REFUSE__COUNT);
        g_hash_table_insert(self->refused, g_strdup(k), counts);
    }
    if (why < BRK_REFUSE__COUNT && counts[why] < UINT32_MAX)
        counts[why]++;
}

void
brk_guard_refusals_take(brk_guard_t *self, void (*fn)(void *arg, const char *name, const uint32_t *counts),
                        void *arg)
{
    GHashTableIter it;
    gpointer key, value;
    g_hash_table_iter_init(&it, self->refused);
    while (g_hash_table_iter_next(&it, &key, &value))
        fn(arg, *(const char *) key ? key : NULL, value);
    g_hash_table_remove_all(self->refused);
}

void
brk_guard_conn_drop(void *arg, int fd)
{
    (void) arg;
    shutdown(fd, SHUT_RDWR);
}
