/* SPDX-License-Identifier: MIT */
/* Referrals: an IDVA holds an offered unit; the provider's agent accepts
 * (sealing the address to that IDVA) or declines with a reason; a hold no
 * one answers lapses (hold.h). The broker keeps only ciphertext: the referral note
 * is sealed by the IDVA's client to the provider's agents, the address by
 * the agent to the IDVA. Notes go when the hold closes; the sealed address
 * after address_retention. Every deadline is a key in the store, so a
 * restart loses none (deadline.h). */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/keys.h"
#include "../proto/names.h"
#include "deadline.h"
#include "handle_agent.h"
#include "handle_hold.h"
#include "hold.h"
#include "log.h"
#include "match.h"
#include "offer.h"
#include "scope.h"

#define HOLD_ID_LEN BRK_DEADLINE_ID_LEN

static int
s_open_offer(brk_ctx_t *ctx, brk_request_t *r, const char *token, brk_offer_t *o)
{
    int rc = brk_offer_open(ctx->token_key, token, r->who.curve, ctx->now, o);
    if (rc == -ETIME)
        return brk_reply_error(r, HAVEN__STATUS__STATUS_EXPIRED,
                               "this offer has expired; search again for a fresh one");
    if (rc == -EACCES)
        return brk_reply_error(r, HAVEN__STATUS__STATUS_FORBIDDEN,
                               "this offer was made to someone else; search for your own");
    if (rc < 0)
        return brk_reply_error(r, HAVEN__STATUS__STATUS_BAD_REQUEST,
                               "that is not an offer from this broker; copy it whole from a search");
    return 0;
}

/* Fill the display fields of a hold from the index. */
static void
s_decorate(brk_ctx_t *ctx, Haven__Hold *h)
{
    int p = brk_index_find_provider(ctx->index, h->provider);
    if (p < 0)
        return;
    const brk_prov_t *prov = brk_index_provider(ctx->index, (uint32_t) p);
    h->provider_name = prov->name;
    h->has_kind = 1;
    h->kind = prov->kind;
    h->phone = prov->phone;
    int u = brk_index_find_unit(ctx->index, h->provider, h->unit);
    int d = u >= 0 ? brk_index_unit(ctx->index, (uint32_t) u)->district : prov->district;
    if (d >= 0)
        h->district = (char *) brk_districts_code(ctx->districts, d);
}

static void
s_undecorate(Haven__Hold *h)
{
    h->provider_name = NULL;
    h->phone = NULL;
    h->district = NULL;
}

static int
s_reply_hold(brk_ctx_t *ctx, brk_request_t *r, Haven__Hold *h)
{
    s_decorate(ctx, h);
    ProtobufCBinaryData key = h->idva_key;
    h->has_idva_key = 0;         /* a reply never carries the holder's transport key */
    Haven__Reply reply = HAVEN__REPLY__INIT;
    reply.body_case = HAVEN__REPLY__BODY_HOLD;
    reply.hold = h;
    int rc = brk_reply_ok(r, &reply);
    h->idva_key = key;
    s_undecorate(h);
    return rc;
}

/* A principal's stored record (for its certificate), or NULL. */
static Haven__Principal *
s_principal_record(brk_ctx_t *ctx, MDB_txn *txn, const uint8_t key[32])
{
    Haven__Principal *p = NULL;
    return brk_store_get_msg(ctx->store, txn, BRK_DB_PRINCIPALS, key, 32, &haven__principal__descriptor,
                             (ProtobufCMessage **) &p) == 0 ? p : NULL;
}

typedef struct {
    brk_ctx_t *ctx;
    MDB_txn *txn;
    Haven__Principal *records[HV_RECIPIENTS_MAX];
    Haven__Signed *certs[HV_RECIPIENTS_MAX];
    size_t n;
} s_agents_t;

static void
s_agent_cert(void *arg, const brk_principal_t *p)
{
    s_agents_t *a = arg;
    if (a->n == HV_RECIPIENTS_MAX)
        return;
    Haven__Principal *rec = s_principal_record(a->ctx, a->txn, p->curve);
    if (rec && rec->certificate) {
        a->records[a->n] = rec;
        a->certs[a->n++] = rec->certificate;
    } else if (rec) {
        haven__principal__free_unpacked(rec, NULL);
    }
}

