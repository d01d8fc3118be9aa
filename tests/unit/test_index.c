/* SPDX-License-Identifier: MIT */
/* The in-memory index: upserts, the available list, removal. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include "../../broker/index.h"

static void
s_unit(brk_index_t *x, const char *provider, const char *name, int status)
{
    Haven__UnitSpec spec = HAVEN__UNIT_SPEC__INIT;
    Haven__Unit u = HAVEN__UNIT__INIT;
    spec.name = (char *) name;
    spec.has_features = 1;
    spec.features = HAVEN__FEATURE__FEATURE_WHEELCHAIR;
    u.provider = (char *) provider;
    u.spec = &spec;
    u.status = status;
    cr_assert_eq(brk_index_put_unit(x, &u, 3), 0);
}

static size_t
s_available(brk_index_t *x)
{
    size_t n;
    brk_index_available(x, &n);
    return n;
}

Test(index, units_and_the_available_list)
{
    brk_index_t *x = brk_index_new();
    Haven__Provider p = HAVEN__PROVIDER__INIT;
    p.id = "refuge-1";
    p.name = "Refuge";
    p.kind = HAVEN__KIND__KIND_REFUGE;
    p.district = "E07000008";
    cr_assert_eq(brk_index_put_provider(x, &p, 1), 0);
    s_unit(x, "refuge-1", "a", HAVEN__UNIT_STATUS__UNIT_AVAILABLE);
    s_unit(x, "refuge-1", "b", HAVEN__UNIT_STATUS__UNIT_OCCUPIED);
    s_unit(x, "refuge-1", "c", HAVEN__UNIT_STATUS__UNIT_AVAILABLE);
    cr_assert_eq(brk_index_unit_count(x), 3);
    cr_assert_eq(s_available(x), 2);
    /* wheelchair implies step-free */
    const brk_unit_t *a = brk_index_unit(x, (uint32_t) brk_index_find_unit(x, "refuge-1", "a"));
    cr_assert(a->features & HAVEN__FEATURE__FEATURE_STEP_FREE);

    s_unit(x, "refuge-1", "a", HAVEN__UNIT_STATUS__UNIT_OCCUPIED);
    cr_assert_eq(s_available(x), 1);
    s_unit(x, "refuge-1", "b", HAVEN__UNIT_STATUS__UNIT_AVAILABLE);
    cr_assert_eq(s_available(x), 2);

    cr_assert_eq(brk_index_del_unit(x, "refuge-1", "a"), 0);
    cr_assert_eq(brk_index_unit_count(x), 2);
    cr_assert_eq(brk_index_find_unit(x, "refuge-1", "a"), -ENOENT);
    /* the moved unit is still found where it now is */
    int c = brk_index_find_unit(x, "refuge-1", "c");
    cr_assert(c >= 0);
    cr_assert_str_eq(brk_index_unit(x, (uint32_t) c)->name, "c");
    cr_assert_eq(brk_index_del_unit(x, "refuge-1", "c"), 0);
    cr_assert_eq(s_available(x), 1);
    size_t n;
    const brk_avail_t *av = brk_index_available(x, &n);
    cr_assert_str_eq(brk_index_unit(x, av[0].unit)->name, "b");
    cr_assert_eq(brk_index_del_unit(x, "refuge-1", "zz"), -ENOENT);

    Haven__UnitSpec spec = HAVEN__UNIT_SPEC__INIT;
    Haven__Unit orphan = HAVEN__UNIT__INIT;
    spec.name = "x";
    orphan.provider = "nobody";
    orphan.spec = &spec;
    cr_assert_eq(brk_index_put_unit(x, &orphan, 0), -ENOENT);
    brk_index_destroy(&x);
}

Test(index, provider_rules_compile)
{
    brk_index_t *x = brk_index_new();
    Haven__Service s = HAVEN__SERVICE__INIT;
    Haven__Provider p = HAVEN__PROVIDER__INIT;
    char *langs[] = { "en", "pl" };
    p.id = "refuge-1";
    p.name = "Refuge";
    p.kind = HAVEN__KIND__KIND_REFUGE;
    p.district = "E07000008";
    p.service = &s;
    s.has_max_boy_age = 1;
    s.max_boy_age = 12;
    s.languages = langs;
    s.n_languages = 2;
    int idx = brk_index_put_provider(x, &p, 0);
    cr_assert(idx >= 0);
    const brk_prov_t *r = brk_index_provider(x, (uint32_t) idx);
    cr_assert(r->published);
    cr_assert_eq(r->max_boy_age, 12);
    cr_assert_eq(r->max_children, BRK_NO_LIMIT);
    cr_assert_eq(r->confirm_every_s, 86400);
    cr_assert_eq(r->n_languages, 2);
    cr_assert_eq(r->languages[1], brk_lang_code("pl"));
    cr_assert_eq(brk_index_put_provider(x, &p, 0), idx, "an upsert keeps the index");
    brk_index_destroy(&x);
}
