/* SPDX-License-Identifier: MIT */
/* Placement search: the need is matched against the in-memory index; each
 * result carries an offer token bound to the searcher. Nothing is written. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../proto/names.h"
#include "log.h"
#include "match.h"
#include "offer.h"
#include "report.h"
#include "handle_search.h"
#include "scope.h"

/* An offer's soft preferences: at most PREFS_MAX names (specialist,
 * district, 24 languages) in a buffer of PREFS_BUF bytes. */
#define PREFS_MAX 27
#define PREFS_BUF 256

/* Soft preference names, e.g. "language:pl", "specialist:lgbt",
 * "district:E07000008". */
static int
s_pref_names(const brk_need_t *need, const brk_hit_t *h, const brk_prov_t *p,
             const brk_unit_t *u, const brk_districts_t *d, char **out, char *buf, size_t buflen)
{
    int n = 0;
    size_t used = 0;
#define ADD(...) do { \
        int w = snprintf(buf + used, buflen - used, __VA_ARGS__); \
        if (w < 0 || (size_t) w >= buflen - used) return n; \
        out[n++] = buf + used; used += (size_t) w + 1; \
    } while (0)
    if (h->prefs & 1)
        ADD("specialist:%s", hv_specialist_name(p->specialist));
    if (h->prefs & 2)
        ADD("district:%s", brk_districts_code(d, u->district));
    for (int i = 0; i < 24; i++)
        if (h->prefs & (1u << (8 + i)))
            ADD("language:%s", brk_need_language(need, i));
#undef ADD
    return n;
}

/* The need as a hold keeps it: the household and its needs, never where
 * the survivor comes from or must not go (that would say where the
 * perpetrator is). Returns the packed length, 0 if it does not fit. */
static uint8_t
s_need_summary(const Haven__Need *n, uint8_t *buf)
{
    Haven__Need s = HAVEN__NEED__INIT;
    s.has_gender = n->has_gender;
    s.gender = n->gender;
    s.has_trans = n->has_trans;
    s.trans = n->trans;
    s.has_age = n->has_age;
    s.age = n->age;
    s.has_adults = n->has_adults;
    s.adults = n->adults;
    s.n_children = n->n_children;
    s.children = n->children;
    s.has_pets = n->has_pets;
    s.pets = n->pets;
    s.has_access = n->has_access;
    s.access = n->access;
    s.has_nrpf = n->has_nrpf;
    s.nrpf = n->nrpf;
    s.has_complex_needs = n->has_complex_needs;
    s.complex_needs = n->complex_needs;
    s.n_languages = n->n_languages;
    s.languages = n->languages;
    if (protobuf_c_message_get_packed_size(&s.base) > BRK_OFFER_NEED_MAX) {
        s.n_languages = 0;       /* the household matters more than the languages */
        if (protobuf_c_message_get_packed_size(&s.base) > BRK_OFFER_NEED_MAX)
            return 0;
    }
    return (uint8_t) protobuf_c_message_pack(&s.base, buf);
}

/* One offer: the unit of hit h, with a token sealed to the searcher that
 * carries the need summary (for the hold's check that the unit still
 * takes this household). Returns 0 or -errno. */
static int
s_offer(brk_ctx_t *ctx, const brk_request_t *r, const brk_need_t *need, const brk_hit_t *h, const uint8_t *summary,
        uint8_t summary_len, char *token, Haven__Offer *of, char **prefs, char *prefbuf)
{
    const brk_unit_t *u = brk_index_unit(ctx->index, h->unit);
    const brk_prov_t *p = brk_index_provider(ctx->index, u->prov);
    brk_offer_t o = { 0 };
    snprintf(o.provider, sizeof o.provider, "%s", p->id);
    snprintf(o.unit, sizeof o.unit, "%s", u->name);
    memcpy(o.principal, r->who.curve, 32);
    o.expires_at = ctx->now + ctx->cfg->offer_ttl_s;
    o.version = u->version;
    o.need_len = summary_len;
    memcpy(o.need, summary, summary_len);
    int rc = brk_offer_seal(ctx->token_key, &o, token, BRK_OFFER_TOKEN_MAX);
    if (rc < 0)
        return rc;
    haven__offer__init(of);
    of->offer = token;
    of->provider_id = (char *) p->id;
    of->provider = p->name;
    of->kind = p->kind;
    of->unit = (char *) u->name;
    of->district = (char *) brk_districts_code(ctx->districts, u->district);
    of->district_name = (char *) brk_districts_name(ctx->districts, u->district);
    if (h->distance_km >= 0) {
        of->has_distance_km = 1;
        of->distance_km = (uint32_t) lround(h->distance_km);
    }
    of->has_confirmed_age_s = 1;
    of->confirmed_age_s = u->confirmed_at ? ctx->now - u->confirmed_at : -1;
    of->has_stale = 1;
    of->stale = h->stale;
    of->n_preferences_matched = (size_t) s_pref_names(need, h, p, u, ctx->districts, prefs, prefbuf, PREFS_BUF);
    of->preferences_matched = prefs;
    /* Only roles allowed to search reach here: IDVA and on-call may
     * see the out-of-hours phone. */
    of->phone = p->phone;
    of->has_features = of->has_max_occupants = of->has_bedrooms = of->has_cots = 1;
    of->features = u->features;
    of->max_occupants = u->max_occupants;
    of->bedrooms = u->bedrooms;
    of->cots = u->cots;
    of->has_pets = of->has_nrpf = 1;
    of->pets = p->pets;
    of->nrpf = p->nrpf;
    if (u->available_from > ctx->now) {
        of->has_available_from = 1;
        of->available_from = u->available_from;
    }
    return 0;
}

