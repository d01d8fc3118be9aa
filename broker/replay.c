/* SPDX-License-Identifier: MIT */
/* Replies to recent writes (see replay.h).
 *
 * BRK_DB_REPLIES:    curve key (32), be64 id -> digest (16), be64 at, status (1), reply
 * BRK_DB_REPLY_TIMES: be64 at, curve key (32), be64 id -> ""  (for pruning, oldest first)
 * BRK_DB_META:        "replies" curve key (32) -> be64 how many the key has kept */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include "../proto/haven.pb-c.h"
#include "replay.h"

#define S_HEAD (BRK_REPLAY_DIGEST + 8 + 1)

static void
s_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t) v;
}

static uint64_t
s_get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

void
brk_replay_digest(const void *request, size_t len, uint8_t digest[BRK_REPLAY_DIGEST])
{
    /* Unkeyed BLAKE2b cannot fail for these sizes; a failure would leave
     * a digest no retry matches, which is safe (the retry is done again). */
    if (crypto_generichash(digest, BRK_REPLAY_DIGEST, request, len, NULL, 0) != 0)
        randombytes_buf(digest, BRK_REPLAY_DIGEST);
}

bool
brk_replay_keeps(int status)
{
    return status != HAVEN__STATUS__STATUS_INTERNAL && status != HAVEN__STATUS__STATUS_LIMIT;
}

static void
s_key(uint8_t out[40], const uint8_t key[32], uint64_t id)
{
    memcpy(out, key, 32);
    s_be64(out + 32, id);
}

int
brk_replay_find(brk_store_t *store, MDB_txn *txn, const uint8_t key[32], uint64_t id,
                const uint8_t digest[BRK_REPLAY_DIGEST], uint8_t **reply_out, size_t *len_out,
                int *status_out)
{
    uint8_t k[40];
    const uint8_t *v;
    size_t vlen;
    s_key(k, key, id);
    int rc = brk_store_get(store, txn, BRK_DB_REPLIES, k, sizeof k, (const void **) &v, &vlen);
    if (rc < 0)
        return rc;
    if (vlen <= S_HEAD || sodium_memcmp(v, digest, BRK_REPLAY_DIGEST) != 0)
        return -ENOENT;          /* the same id for other bytes: a new request */
    uint8_t *copy = malloc(vlen - S_HEAD);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, v + S_HEAD, vlen - S_HEAD);
    *reply_out = copy;
    *len_out = vlen - S_HEAD;
    *status_out = v[BRK_REPLAY_DIGEST + 8];
    return 0;
}

/* How many replies key has kept, and change it by delta. */
static int
s_count(brk_store_t *store, MDB_txn *txn, const uint8_t key[32], int64_t delta, uint64_t *count_out)
{
    uint8_t k[39] = "replies", v[8];
    const uint8_t *cur;
    size_t clen;
    uint64_t n = 0;
    memcpy(k + 7, key, 32);
    int rc = brk_store_get(store, txn, BRK_DB_META, k, sizeof k, (const void **) &cur, &clen);
    if (rc == 0 && clen == 8)
        n = s_get_be64(cur);
    else if (rc < 0 && rc != -ENOENT)
        return rc;
    if (count_out)
        *count_out = n;
    if (delta == 0)
        return 0;
    n = delta < 0 && n < (uint64_t) -delta ? 0 : n + (uint64_t) delta;
    if (n == 0)
        rc = brk_store_del(store, txn, BRK_DB_META, k, sizeof k);
    else {
        s_be64(v, n);
        rc = brk_store_put(store, txn, BRK_DB_META, k, sizeof k, v, sizeof v);
    }
    return rc == -ENOENT ? 0 : rc;
}

