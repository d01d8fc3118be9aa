/* SPDX-License-Identifier: MIT */
/* The match engine (see match.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../proto/names.h"
#include "match.h"

#define BIT(r) (1u << (r))

struct brk_need {
    int64_t now;
    int64_t from;                /* available by then */
    uint8_t gender;
    uint8_t own_genders;         /* the Genders value for the adult's own gender */
    bool trans;
    int age;                     /* -1: not given */
    int household;
    int n_children;
    int oldest_boy;              /* -1: no boys */
    uint8_t pets;
    uint8_t access;              /* features asked, self-contained excluded */
    bool self_contained;
    bool nrpf;
    uint8_t complex_needs;
    uint32_t kinds;              /* bit per Kind; 0: any */
    uint32_t hidden_kinds;       /* bit per Kind: never shown, never counted */
    uint8_t specialist;
    bool include_stale;
    int reference;               /* district index, -1 */
    double within_km;            /* < 0: no rule */
    int n_languages;
    uint16_t languages[HV_LIST_MAX];
    char language_names[HV_LIST_MAX][3];
    uint32_t feature_fail[256];  /* rules failed by each possible feature byte */
    size_t n_districts;
    /* per-district tables, n_districts long: excluded/preferred flags, and
     * distances from the reference district (the districts table's row) */
    uint8_t *excluded;
    uint8_t *preferred;
    const double *distance;
    uint8_t tables[];
};


/* Access features in the order of their rules. */
static const struct { uint8_t feature; brk_rule_t rule; } s_access[] = {
    { HAVEN__FEATURE__FEATURE_WHEELCHAIR, BRK_RULE_WHEELCHAIR },
    { HAVEN__FEATURE__FEATURE_STEP_FREE, BRK_RULE_STEP_FREE },
    { HAVEN__FEATURE__FEATURE_GROUND_FLOOR, BRK_RULE_GROUND_FLOOR },
    { HAVEN__FEATURE__FEATURE_ACCESSIBLE_BATHROOM, BRK_RULE_ACCESSIBLE_BATHROOM },
    { HAVEN__FEATURE__FEATURE_SENSORY, BRK_RULE_SENSORY },
    { HAVEN__FEATURE__FEATURE_PERSONAL_CARE, BRK_RULE_PERSONAL_CARE },
    { HAVEN__FEATURE__FEATURE_CARER_ROOM, BRK_RULE_CARER_ROOM },
};

const char *
brk_rule_name(brk_rule_t rule)
{
    /* the engine's rules are the protocol's, in the same order */
    return rule < BRK_RULE__COUNT ? hv_rule_name((int) rule + 1) : "?";
}

static int
s_district(const brk_districts_t *d, const char *code, const char *what,
           char *err, size_t errlen)
{
    int i = brk_districts_find(d, code);
    if (i < 0)
        snprintf(err, errlen, "%s district %s is not in the districts table", what, code);
    return i;
}

/* The places a need names: districts excluded (and home, when out of
 * area), the reference (home, or near), and those preferred. Returns 0,
 * or -ENOENT with err saying which district is unknown. */
static int
s_need_places(brk_need_t *need, const Haven__Need *n, brk_districts_t *districts, char *err, size_t errlen)
{
    for (size_t i = 0; i < n->n_exclude; i++) {
        int d = s_district(districts, n->exclude[i], "excluded", err, errlen);
        if (d < 0)
            return d;
        need->excluded[d] = 1;
    }
    if (n->home) {
        int d = s_district(districts, n->home, "home", err, errlen);
        if (d < 0)
            return d;
        need->reference = d;
        if (n->has_out_of_area && n->out_of_area)
            need->excluded[d] = 1;
    } else {
        need->reference = -1;
    }
    if (n->near) {
        int d = s_district(districts, n->near, "near", err, errlen);
        if (d < 0)
            return d;
        need->reference = d;
    }
    for (size_t i = 0; i < n->n_prefer; i++) {
        int d = s_district(districts, n->prefer[i], "preferred", err, errlen);
        if (d < 0)
            return d;
        need->preferred[d] = 1;
    }
    return 0;
}