int
brk_handle_hold_prepare(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    brk_offer_t o;
    uint8_t keys[HV_RECIPIENTS_MAX][32];
    ProtobufCBinaryData recipients[HV_RECIPIENTS_MAX];
    int rc = s_open_offer(ctx, r, r->req->hold_prepare->offer, &o);
    if (rc)
        return rc;
    size_t n = brk_principals_agent_keys(ctx->principals, o.provider, keys, HV_RECIPIENTS_MAX);
    for (size_t i = 0; i < n; i++)
        recipients[i] = (ProtobufCBinaryData) { 32, keys[i] };
    /* The client seals only to keys an administrator it trusts certified
     * for this provider: the broker lists, the certificates prove. */
    s_agents_t a = { .ctx = ctx, .txn = txn };
    brk_principals_each_agent(ctx->principals, o.provider, s_agent_cert, &a);
    Haven__HoldPrepareReply body = HAVEN__HOLD_PREPARE_REPLY__INIT;
    body.provider = o.provider;
    body.unit = o.unit;
    body.n_recipients = n;
    body.recipients = recipients;
    body.n_certificates = a.n;
    body.certificates = a.certs;
    Haven__Reply reply = HAVEN__REPLY__INIT;
    reply.body_case = HAVEN__REPLY__BODY_HOLD_PREPARE;
    reply.hold_prepare = &body;
    rc = brk_reply_ok(r, &reply);
    for (size_t i = 0; i < a.n; i++)
        haven__principal__free_unpacked(a.records[i], NULL);
    return rc;
}

/* The offer carried the need it answered (household and needs, no places).
 * A provider may have changed its rules since the search (a lower
 * max_boy_age, say): hold only if the unit still takes this household.
 * Freshness and dates are the search's business, not the hold's. Returns
 * 0, or 1 with a CONFLICT reply packed, or -errno. */
static int
s_still_matches(brk_ctx_t *ctx, brk_request_t *r, const brk_offer_t *o, const Haven__Need *need)
{
    char err[256];
    brk_need_t *compiled = NULL;
    if (!need)
        return 0;
    int idx = brk_index_find_unit(ctx->index, o->provider, o->unit);
    const brk_unit_t *u = idx >= 0 ? brk_index_unit(ctx->index, (uint32_t) idx) : NULL;
    if (!u || u->avail_pos == UINT32_MAX)
        return 0;                /* the store says available; the index follows at the commit */
    int rc = brk_need_compile(need, ctx->districts, ctx->now, &compiled, err, sizeof err);
    if (rc < 0)
        return rc == -ENOENT ? 0 : rc;
    size_t n;
    const brk_avail_t *avail = brk_index_available(ctx->index, &n);
    uint32_t fails = brk_match_unit(compiled, ctx->index, &avail[u->avail_pos])
                     & ~((1u << BRK_RULE_FRESH) | (1u << BRK_RULE_FROM));
    free(compiled);
    if (fails)
        return brk_reply_error(r, HAVEN__STATUS__STATUS_CONFLICT,
                               "this unit's rules changed since your search (%s); search again",
                               brk_rule_name((brk_rule_t) __builtin_ctz(fails)));
    return 0;
}

/* Before the unit is looked at: the sender's open holds under their
 * limit, and the notes sealed only to the provider's agents. Returns 0, or
 * 1 with a reply packed, or -errno. */
static int
s_may_hold(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r, const Haven__HoldCreate *c, const brk_offer_t *o)
{
    brk_hold_scan_t open = { .idva = r->who.curve, .pending_only = true };
    int rc = brk_holds_scan(ctx, txn, &open);
    if (rc < 0)
        return rc;
    if ((int64_t) open.count >= ctx->cfg->max_holds)
        return brk_reply_error(r, HAVEN__STATUS__STATUS_LIMIT,
                               "you have %zu open holds, the most allowed (limits.max_holds_per_principal); "
                               "cancel one you no longer need", open.count);
    for (size_t i = 0; i < c->n_notes; i++) {
        uint8_t keys[HV_RECIPIENTS_MAX][32];
        size_t n = brk_principals_agent_keys(ctx->principals, o->provider, keys, HV_RECIPIENTS_MAX);
        bool known = false;
        for (size_t k = 0; k < n; k++)
            known |= memcmp(keys[k], c->notes[i]->recipient.data, 32) == 0;
        if (!known)
            return brk_reply_error(r, HAVEN__STATUS__STATUS_BAD_REQUEST,
                                   "the note is sealed to a key that is not one of %s's agents", o->provider);
    }
    return 0;
}

