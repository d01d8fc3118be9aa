/* SPDX-License-Identifier: MIT */
/* Backups (handle_backup.c): an administrator starts one and fetches it in
 * chunks (backup.h makes the copy); and the backup mark, which tells a
 * store restored from a backup from a live one (design.md section 7).
 * Handlers as request.h says; both are reads of the request's txn. */
#ifndef BRK_HANDLE_BACKUP_H
#define BRK_HANDLE_BACKUP_H

#include "request.h"

/* Starts the copy on ctx->backup; the copy carries the backup mark
 * (backup.h), the live store never does. */
int brk_handle_backup_start(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_backup_fetch(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);

/* At start: a store that carries a backup's mark was restored from that
 * backup. It may be behind every
 * agent, so every provider is marked unsynced (its units stale until its
 * agent's next contact brings the broker up to date) and the mark is
 * removed, in one commit. Returns 0 (nothing to do too) or -errno;
 * -ENOSPC: grow the map and ask again. */
int brk_backup_mark_restored(const brk_config_t *cfg, brk_store_t *store);

#endif