int
brk_need_compile(const Haven__Need *n, brk_districts_t *districts, int64_t now,
                 brk_need_t **need_out, char *err, size_t errlen)
{
    size_t nd = brk_districts_count(districts);
    brk_need_t *need = calloc(1, sizeof *need + 2 * nd);
    int rc = 0;
    if (!need)
        return -ENOMEM;
    need->n_districts = nd;
    need->excluded = need->tables;
    need->preferred = need->excluded + nd;

    need->now = now;
    need->from = n->has_from && n->from > now ? n->from : now;
    need->gender = n->has_gender ? (uint8_t) n->gender : 0;
    need->own_genders = need->gender == HAVEN__GENDER__GENDER_WOMAN ? HAVEN__GENDERS__GENDERS_WOMEN
                      : need->gender == HAVEN__GENDER__GENDER_MAN ? HAVEN__GENDERS__GENDERS_MEN
                      : 0xff;
    need->trans = n->has_trans && n->trans;
    need->age = n->has_age ? (int) n->age : -1;
    need->n_children = (int) n->n_children;
    need->household = (n->has_adults ? (int) n->adults : 1) + need->n_children;
    need->oldest_boy = -1;
    for (size_t i = 0; i < n->n_children; i++)
        if (strcmp(n->children[i]->sex, "m") == 0 && (int) n->children[i]->age > need->oldest_boy)
            need->oldest_boy = (int) n->children[i]->age;
    need->pets = n->has_pets ? (uint8_t) n->pets : 0;
    uint8_t access = n->has_access ? (uint8_t) n->access : 0;
    need->self_contained = access & HAVEN__FEATURE__FEATURE_SELF_CONTAINED;
    need->access = access & (uint8_t) ~HAVEN__FEATURE__FEATURE_SELF_CONTAINED;
    for (unsigned f = 0; f < 256; f++) {
        uint32_t fail = 0;
        for (size_t i = 0; i < sizeof s_access / sizeof s_access[0]; i++)
            if ((need->access & s_access[i].feature) && !(f & s_access[i].feature))
                fail |= BIT(s_access[i].rule);
        if (need->self_contained && !(f & HAVEN__FEATURE__FEATURE_SELF_CONTAINED))
            fail |= BIT(BRK_RULE_SELF_CONTAINED);
        need->feature_fail[f] = fail;
    }
    need->nrpf = n->has_nrpf && n->nrpf;
    need->complex_needs = n->has_complex_needs ? (uint8_t) n->complex_needs : 0;
    for (size_t i = 0; i < n->n_kinds; i++)
        need->kinds |= 1u << n->kinds[i];
    need->specialist = n->has_specialist ? (uint8_t) n->specialist : 0;
    need->include_stale = n->has_include_stale && n->include_stale;
    for (size_t i = 0; i < n->n_languages && i < HV_LIST_MAX; i++) {
        need->languages[need->n_languages] = brk_lang_code(n->languages[i]);
        memcpy(need->language_names[need->n_languages++], n->languages[i], 3);
    }

    if ((rc = s_need_places(need, n, districts, err, errlen)) < 0)
        goto fail;
    need->within_km = n->has_within_km ? (double) n->within_km : -1.0;
    if (need->reference >= 0 && !(need->distance = brk_districts_row(districts, need->reference))) {
        rc = -ENOMEM;
        goto fail;
    }
    *need_out = need;
    return 0;
fail:
    free(need);
    return rc;
}

/* The rules of a provider class (gender, age, children, boys, pets, NRPF,
 * complex needs, kind). A search decides these once per class. */
