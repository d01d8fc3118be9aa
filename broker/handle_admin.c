/* SPDX-License-Identifier: MIT */
/* Administrator requests: providers and principals. Admins manage who may
 * speak and for which provider; they never see sealed material. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "../common/cert.h"
#include "../common/keys.h"
#include "../proto/names.h"
#include "audit.h"
#include "log.h"
#include "report.h"
#include "handle_agent.h"
#include "replay.h"
#include "handle_admin.h"
#include "hold.h"
#include "handle_watch.h"

int
brk_handle_ping(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    (void) ctx;
    (void) txn;
    Haven__Pong pong = HAVEN__PONG__INIT;
    pong.version = (char *) HAVEN_VERSION;
    pong.principal = r->who.name;
    pong.has_role = 1;
    pong.role = r->who.role;
    Haven__Reply reply = HAVEN__REPLY__INIT;
    reply.body_case = HAVEN__REPLY__BODY_PONG;
    reply.pong = &pong;
    return brk_reply_ok(r, &reply);
}

int
brk_handle_provider_add(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    const Haven__Provider *p = r->req->provider_add->provider;
    const void *val;
    size_t vlen;
    if (brk_districts_find(ctx->districts, p->district) < 0)
        return brk_reply_error(r, HAVEN__STATUS__STATUS_BAD_REQUEST,
                               "district %s is not in the broker's districts table", p->district);
    int rc = brk_store_get(ctx->store, txn, BRK_DB_PROVIDERS, p->id, strlen(p->id), &val, &vlen);
    if (rc == 0)
        return brk_reply_error(r, HAVEN__STATUS__STATUS_CONFLICT, "provider %s already exists", p->id);
    if (rc != -ENOENT)
        return rc;
    /* Store only what an admin may set: the service rules and versions
     * come from the provider's own catalog. */
    Haven__Provider rec = HAVEN__PROVIDER__INIT;
    rec.id = p->id;
    rec.name = p->name;
    rec.kind = p->kind;
    rec.district = p->district;
    rec.phone = p->phone;
    if ((rc = brk_store_put_msg(ctx->store, txn, BRK_DB_PROVIDERS, p->id, strlen(p->id), &rec.base)) < 0
        || (rc = brk_ctx_dirty(ctx, BRK_DIRTY_PROVIDER, p->id, NULL, NULL)) < 0)
        return rc;
    brk_log(BRK_LOG_INFO, "%s added provider %s (%s, %s)", r->who.name, p->id,
            hv_kind_name(p->kind), p->district);
    snprintf(r->audit.detail, sizeof r->audit.detail, "provider %s", p->id);
    Haven__Reply reply = HAVEN__REPLY__INIT;
    return brk_reply_ok(r, &reply);
}

int
brk_handle_provider_list(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    brk_store_list_t l;
    int rc = brk_store_list(ctx->store, txn, BRK_DB_PROVIDERS, NULL, 0, &haven__provider__descriptor, &l);
    if (rc == 0) {
        Haven__Provider **items = (Haven__Provider **) l.items;
        /* Unit counts come from the index, which holds exactly the stored units. */
        uint32_t *counts = calloc(brk_index_provider_count(ctx->index) + 1, sizeof *counts);
        for (size_t i = 0; counts && i < brk_index_unit_count(ctx->index); i++)
            counts[brk_index_unit(ctx->index, (uint32_t) i)->prov]++;
        for (size_t i = 0; i < l.n; i++) {
            int idx = brk_index_find_provider(ctx->index, items[i]->id);
            items[i]->has_units = 1;
            items[i]->units = counts && idx >= 0 ? counts[idx] : 0;
        }
        free(counts);
        Haven__ProviderListReply body = HAVEN__PROVIDER_LIST_REPLY__INIT;
        body.n_providers = l.n;
        body.providers = items;
        Haven__Reply reply = HAVEN__REPLY__INIT;
        reply.body_case = HAVEN__REPLY__BODY_PROVIDERS;
        reply.providers = &body;
        rc = brk_reply_ok(r, &reply);
    }
    brk_store_list_free(&l);
    return rc;
}

