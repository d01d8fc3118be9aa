/* SPDX-License-Identifier: MIT */
/* Standing searches and inboxes (handle_watch.c). An on-call officer also
 * sees the watches of its region. Handlers as request.h says. */
#ifndef BRK_HANDLE_WATCH_H
#define BRK_HANDLE_WATCH_H

#include "request.h"

int brk_handle_watch_create(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_watch_list(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_watch_cancel(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
/* Listing is a read; an acknowledgement (ack > 0) is a write. */
int brk_handle_inbox(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);

/* End every watch of the principal with this curve key, and empty its
 * inbox. Sets *count_out to the watches ended. Returns 0 or -errno. */
int brk_watches_end(brk_ctx_t *ctx, MDB_txn *txn, const uint8_t key[32], size_t *count_out);

/* A watch's deadline came (deadline.h): it ends. Returns 0 (one already
 * gone too) or -errno. */
int brk_watch_expire(brk_ctx_t *ctx, MDB_txn *txn, const char *id);

#endif
