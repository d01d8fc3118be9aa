/* SPDX-License-Identifier: MIT */
/* Need options: words to a Need, with clear refusals. */
#include <criterion/criterion.h>
#include <getopt.h>
#include <string.h>
#include "../../client/need.h"

static int
s_opt(hv_need_t *n, const char *name, const char *arg, char *err, size_t len)
{
    const struct option *o = hv_need_options();
    for (; o->name; o++)
        if (strcmp(o->name, name) == 0)
            return hv_need_option(n, o->val, arg, err, len);
    cr_assert_fail("no option --%s", name);
    return -1;
}

Test(need, options_build_the_need)
{
    char err[256];
    hv_need_t *n = hv_need_new();
    cr_assert_eq(s_opt(n, "gender", "woman", err, sizeof err), 0);
    cr_assert_eq(s_opt(n, "child", "14:m", err, sizeof err), 0, "%s", err);
    cr_assert_eq(s_opt(n, "child", "3:f", err, sizeof err), 0);
    cr_assert_eq(s_opt(n, "pet", "dog", err, sizeof err), 0);
    cr_assert_eq(s_opt(n, "wheelchair", NULL, err, sizeof err), 0);
    cr_assert_eq(s_opt(n, "exclude", "E07000008", err, sizeof err), 0);
    cr_assert_eq(s_opt(n, "kind", "refuge", err, sizeof err), 0);
    cr_assert_eq(s_opt(n, "limit", "5", err, sizeof err), 0);
    cr_assert_eq(s_opt(n, "from", "2026-12-01", err, sizeof err), 0);
    Haven__Need *m = hv_need_message(n);
    cr_assert_eq(m->gender, HAVEN__GENDER__GENDER_WOMAN);
    cr_assert_eq(m->n_children, 2);
    cr_assert_eq(m->children[0]->age, 14);
    cr_assert_str_eq(m->children[0]->sex, "m");
    cr_assert_eq(m->pets, HAVEN__PET__PET_DOG);
    cr_assert_eq(m->access, HAVEN__FEATURE__FEATURE_WHEELCHAIR);
    cr_assert_eq(m->n_exclude, 1);
    cr_assert_eq(m->n_kinds, 1);
    cr_assert_eq(m->from, 1796083200);
    cr_assert_eq(hv_need_limit(n), 5);
    hv_need_destroy(&n);
    cr_assert_null(n);
}

Test(need, refusals_are_specific)
{
    char err[256];
    hv_need_t *n = hv_need_new();
    cr_assert_lt(s_opt(n, "child", "14", err, sizeof err), 0);
    cr_assert(strstr(err, "AGE:SEX"), "%s", err);
    cr_assert_lt(s_opt(n, "child", "19:m", err, sizeof err), 0);
    cr_assert_lt(s_opt(n, "child", "4:q", err, sizeof err), 0);
    cr_assert_lt(s_opt(n, "gender", "female", err, sizeof err), 0);
    cr_assert(strstr(err, "woman, man or nonbinary"), "%s", err);
    cr_assert_lt(s_opt(n, "exclude", "Cambridge", err, sizeof err), 0);
    cr_assert_lt(s_opt(n, "within", "0", err, sizeof err), 0);
    cr_assert_lt(s_opt(n, "limit", "1001", err, sizeof err), 0);
    cr_assert_lt(s_opt(n, "pet", "parrot", err, sizeof err), 0);
    cr_assert_lt(s_opt(n, "from", "tomorrow", err, sizeof err), 0);
    cr_assert_lt(s_opt(n, "language", "polish", err, sizeof err), 0);
    hv_need_destroy(&n);
}