static bool
s_same_text(const char *a, const char *b)
{
    return strcasecmp(a && *a ? a : "", b && *b ? b : "") == 0;
}

/* The broker cannot make a certificate, but it checks the ones it is given:
 * signed by the administrator who sends it, and saying exactly what is
 * being registered. Returns 0 with *cert_out, or 1 with a refusal packed. */
static int
s_check_certificate(brk_ctx_t *ctx, brk_request_t *r, const Haven__Signed *s, const Haven__Principal *p,
                    const uint8_t *sign_key, Haven__Certificate **cert_out)
{
    char err[256];
    Haven__Certificate *c = NULL;
    if (!s)
        return brk_reply_error(r, HAVEN__STATUS__STATUS_BAD_REQUEST,
                               "a principal needs a certificate signed by the administrator who adds it "
                               "(haven-admin %s makes one)", HAVEN_VERSION);
    if (!r->who.has_sign)
        return brk_reply_error(r, HAVEN__STATUS__STATUS_FORBIDDEN,
                               "your administrator key (%s) has no signing key registered: certify it first "
                               "with haven-admin certify --name %s --public-key YOUR.pub", r->who.name, r->who.name);
    int rc = hv_cert_verify(NULL, r->who.sign, s, ctx->now, &c, err, sizeof err);
    if (rc < 0)
        return brk_reply_error(r, rc == -EPERM ? HAVEN__STATUS__STATUS_FORBIDDEN : HAVEN__STATUS__STATUS_BAD_REQUEST,
                               "the certificate is refused: %s", err);
    bool same = (int) c->role == (int) p->role && strcmp(c->name, p->name) == 0
                && s_same_text(c->provider, p->provider) && s_same_text(c->region, p->region)
                && memcmp(c->curve_key.data, p->curve_key.data, 32) == 0
                && p->has_seal_key && p->seal_key.len == 32 && memcmp(c->seal_key.data, p->seal_key.data, 32) == 0
                && (!sign_key || memcmp(c->sign_key.data, sign_key, 32) == 0);
    if (!same) {
        haven__certificate__free_unpacked(c, NULL);
        return brk_reply_error(r, HAVEN__STATUS__STATUS_BAD_REQUEST,
                               "the certificate does not describe principal %s as registered "
                               "(role, name, provider, region and keys must match)", p->name);
    }
    *cert_out = c;
    return 0;
}