/* The new hold's id. The client may choose it, so its note and its request
 * can be signed for this very hold before it exists. Returns 0, or 1 with
 * a reply packed (taken), or -errno. */
static int
s_hold_id(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r, const Haven__HoldCreate *c, char id[HOLD_ID_LEN + 1])
{
    if (!c->hold) {
        uint8_t raw[HOLD_ID_LEN / 2];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2hex(id, HOLD_ID_LEN + 1, raw, sizeof raw);
        return 0;
    }
    Haven__Hold *taken = NULL;
    snprintf(id, HOLD_ID_LEN + 1, "%s", c->hold);
    int rc = brk_hold_get(ctx, txn, id, &taken);
    if (rc == 0) {
        haven__hold__free_unpacked(taken, NULL);
        return brk_reply_error(r, HAVEN__STATUS__STATUS_CONFLICT, "hold id %s is taken; try again", id);
    }
    return rc == -ENOENT ? 0 : rc;
}

int
brk_handle_hold_create(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    const Haven__HoldCreate *c = r->req->hold_create;
    brk_offer_t o;
    Haven__Unit *u = NULL;
    Haven__Need *need = NULL;
    char key[2 * HV_ID_MAX + 2];
    int rc = s_open_offer(ctx, r, c->offer, &o);
    if (rc)
        return rc;
    if ((rc = s_may_hold(ctx, txn, r, c, &o)) != 0)
        return rc;
    int klen = brk_unit_key(o.provider, o.unit, key, sizeof key);
    rc = brk_store_get_msg(ctx->store, txn, BRK_DB_UNITS, key, (size_t) klen, &haven__unit__descriptor,
                           (ProtobufCMessage **) &u);
    if (rc == -ENOENT)
        return brk_reply_error(r, HAVEN__STATUS__STATUS_CONFLICT,
                               "%s has withdrawn %s since your search; search again", o.provider, o.unit);
    if (rc < 0)
        return rc;
    if (u->status != HAVEN__UNIT_STATUS__UNIT_AVAILABLE) {
        rc = brk_reply_error(r, HAVEN__STATUS__STATUS_CONFLICT,
                             "%s at %s is no longer available (%s): someone else got it first; search again",
                             o.unit, o.provider, hv_unit_status_name(u->status));
        goto out;
    }
    /* An offer that names a unit of a kind hidden from the sender
     * (however it was made) does not let them hold it. */
    int pidx = brk_index_find_provider(ctx->index, o.provider);
    if (pidx >= 0 && (rc = brk_check_kind(r, (int) brk_index_provider(ctx->index, (uint32_t) pidx)->kind)) != 0)
        goto out;
    if (o.need_len)
        need = haven__need__unpack(NULL, o.need_len, o.need);
    if ((rc = s_still_matches(ctx, r, &o, need)) != 0)
        goto out;
    if (r->who.role != HAVEN__ROLE__ROLE_AGENT && !hv_key_usable(r->who.seal)) {
        rc = brk_reply_error(r, HAVEN__STATUS__STATUS_FORBIDDEN,
                             "your key has no usable sealing key, so no address could be sealed to you; "
                             "ask your Haven administrator to register a new key");
        goto out;
    }

    char id[HOLD_ID_LEN + 1];
    if ((rc = s_hold_id(ctx, txn, r, c, id)) != 0)
        goto out;
    Haven__Hold h = HAVEN__HOLD__INIT;
    h.id = id;
    h.provider = o.provider;
    h.unit = o.unit;
    h.state = HAVEN__HOLD_STATE__HOLD_PENDING;
    h.idva = r->who.name;
    h.has_idva_key = h.has_idva_seal_key = 1;
    h.idva_key = (ProtobufCBinaryData) { 32, r->who.curve };
    h.idva_seal_key = (ProtobufCBinaryData) { 32, r->who.seal };
    h.need = need;
    h.n_notes = c->n_notes;
    h.notes = c->notes;
    h.has_request_signature = c->has_signature;
    h.request_signature = c->signature;
    h.has_created_at = h.has_expires_at = 1;
    h.created_at = ctx->now;
    h.expires_at = ctx->now + ctx->cfg->hold_ttl_s;
    u->status = HAVEN__UNIT_STATUS__UNIT_HELD;
    if ((rc = brk_hold_put(ctx, txn, &h)) < 0
        || (rc = brk_deadline_add(ctx->store, txn, h.expires_at, BRK_DEADLINE_HOLD, id)) < 0
        || (rc = brk_store_put_msg(ctx->store, txn, BRK_DB_UNITS, key, (size_t) klen, &u->base)) < 0
        || (rc = brk_ctx_dirty(ctx, BRK_DIRTY_UNIT, o.provider, o.unit, NULL)) < 0
        || (rc = brk_ctx_dirty(ctx, BRK_DIRTY_REFERRAL, o.provider, id, NULL)) < 0)
        goto out;
    brk_log(BRK_LOG_INFO, "%s holds %s/%s as %s", r->who.name, o.provider, o.unit, id);
    snprintf(r->audit.detail, sizeof r->audit.detail, "hold %s on %s/%s", id, o.provider, o.unit);
    h.n_notes = 0;               /* the reply does not echo the notes */
    h.notes = NULL;
    rc = s_reply_hold(ctx, r, &h);
out:
    if (need)
        haven__need__free_unpacked(need, NULL);
    haven__unit__free_unpacked(u, NULL);
    return rc;
}

