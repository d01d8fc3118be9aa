/* SPDX-License-Identifier: MIT */
/* The match engine: each hard rule of design.md section 5 on its own (a
 * unit that passes every rule but one is left out, for the right reason),
 * ranking, relaxations and staleness, with an injected clock. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../broker/match.h"
#include "../../proto/names.h"

#define NOW 1800000000LL

static brk_districts_t *districts;

static void setup(void)
{
    char path[512], err[256];
    const char *dir = getenv("HAVEN_SHARED_DATA");
    snprintf(path, sizeof path, "%s/uk-local-authorities.csv", dir ? dir : "../shared/data");
    cr_assert_eq(brk_districts_load(path, &districts, err, sizeof err), 0, "%s", err);
}
static void teardown(void) { brk_districts_destroy(&districts); }
TestSuite(match, .init = setup, .fini = teardown);

/* One world: a provider, a unit, a need; each test bends one thing. */
typedef struct {
    Haven__Service svc;
    Haven__Provider prov;
    Haven__UnitSpec spec;
    Haven__Unit unit;
    Haven__Need need;
    Haven__Child kids[8];
    Haven__Child *kid_ptrs[8];
    char *langs[2];
    Haven__Kind kinds[2];
    char *codes[2];
} world_t;

static void
s_world(world_t *w)
{
    memset(w, 0, sizeof *w);
    haven__service__init(&w->svc);
    w->svc.has_genders = 1;
    w->svc.genders = HAVEN__GENDERS__GENDERS_WOMEN;
    w->svc.has_children = w->svc.children = 1;
    w->svc.has_max_children = 1;
    w->svc.max_children = 3;
    w->svc.has_max_boy_age = 1;
    w->svc.max_boy_age = 12;
    w->svc.has_pets = 1;
    w->svc.pets = HAVEN__PET__PET_DOG;
    w->svc.has_confirm_every_s = 1;
    w->svc.confirm_every_s = 86400;
    w->langs[0] = "en";
    w->svc.languages = w->langs;
    w->svc.n_languages = 1;
    haven__provider__init(&w->prov);
    w->prov.id = "refuge-1";
    w->prov.name = "Refuge One";
    w->prov.kind = HAVEN__KIND__KIND_REFUGE;
    w->prov.district = "E07000008";
    w->prov.service = &w->svc;
    haven__unit_spec__init(&w->spec);
    w->spec.name = "room-1";
    w->spec.has_max_occupants = 1;
    w->spec.max_occupants = 3;
    w->spec.has_features = 1;
    w->spec.features = HAVEN__FEATURE__FEATURE_STEP_FREE;
    haven__unit__init(&w->unit);
    w->unit.provider = "refuge-1";
    w->unit.spec = &w->spec;
    w->unit.status = HAVEN__UNIT_STATUS__UNIT_AVAILABLE;
    w->unit.has_confirmed_at = 1;
    w->unit.confirmed_at = NOW - 60;
    haven__need__init(&w->need);
    w->need.has_gender = 1;
    w->need.gender = HAVEN__GENDER__GENDER_WOMAN;
    w->need.has_age = 1;
    w->need.age = 30;
    haven__child__init(&w->kids[0]);
    w->kids[0].age = 10;
    w->kids[0].sex = "m";
    w->kid_ptrs[0] = &w->kids[0];
    w->need.children = w->kid_ptrs;
    w->need.n_children = 1;
}

static void
s_add_child(world_t *w, unsigned age, const char *sex)
{
    size_t i = w->need.n_children++;
    haven__child__init(&w->kids[i]);
    w->kids[i].age = age;
    w->kids[i].sex = (char *) sex;
    w->kid_ptrs[i] = &w->kids[i];
}

static uint32_t
s_eval(world_t *w)
{
    brk_index_t *x = brk_index_new();
    brk_need_t *need = NULL;
    char err[256];
    cr_assert(brk_index_put_provider(x, &w->prov, brk_districts_find(districts, "E07000008")) >= 0);
    const char *code = w->spec.district ? w->spec.district : "E07000008";
    cr_assert_eq(brk_index_put_unit(x, &w->unit, brk_districts_find(districts, code)), 0);
    cr_assert_eq(brk_need_compile(&w->need, districts, NOW, &need, err, sizeof err), 0, "%s", err);
    size_t n;
    const brk_avail_t *avail = brk_index_available(x, &n);
    cr_assert_eq(n, 1);
    uint32_t mask = brk_match_unit(need, x, &avail[0]);
    free(need);
    brk_index_destroy(&x);
    return mask;
}

