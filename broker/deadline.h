/* SPDX-License-Identifier: MIT */
/* The deadline queue: every timer the broker keeps is a key in the store
 * (be64 time, kind, id), so LMDB keeps them in time order and a restart
 * loses none. The loop runs what is due once a second (upkeep.h). */
#ifndef BRK_DEADLINE_H
#define BRK_DEADLINE_H

#include <stdbool.h>
#include <stdint.h>
#include "ctx.h"

/* What a deadline does when it comes. The values are the byte stored in
 * each key: never change them. */
typedef enum {
    BRK_DEADLINE_HOLD = 'e',     /* a pending hold lapses (handle_hold.h) */
    BRK_DEADLINE_PURGE = 'p',    /* a closed hold is deleted, sealed address and all */
    BRK_DEADLINE_WATCH = 'w',    /* a watch ends (handle_watch.h) */
} brk_deadline_kind_t;

/* A deadline's id: a hold's or a watch's, 16 hex digits. */
#define BRK_DEADLINE_ID_LEN 16
/* The most deadlines one brk_deadlines_run handles. */
#define BRK_DEADLINE_BATCH 64

/* Queue a deadline of kind for id at when (seconds; before 0 counts as 0).
 * Returns 0 or -errno. */
int brk_deadline_add(brk_store_t *store, MDB_txn *txn, int64_t when, brk_deadline_kind_t kind, const char *id);

/* Take it off the queue again (the hold was answered, the watch
 * cancelled); one that is not there is no error. Returns 0 or -errno. */
int brk_deadline_remove(brk_store_t *store, MDB_txn *txn, int64_t when, brk_deadline_kind_t kind,
                        const char *id);

/* Handle the deadlines due at or before ctx->now, oldest first, at most
 * BRK_DEADLINE_BATCH, inside txn: each leaves the queue and its pending
 * hold lapses, its closed hold is purged or its watch ends. One whose hold
 * or watch is gone is handled too (nothing is left to do), so that a head
 * of such keys cannot keep the queue from moving. Sets *more if it stopped
 * at its batch size. Returns how many it handled, or -errno. */
int brk_deadlines_run(brk_ctx_t *ctx, MDB_txn *txn, bool *more);

#endif
