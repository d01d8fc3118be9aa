/* SPDX-License-Identifier: MIT */
/* Referrals (handle_hold.c): an IDVA holds an offered unit; the provider's
 * agent accepts (sealing the address to that IDVA) or declines with a
 * reason. Handlers as request.h says; the hold's life cycle, and what
 * happens to holds without a request (a lapse, a purge, a withdrawal), is
 * hold.h. */
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

#endif
