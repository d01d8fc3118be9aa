/* SPDX-License-Identifier: MIT */
/* Standing searches in memory (see watch.h). */
#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include "match.h"
#include "watch.h"

typedef struct {
    char id[17];
    uint8_t key[32];
    int64_t expires_at;
    brk_need_t *need;
} s_watch_t;

struct brk_watches {
    GHashTable *by_id;           /* id -> s_watch_t */
};

static void
s_free(gpointer p)
{
    s_watch_t *w = p;
    free(w->need);
    g_free(w);
}

brk_watches_t *
brk_watches_new(void)
{
    brk_watches_t *self = calloc(1, sizeof *self);
    if (self)
        self->by_id = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, s_free);
    return self;
}

void
brk_watches_destroy(brk_watches_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    g_hash_table_destroy((*self_p)->by_id);
    free(*self_p);
    *self_p = NULL;
}

int
brk_watches_put(brk_watches_t *self, const Haven__Watch *w, brk_districts_t *districts, uint32_t hidden)
{
    char err[256];
    if (!w->id || strlen(w->id) != 16 || !w->need || w->principal_key.len != 32)
        return -EINVAL;
    s_watch_t *x = g_new0(s_watch_t, 1);
    memcpy(x->id, w->id, 17);
    memcpy(x->key, w->principal_key.data, 32);
    x->expires_at = w->expires_at;
    int rc = brk_need_compile(w->need, districts, w->created_at, &x->need, err, sizeof err);
    if (rc < 0) {
        g_free(x);
        return rc;
    }
    brk_need_hide_kinds(x->need, hidden);
    g_hash_table_replace(self->by_id, x->id, x);
    return 0;
}

void
brk_watches_del(brk_watches_t *self, const char *id)
{
    g_hash_table_remove(self->by_id, id);
}

size_t
brk_watches_count(const brk_watches_t *self)
{
    return g_hash_table_size(self->by_id);
}

void
brk_watches_match(brk_watches_t *self, const brk_index_t *index, const brk_avail_t *unit, int64_t now,
                  void (*fn)(void *arg, const char *id, const uint8_t key[32]), void *arg)
{
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, self->by_id);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        s_watch_t *w = v;
        if (w->expires_at <= now)
            continue;
        brk_need_set_now(w->need, now);
        if (brk_match_unit(w->need, index, unit) == 0)
            fn(arg, w->id, w->key);
    }
}

void
brk_watches_match_new(brk_watches_t *self, const brk_index_t *index, const brk_avail_t *before,
                      const brk_avail_t *after, int64_t now,
                      void (*fn)(void *arg, const char *id, const uint8_t key[32]), void *arg)
{
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, self->by_id);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        s_watch_t *w = v;
        if (w->expires_at <= now)
            continue;
        brk_need_set_now(w->need, now);
        if (brk_match_unit(w->need, index, after) == 0 && !(before && brk_match_unit(w->need, index, before) == 0))
            fn(arg, w->id, w->key);
    }
}
