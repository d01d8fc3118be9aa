/* SPDX-License-Identifier: MIT */
/* Administrators' requests (handle_admin.c): providers, principals, the
 * audit log and reports; and ping, which anyone may send. Handlers as
 * request.h says. */
#ifndef BRK_HANDLE_ADMIN_H
#define BRK_HANDLE_ADMIN_H

#include "request.h"

/* Reads. */
int brk_handle_ping(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_provider_list(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_principal_list(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_audit_verify(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_audit_show(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_report(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);

/* Writes. A revocation ends the key's watches and withdraws its pending
 * holds in the same transaction (handle_watch.h, handle_hold.h). */
int brk_handle_provider_add(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_principal_add(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_principal_revoke(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_principal_certify(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);

#endif
