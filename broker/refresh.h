/* SPDX-License-Identifier: MIT */
/* The memory caches (principals, search index, compiled watches) are kept
 * in step with the store: loaded at start, refreshed after each commit
 * from the list of what the commit's writes touched (ctx.h). */
#ifndef BRK_REFRESH_H
#define BRK_REFRESH_H

#include "ctx.h"

/* After a commit: reload what ctx->dirty names, push referrals and
 * withdrawals to the providers' agents, find the alerts the changes raise
 * (ctx->alerts, delivered by the caller after the acks), and empty the
 * list. A failure is logged: the caches lag until that entry next
 * changes. */
void brk_refresh(brk_ctx_t *ctx);

/* At start: fill the caches from the store, in txn. Returns 0 or -errno. */
int brk_refresh_load(brk_ctx_t *ctx, MDB_txn *txn);

#endif
