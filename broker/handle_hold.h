/* SPDX-License-Identifier: MIT */
/* Referrals (handle_hold.c): an IDVA holds an offered unit; the provider's
 * agent accepts (sealing the address to that IDVA) or declines with a
 * reason; a hold no one answers lapses. Handlers as request.h says. */
#ifndef BRK_HANDLE_HOLD_H
#define BRK_HANDLE_HOLD_H

#include "request.h"

/* Reads. */
int brk_handle_hold_prepare(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_hold_list(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_hold_address(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_referrals(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);

/* Writes. */
int brk_handle_hold_create(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_hold_cancel(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_accept(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_decline(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);

/* Withdraw every pending hold of the principal with this curve key (its key
 * was revoked): each unit is offered again and its provider told; sealed
 * addresses and messages waiting for it on its closed holds are deleted.
 * Sets *count_out to the holds withdrawn. Returns 0 or -errno. */
int brk_holds_withdraw(brk_ctx_t *ctx, MDB_txn *txn, const uint8_t key[32], size_t *count_out);

/* Timers: a key in the store's deadline queue (handled by brk_holds_expire). */
#define BRK_DEADLINE_HOLD 'e'    /* a pending hold lapses */
#define BRK_DEADLINE_PURGE 'p'   /* a closed hold is deleted */
#define BRK_DEADLINE_WATCH 'w'   /* a watch ends */
int brk_deadline(brk_ctx_t *ctx, MDB_txn *txn, int64_t when, char kind, const char *id, bool add);

/* Lapse pending holds and purge closed ones whose deadline is at or before
 * ctx->now, inside txn. Sets *more if it stopped at its batch size.
 * Returns how many it handled, or -errno. */
int brk_holds_expire(brk_ctx_t *ctx, MDB_txn *txn, bool *more);

#endif