/* Load a hold the caller may act on: 1 (reply packed) if not. */
static int
s_load_own(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r, const char *id, bool as_agent,
           Haven__Hold **out)
{
    int rc = brk_hold_get(ctx, txn, id, out);
    if (rc == -ENOENT)
        return brk_reply_error(r, HAVEN__STATUS__STATUS_NOT_FOUND, "no hold %s", id);
    if (rc < 0)
        return rc;
    Haven__Hold *h = *out;
    bool own = as_agent ? strcmp(h->provider, r->who.provider) == 0
                        : h->idva_key.len == 32 && memcmp(h->idva_key.data, r->who.curve, 32) == 0;
    if (!own) {
        haven__hold__free_unpacked(h, NULL);
        *out = NULL;
        /* the same words as for a hold that does not exist: nothing leaks */
        return brk_reply_error(r, HAVEN__STATUS__STATUS_NOT_FOUND, "no hold %s", id);
    }
    return 0;
}

/* The transition table refused the request's event (hold.h). */
static int
s_refuse(brk_request_t *r, const brk_hold_refusal_t *why)
{
    return brk_reply_error(r, why->status, "%s", why->text);
}

int
brk_handle_hold_cancel(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    Haven__Hold *h = NULL;
    brk_hold_refusal_t why;
    int rc = s_load_own(ctx, txn, r, r->req->hold_cancel->hold, false, &h);
    if (rc)
        return rc;
    if (brk_hold_apply(h, BRK_HOLD_CANCEL, &why) < 0) {
        rc = s_refuse(r, &why);
    } else if ((rc = brk_hold_close(ctx, txn, h)) == 0
               && (rc = brk_hold_unit_status(ctx, txn, h->provider, h->unit, HAVEN__UNIT_STATUS__UNIT_HELD,
                                             HAVEN__UNIT_STATUS__UNIT_AVAILABLE, 0)) == 0) {
        brk_log(BRK_LOG_INFO, "%s cancelled hold %s", r->who.name, h->id);
        snprintf(r->audit.detail, sizeof r->audit.detail, "hold %s", h->id);
        rc = s_reply_hold(ctx, r, h);
    }
    haven__hold__free_unpacked(h, NULL);
    return rc;
}