static uint32_t
s_class_fail(const brk_need_t *need, const brk_class_t *c)
{
    uint32_t fail = 0;
    bool trans_inclusive = c->flags & BRK_CLASS_TRANS_INCLUSIVE;
    bool any = c->genders == HAVEN__GENDERS__GENDERS_ANY;

    switch (need->gender) {
    case HAVEN__GENDER__GENDER_WOMAN:
    case HAVEN__GENDER__GENDER_MAN:
        if (c->genders != need->own_genders && !any)
            fail |= BIT(BRK_RULE_GENDER);
        else if (need->trans && !any && !trans_inclusive)
            fail |= BIT(BRK_RULE_GENDER);
        break;
    case HAVEN__GENDER__GENDER_NONBINARY:
        if (!any && !trans_inclusive)
            fail |= BIT(BRK_RULE_GENDER);
        break;
    default:
        break;
    }
    if (need->age >= 0
        && ((c->adult_min_age != BRK_NO_LIMIT && need->age < c->adult_min_age)
            || (c->adult_max_age != BRK_NO_LIMIT && need->age > c->adult_max_age)))
        fail |= BIT(BRK_RULE_ADULT_AGE);
    if (need->n_children > 0
        && (!(c->flags & BRK_CLASS_CHILDREN)
            || (c->max_children != BRK_NO_LIMIT && need->n_children > c->max_children)))
        fail |= BIT(BRK_RULE_CHILDREN);
    if (need->oldest_boy >= 0 && c->max_boy_age != BRK_NO_LIMIT && need->oldest_boy > c->max_boy_age)
        fail |= BIT(BRK_RULE_BOYS);
    if (need->pets & ~c->pets)
        fail |= BIT(BRK_RULE_PETS);
    if (need->nrpf && !(c->flags & BRK_CLASS_NRPF))
        fail |= BIT(BRK_RULE_NRPF);
    if (need->complex_needs & ~c->complex_needs)
        fail |= BIT(BRK_RULE_COMPLEX);
    if (need->kinds && !(need->kinds & (1u << c->kind)))
        fail |= BIT(BRK_RULE_KIND);
    return fail;
}

/* The district rules (excluded, within), decided once per district. */
static uint32_t
s_district_fail(const brk_need_t *need, int district)
{
    if (district < 0 || (size_t) district >= need->n_districts)
        return BIT(BRK_RULE_EXCLUDED);   /* a unit we cannot place is never offered */
    uint32_t fail = need->excluded[district] ? BIT(BRK_RULE_EXCLUDED) : 0;
    if (need->within_km >= 0 && need->distance[district] > need->within_km)
        fail |= BIT(BRK_RULE_DISTANCE);
    return fail;
}

/* The unit's own rules, written without branches: a search runs this for
 * every available unit and the outcomes are too mixed to predict. */
#define FAIL_IF(cond, rule) (((uint32_t) !!(cond)) << (rule))

static inline uint32_t
s_unit_fail(const brk_need_t *need, const brk_avail_t *u)
{
    return FAIL_IF(!need->include_stale & (u->stale_at < need->now), BRK_RULE_FRESH)
         | FAIL_IF(u->available_from > need->from, BRK_RULE_FROM)
         | FAIL_IF(need->household > u->max_occupants, BRK_RULE_HOUSEHOLD)
         | need->feature_fail[u->features];
}

void
brk_need_set_now(brk_need_t *need, int64_t now)
{
    if (need->from == need->now)
        need->from = now;
    need->now = now;
}

void
brk_need_hide_kinds(brk_need_t *need, uint32_t kinds)
{
    need->hidden_kinds = kinds;
}

uint32_t
brk_match_unit(const brk_need_t *need, const brk_index_t *index, const brk_avail_t *u)
{
    size_t n;
    const brk_class_t *classes = brk_index_classes(index, &n);
    if (need->hidden_kinds & (1u << classes[u->cls].kind))
        return UINT32_MAX;
    return s_class_fail(need, &classes[u->cls]) | s_district_fail(need, u->district) | s_unit_fail(need, u);
}

static void
s_prefs(const brk_need_t *need, const brk_index_t *index, const brk_avail_t *u, brk_hit_t *h)
{
    h->prefs = 0;
    h->n_prefs = 0;
    if (need->specialist && u->specialist == need->specialist) {
        h->prefs |= 1;
        h->n_prefs++;
    }
    if (u->district >= 0 && need->preferred[u->district]) {
        h->prefs |= 2;
        h->n_prefs++;
    }
    if (!need->n_languages)
        return;
    const brk_prov_t *p = brk_index_provider(index, u->prov);
    for (int i = 0; i < need->n_languages && i < 24; i++)
        for (int k = 0; k < p->n_languages; k++)
            if (p->languages[k] == need->languages[i]) {
                h->prefs |= 1u << (8 + i);
                h->n_prefs++;
                break;
            }
}

/* Ranking of section 5: preferences matched, distance, freshness,
 * provider id, unit name. Negative when a ranks before b. The names are
 * read only on a full tie. */
