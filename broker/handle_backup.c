/* SPDX-License-Identifier: MIT */
/* Backup handlers and the backup mark (see handle_backup.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "backup.h"
#include "clock.h"
#include "handle_agent.h"
#include "handle_backup.h"
#include "log.h"

#define BACKUP_CHUNK (512 * 1024)

int
brk_handle_backup_start(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    (void) txn;
    char id[17];
    int rc = brk_backup_start(ctx->backup, id);
    if (rc == -EBUSY)
        return brk_reply_error(r, HAVEN__STATUS__STATUS_CONFLICT,
                               "a backup is already being made or fetched; try again when it is done (one "
                               "nobody fetches is discarded a minute after it was last asked for)");
    if (rc < 0)
        return brk_reply_error(r, HAVEN__STATUS__STATUS_INTERNAL, "cannot start a backup: %s", strerror(-rc));
    brk_log(BRK_LOG_INFO, "%s started backup %s", r->who.name, id);
    Haven__BackupChunk body = HAVEN__BACKUP_CHUNK__INIT;
    body.backup = id;
    body.has_ready = 1;
    Haven__Reply reply = HAVEN__REPLY__INIT;
    reply.body_case = HAVEN__REPLY__BODY_BACKUP;
    reply.backup = &body;
    return brk_reply_ok(r, &reply);
}

int
brk_handle_backup_fetch(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    (void) txn;
    const Haven__BackupFetch *f = r->req->backup_fetch;
    uint64_t size = 0;
    uint8_t *buf = malloc(BACKUP_CHUNK);
    if (!buf)
        return -ENOMEM;
    ssize_t n = brk_backup_read(ctx->backup, f->backup, f->offset, buf, BACKUP_CHUNK, &size);
    int rc;
    if (n == -ENOENT) {
        rc = brk_reply_error(r, HAVEN__STATUS__STATUS_NOT_FOUND, "no backup %s", f->backup);
    } else if (n < 0 && n != -EAGAIN) {
        rc = brk_reply_error(r, HAVEN__STATUS__STATUS_INTERNAL, "the backup failed: %s", strerror((int) -n));
    } else {
        Haven__BackupChunk body = HAVEN__BACKUP_CHUNK__INIT;
        body.backup = f->backup;
        body.has_ready = 1;
        body.ready = n != -EAGAIN;
        if (body.ready) {
            body.has_size = body.has_data = body.has_eof = 1;
            body.size = size;
            body.data = (ProtobufCBinaryData) { (size_t) n, buf };
            body.eof = n == 0;
        }
        Haven__Reply reply = HAVEN__REPLY__INIT;
        reply.body_case = HAVEN__REPLY__BODY_BACKUP;
        reply.backup = &body;
        rc = brk_reply_ok(r, &reply);
    }
    free(buf);
    return rc;
}

int
brk_backup_mark_restored(const brk_config_t *cfg, brk_store_t *store)
{
    MDB_txn *txn = NULL;
    const uint8_t *val;
    size_t vlen;
    int rc = brk_store_begin(store, NULL, true, &txn);
    if (rc < 0)
        return rc;
    rc = brk_store_get(store, txn, BRK_DB_META, BRK_BACKUP_MARK, strlen(BRK_BACKUP_MARK),
                       (const void **) &val, &vlen);
    if (rc < 0) {
        brk_store_abort(txn);
        return rc == -ENOENT ? 0 : rc;
    }
    int64_t taken = 0;
    for (size_t i = 0; i < vlen && i < 8; i++)
        taken = (int64_t) ((uint64_t) taken << 8 | val[i]);
    brk_ctx_t c = { .cfg = cfg, .store = store, .now = brk_now() };
    int n = brk_providers_mark_unsynced(&c, txn);
    free(c.dirty);               /* the index is loaded from the store next */
    rc = n < 0 ? n : brk_store_del(store, txn, BRK_DB_META, BRK_BACKUP_MARK, strlen(BRK_BACKUP_MARK));
    if (rc < 0) {
        brk_store_abort(txn);
        return rc;
    }
    if ((rc = brk_store_commit(txn)) < 0)
        return rc;
    char when[32] = "an unknown time";
    time_t tt = (time_t) taken;
    struct tm tm;
    if (gmtime_r(&tt, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    brk_log(BRK_LOG_WARN, "this store is a backup taken at %s, so it "
            "may be behind what the agents last sent: the units of all %d providers are stale, and not offered, "
            "until each provider's agent next contacts the broker and brings it up to date "
            "(haven-admin provider list shows which have not yet)", when, n);
    return 0;
}