/* For the audit log and the unmet-need report: the need's flags and the
 * region searched (one of a dozen), never districts or free text. */
static void
s_audit_search(const brk_ctx_t *ctx, brk_request_t *r, const brk_need_t *need, const brk_result_t *res,
               uint32_t limit)
{
    const Haven__Search *s = r->req->search;
    r->audit.search = true;
    r->audit.dims = brk_need_dims(s->need);
    snprintf(r->audit.region, sizeof r->audit.region, "%s",
             brk_districts_region_of(ctx->districts, brk_need_reference(need)));
    r->audit.matching = res->matching;
    r->audit.limit = limit;
    uint32_t most = 0;
    for (int k = 0; k < BRK_RULE__COUNT; k++)
        if (res->relax[k] > most) {
            most = res->relax[k];
            r->audit.relax = brk_rule_name((brk_rule_t) k);
        }
    /* The coarse flags the reports count, never ages, districts or
     * languages: the log outlives the search by months, beside the same
     * IDVA's holds, and must not say which family went where. */
    brk_need_flags(s->need, r->audit.dims, r->audit.detail, sizeof r->audit.detail);
}

int
brk_handle_search(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    (void) txn;
    const Haven__Search *s = r->req->search;
    brk_need_t *need = NULL;
    brk_result_t res = { 0 };
    char err[256];
    uint32_t limit = s->has_limit ? s->limit : 10;
    if (limit > ctx->cfg->max_results)
        limit = (uint32_t) ctx->cfg->max_results;

    if (brk_check_need_kinds(r, s->need))
        return 1;
    int rc = brk_need_compile(s->need, ctx->districts, ctx->now, &need, err, sizeof err);
    if (rc == -ENOENT)
        return brk_reply_error(r, HAVEN__STATUS__STATUS_BAD_REQUEST, "%s", err);
    if (rc < 0)
        return rc;
    brk_need_hide_kinds(need, brk_hidden_kinds(r->who.role));
    if ((rc = brk_match_search(need, ctx->index, limit, &res)) < 0)
        goto out;

    uint8_t summary[BRK_OFFER_NEED_MAX];
    uint8_t summary_len = s_need_summary(s->need, summary);
    Haven__Offer *offers = calloc(res.n_hits ? res.n_hits : 1, sizeof *offers);
    Haven__Offer **offer_ptrs = calloc(res.n_hits ? res.n_hits : 1, sizeof *offer_ptrs);
    char (*tokens)[BRK_OFFER_TOKEN_MAX] = calloc(res.n_hits ? res.n_hits : 1, sizeof *tokens);
    char (*prefbuf)[PREFS_BUF] = calloc(res.n_hits ? res.n_hits : 1, sizeof *prefbuf);
    char *(*prefs)[PREFS_MAX] = calloc(res.n_hits ? res.n_hits : 1, sizeof *prefs);
    Haven__Relaxation relax[BRK_RULE__COUNT];
    Haven__Relaxation *relax_ptrs[BRK_RULE__COUNT];
    size_t n_relax = 0;
    if (!offers || !offer_ptrs || !tokens || !prefbuf || !prefs) {
        rc = -ENOMEM;
        goto out_free;
    }
    for (uint32_t i = 0; i < res.n_hits; i++) {
        if ((rc = s_offer(ctx, r, need, &res.hits[i], summary, summary_len, tokens[i], &offers[i], prefs[i],
                          prefbuf[i])) < 0)
            goto out_free;
        offer_ptrs[i] = &offers[i];
    }
    if (res.matching < limit)
        for (int k = 0; k < BRK_RULE__COUNT; k++)
            if (res.relax[k]) {
                haven__relaxation__init(&relax[n_relax]);
                relax[n_relax].rule = (char *) brk_rule_name((brk_rule_t) k);
                relax[n_relax].has_id = 1;
                relax[n_relax].id = (Haven__Rule) (k + 1);
                relax[n_relax].matching = res.relax[k];
                relax_ptrs[n_relax] = &relax[n_relax];
                n_relax++;
            }

    Haven__SearchReply body = HAVEN__SEARCH_REPLY__INIT;
    body.matching = res.matching;
    body.n_offers = res.n_hits;
    body.offers = offer_ptrs;
    body.n_relaxations = n_relax;
    body.relaxations = relax_ptrs;
    Haven__Reply reply = HAVEN__REPLY__INIT;
    reply.body_case = HAVEN__REPLY__BODY_SEARCH;
    reply.search = &body;
    rc = brk_reply_ok(r, &reply);
    s_audit_search(ctx, r, need, &res, limit);
    brk_log(BRK_LOG_DEBUG, "%s searched: %u matching, %u returned", r->who.name, res.matching, res.n_hits);
out_free:
    free(offers);
    free(offer_ptrs);
    free(tokens);
    free(prefbuf);
    free(prefs);
out:
    brk_result_free(&res);
    free(need);
    return rc;
}
