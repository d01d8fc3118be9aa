/* SPDX-License-Identifier: MIT */
/* A hold's life (see hold.h): the transition table, the record every
 * transition writes, and the transitions no request asks for. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../proto/names.h"
#include "deadline.h"
#include "hold.h"
#include "log.h"

#define PENDING HAVEN__HOLD_STATE__HOLD_PENDING
#define ACCEPTED HAVEN__HOLD_STATE__HOLD_ACCEPTED
#define N_STATES (HAVEN__HOLD_STATE__HOLD_WITHDRAWN + 1)

/* (state, event) -> next state; what is not here is refused. */
static const Haven__HoldState s_next[N_STATES][BRK_HOLD_EVENT__COUNT] = {
    [PENDING] = {
        [BRK_HOLD_ACCEPT] = ACCEPTED,
        [BRK_HOLD_DECLINE] = HAVEN__HOLD_STATE__HOLD_DECLINED,
        [BRK_HOLD_LAPSE] = HAVEN__HOLD_STATE__HOLD_EXPIRED,
        [BRK_HOLD_CANCEL] = HAVEN__HOLD_STATE__HOLD_CANCELLED,
        [BRK_HOLD_WITHDRAW] = HAVEN__HOLD_STATE__HOLD_WITHDRAWN,
    },
    [ACCEPTED] = {
        [BRK_HOLD_DISCLOSE] = ACCEPTED,
    },
};

Haven__HoldState
brk_hold_next(Haven__HoldState state, brk_hold_event_t event)
{
    if ((int) state < 0 || (int) state >= N_STATES || (int) event < 0 || event >= BRK_HOLD_EVENT__COUNT)
        return HAVEN__HOLD_STATE__HOLD_NONE;
    return s_next[state][event];
}

/* What the requester is told, by the state the hold is in. */
static void
s_refusal(const Haven__Hold *h, brk_hold_event_t event, brk_hold_refusal_t *why)
{
    why->status = HAVEN__STATUS__STATUS_CONFLICT;
    if (h->state == HAVEN__HOLD_STATE__HOLD_EXPIRED) {
        why->status = HAVEN__STATUS__STATUS_EXPIRED;
        snprintf(why->text, sizeof why->text, "hold %s has expired", h->id);
    } else if (h->state == HAVEN__HOLD_STATE__HOLD_WITHDRAWN) {
        snprintf(why->text, sizeof why->text, "hold %s was withdrawn: the key of %s was revoked, so nothing may "
                 "be sent to it; the unit is offered again", h->id, h->idva ? h->idva : "the IDVA");
    } else if (h->state == PENDING && event == BRK_HOLD_DISCLOSE) {
        snprintf(why->text, sizeof why->text, "hold %s is still pending: the provider has not accepted yet",
                 h->id);
    } else {
        snprintf(why->text, sizeof why->text, "hold %s is already %s", h->id, hv_hold_state_name(h->state));
    }
}

int
brk_hold_apply(Haven__Hold *h, brk_hold_event_t event, brk_hold_refusal_t *why)
{
    Haven__HoldState next = brk_hold_next(h->state, event);
    if (next == HAVEN__HOLD_STATE__HOLD_NONE) {
        if (why)
            s_refusal(h, event, why);
        return -EPERM;
    }
    h->state = next;
    return 0;
}

/* ---------------------------------------------------------------- the record */

int
brk_hold_get(brk_ctx_t *ctx, MDB_txn *txn, const char *id, Haven__Hold **out)
{
    return brk_store_get_msg(ctx->store, txn, BRK_DB_HOLDS, id, strlen(id), &haven__hold__descriptor,
                             (ProtobufCMessage **) out);
}

int
brk_hold_put(brk_ctx_t *ctx, MDB_txn *txn, const Haven__Hold *h)
{
    return brk_store_put_msg(ctx->store, txn, BRK_DB_HOLDS, h->id, strlen(h->id), &h->base);
}

int
brk_hold_unit_status(brk_ctx_t *ctx, MDB_txn *txn, const char *provider, const char *unit, int from_status,
                     int status, uint64_t version)
{
    char key[2 * HV_ID_MAX + 2];
    Haven__Unit *u = NULL;
    int klen = brk_unit_key(provider, unit, key, sizeof key);
    int rc = brk_store_get_msg(ctx->store, txn, BRK_DB_UNITS, key, (size_t) klen,
                               &haven__unit__descriptor, (ProtobufCMessage **) &u);
    if (rc == -ENOENT)
        return 0;                /* withdrawn meanwhile: nothing to return */
    if (rc < 0)
        return rc;
    if (from_status == 0 || (int) u->status == from_status) {
        u->status = status;
        if (version > u->version) {
            u->has_version = 1;
            u->version = version;
        }
        if (version) {
            u->has_confirmed_at = 1;
            u->confirmed_at = ctx->now;      /* staff just answered for it */
        }
        rc = brk_store_put_msg(ctx->store, txn, BRK_DB_UNITS, key, (size_t) klen, &u->base);
        if (rc == 0)
            rc = brk_ctx_dirty(ctx, BRK_DIRTY_UNIT, provider, unit, NULL);
    }
    haven__unit__free_unpacked(u, NULL);
    return rc;
}

void
brk_hold_drop_notes(Haven__Hold *h)
{
    for (size_t i = 0; i < h->n_notes; i++)
        haven__sealed__free_unpacked(h->notes[i], NULL);
    free(h->notes);
    h->notes = NULL;
    h->n_notes = 0;
}