int
brk_handle_accept(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    const Haven__Accept *a = r->req->accept;
    Haven__Hold *h = NULL;
    brk_hold_refusal_t why;
    if (brk_check_scope(r, a->provider))
        return 1;
    int rc = s_load_own(ctx, txn, r, a->hold, true, &h);
    if (rc)
        return rc;
    const brk_principal_t *holder = h->idva_key.len == 32 ? brk_principals_find(ctx->principals, h->idva_key.data)
                                                          : NULL;
    if (brk_hold_apply(h, BRK_HOLD_ACCEPT, &why) < 0) {
        rc = s_refuse(r, &why);
    } else if (!holder || holder->revoked) {
        rc = brk_reply_error(r, HAVEN__STATUS__STATUS_CONFLICT,
                             "hold %s was withdrawn: the key of %s was revoked, so nothing may be sent to it",
                             h->id, h->idva ? h->idva : "the IDVA");
    } else if (h->idva_seal_key.len != 32
               || memcmp(a->address->recipient.data, h->idva_seal_key.data, 32) != 0) {
        rc = brk_reply_error(r, HAVEN__STATUS__STATUS_BAD_REQUEST,
                             "the address must be sealed to the key of the IDVA who holds %s", h->id);
    } else {
        /* the IDVA checks the address's signature against this certificate */
        Haven__Principal *me = s_principal_record(ctx, txn, r->who.curve);
        h->answered_by = me ? me->certificate : NULL;
        h->address = a->address;
        rc = brk_hold_close(ctx, txn, h);
        h->address = NULL;       /* owned by the request */
        h->answered_by = NULL;   /* owned by me */
        if (me)
            haven__principal__free_unpacked(me, NULL);
        if (rc == 0)
            rc = brk_hold_unit_status(ctx, txn, h->provider, h->unit, 0, HAVEN__UNIT_STATUS__UNIT_OCCUPIED,
                                      a->version);
        if (rc == 0)
            rc = brk_agent_synced(ctx, txn, r->who.curve, a->version);
        if (rc == 0) {
            brk_log(BRK_LOG_INFO, "%s accepted hold %s", r->who.name, h->id);
            snprintf(r->audit.detail, sizeof r->audit.detail, "hold %s on %s/%s", h->id, h->provider, h->unit);
            rc = s_reply_hold(ctx, r, h);
        }
    }
    haven__hold__free_unpacked(h, NULL);
    return rc;
}

int
brk_handle_decline(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    const Haven__Decline *d = r->req->decline;
    Haven__Hold *h = NULL;
    brk_hold_refusal_t why;
    if (brk_check_scope(r, d->provider))
        return 1;
    int rc = s_load_own(ctx, txn, r, d->hold, true, &h);
    if (rc)
        return rc;
    if (brk_hold_apply(h, BRK_HOLD_DECLINE, &why) < 0) {
        rc = s_refuse(r, &why);
    } else if (d->message && (h->idva_seal_key.len != 32
                              || memcmp(d->message->recipient.data, h->idva_seal_key.data, 32) != 0)) {
        rc = brk_reply_error(r, HAVEN__STATUS__STATUS_BAD_REQUEST,
                             "the message must be sealed to the key of the IDVA who holds %s", h->id);
    } else {
        Haven__Principal *me = s_principal_record(ctx, txn, r->who.curve);
        h->answered_by = me ? me->certificate : NULL;
        h->has_reason = 1;
        h->reason = d->reason;
        h->message = d->message;
        rc = brk_hold_close(ctx, txn, h);
        h->message = NULL;       /* owned by the request */
        h->answered_by = NULL;   /* owned by me */
        if (me)
            haven__principal__free_unpacked(me, NULL);
        if (rc == 0)
            rc = brk_hold_unit_status(ctx, txn, h->provider, h->unit, HAVEN__UNIT_STATUS__UNIT_HELD,
                                      HAVEN__UNIT_STATUS__UNIT_AVAILABLE, d->version);
        if (rc == 0)
            rc = brk_agent_synced(ctx, txn, r->who.curve, d->version);
        if (rc == 0) {
            brk_log(BRK_LOG_INFO, "%s declined hold %s: %s", r->who.name, h->id,
                    hv_decline_reason_name(d->reason));
            snprintf(r->audit.detail, sizeof r->audit.detail, "hold %s on %s/%s", h->id, h->provider, h->unit);
            r->audit.reason = d->reason;
            int p = brk_index_find_provider(ctx->index, h->provider);
            r->audit.kind = p >= 0 ? brk_index_provider(ctx->index, (uint32_t) p)->kind : 0;
            rc = s_reply_hold(ctx, r, h);
        }
    }
    haven__hold__free_unpacked(h, NULL);
    return rc;
}

