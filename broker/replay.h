/* SPDX-License-Identifier: MIT */
/* Replies to recent writes, kept in the store by principal and request id,
 * so that a retry after a lost reply is answered with the original reply
 * instead of being done twice (design.md section 7: retries are safe).
 * A retry is the same request id with the same bytes; the same id with
 * other bytes is a new request (ids are the client's, and a client may
 * restart its counter), which then replaces the kept reply. */
#ifndef BRK_REPLAY_H
#define BRK_REPLAY_H

#include <stddef.h>
#include <stdint.h>
#include "store.h"

#define BRK_REPLAY_DIGEST 16
/* What one key may have kept at once, and the largest reply kept: beyond
 * them a write is answered but its retry would be done again. Only writes
 * that cannot be repeated harmlessly are kept (broker.c's op table), at
 * human rates, so honest keys stay far below both. */
#define BRK_REPLAY_PER_KEY 10000
#define BRK_REPLAY_MAX_BYTES 65536

/* The digest that tells a retry from another request with the same id. */
void brk_replay_digest(const void *request, size_t len, uint8_t digest[BRK_REPLAY_DIGEST]);

/* The reply kept for (key, id) if it answered a request with this digest:
 * 0 with a malloc'd copy in *reply_out and its status in *status_out,
 * -ENOENT if none (or it answered other bytes), or -errno. */
int brk_replay_find(brk_store_t *store, MDB_txn *txn, const uint8_t key[32], uint64_t id,
                    const uint8_t digest[BRK_REPLAY_DIGEST], uint8_t **reply_out, size_t *len_out,
                    int *status_out);

/* Keep the reply to (key, id), made at time now, in txn. Returns 0, 1 if
 * it was not kept (too large, or the key has BRK_REPLAY_PER_KEY kept), or
 * -errno (-ENOSPC: the map is full). */
int brk_replay_keep(brk_store_t *store, MDB_txn *txn, const uint8_t key[32], uint64_t id,
                    const uint8_t digest[BRK_REPLAY_DIGEST], int64_t now, int status,
                    const uint8_t *reply, size_t len);

/* Forget replies kept before `before`, at most max of them. Sets *more if
 * there may be others due. Returns how many, or -errno. */
int brk_replay_prune(brk_store_t *store, MDB_txn *txn, int64_t before, size_t max, bool *more);

/* Forget every reply kept for key (its key was revoked: nothing it had
 * stays behind). Returns how many, or -errno. */
int brk_replay_forget(brk_store_t *store, MDB_txn *txn, const uint8_t key[32]);

/* Whether a reply with this status is kept: only answers that say what
 * became of the request. INTERNAL and LIMIT say it was not done, so a
 * retry must try again. */
bool brk_replay_keeps(int status);

#endif
