/* SPDX-License-Identifier: MIT */
/* The deadline queue (see deadline.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "deadline.h"
#include "hold.h"
#include "handle_watch.h"

#define KEY_LEN (8 + 1 + BRK_DEADLINE_ID_LEN)

static void
s_key(int64_t when, brk_deadline_kind_t kind, const char *id, uint8_t key[KEY_LEN])
{
    uint64_t t = (uint64_t) (when < 0 ? 0 : when);
    for (int i = 0; i < 8; i++)             /* big-endian: LMDB orders keys bytewise */
        key[i] = (uint8_t) (t >> (56 - 8 * i));
    key[8] = (uint8_t) kind;
    memcpy(key + 9, id, BRK_DEADLINE_ID_LEN);
}

int
brk_deadline_add(brk_store_t *store, MDB_txn *txn, int64_t when, brk_deadline_kind_t kind, const char *id)
{
    uint8_t key[KEY_LEN];
    s_key(when, kind, id, key);
    return brk_store_put(store, txn, BRK_DB_DEADLINES, key, sizeof key, "", 0);
}

int
brk_deadline_remove(brk_store_t *store, MDB_txn *txn, int64_t when, brk_deadline_kind_t kind, const char *id)
{
    uint8_t key[KEY_LEN];
    s_key(when, kind, id, key);
    int rc = brk_store_del(store, txn, BRK_DB_DEADLINES, key, sizeof key);
    return rc == -ENOENT ? 0 : rc;
}

typedef struct {
    int64_t now;
    uint8_t keys[BRK_DEADLINE_BATCH][KEY_LEN];
    size_t n;
} s_due_t;

static int
s_due(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void) val;
    (void) vlen;
    s_due_t *d = arg;
    if (klen != KEY_LEN)
        return 0;
    uint64_t t = 0;
    for (int i = 0; i < 8; i++)
        t = t << 8 | ((const uint8_t *) key)[i];
    if ((int64_t) t > d->now || d->n == BRK_DEADLINE_BATCH)
        return 1;                /* keys are in time order: nothing later is due */
    memcpy(d->keys[d->n++], key, KEY_LEN);
    return 0;
}

int
brk_deadlines_run(brk_ctx_t *ctx, MDB_txn *txn, bool *more)
{
    s_due_t *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    d->now = ctx->now;
    int rc = brk_store_each(ctx->store, txn, BRK_DB_DEADLINES, NULL, 0, s_due, d);
    *more = d->n == BRK_DEADLINE_BATCH;
    int handled = 0;
    for (size_t i = 0; rc == 0 && i < d->n; i++) {
        char id[BRK_DEADLINE_ID_LEN + 1];
        memcpy(id, d->keys[i] + 9, BRK_DEADLINE_ID_LEN);
        id[BRK_DEADLINE_ID_LEN] = '\0';
        if ((rc = brk_store_del(ctx->store, txn, BRK_DB_DEADLINES, d->keys[i], KEY_LEN)) < 0)
            break;
        switch ((brk_deadline_kind_t) d->keys[i][8]) {
        case BRK_DEADLINE_HOLD: rc = brk_hold_expire(ctx, txn, id); break;
        case BRK_DEADLINE_PURGE: rc = brk_hold_purge(ctx, txn, id); break;
        case BRK_DEADLINE_WATCH: rc = brk_watch_expire(ctx, txn, id); break;
        default: break;          /* not a kind this broker wrote: gone from the queue, done */
        }
        handled++;
    }
    free(d);
    return rc < 0 ? rc : handled;
}