int
brk_handle_principal_add(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    const Haven__Principal *p = r->req->principal_add->principal;
    const void *val;
    size_t vlen;
    int rc = brk_store_get(ctx->store, txn, BRK_DB_NAMES, p->name, strlen(p->name), &val, &vlen);
    if (rc == 0)
        return brk_reply_error(r, HAVEN__STATUS__STATUS_CONFLICT, "a principal named %s already exists", p->name);
    if (rc != -ENOENT)
        return rc;
    rc = brk_store_get(ctx->store, txn, BRK_DB_PRINCIPALS, p->curve_key.data, 32, &val, &vlen);
    if (rc == 0)
        return brk_reply_error(r, HAVEN__STATUS__STATUS_CONFLICT,
                               "that public key is already registered to another principal");
    if (rc != -ENOENT)
        return rc;
    /* A box sealed to a key of small order has no secret in it at all. */
    if (!hv_key_usable(p->curve_key.data)
        || (p->has_seal_key && p->seal_key.len == 32 && !hv_key_usable(p->seal_key.data)))
        return brk_reply_error(r, HAVEN__STATUS__STATUS_BAD_REQUEST,
                               "that public key is unusable (a key of small order: anything sealed to it "
                               "could be read by anyone); make a new one with keygen");
    if (p->role != HAVEN__ROLE__ROLE_AGENT && p->role != HAVEN__ROLE__ROLE_ADMIN
        && !(p->has_seal_key && p->seal_key.len == 32))
        return brk_reply_error(r, HAVEN__STATUS__STATUS_BAD_REQUEST,
                               "an IDVA or on-call officer needs a sealing key, for the addresses sealed to them");
    const char *region = NULL;
    if (p->role == HAVEN__ROLE__ROLE_ONCALL) {
        char list[256];
        region = brk_districts_region_find(ctx->districts, p->region, list, sizeof list);
        if (!region)
            return brk_reply_error(r, HAVEN__STATUS__STATUS_BAD_REQUEST,
                                   "%s%s%s is not a region of the districts table; regions: %s",
                                   p->region && *p->region ? "'" : "",
                                   p->region && *p->region ? p->region : "no region",
                                   p->region && *p->region ? "'" : "", list);
    }
    if (p->role == HAVEN__ROLE__ROLE_AGENT) {
        rc = brk_store_get(ctx->store, txn, BRK_DB_PROVIDERS, p->provider, strlen(p->provider), &val, &vlen);
        if (rc == -ENOENT)
            return brk_reply_error(r, HAVEN__STATUS__STATUS_NOT_FOUND,
                                   "provider %s does not exist; add it first", p->provider);
        if (rc < 0)
            return rc;
    }
    Haven__Certificate *cert = NULL;
    if ((rc = s_check_certificate(ctx, r, r->req->principal_add->certificate, p, NULL, &cert)) != 0)
        return rc;
    Haven__Principal rec = *p;
    rec.base.unknown_fields = NULL;
    rec.base.n_unknown_fields = 0;
    rec.has_revoked = 1;
    rec.revoked = 0;
    rec.has_created_at = 1;
    rec.created_at = ctx->now;
    if (region)
        rec.region = (char *) region;    /* as the table spells it */
    uint8_t sign[32];
    memcpy(sign, cert->sign_key.data, 32);
    haven__certificate__free_unpacked(cert, NULL);
    rec.has_sign_key = 1;
    rec.sign_key = (ProtobufCBinaryData) { 32, sign };
    rec.certificate = r->req->principal_add->certificate;
    if ((rc = brk_store_put_msg(ctx->store, txn, BRK_DB_PRINCIPALS, p->curve_key.data, 32, &rec.base)) < 0
        || (rc = brk_store_put(ctx->store, txn, BRK_DB_NAMES, p->name, strlen(p->name),
                               p->curve_key.data, 32)) < 0
        || (rc = brk_ctx_dirty(ctx, BRK_DIRTY_PRINCIPAL, NULL, NULL, p->curve_key.data)) < 0)
        return rc;
    brk_log(BRK_LOG_INFO, "%s added principal %s (%s%s%s)", r->who.name, p->name,
            hv_role_name(p->role), p->provider ? " of " : "", p->provider ? p->provider : "");
    snprintf(r->audit.detail, sizeof r->audit.detail, "principal %s (%s)", p->name, hv_role_name(p->role));
    Haven__Reply reply = HAVEN__REPLY__INIT;
    return brk_reply_ok(r, &reply);
}

