/* SPDX-License-Identifier: MIT */
/* What the loop does on its timers (see upkeep.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "alerts.h"
#include "clock.h"
#include "deadline.h"
#include "guard.h"
#include "log.h"
#include "refresh.h"
#include "replay.h"
#include "upkeep.h"

void
brk_upkeep_expire(brk_ctx_t *ctx)
{
    bool more = true;
    for (int round = 0; more && round < 16; round++) {
        MDB_txn *txn = NULL;
        ctx->n_dirty = 0;
        ctx->now = brk_now();
        int rc = brk_store_begin(ctx->store, NULL, true, &txn);
        int n = rc < 0 ? rc : brk_deadlines_run(ctx, txn, &more);
        if (n > 0) {
            rc = brk_store_commit(txn);
            txn = NULL;
        } else if (n < 0) {
            rc = n;
        }
        if (txn)
            brk_store_abort(txn);
        if (rc == -ENOSPC && brk_store_grow(ctx->store) == 0)
            continue;
        if (rc < 0) {
            brk_log(BRK_LOG_ERROR, "expiring holds failed: %s", strerror(-rc));
            ctx->n_dirty = 0;
            return;
        }
        brk_refresh(ctx);
        brk_alerts_deliver(ctx->alerts);
        if (n == 0)
            break;
    }
}

typedef struct {
    brk_ctx_t *ctx;
    MDB_txn *txn;
    int rc;
} s_refusal_audit_t;

static void
s_refusal_record(void *arg, const char *name, const uint32_t *counts)
{
    s_refusal_audit_t *a = arg;
    if (a->rc < 0)
        return;
    Haven__AuditRecord rec = HAVEN__AUDIT_RECORD__INIT;
    char detail[256];
    size_t used = 0;
    uint32_t total = 0;
    for (int i = 0; i < BRK_REFUSE__COUNT; i++) {
        if (!counts[i])
            continue;
        total += counts[i];
        int w = snprintf(detail + used, sizeof detail - used, "%s%s %u", used ? ", " : "",
                         brk_refusal_name((brk_refusal_t) i), counts[i]);
        if (w > 0 && (size_t) w < sizeof detail - used)
            used += (size_t) w;
    }
    const brk_principal_t *p = NULL;
    rec.has_at = rec.has_outcome = 1;
    rec.at = brk_now();
    rec.principal = (char *) (name ? name : "(unknown keys)");
    if (name && (p = brk_principals_find_by_name(a->ctx->principals, name))) {
        rec.has_role = 1;
        rec.role = p->role;
    }
    rec.action = "refused";
    rec.outcome = HAVEN__STATUS__STATUS_FORBIDDEN;
    rec.detail = detail;
    rec.has_matching = 1;
    rec.matching = total;        /* how many, for a reader of audit show */
    a->rc = brk_audit_append(a->ctx->audit_key, a->ctx->store, a->txn, &rec);
    brk_log(BRK_LOG_INFO, "refused %u requests or connections from %s in the last minute: %s", total,
            rec.principal, detail);
}

void
brk_upkeep_refusals(brk_ctx_t *ctx)
{
    for (int attempt = 0; attempt < 4; attempt++) {
        s_refusal_audit_t a = { ctx, NULL, 0 };
        if ((a.rc = brk_store_begin(ctx->store, NULL, true, &a.txn)) < 0)
            break;
        brk_guard_refusals_take(ctx->guard, s_refusal_record, &a);
        if (a.rc == 0) {
            if ((a.rc = brk_store_commit(a.txn)) == 0)
                return;          /* a failed commit ended the transaction too */
        } else {
            brk_store_abort(a.txn);
        }
        /* The counts were taken from the guard: what this minute refused
         * is in the log lines above (debug) but not in the audit log. */
        brk_log(BRK_LOG_ERROR, "recording this minute's refusals in the audit log failed: %s; they are "
                "not in it", strerror(-a.rc));
        if (a.rc != -ENOSPC || brk_store_grow(ctx->store) < 0)
            return;
    }
}

void
brk_upkeep_audit(brk_ctx_t *ctx, int64_t *next_head)
{
    int64_t now = brk_now();
    brk_audit_pruned_t pr;
    int rc = brk_audit_maintain(ctx->audit_key, ctx->store,
                                brk_audit_cutoff(now, (int) ctx->cfg->audit_retention_months), now, 50, &pr);
    if (pr.keyed_now)
        brk_log(BRK_LOG_WARN, "the audit log's head carries no MAC: this is a store from before keyed audit, or "
                "someone without broker.key rewrote the log and stripped its MACs; nothing here can tell which. "
                "The chain is keyed from record %llu on; the records before it are never pruned: check them "
                "against a head kept elsewhere (haven-admin audit verify --head FILE)",
                (unsigned long long) pr.keyed_seq);
    if (rc == -EILSEQ)
        brk_log(BRK_LOG_ERROR, "the audit log fails its check, so nothing is pruned: run haven-admin audit "
                "verify to see where");
    else if (rc < 0)
        brk_log(BRK_LOG_ERROR, "pruning the audit log failed: %s", strerror(-rc));
    else if (pr.pruned)
        brk_log(BRK_LOG_INFO, "counted %zu audit records older than %lld months into monthly totals and removed "
                "them", pr.pruned, (long long) ctx->cfg->audit_retention_months);
    if (now < *next_head)
        return;
    if (rc == 0 && pr.held)      /* at start and hourly, with the head */
        brk_log(BRK_LOG_WARN, "audit record %llu is older than [audit] retention but carries no MAC, so neither "
                "it nor any after it is pruned: the key cannot vouch for it (from before keyed audit, or its "
                "MAC stripped)", (unsigned long long) pr.held);
    MDB_txn *txn = NULL;
    Haven__AuditHead head;
    uint8_t hash[32], sig[64];
    char line[320];
    if ((rc = brk_store_begin(ctx->store, NULL, false, &txn)) == 0) {
        rc = brk_audit_head(ctx->audit_key, ctx->store, txn, now, &head, hash, sig);
        brk_store_abort(txn);
    }
    if (rc == 0) {
        brk_audit_head_format(&head, line, sizeof line);
        brk_log(BRK_LOG_INFO, "audit head, signed (keep copies away from this machine; haven-admin audit "
                "verify --head FILE checks the log against one): %s", line);
    }
    *next_head = now + 3600;
}

void
brk_upkeep_replies(brk_ctx_t *ctx)
{
    bool more = false;
    MDB_txn *txn = NULL;
    int rc = brk_store_begin(ctx->store, NULL, true, &txn);
    int n = rc < 0 ? rc : brk_replay_prune(ctx->store, txn, brk_now() - ctx->cfg->replay_window_s, 500, &more);
    rc = n;
    if (n > 0) {
        rc = brk_store_commit(txn);
        txn = NULL;
    }
    brk_store_abort(txn);
    if (rc == -ENOSPC && brk_store_grow(ctx->store) == 0)
        return;                  /* again in a second */
    if (rc < 0)
        brk_log(BRK_LOG_ERROR, "forgetting old replies to writes failed: %s", strerror(-rc));
}
