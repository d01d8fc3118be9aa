/* SPDX-License-Identifier: MIT */
/* Group commit (see commit.h). */
#include <errno.h>
#include <string.h>
#include "clock.h"
#include "commit.h"
#include "dispatch.h"
#include "log.h"
#include "refresh.h"
#include "replay.h"

bool
brk_commit_audited(const brk_request_t *r)
{
    if (r->refused || r->replayed)
        return false;            /* counted, and audited once a minute per key; a retry did nothing */
    if (!r->req)
        return true;
    switch (r->req->body_case) {
    case HAVEN__REQUEST__BODY_PING:
    case HAVEN__REQUEST__BODY_SUBSCRIBE:
    case HAVEN__REQUEST__BODY_BACKUP_FETCH:
    case HAVEN__REQUEST__BODY_AGENT_SYNC:   /* every agent contact asks; a resync is audited */
        return false;
    default:
        return true;
    }
}

/* The audit record for a request: who, what, the outcome, and the flags
 * its handler noted. Never free text. */
static int
s_audit(brk_ctx_t *ctx, MDB_txn *txn, const brk_request_t *r)
{
    Haven__AuditRecord rec = HAVEN__AUDIT_RECORD__INIT;
    rec.has_at = rec.has_role = rec.has_outcome = 1;
    rec.at = ctx->now;
    rec.principal = (char *) (r->who.name[0] ? r->who.name : "(unknown key)");
    rec.role = r->who.role;
    rec.action = (char *) (r->req ? brk_op_name(r->req->body_case) : "malformed");
    rec.outcome = r->status;
    if (r->audit.detail[0])
        rec.detail = (char *) r->audit.detail;
    if (r->audit.search) {
        rec.has_dims = rec.has_matching = rec.has_limit = 1;
        rec.dims = r->audit.dims;
        rec.region = (char *) r->audit.region;
        rec.matching = r->audit.matching;
        rec.limit = r->audit.limit;
        rec.relax = (char *) r->audit.relax;
    }
    if (r->audit.reason) {
        rec.has_reason = rec.has_kind = 1;
        rec.reason = r->audit.reason;
        rec.kind = r->audit.kind;
    }
    return brk_audit_append(ctx->audit_key, ctx->store, txn, &rec);
}

/* Was the sender revoked earlier in this same batch? The principal cache
 * follows only after the commit, so a write queued behind its sender's
 * revocation must be checked against the transaction. */
static bool
s_revoked_in_batch(brk_ctx_t *ctx, MDB_txn *txn, const brk_request_t *r)
{
    bool touched = false;
    for (size_t i = 0; i < ctx->n_dirty && !touched; i++)
        touched = ctx->dirty[i].kind == BRK_DIRTY_PRINCIPAL
                  && memcmp(ctx->dirty[i].key, r->who.curve, 32) == 0;
    if (!touched)
        return false;
    Haven__Principal *p = NULL;
    if (brk_store_get_msg(ctx->store, txn, BRK_DB_PRINCIPALS, r->who.curve, 32, &haven__principal__descriptor,
                          (ProtobufCMessage **) &p) < 0)
        return true;             /* gone or unreadable: refuse */
    bool revoked = p->has_revoked && p->revoked;
    haven__principal__free_unpacked(p, NULL);
    return revoked;
}

/* A write whose request id and bytes match one answered before (its reply
 * was lost): the first reply again, and nothing done. Returns 1 if so, 0
 * if it is new, or -errno. */
static int
s_replay(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    uint8_t *reply = NULL;
    size_t len = 0;
    int status = 0;
    int rc = brk_replay_find(ctx->store, txn, r->who.curve, r->req->id, r->digest, &reply, &len, &status);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    brk_op_replayed(r, r->req->body_case, reply, len, status);
    return 1;
}

/* One write of the batch, in txn (in a nested transaction of its own if
 * its operation says so): refused if its sender was revoked earlier in
 * the batch, answered from its kept reply if it is a retry, else handled,
 * and its reply kept for a retry. Returns 0 whatever the reply says, or
 * -errno to abandon the batch's transaction (-ENOSPC: grow and retry). */
