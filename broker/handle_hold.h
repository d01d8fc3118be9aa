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

/* Deadlines (deadline.h). A pending hold whose time is up lapses: it is
 * closed as expired, its notes go and its unit is offered again; a hold
 * already closed stays as it is. Returns 0 (a hold that is gone has
 * nothing to lapse) or -errno. */
int brk_hold_expire(brk_ctx_t *ctx, MDB_txn *txn, const char *id);
/* A closed hold's record is deleted, sealed address and all, after
 * address_retention. Returns 0 (gone already too) or -errno. */
int brk_hold_purge(brk_ctx_t *ctx, MDB_txn *txn, const char *id);

#endif