int
brk_handle_principal_revoke(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    const char *name = r->req->principal_revoke->name;
    const void *key;
    size_t klen;
    Haven__Principal *p = NULL;
    int rc = brk_store_get(ctx->store, txn, BRK_DB_NAMES, name, strlen(name), &key, &klen);
    if (rc == -ENOENT)
        return brk_reply_error(r, HAVEN__STATUS__STATUS_NOT_FOUND, "no principal named %s", name);
    if (rc < 0)
        return rc;
    if (klen != 32 || memcmp(key, r->who.curve, 32) == 0)
        return brk_reply_error(r, HAVEN__STATUS__STATUS_BAD_REQUEST,
                               "you cannot revoke your own key; ask another administrator");
    uint8_t k[32];
    memcpy(k, key, 32);          /* copy: the value dies with the transaction's next write */
    rc = brk_store_get_msg(ctx->store, txn, BRK_DB_PRINCIPALS, k, 32, &haven__principal__descriptor,
                           (ProtobufCMessage **) &p);
    if (rc < 0)
        return rc;
    /* Revocations are signed like certificates, so a client can tell a
     * revoked key without taking the broker's word for it. */
    const Haven__Signed *signed_rv = r->req->principal_revoke->revocation;
    Haven__Revocation *rv = NULL;
    char err[256];
    if (!signed_rv || !r->who.has_sign) {
        haven__principal__free_unpacked(p, NULL);
        return brk_reply_error(r, HAVEN__STATUS__STATUS_BAD_REQUEST,
                               "a revocation must be signed by the administrator who sends it");
    }
    if ((rc = hv_revocation_verify(NULL, r->who.sign, signed_rv, &rv, err, sizeof err)) < 0
        || strcmp(rv->name, name) != 0 || memcmp(rv->curve_key.data, k, 32) != 0) {
        if (rv)
            haven__revocation__free_unpacked(rv, NULL);
        haven__principal__free_unpacked(p, NULL);
        return brk_reply_error(r, HAVEN__STATUS__STATUS_BAD_REQUEST, "the revocation is refused: %s",
                               rc < 0 ? err : "it names another key");
    }
    haven__revocation__free_unpacked(rv, NULL);
    Haven__Signed *kept = p->revocation;
    p->revocation = (Haven__Signed *) signed_rv;
    p->has_revoked = 1;
    p->revoked = 1;
    /* Revocation ends everything the key had (design.md section 6, item
     * 12): its pending holds are withdrawn (the units offered again, the
     * refuges told), its watches end, its inbox is emptied and the replies
     * kept for its retries are forgotten; the loop
     * closes its connections and stops its pushes after the commit. */
    size_t holds = 0, watches = 0;
    if ((rc = brk_store_put_msg(ctx->store, txn, BRK_DB_PRINCIPALS, k, 32, &p->base)) == 0
        && (rc = brk_watches_end(ctx, txn, k, &watches)) == 0     /* first: the units the holds */
        && (rc = brk_holds_withdraw(ctx, txn, k, &holds)) == 0    /* give back must not alert them */
        && (rc = brk_replay_forget(ctx->store, txn, k)) >= 0      /* no copies of its replies stay */
        && (rc = p->role == HAVEN__ROLE__ROLE_AGENT && p->provider     /* nor a resync only it could do */
                 ? brk_agent_resync_forget(ctx, txn, p->provider, k) : 0) == 0
        && (rc = brk_ctx_dirty(ctx, BRK_DIRTY_PRINCIPAL, NULL, NULL, k)) == 0) {
        brk_log(BRK_LOG_INFO, "%s revoked principal %s: %zu pending holds withdrawn, %zu watches ended",
                r->who.name, name, holds, watches);
        snprintf(r->audit.detail, sizeof r->audit.detail, "principal %s; %zu holds withdrawn, %zu watches ended",
                 name, holds, watches);
        Haven__Reply reply = HAVEN__REPLY__INIT;
        rc = brk_reply_ok(r, &reply);
    }
    p->revocation = kept;        /* the request owns what it sent */
    haven__principal__free_unpacked(p, NULL);
    return rc;
}