int
brk_handle_hold_address(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    Haven__Hold *h = NULL;
    brk_hold_refusal_t why;
    int rc = s_load_own(ctx, txn, r, r->req->hold_address->hold, false, &h);
    if (rc)
        return rc;
    if (brk_hold_apply(h, BRK_HOLD_DISCLOSE, &why) < 0) {
        rc = s_refuse(r, &why);
    } else if (!h->address) {    /* deleted when its holder's key was revoked */
        rc = brk_reply_error(r, HAVEN__STATUS__STATUS_CONFLICT, "hold %s is already %s", h->id,
                             hv_hold_state_name(h->state));
    } else {
        brk_log(BRK_LOG_INFO, "%s fetched the sealed address of hold %s", r->who.name, h->id);
        snprintf(r->audit.detail, sizeof r->audit.detail, "disclosure of hold %s on %s/%s", h->id,
                 h->provider, h->unit);
        rc = s_reply_hold(ctx, r, h);
    }
    haven__hold__free_unpacked(h, NULL);
    return rc;
}

static int
s_reply_holds(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r, brk_store_list_t *l)
{
    Haven__Hold **holds = (Haven__Hold **) l->items;
    /* An agent checks the holder's certificate before it seals an address */
    Haven__Principal **holders = r->who.role == HAVEN__ROLE__ROLE_AGENT ? calloc(l->n + 1, sizeof *holders) : NULL;
    for (size_t i = 0; i < l->n; i++) {
        s_decorate(ctx, holds[i]);
        if (holders && holds[i]->idva_key.len == 32
            && (holders[i] = s_principal_record(ctx, txn, holds[i]->idva_key.data)))
            holds[i]->idva_certificate = holders[i]->certificate;
        holds[i]->has_idva_key = 0;
    }
    Haven__HoldListReply body = HAVEN__HOLD_LIST_REPLY__INIT;
    body.n_holds = l->n;
    body.holds = holds;
    Haven__Reply reply = HAVEN__REPLY__INIT;
    reply.body_case = HAVEN__REPLY__BODY_HOLDS;
    reply.holds = &body;
    int rc = brk_reply_ok(r, &reply);
    for (size_t i = 0; i < l->n; i++) {
        s_undecorate(holds[i]);
        if (holders && holders[i]) {
            holds[i]->idva_certificate = NULL;   /* the record's */
            haven__principal__free_unpacked(holders[i], NULL);
        }
    }
    free(holders);
    return rc;
}

int
brk_handle_hold_list(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    brk_hold_scan_t s = { .idva = r->who.curve, .collect = true,
                   .pending_only = r->req->hold_list->has_open_only && r->req->hold_list->open_only,
                   .region = r->who.role == HAVEN__ROLE__ROLE_ONCALL ? r->who.region : NULL };
    int rc = brk_holds_scan(ctx, txn, &s);
    if (rc == 0) {
        /* The IDVA sees where and what, never the notes or the address here. */
        for (size_t i = 0; i < s.list.n; i++) {
            Haven__Hold *h = (Haven__Hold *) s.list.items[i];
            brk_hold_drop_notes(h);
            if (h->address) {
                haven__sealed__free_unpacked(h->address, NULL);
                h->address = NULL;
            }
        }
        rc = s_reply_holds(ctx, txn, r, &s.list);
    }
    brk_store_list_free(&s.list);
    return rc;
}

int
brk_handle_referrals(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    const char *provider = r->req->referrals->provider;
    const char *one = r->req->referrals->hold;
    if (brk_check_scope(r, provider))
        return 1;
    brk_hold_scan_t s = { .provider = provider, .collect = true, .pending_only = !one };
    int rc;
    if (one) {
        /* One referral in whatever state, so staff are told what became of it. */
        Haven__Hold *h = NULL;
        s.list.desc = &haven__hold__descriptor;
        if ((rc = s_load_own(ctx, txn, r, one, true, &h)) != 0)
            return rc;
        rc = brk_store_list_add(&s.list, &h->base);
    } else {
        rc = brk_holds_scan(ctx, txn, &s);
    }
    if (rc == 0) {
        /* Each agent gets only the box sealed to its own key. */
        for (size_t i = 0; i < s.list.n; i++) {
            Haven__Hold *h = (Haven__Hold *) s.list.items[i];
            size_t keep = 0;
            for (size_t k = 0; k < h->n_notes; k++) {
                if (memcmp(h->notes[k]->recipient.data, r->who.seal, 32) == 0)
                    h->notes[keep++] = h->notes[k];
                else
                    haven__sealed__free_unpacked(h->notes[k], NULL);
            }
            h->n_notes = keep;
        }
        rc = s_reply_holds(ctx, txn, r, &s.list);
    }
    brk_store_list_free(&s.list);
    return rc;
}
