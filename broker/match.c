/* SPDX-License-Identifier: MIT */
/* The match engine (see match.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "match.h"

#define BIT(r) (1u << (r))

struct brk_need {
    int64_t now;
    int64_t from;                /* available by then */
    uint8_t gender;
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
    uint8_t specialist;
    bool include_stale;
    int reference;               /* district index, -1 */
    double within_km;            /* < 0: no rule */
    int n_languages;
    uint16_t languages[HV_LIST_MAX];
    char language_names[HV_LIST_MAX][3];
    size_t n_districts;
    /* per-district tables, n_districts long: excluded/preferred flags and
     * distance from the reference district */
    uint8_t *excluded;
    uint8_t *preferred;
    double *distance;
    uint8_t tables[];
};

static const char *const s_rule_names[BRK_RULE__COUNT] = {
    [BRK_RULE_FRESH] = "stale",
    [BRK_RULE_FROM] = "available_from",
    [BRK_RULE_GENDER] = "gender",
    [BRK_RULE_ADULT_AGE] = "adult_age",
    [BRK_RULE_CHILDREN] = "max_children",
    [BRK_RULE_BOYS] = "max_boy_age",
    [BRK_RULE_HOUSEHOLD] = "max_occupants",
    [BRK_RULE_PETS] = "pets",
    [BRK_RULE_WHEELCHAIR] = "wheelchair",
    [BRK_RULE_STEP_FREE] = "step_free",
    [BRK_RULE_GROUND_FLOOR] = "ground_floor",
    [BRK_RULE_ACCESSIBLE_BATHROOM] = "accessible_bathroom",
    [BRK_RULE_SENSORY] = "sensory",
    [BRK_RULE_PERSONAL_CARE] = "personal_care",
    [BRK_RULE_CARER_ROOM] = "carer_room",
    [BRK_RULE_NRPF] = "nrpf",
    [BRK_RULE_COMPLEX] = "complex_needs",
    [BRK_RULE_SELF_CONTAINED] = "self_contained",
    [BRK_RULE_KIND] = "kind",
    [BRK_RULE_EXCLUDED] = "excluded_district",
    [BRK_RULE_DISTANCE] = "within",
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
    return rule < BRK_RULE__COUNT ? s_rule_names[rule] : "?";
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

int
brk_need_compile(const Haven__Need *n, const brk_districts_t *districts, int64_t now,
                 brk_need_t **need_out, char *err, size_t errlen)
{
    size_t nd = brk_districts_count(districts);
    size_t tables = nd * (2 + sizeof(double));
    brk_need_t *need = calloc(1, sizeof *need + tables + sizeof(double));
    int rc = 0;
    if (!need)
        return -ENOMEM;
    need->n_districts = nd;
    /* doubles first for alignment */
    need->distance = (double *) (void *) need->tables;
    need->excluded = need->tables + nd * sizeof(double);
    need->preferred = need->excluded + nd;

    need->now = now;
    need->from = n->has_from && n->from > now ? n->from : now;
    need->gender = n->has_gender ? (uint8_t) n->gender : 0;
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

    for (size_t i = 0; i < n->n_exclude; i++) {
        int d = s_district(districts, n->exclude[i], "excluded", err, errlen);
        if (d < 0) {
            rc = d;
            goto fail;
        }
        need->excluded[d] = 1;
    }
    if (n->home) {
        int d = s_district(districts, n->home, "home", err, errlen);
        if (d < 0) {
            rc = d;
            goto fail;
        }
        need->reference = d;
        if (n->has_out_of_area && n->out_of_area)
            need->excluded[d] = 1;
    } else {
        need->reference = -1;
    }
    if (n->near) {
        int d = s_district(districts, n->near, "near", err, errlen);
        if (d < 0) {
            rc = d;
            goto fail;
        }
        need->reference = d;
    }
    for (size_t i = 0; i < n->n_prefer; i++) {
        int d = s_district(districts, n->prefer[i], "preferred", err, errlen);
        if (d < 0) {
            rc = d;
            goto fail;
        }
        need->preferred[d] = 1;
    }
    need->within_km = n->has_within_km ? (double) n->within_km : -1.0;
    for (size_t i = 0; i < nd; i++)
        need->distance[i] = need->reference >= 0
            ? brk_districts_distance(districts, need->reference, (int) i) : -1;
    *need_out = need;
    return 0;
fail:
    free(need);
    return rc;
}

static bool
s_stale(const brk_need_t *need, const brk_prov_t *p, const brk_unit_t *u)
{
    return u->confirmed_at + (int64_t) p->confirm_every_s < need->now;
}

uint32_t
brk_match_unit(const brk_need_t *need, const brk_index_t *index, const brk_unit_t *u)
{
    const brk_prov_t *p = brk_index_provider(index, u->prov);
    uint32_t fail = 0;

    if (!need->include_stale && s_stale(need, p, u))
        fail |= BIT(BRK_RULE_FRESH);
    if (u->available_from > need->from)
        fail |= BIT(BRK_RULE_FROM);

    switch (need->gender) {
    case HAVEN__GENDER__GENDER_WOMAN:
        if (p->genders != HAVEN__GENDERS__GENDERS_WOMEN && p->genders != HAVEN__GENDERS__GENDERS_ANY)
            fail |= BIT(BRK_RULE_GENDER);
        else if (need->trans && p->genders != HAVEN__GENDERS__GENDERS_ANY && !p->trans_inclusive)
            fail |= BIT(BRK_RULE_GENDER);
        break;
    case HAVEN__GENDER__GENDER_MAN:
        if (p->genders != HAVEN__GENDERS__GENDERS_MEN && p->genders != HAVEN__GENDERS__GENDERS_ANY)
            fail |= BIT(BRK_RULE_GENDER);
        else if (need->trans && p->genders != HAVEN__GENDERS__GENDERS_ANY && !p->trans_inclusive)
            fail |= BIT(BRK_RULE_GENDER);
        break;
    case HAVEN__GENDER__GENDER_NONBINARY:
        if (p->genders != HAVEN__GENDERS__GENDERS_ANY && !p->trans_inclusive)
            fail |= BIT(BRK_RULE_GENDER);
        break;
    default:
        break;
    }
    if (need->age >= 0
        && ((p->adult_min_age != BRK_NO_LIMIT && need->age < p->adult_min_age)
            || (p->adult_max_age != BRK_NO_LIMIT && need->age > p->adult_max_age)))
        fail |= BIT(BRK_RULE_ADULT_AGE);
    if (need->n_children > 0
        && (!p->children || (p->max_children != BRK_NO_LIMIT && need->n_children > p->max_children)))
        fail |= BIT(BRK_RULE_CHILDREN);
    if (need->oldest_boy >= 0 && p->max_boy_age != BRK_NO_LIMIT && need->oldest_boy > p->max_boy_age)
        fail |= BIT(BRK_RULE_BOYS);
    if (need->household > u->max_occupants)
        fail |= BIT(BRK_RULE_HOUSEHOLD);
    if (need->pets & ~p->pets)
        fail |= BIT(BRK_RULE_PETS);
    if (need->access & ~u->features) {
        for (size_t i = 0; i < sizeof s_access / sizeof s_access[0]; i++)
            if ((need->access & s_access[i].feature) && !(u->features & s_access[i].feature))
                fail |= BIT(s_access[i].rule);
    }
    if (need->nrpf && !p->nrpf)
        fail |= BIT(BRK_RULE_NRPF);
    if (need->complex_needs & ~p->complex_needs)
        fail |= BIT(BRK_RULE_COMPLEX);
    if (need->self_contained && !(u->features & HAVEN__FEATURE__FEATURE_SELF_CONTAINED))
        fail |= BIT(BRK_RULE_SELF_CONTAINED);
    if (need->kinds && !(need->kinds & (1u << p->kind)))
        fail |= BIT(BRK_RULE_KIND);
    if (u->district < 0 || (size_t) u->district >= need->n_districts) {
        fail |= BIT(BRK_RULE_EXCLUDED);  /* a unit we cannot place is never offered */
    } else {
        if (need->excluded[u->district])
            fail |= BIT(BRK_RULE_EXCLUDED);
        if (need->within_km >= 0 && need->distance[u->district] > need->within_km)
            fail |= BIT(BRK_RULE_DISTANCE);
    }
    return fail;
}

static void
s_prefs(const brk_need_t *need, const brk_prov_t *p, const brk_unit_t *u, brk_hit_t *h)
{
    h->prefs = 0;
    h->n_prefs = 0;
    if (need->specialist && p->specialist == need->specialist) {
        h->prefs |= 1;
        h->n_prefs++;
    }
    if (u->district >= 0 && need->preferred[u->district]) {
        h->prefs |= 2;
        h->n_prefs++;
    }
    for (int i = 0; i < need->n_languages && i < 24; i++)
        for (int k = 0; k < p->n_languages; k++)
            if (p->languages[k] == need->languages[i]) {
                h->prefs |= 1u << (8 + i);
                h->n_prefs++;
                break;
            }
}

/* Ranking of section 5: preferences matched, distance, freshness,
 * provider id, unit name. Negative when a ranks before b. */
static int
s_rank(const brk_index_t *index, const brk_hit_t *a, const brk_hit_t *b)
{
    if (a->n_prefs != b->n_prefs)
        return a->n_prefs > b->n_prefs ? -1 : 1;
    if (a->distance_km != b->distance_km)
        return a->distance_km < b->distance_km ? -1 : 1;
    const brk_unit_t *ua = brk_index_unit(index, a->unit), *ub = brk_index_unit(index, b->unit);
    if (ua->confirmed_at != ub->confirmed_at)
        return ua->confirmed_at > ub->confirmed_at ? -1 : 1;
    int c = strcmp(brk_index_provider(index, ua->prov)->id, brk_index_provider(index, ub->prov)->id);
    return c ? c : strcmp(ua->name, ub->name);
}

int
brk_match_search(const brk_need_t *need, const brk_index_t *index, uint32_t limit,
                 brk_result_t *out)
{
    size_t n;
    const uint32_t *avail = brk_index_available(index, &n);
    memset(out, 0, sizeof *out);
    out->hits = calloc(limit ? limit : 1, sizeof *out->hits);
    if (!out->hits)
        return -ENOMEM;

    for (size_t i = 0; i < n; i++) {
        const brk_unit_t *u = brk_index_unit(index, avail[i]);
        uint32_t fail = brk_match_unit(need, index, u);
        if (fail) {
            if ((fail & (fail - 1)) == 0)          /* exactly one rule */
                out->relax[__builtin_ctz(fail)]++;
            continue;
        }
        out->matching++;
        const brk_prov_t *p = brk_index_provider(index, u->prov);
        brk_hit_t h = { .unit = avail[i] };
        h.stale = s_stale(need, p, u);
        h.distance_km = u->district >= 0 ? need->distance[u->district] : -1;
        s_prefs(need, p, u, &h);
        /* Keep the best `limit` in order: insertion into a short array. */
        uint32_t pos = out->n_hits;
        while (pos > 0 && s_rank(index, &h, &out->hits[pos - 1]) < 0)
            pos--;
        if (pos >= limit)
            continue;
        uint32_t keep = out->n_hits < limit ? out->n_hits : limit - 1;
        memmove(&out->hits[pos + 1], &out->hits[pos], (keep - pos) * sizeof h);
        out->hits[pos] = h;
        if (out->n_hits < limit)
            out->n_hits++;
    }
    return 0;
}

void
brk_result_free(brk_result_t *r)
{
    free(r->hits);
    r->hits = NULL;
}

int brk_need_oldest_boy(const brk_need_t *n) { return n->oldest_boy; }
int brk_need_household(const brk_need_t *n) { return n->household; }
int brk_need_children(const brk_need_t *n) { return n->n_children; }
int brk_need_reference(const brk_need_t *n) { return n->reference; }

const char *
brk_need_language(const brk_need_t *n, int i)
{
    return i >= 0 && i < n->n_languages ? n->language_names[i] : NULL;
}