int
brk_handle_principal_certify(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    const Haven__PrincipalCertify *q = r->req->principal_certify;
    const void *key;
    size_t klen;
    Haven__Principal *p = NULL;
    Haven__Certificate *cert = NULL;
    int rc = brk_store_get(ctx->store, txn, BRK_DB_NAMES, q->name, strlen(q->name), &key, &klen);
    if (rc == -ENOENT)
        return brk_reply_error(r, HAVEN__STATUS__STATUS_NOT_FOUND, "no principal named %s", q->name);
    if (rc < 0 || klen != 32)
        return rc < 0 ? rc : -EBADMSG;
    uint8_t k[32];
    memcpy(k, key, 32);
    if ((rc = brk_store_get_msg(ctx->store, txn, BRK_DB_PRINCIPALS, k, 32, &haven__principal__descriptor,
                                (ProtobufCMessage **) &p)) < 0)
        return rc;
    if (p->has_revoked && p->revoked) {
        rc = brk_reply_error(r, HAVEN__STATUS__STATUS_CONFLICT, "%s is revoked; register a new key instead", q->name);
        goto out;
    }
    /* An administrator registered before signing keys existed certifies
     * itself once: a certificate for its own key, signed by that key's
     * signing half, proves it holds it. Every other certificate comes
     * from an administrator whose signing key is known. */
    if (memcmp(k, r->who.curve, 32) == 0 && !r->who.has_sign) {
        /* checked below against the key it names: only its holder could sign it */
        Haven__Certificate *c = haven__certificate__unpack(NULL, q->certificate->body.len, q->certificate->body.data);
        if (c && c->sign_key.len == 32) {
            memcpy(r->who.sign, c->sign_key.data, 32);
            r->who.has_sign = true;
        }
        if (c)
            haven__certificate__free_unpacked(c, NULL);
    }
    if ((rc = s_check_certificate(ctx, r, q->certificate, p, p->has_sign_key ? p->sign_key.data : NULL, &cert)) != 0)
        goto out;
    uint8_t sign[32];
    memcpy(sign, cert->sign_key.data, 32);
    Haven__Signed *kept = p->certificate;
    p->certificate = q->certificate;
    p->has_sign_key = 1;
    ProtobufCBinaryData kept_key = p->sign_key;
    p->sign_key = (ProtobufCBinaryData) { 32, sign };
    if ((rc = brk_store_put_msg(ctx->store, txn, BRK_DB_PRINCIPALS, k, 32, &p->base)) == 0
        && (rc = brk_ctx_dirty(ctx, BRK_DIRTY_PRINCIPAL, NULL, NULL, k)) == 0) {
        brk_log(BRK_LOG_INFO, "%s certified principal %s", r->who.name, q->name);
        snprintf(r->audit.detail, sizeof r->audit.detail, "certificate for %s", q->name);
        Haven__Reply reply = HAVEN__REPLY__INIT;
        rc = brk_reply_ok(r, &reply);
    }
    p->certificate = kept;
    p->sign_key = kept_key;
out:
    if (cert)
        haven__certificate__free_unpacked(cert, NULL);
    haven__principal__free_unpacked(p, NULL);
    return rc;
}

int
brk_handle_principal_list(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    brk_store_list_t l;
    int rc = brk_store_list(ctx->store, txn, BRK_DB_PRINCIPALS, NULL, 0, &haven__principal__descriptor, &l);
    if (rc == 0) {
        Haven__PrincipalListReply body = HAVEN__PRINCIPAL_LIST_REPLY__INIT;
        body.n_principals = l.n;
        body.principals = (Haven__Principal **) l.items;
        Haven__Reply reply = HAVEN__REPLY__INIT;
        reply.body_case = HAVEN__REPLY__BODY_PRINCIPALS;
        reply.principals = &body;
        rc = brk_reply_ok(r, &reply);
    }
    brk_store_list_free(&l);
    return rc;
}