int
brk_replay_keep(brk_store_t *store, MDB_txn *txn, const uint8_t key[32], uint64_t id,
                const uint8_t digest[BRK_REPLAY_DIGEST], int64_t now, int status,
                const uint8_t *reply, size_t len)
{
    uint8_t k[40], t[48];
    const void *old;
    size_t oldlen;
    uint64_t kept = 0;
    if (len > BRK_REPLAY_MAX_BYTES)
        return 1;
    s_key(k, key, id);
    int rc = brk_store_get(store, txn, BRK_DB_REPLIES, k, sizeof k, &old, &oldlen);
    bool replacing = rc == 0;
    if (rc < 0 && rc != -ENOENT)
        return rc;
    if (!replacing) {
        if ((rc = s_count(store, txn, key, 0, &kept)) < 0)
            return rc;
        if (kept >= BRK_REPLAY_PER_KEY)
            return 1;
    }
    uint8_t *v = malloc(S_HEAD + len);
    if (!v)
        return -ENOMEM;
    memcpy(v, digest, BRK_REPLAY_DIGEST);
    s_be64(v + BRK_REPLAY_DIGEST, (uint64_t) now);
    v[BRK_REPLAY_DIGEST + 8] = (uint8_t) status;
    memcpy(v + S_HEAD, reply, len);
    rc = brk_store_put(store, txn, BRK_DB_REPLIES, k, sizeof k, v, S_HEAD + len);
    free(v);
    s_be64(t, (uint64_t) now);
    memcpy(t + 8, k, sizeof k);
    if (rc == 0)
        rc = brk_store_put(store, txn, BRK_DB_REPLY_TIMES, t, sizeof t, "", 0);
    if (rc == 0 && !replacing)
        rc = s_count(store, txn, key, 1, NULL);
    return rc;
}

int
brk_replay_forget(brk_store_t *store, MDB_txn *txn, const uint8_t key[32])
{
    int n = brk_store_del_prefix(store, txn, BRK_DB_REPLIES, key, 32);
    if (n < 0)
        return n;
    /* the time index's entries go when they are due: pruning finds
     * nothing behind them */
    uint8_t k[39] = "replies";
    memcpy(k + 7, key, 32);
    int rc = brk_store_del(store, txn, BRK_DB_META, k, sizeof k);
    return rc < 0 && rc != -ENOENT ? rc : n;
}

typedef struct {
    uint64_t before;
    size_t max, n;
    uint8_t (*keys)[48];
    bool more;
} s_due_t;

static int
s_due(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void) val;
    (void) vlen;
    s_due_t *d = arg;
    if (klen != 48)
        return 0;                /* not a key this module wrote: leave it */
    if (s_get_be64(key) >= d->before)
        return 1;                /* the rest are younger */
    if (d->n == d->max) {
        d->more = true;
        return 1;
    }
    memcpy(d->keys[d->n++], key, 48);
    return 0;
}

int
brk_replay_prune(brk_store_t *store, MDB_txn *txn, int64_t before, size_t max, bool *more)
{
    s_due_t d = { (uint64_t) (before > 0 ? before : 0), max, 0, NULL, false };
    *more = false;
    if (max == 0 || !(d.keys = calloc(max, sizeof *d.keys)))
        return max == 0 ? 0 : -ENOMEM;
    int rc = brk_store_each(store, txn, BRK_DB_REPLY_TIMES, NULL, 0, s_due, &d);
    for (size_t i = 0; rc == 0 && i < d.n; i++) {
        const uint8_t *t = d.keys[i];
        const uint8_t *v;
        size_t vlen;
        /* The reply may have been replaced since (the same id for other
         * bytes): delete it only if it is the one this entry dates. */
        int grc = brk_store_get(store, txn, BRK_DB_REPLIES, t + 8, 40, (const void **) &v, &vlen);
        if (grc == 0 && vlen >= S_HEAD && memcmp(v + BRK_REPLAY_DIGEST, t, 8) == 0) {
            rc = brk_store_del(store, txn, BRK_DB_REPLIES, t + 8, 40);
            if (rc == 0)
                rc = s_count(store, txn, t + 8, -1, NULL);
        } else if (grc < 0 && grc != -ENOENT)
            rc = grc;
        if (rc == 0)
            rc = brk_store_del(store, txn, BRK_DB_REPLY_TIMES, t, 48);
    }
    free(d.keys);
    *more = d.more;
    return rc < 0 ? rc : (int) d.n;
}