#define ONLY(rule) (1u << (rule))

static void
s_expect(world_t *w, brk_rule_t rule)
{
    uint32_t mask = s_eval(w);
    cr_assert_eq(mask, ONLY(rule), "expected only %s to fail, got mask 0x%x", brk_rule_name(rule), mask);
}

Test(match, the_base_world_matches)
{
    world_t w;
    s_world(&w);
    cr_assert_eq(s_eval(&w), 0);
}

Test(match, fresh)
{
    world_t w;
    s_world(&w);
    w.unit.confirmed_at = NOW - 86400 - 1;
    s_expect(&w, BRK_RULE_FRESH);
    w.need.has_include_stale = w.need.include_stale = 1;
    cr_assert_eq(s_eval(&w), 0, "--include-stale lets a stale unit through");
    w.unit.confirmed_at = 0;  /* never confirmed */
    w.need.include_stale = 0;
    s_expect(&w, BRK_RULE_FRESH);
}

Test(match, available_from)
{
    world_t w;
    s_world(&w);
    w.unit.has_available_from = 1;
    w.unit.available_from = NOW + 7 * 86400;
    s_expect(&w, BRK_RULE_FROM);
    w.need.has_from = 1;
    w.need.from = NOW + 8 * 86400;
    cr_assert_eq(s_eval(&w), 0, "--from a later date includes it");
}

Test(match, gender)
{
    world_t w;
    s_world(&w);
    w.need.gender = HAVEN__GENDER__GENDER_MAN;
    s_expect(&w, BRK_RULE_GENDER);
    w.svc.genders = HAVEN__GENDERS__GENDERS_ANY;
    cr_assert_eq(s_eval(&w), 0);

    s_world(&w);
    w.need.has_trans = w.need.trans = 1;
    s_expect(&w, BRK_RULE_GENDER);
    w.svc.has_trans_inclusive = w.svc.trans_inclusive = 1;
    cr_assert_eq(s_eval(&w), 0, "a trans woman at a trans-inclusive women's service");

    s_world(&w);
    w.need.gender = HAVEN__GENDER__GENDER_NONBINARY;
    s_expect(&w, BRK_RULE_GENDER);
    w.svc.has_trans_inclusive = w.svc.trans_inclusive = 1;
    cr_assert_eq(s_eval(&w), 0);

    s_world(&w);
    w.need.has_gender = 0;
    w.need.gender = 0;
    w.svc.genders = HAVEN__GENDERS__GENDERS_MEN;
    cr_assert_eq(s_eval(&w), 0, "no --gender, no rule");
}

Test(match, adult_age)
{
    world_t w;
    s_world(&w);
    w.svc.has_adult_max_age = 1;
    w.svc.adult_max_age = 25;
    s_expect(&w, BRK_RULE_ADULT_AGE);
    w.need.age = 25;
    cr_assert_eq(s_eval(&w), 0);
    w.svc.has_adult_min_age = 1;
    w.svc.adult_min_age = 26;
    w.svc.adult_max_age = 60;
    s_expect(&w, BRK_RULE_ADULT_AGE);
}

Test(match, children)
{
    world_t w;
    s_world(&w);
    w.svc.children = 0;
    s_expect(&w, BRK_RULE_CHILDREN);
    s_world(&w);
    w.spec.max_occupants = 10;
    s_add_child(&w, 3, "f");
    s_add_child(&w, 5, "f");
    s_add_child(&w, 7, "x");
    s_expect(&w, BRK_RULE_CHILDREN);
}

Test(match, boys)
{
    world_t w;
    s_world(&w);
    w.kids[0].age = 14;
    s_expect(&w, BRK_RULE_BOYS);
    w.kids[0].sex = "f";
    cr_assert_eq(s_eval(&w), 0, "the boys rule is about boys");
    w.kids[0].sex = "m";
    w.svc.has_max_boy_age = 0;
    cr_assert_eq(s_eval(&w), 0, "no max_boy_age, no limit");
}