int
brk_hold_close(brk_ctx_t *ctx, MDB_txn *txn, Haven__Hold *h)
{
    int rc = brk_deadline_remove(ctx->store, txn, h->expires_at, BRK_DEADLINE_HOLD, h->id);
    if (rc < 0)
        return rc;
    h->has_closed_at = 1;
    h->closed_at = ctx->now;
    brk_hold_drop_notes(h);
    if ((rc = brk_hold_put(ctx, txn, h)) < 0)
        return rc;
    return brk_deadline_add(ctx->store, txn, ctx->now + ctx->cfg->address_retention_s, BRK_DEADLINE_PURGE, h->id);
}

static int
s_scan_one(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void) key;
    (void) klen;
    brk_hold_scan_t *s = arg;
    Haven__Hold *h = haven__hold__unpack(NULL, vlen, val);
    if (!h)
        return -EBADMSG;
    bool mine = s->idva ? (h->idva_key.len == 32 && memcmp(h->idva_key.data, s->idva, 32) == 0)
                        : strcmp(h->provider, s->provider) == 0;
    if (!mine && s->region && *s->region && h->state == HAVEN__HOLD_STATE__HOLD_PENDING) {
        int u = brk_index_find_unit(s->ctx->index, h->provider, h->unit);
        int district = u >= 0 ? brk_index_unit(s->ctx->index, (uint32_t) u)->district : -1;
        mine = u >= 0 && strcmp(brk_districts_region_of(s->ctx->districts, district), s->region) == 0;
    }
    if (mine && (!s->pending_only || h->state == HAVEN__HOLD_STATE__HOLD_PENDING)) {
        s->count++;
        if (s->collect)
            return brk_store_list_add(&s->list, &h->base);
    }
    haven__hold__free_unpacked(h, NULL);
    return 0;
}

int
brk_holds_scan(brk_ctx_t *ctx, MDB_txn *txn, brk_hold_scan_t *s)
{
    s->ctx = ctx;
    return brk_store_each(ctx->store, txn, BRK_DB_HOLDS, NULL, 0, s_scan_one, s);
}

/* ---------------------------------------------------------------- lapse, purge, withdrawal */

int
brk_hold_expire(brk_ctx_t *ctx, MDB_txn *txn, const char *id)
{
    Haven__Hold *h = NULL;
    int rc = brk_hold_get(ctx, txn, id, &h);
    if (rc == -ENOENT)
        return 0;                /* its hold is gone: nothing to lapse */
    if (rc < 0)
        return rc;
    if (brk_hold_apply(h, BRK_HOLD_LAPSE, NULL) == 0) {
        if ((rc = brk_hold_close(ctx, txn, h)) == 0)
            rc = brk_hold_unit_status(ctx, txn, h->provider, h->unit, HAVEN__UNIT_STATUS__UNIT_HELD,
                                      HAVEN__UNIT_STATUS__UNIT_AVAILABLE, 0);
        brk_log(BRK_LOG_INFO, "hold %s on %s/%s expired unanswered", id, h->provider, h->unit);
    }
    haven__hold__free_unpacked(h, NULL);
    return rc;
}

int
brk_hold_purge(brk_ctx_t *ctx, MDB_txn *txn, const char *id)
{
    /* the sealed address (or anything else) is kept no longer */
    int rc = brk_store_del(ctx->store, txn, BRK_DB_HOLDS, id, strlen(id));
    return rc == -ENOENT ? 0 : rc;
}

int
brk_holds_withdraw(brk_ctx_t *ctx, MDB_txn *txn, const uint8_t key[32], size_t *count_out)
{
    brk_hold_scan_t s = { .idva = key, .collect = true };
    s.list.desc = &haven__hold__descriptor;
    int rc = brk_holds_scan(ctx, txn, &s);
    size_t withdrawn = 0;
    for (size_t i = 0; rc == 0 && i < s.list.n; i++) {
        Haven__Hold *h = (Haven__Hold *) s.list.items[i];
        if (brk_hold_apply(h, BRK_HOLD_WITHDRAW, NULL) < 0) {
            /* An address or message waiting for the revoked key goes now,
             * not after address_retention: whoever took the key must not
             * open it from a backup. */
            if (!h->address && !h->message)
                continue;
            if (h->address)
                haven__sealed__free_unpacked(h->address, NULL);
            if (h->message)
                haven__sealed__free_unpacked(h->message, NULL);
            h->address = h->message = NULL;
            rc = brk_hold_put(ctx, txn, h);
            continue;
        }
        if ((rc = brk_hold_close(ctx, txn, h)) == 0
            && (rc = brk_hold_unit_status(ctx, txn, h->provider, h->unit, HAVEN__UNIT_STATUS__UNIT_HELD,
                                          HAVEN__UNIT_STATUS__UNIT_AVAILABLE, 0)) == 0
            && (rc = brk_ctx_dirty(ctx, BRK_DIRTY_WITHDRAWN, h->provider, h->id, NULL)) == 0) {
            brk_log(BRK_LOG_INFO, "hold %s on %s/%s withdrawn: its holder's key was revoked", h->id,
                    h->provider, h->unit);
            withdrawn++;
        }
    }
    if (rc == 0)
        *count_out = withdrawn;
    brk_store_list_free(&s.list);
    return rc;
}