int
brk_handle_audit_verify(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    const Haven__AuditVerify *q = r->req->audit_verify;
    const uint8_t *sign_public = brk_audit_key_sign_public(ctx->audit_key);
    brk_audit_result_t res;
    Haven__AuditHead head;
    uint8_t hash[32], sig[64];
    int rc = 0;
    if (q->head && brk_audit_head_check(q->head, sign_public) == -EINVAL)
        return brk_reply_error(r, HAVEN__STATUS__STATUS_BAD_REQUEST, "that is not an audit head");
    Haven__AuditVerifyReply body = HAVEN__AUDIT_VERIFY_REPLY__INIT;
    if (!q->has_head_only || !q->head_only) {
        brk_audit_check_t check = { ctx->audit_key, sign_public, q->head };
        rc = brk_audit_verify(ctx->store, txn, &check, &res);
        if (rc < 0 && rc != -EILSEQ)
            return rc;
        body.has_records = body.has_first = body.has_keyed_from = 1;
        body.records = res.records;
        body.first = res.first;
        body.keyed_from = res.keyed_from;
        if (q->head) {
            body.has_head_checked = 1;
            body.head_checked = res.head_checked;
        }
        if (rc == -EILSEQ) {
            body.has_first_bad = 1;
            body.first_bad = res.bad;
            brk_log(BRK_LOG_WARN, "audit log check failed: %s", res.problem);
        }
        if (rc == -EILSEQ || (q->head && !res.head_checked))
            body.problem = res.problem;
    }
    body.ok = rc == 0;
    /* The head of what was just checked, signed: one to keep elsewhere. */
    if ((rc = brk_audit_head(ctx->audit_key, ctx->store, txn, ctx->now, &head, hash, sig)) < 0)
        return rc;
    body.head = &head;
    Haven__Reply reply = HAVEN__REPLY__INIT;
    reply.body_case = HAVEN__REPLY__BODY_AUDIT_VERIFY;
    reply.audit_verify = &body;
    return brk_reply_ok(r, &reply);
}

typedef struct {
    const char *principal;
    uint32_t limit;
    brk_store_list_t list;
} s_show_t;

static int
s_show_one(void *arg, const Haven__AuditRecord *rec)
{
    s_show_t *s = arg;
    if (s->principal && (!rec->principal || strcmp(rec->principal, s->principal) != 0))
        return 0;
    /* copy: the record dies when the walk moves on */
    size_t len = protobuf_c_message_get_packed_size(&rec->base);
    uint8_t *buf = malloc(len + 1);
    if (!buf)
        return -ENOMEM;
    protobuf_c_message_pack(&rec->base, buf);
    ProtobufCMessage *copy = protobuf_c_message_unpack(&haven__audit_record__descriptor, NULL, len, buf);
    free(buf);
    int rc = copy ? brk_store_list_add(&s->list, copy) : -ENOMEM;
    return rc < 0 ? rc : s->list.n >= s->limit ? 1 : 0;
}

int
brk_handle_audit_show(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    const Haven__AuditShow *a = r->req->audit_show;
    s_show_t s = { .principal = a->principal,
                   .limit = a->has_limit && a->limit ? a->limit : BRK_AUDIT_SHOW_DEFAULT };
    if (s.limit > BRK_AUDIT_SHOW_MAX)
        s.limit = BRK_AUDIT_SHOW_MAX;    /* a limit of 4,000,000,000 would hold the log in memory */
    s.list.desc = &haven__audit_record__descriptor;
    int rc = brk_audit_each(ctx->store, txn, a->has_since ? a->since : 0, s_show_one, &s);
    if (rc == 0) {
        Haven__AuditRecord **recs = (Haven__AuditRecord **) s.list.items;
        for (size_t i = 0; i < s.list.n; i++)
            recs[i]->has_prev = recs[i]->has_hash = recs[i]->has_mac = 0;
        Haven__AuditShowReply body = HAVEN__AUDIT_SHOW_REPLY__INIT;
        body.n_records = s.list.n;
        body.records = recs;
        Haven__Reply reply = HAVEN__REPLY__INIT;
        reply.body_case = HAVEN__REPLY__BODY_AUDIT_SHOW;
        reply.audit_show = &body;
        rc = brk_reply_ok(r, &reply);
    }
    brk_store_list_free(&s.list);
    return rc;
}

int
brk_handle_report(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    const Haven__Report *q = r->req->report;
    Haven__ReportReply body;
    int rc = brk_report_run(ctx->store, txn, ctx->index, ctx->districts, q->name, q->has_from ? q->from : 0,
                            q->has_to ? q->to : 0, ctx->now, &body);
    if (rc == 0) {
        Haven__Reply reply = HAVEN__REPLY__INIT;
        reply.body_case = HAVEN__REPLY__BODY_REPORT;
        reply.report = &body;
        rc = brk_reply_ok(r, &reply);
    }
    brk_report_free(&body);
    return rc;
}