Test(match, household)
{
    world_t w;
    s_world(&w);
    w.need.has_adults = 1;
    w.need.adults = 3;
    s_expect(&w, BRK_RULE_HOUSEHOLD);
    w.need.adults = 2;
    cr_assert_eq(s_eval(&w), 0, "2 adults and a child fit 3");
}

Test(match, pets)
{
    world_t w;
    s_world(&w);
    w.need.has_pets = 1;
    w.need.pets = HAVEN__PET__PET_DOG;
    cr_assert_eq(s_eval(&w), 0);
    w.need.pets |= HAVEN__PET__PET_CAT;
    s_expect(&w, BRK_RULE_PETS);
}

Test(match, each_access_need)
{
    static const struct { uint32_t feature; brk_rule_t rule; } cases[] = {
        { HAVEN__FEATURE__FEATURE_WHEELCHAIR, BRK_RULE_WHEELCHAIR },
        { HAVEN__FEATURE__FEATURE_GROUND_FLOOR, BRK_RULE_GROUND_FLOOR },
        { HAVEN__FEATURE__FEATURE_ACCESSIBLE_BATHROOM, BRK_RULE_ACCESSIBLE_BATHROOM },
        { HAVEN__FEATURE__FEATURE_SENSORY, BRK_RULE_SENSORY },
        { HAVEN__FEATURE__FEATURE_PERSONAL_CARE, BRK_RULE_PERSONAL_CARE },
        { HAVEN__FEATURE__FEATURE_CARER_ROOM, BRK_RULE_CARER_ROOM },
        { HAVEN__FEATURE__FEATURE_SELF_CONTAINED, BRK_RULE_SELF_CONTAINED },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        world_t w;
        s_world(&w);
        w.need.has_access = 1;
        w.need.access = cases[i].feature;
        s_expect(&w, cases[i].rule);
        w.spec.features |= cases[i].feature;
        cr_assert_eq(s_eval(&w), 0, "%s", brk_rule_name(cases[i].rule));
    }
    world_t w;
    s_world(&w);
    w.spec.features = 0;
    w.need.has_access = 1;
    w.need.access = HAVEN__FEATURE__FEATURE_STEP_FREE;
    s_expect(&w, BRK_RULE_STEP_FREE);
    w.spec.features = HAVEN__FEATURE__FEATURE_WHEELCHAIR;
    cr_assert_eq(s_eval(&w), 0, "a wheelchair-accessible unit is step-free");
}

Test(match, nrpf_and_complex_needs)
{
    world_t w;
    s_world(&w);
    w.need.has_nrpf = w.need.nrpf = 1;
    s_expect(&w, BRK_RULE_NRPF);
    w.svc.has_nrpf = w.svc.nrpf = 1;
    cr_assert_eq(s_eval(&w), 0);
    s_world(&w);
    w.need.has_complex_needs = 1;
    w.need.complex_needs = HAVEN__COMPLEX__COMPLEX_MENTAL_HEALTH;
    s_expect(&w, BRK_RULE_COMPLEX);
    w.svc.has_complex_needs = 1;
    w.svc.complex_needs = HAVEN__COMPLEX__COMPLEX_MENTAL_HEALTH;
    cr_assert_eq(s_eval(&w), 0);
}

Test(match, kind)
{
    world_t w;
    s_world(&w);
    w.kinds[0] = HAVEN__KIND__KIND_HOSTEL;
    w.need.kinds = w.kinds;
    w.need.n_kinds = 1;
    s_expect(&w, BRK_RULE_KIND);
    w.kinds[1] = HAVEN__KIND__KIND_REFUGE;
    w.need.n_kinds = 2;
    cr_assert_eq(s_eval(&w), 0);
}

Test(match, excluded_and_out_of_area)
{
    world_t w;
    s_world(&w);
    w.codes[0] = "E07000008";
    w.need.exclude = w.codes;
    w.need.n_exclude = 1;
    s_expect(&w, BRK_RULE_EXCLUDED);
    s_world(&w);
    w.need.home = "E07000008";
    cr_assert_eq(s_eval(&w), 0, "--home alone excludes nothing");
    w.need.has_out_of_area = w.need.out_of_area = 1;
    s_expect(&w, BRK_RULE_EXCLUDED);
    /* a dispersed property in another district of the same provider */
    w.spec.district = "E06000031";
    cr_assert_eq(s_eval(&w), 0);
}