static int
s_rank(const brk_index_t *index, const brk_hit_t *a, const brk_hit_t *b)
{
    if (a->n_prefs != b->n_prefs)
        return a->n_prefs > b->n_prefs ? -1 : 1;
    if (a->distance_km != b->distance_km)
        return a->distance_km < b->distance_km ? -1 : 1;
    if (a->confirmed_at != b->confirmed_at)
        return a->confirmed_at > b->confirmed_at ? -1 : 1;
    int c = a->prov == b->prov ? 0
          : strcmp(brk_index_provider(index, a->prov)->id, brk_index_provider(index, b->prov)->id);
    return c ? c : strcmp(brk_index_unit(index, a->unit)->name, brk_index_unit(index, b->unit)->name);
}

int
brk_match_search(const brk_need_t *need, const brk_index_t *index, uint32_t limit,
                 brk_result_t *out)
{
    size_t n, n_classes;
    const brk_avail_t *avail = brk_index_available(index, &n);
    const brk_class_t *classes = brk_index_classes(index, &n_classes);
    memset(out, 0, sizeof *out);
    out->hits = calloc(limit ? limit : 1, sizeof *out->hits);
    /* Rules that depend only on the provider's class or the district are
     * decided once here, leaving the per-unit pass a few loads and ORs. */
    uint32_t *class_fail = malloc((n_classes + 1) * sizeof *class_fail);
    uint32_t *district_fail = malloc((need->n_districts + 1) * sizeof *district_fail);
    if (!out->hits || !class_fail || !district_fail) {
        free(class_fail);
        free(district_fail);
        brk_result_free(out);
        return -ENOMEM;
    }
    for (size_t c = 0; c < n_classes; c++)
        class_fail[c] = need->hidden_kinds & (1u << classes[c].kind) ? UINT32_MAX
                                                                     : s_class_fail(need, &classes[c]);
    for (size_t d = 0; d < need->n_districts; d++)
        district_fail[d] = s_district_fail(need, (int) d);

    /* Relaxation counts without a branch per unit: a unit failing exactly
     * one rule adds one to that rule's count; any other adds to a spare. */
    uint32_t relax[33] = { 0 };
    for (size_t i = 0; i < n; i++) {
        const brk_avail_t *u = &avail[i];
        uint32_t fail = class_fail[u->cls] | s_unit_fail(need, u)
                      | (u->district >= 0 && (size_t) u->district < need->n_districts
                             ? district_fail[u->district] : BIT(BRK_RULE_EXCLUDED));
        unsigned single = fail && !(fail & (fail - 1));
        relax[single ? (unsigned) __builtin_ctz(fail) : 32] += 1;
        if (__builtin_expect(fail != 0, 1))
            continue;
        out->matching++;
        brk_hit_t h = { .unit = u->unit, .prov = u->prov, .confirmed_at = u->confirmed_at };
        h.stale = u->stale_at < need->now;
        h.distance_km = need->distance && u->district >= 0 ? need->distance[u->district] : -1;
        s_prefs(need, index, u, &h);
        /* Keep the best `limit` in order: insertion into a short array. */
        if (out->n_hits == limit && s_rank(index, &h, &out->hits[limit - 1]) >= 0)
            continue;
        uint32_t pos = out->n_hits < limit ? out->n_hits : limit - 1;
        while (pos > 0 && s_rank(index, &h, &out->hits[pos - 1]) < 0) {
            out->hits[pos] = out->hits[pos - 1];
            pos--;
        }
        out->hits[pos] = h;
        if (out->n_hits < limit)
            out->n_hits++;
    }
    for (int k = 0; k < BRK_RULE__COUNT; k++)
        out->relax[k] = relax[k];
    free(class_fail);
    free(district_fail);
    return 0;
}

void
brk_result_free(brk_result_t *r)
{
    free(r->hits);
    r->hits = NULL;
}

int brk_need_oldest_boy(const brk_need_t *n) { return n->oldest_boy; }
int brk_need_reference(const brk_need_t *n) { return n->reference; }

const char *
brk_need_language(const brk_need_t *n, int i)
{
    return i >= 0 && i < n->n_languages ? n->language_names[i] : NULL;
}