static int
s_apply_write(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    int rc = 0;
    const brk_op_t *op = brk_op(r->req->body_case);
    if (s_revoked_in_batch(ctx, txn, r)) {
        brk_reply_error(r, HAVEN__STATUS__STATUS_FORBIDDEN,
                        "this key (%s) has been revoked; ask your Haven administrator", r->who.name);
        return 0;
    }
    if (!op->no_replay && (rc = s_replay(ctx, txn, r)) != 0)
        return rc < 0 ? rc : 0;  /* a retry: answered with the first reply */
    MDB_txn *child = NULL;
    size_t dirty_mark = ctx->n_dirty;
    if (op->nested && (rc = brk_store_begin(ctx->store, txn, true, &child)) < 0)
        return rc;
    int hrc = op->fn(ctx, child ? child : txn, r);
    if (hrc == 0) {
        if (child)
            rc = brk_store_commit(child);
    } else {
        if (child)
            brk_store_abort(child);
        ctx->n_dirty = dirty_mark;
        if (hrc == -ENOSPC)
            return -ENOSPC;
        if (hrc < 0) {
            brk_log(BRK_LOG_ERROR, "%s failed: %s", brk_op_name(r->req->body_case), strerror(-hrc));
            brk_reply_error(r, HAVEN__STATUS__STATUS_INTERNAL, "the broker's store failed: %s", strerror(-hrc));
        }
    }
    /* In the batch's transaction, so the reply is kept if and only if what
     * it says happened is committed. */
    if (rc == 0 && r->reply && !op->no_replay && brk_replay_keeps(r->status)) {
        rc = brk_replay_keep(ctx->store, txn, r->who.curve, r->req->id, r->digest, ctx->now, r->status, r->reply,
                             r->reply_len);
        if (rc == 1) {
            brk_log(BRK_LOG_WARN, "%s's reply to %s request %llu is not kept for a retry (it has %d kept, or the "
                    "reply is over %d bytes): a retry would be done again", r->who.name,
                    brk_op_name(r->req->body_case), (unsigned long long) r->req->id, BRK_REPLAY_PER_KEY,
                    BRK_REPLAY_MAX_BYTES);
            rc = 0;
        }
    }
    return rc;
}

/* The batch in one write transaction: each write applied, each request
 * audited. Returns 0 (committed) or -errno (nothing kept). */
static int
s_apply(brk_ctx_t *ctx, brk_request_t *batch, const bool *write, size_t n, size_t n_writes)
{
    MDB_txn *txn = NULL;
    ctx->n_dirty = 0;
    ctx->now = brk_now();
    int rc = brk_store_begin(ctx->store, NULL, true, &txn);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        brk_request_t *r = &batch[i];
        r->replayed = false;
        if (write[i] && (rc = s_apply_write(ctx, txn, r)) < 0)
            break;
        if (brk_commit_audited(r))
            rc = s_audit(ctx, txn, r);
    }
    if (rc < 0) {
        if (txn)
            brk_store_abort(txn);
        return rc;
    }
    /* A cycle of reads only commits just their audit records, and does not
     * wait for the disk: searches must not queue behind an fsync. The next
     * synced commit, or the once-a-second sync, makes them durable; a crash
     * of the broker loses none. */
    return n_writes ? brk_store_commit(txn) : brk_store_commit_nosync(ctx->store, txn);
}

int
brk_commit_batch(brk_ctx_t *ctx, brk_request_t *batch, const bool *write, size_t n)
{
    int rc;
    size_t n_writes = 0;
    for (size_t i = 0; i < n; i++)
        n_writes += write[i];
    /* on MDB_MAP_FULL, grow the map and do it all again: the dead
     * transaction kept nothing */
    for (int attempt = 0; (rc = s_apply(ctx, batch, write, n, n_writes)) == -ENOSPC && attempt < 7; attempt++) {
        int grc = brk_store_grow(ctx->store);
        if (grc < 0) {
            brk_log(BRK_LOG_ERROR, "store map full and it cannot grow: %s", strerror(-grc));
            rc = grc;
            break;
        }
        brk_log(BRK_LOG_INFO, "store map full; grown to %zu MiB", brk_store_map_size(ctx->store) >> 20);
    }
    if (rc < 0) {
        brk_log(BRK_LOG_ERROR, "committing %zu updates failed: %s", n_writes, strerror(-rc));
        for (size_t i = 0; i < n; i++)
            if (write[i] && !batch[i].replayed)  /* a retry's first reply stands: it was done */
                brk_reply_error(&batch[i], HAVEN__STATUS__STATUS_INTERNAL,
                                "the broker could not store the update (%s); it was not applied",
                                strerror(-rc));
        ctx->n_dirty = 0;
        return rc;
    }
    brk_refresh(ctx);
    /* alerts are delivered by the caller once the acks are out */
    return n_writes ? 0 : 1;
}