Test(match, within_a_distance)
{
    world_t w;
    s_world(&w);
    w.need.near = "E06000031";       /* Peterborough: 52.5 km from Cambridge */
    w.need.has_within_km = 1;
    w.need.within_km = 52;
    s_expect(&w, BRK_RULE_DISTANCE);
    w.need.within_km = 53;
    cr_assert_eq(s_eval(&w), 0, "--within compares the exact distance");
}

Test(match, unknown_district_in_a_need_is_refused)
{
    world_t w;
    brk_need_t *need = NULL;
    char err[256];
    s_world(&w);
    w.codes[0] = "E99999999";
    w.need.exclude = w.codes;
    w.need.n_exclude = 1;
    cr_assert_lt(brk_need_compile(&w.need, districts, NOW, &need, err, sizeof err), 0);
    cr_assert(strstr(err, "E99999999"), "%s", err);
}

/* Several providers for ranking and relaxations. */
static brk_index_t *
s_city(void)
{
    brk_index_t *x = brk_index_new();
    static const struct { const char *id, *district, *lang; int spec; unsigned boys; int64_t age; } provs[] = {
        { "b-near", "E07000008", "en", 0, 12, 600 },     /* Cambridge */
        { "a-near", "E07000008", "en", 0, 12, 600 },     /* Cambridge: same as b, id breaks the tie */
        { "c-far", "E06000031", "pl", 0, 16, 60 },       /* Peterborough, speaks Polish, boys to 16 */
        { "d-fresh", "E07000008", "en", 0, 12, 10 },     /* Cambridge, freshest */
        { "e-lgbt", "E09000001", "en", 1, 16, 60 },      /* City of London, LGBT+ specialist */
    };
    for (size_t i = 0; i < sizeof provs / sizeof provs[0]; i++) {
        Haven__Service s = HAVEN__SERVICE__INIT;
        char *langs[] = { (char *) provs[i].lang };
        s.has_genders = 1;
        s.genders = HAVEN__GENDERS__GENDERS_WOMEN;
        s.has_children = s.children = 1;
        s.has_max_boy_age = 1;
        s.max_boy_age = provs[i].boys;
        s.languages = langs;
        s.n_languages = 1;
        if (provs[i].spec) {
            s.has_specialist = 1;
            s.specialist = HAVEN__SPECIALIST__SPECIALIST_LGBT;
        }
        Haven__Provider p = HAVEN__PROVIDER__INIT;
        p.id = (char *) provs[i].id;
        p.name = (char *) provs[i].id;
        p.kind = HAVEN__KIND__KIND_REFUGE;
        p.district = (char *) provs[i].district;
        p.service = &s;
        int d = brk_districts_find(districts, provs[i].district);
        cr_assert(brk_index_put_provider(x, &p, d) >= 0);
        Haven__UnitSpec spec = HAVEN__UNIT_SPEC__INIT;
        Haven__Unit u = HAVEN__UNIT__INIT;
        spec.name = "room-1";
        spec.has_max_occupants = 1;
        spec.max_occupants = 4;
        u.provider = p.id;
        u.spec = &spec;
        u.status = HAVEN__UNIT_STATUS__UNIT_AVAILABLE;
        u.has_confirmed_at = 1;
        u.confirmed_at = NOW - provs[i].age;
        cr_assert_eq(brk_index_put_unit(x, &u, d), 0);
        /* and an occupied unit that must never appear */
        spec.name = "room-2";
        u.status = HAVEN__UNIT_STATUS__UNIT_OCCUPIED;
        cr_assert_eq(brk_index_put_unit(x, &u, d), 0);
    }
    return x;
}

static const char *
s_hit(brk_index_t *x, const brk_result_t *r, uint32_t i)
{
    return brk_index_provider(x, brk_index_unit(x, r->hits[i].unit)->prov)->id;
}

Test(match, ranking_is_preferences_then_distance_then_freshness_then_id)
{
    brk_index_t *x = s_city();
    Haven__Need n = HAVEN__NEED__INIT;
    char *langs[] = { "pl" };
    brk_need_t *need = NULL;
    brk_result_t r;
    char err[256];
    n.near = "E07000011";            /* Huntingdonshire */
    n.languages = langs;
    n.n_languages = 1;
    cr_assert_eq(brk_need_compile(&n, districts, NOW, &need, err, sizeof err), 0);
    cr_assert_eq(brk_match_search(need, x, 10, &r), 0);
    cr_assert_eq(r.matching, 5);
    cr_assert_eq(r.n_hits, 5);
    cr_assert_str_eq(s_hit(x, &r, 0), "c-far", "the Polish speakers first");
    cr_assert_str_eq(s_hit(x, &r, 1), "d-fresh", "then nearest, then freshest");
    cr_assert_str_eq(s_hit(x, &r, 2), "a-near");
    cr_assert_str_eq(s_hit(x, &r, 3), "b-near");
    cr_assert_str_eq(s_hit(x, &r, 4), "e-lgbt", "furthest last");
    cr_assert_eq(r.hits[0].n_prefs, 1);
    brk_result_free(&r);

    /* a limit keeps the best, in the same order */
    cr_assert_eq(brk_match_search(need, x, 2, &r), 0);
    cr_assert_eq(r.matching, 5);
    cr_assert_eq(r.n_hits, 2);
    cr_assert_str_eq(s_hit(x, &r, 0), "c-far");
    cr_assert_str_eq(s_hit(x, &r, 1), "d-fresh");
    brk_result_free(&r);
    free(need);
    brk_index_destroy(&x);
}

Test(match, relaxations_count_units_one_rule_away)
{
    brk_index_t *x = s_city();
    Haven__Need n = HAVEN__NEED__INIT;
    Haven__Child boy = HAVEN__CHILD__INIT, *kids[] = { &boy };
    char *ex[] = { "E06000031" };
    brk_need_t *need = NULL;
    brk_result_t r;
    char err[256];
    boy.age = 15;
    boy.sex = "m";
    n.children = kids;
    n.n_children = 1;
    n.exclude = ex;
    n.n_exclude = 1;
    cr_assert_eq(brk_need_compile(&n, districts, NOW, &need, err, sizeof err), 0);
    cr_assert_eq(brk_match_search(need, x, 10, &r), 0);
    /* e-lgbt takes boys to 16: the one match. c-far takes them too but is
     * excluded; the three Cambridge refuges stop at 12. */
    cr_assert_eq(r.matching, 1);
    cr_assert_str_eq(s_hit(x, &r, 0), "e-lgbt");
    cr_assert_eq(r.relax[BRK_RULE_BOYS], 3);
    cr_assert_eq(r.relax[BRK_RULE_EXCLUDED], 1);
    cr_assert_eq(brk_need_oldest_boy(need), 15);
    brk_result_free(&r);
    free(need);
    brk_index_destroy(&x);
}

Test(match, staleness_follows_the_clock)
{
    brk_index_t *x = s_city();
    Haven__Need n = HAVEN__NEED__INIT;
    brk_need_t *need = NULL;
    brk_result_t r;
    char err[256];
    /* A day and a minute later, every confirmation is stale. */
    cr_assert_eq(brk_need_compile(&n, districts, NOW + 86400 + 60, &need, err, sizeof err), 0);
    cr_assert_eq(brk_match_search(need, x, 10, &r), 0);
    cr_assert_eq(r.matching, 0);
    cr_assert_eq(r.relax[BRK_RULE_FRESH], 5);
    brk_result_free(&r);
    free(need);
    n.has_include_stale = n.include_stale = 1;
    cr_assert_eq(brk_need_compile(&n, districts, NOW + 86400 + 60, &need, err, sizeof err), 0);
    cr_assert_eq(brk_match_search(need, x, 10, &r), 0);
    cr_assert_eq(r.matching, 5);
    cr_assert(r.hits[0].stale, "included stale units are flagged");
    brk_result_free(&r);
    free(need);
    brk_index_destroy(&x);
}

/* The engine's rules are the protocol's Rule, in order: a relaxation's id
 * and its name say the same rule, for every rule. */
Test(match, every_rule_has_its_protocol_id_and_name)
{
    for (int k = 0; k < BRK_RULE__COUNT; k++) {
        const char *name = brk_rule_name((brk_rule_t) k);
        cr_assert_str_neq(name, "?", "rule %d has a name", k);
        cr_assert_eq(hv_rule_parse(name), k + 1, "%s is Rule %d", name, k + 1);
    }
    cr_assert_str_eq(brk_rule_name(BRK_RULE_BOYS), "max_boy_age");
    cr_assert_eq(hv_rule_parse("no such rule"), HAVEN__RULE__RULE_NONE);
}
