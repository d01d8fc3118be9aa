/* SPDX-License-Identifier: MIT */
/* The principal cache: lookup by key, replacement on revoke. */
#include <criterion/criterion.h>
#include <string.h>
#include "../../broker/principals.h"

Test(principals, put_find_replace)
{
    brk_principals_t *p = brk_principals_new();
    uint8_t key[32] = { 1, 2, 3 }, other[32] = { 9 };
    Haven__Principal rec = HAVEN__PRINCIPAL__INIT;
    rec.name = "agent-1";
    rec.role = HAVEN__ROLE__ROLE_AGENT;
    rec.provider = "refuge-1";
    rec.curve_key.data = key;
    rec.curve_key.len = 32;
    cr_assert_eq(brk_principals_put(p, &rec), 0);
    const brk_principal_t *found = brk_principals_find(p, key);
    cr_assert(found);
    cr_assert_str_eq(found->name, "agent-1");
    cr_assert_str_eq(found->provider, "refuge-1");
    cr_assert(!found->revoked);
    cr_assert_null(brk_principals_find(p, other));
    cr_assert_eq(brk_principals_find_z85(p, found->curve_z85), found);

    rec.has_revoked = rec.revoked = 1;
    cr_assert_eq(brk_principals_put(p, &rec), 0);
    cr_assert_eq(brk_principals_count(p), 1);
    cr_assert(brk_principals_find(p, key)->revoked);

    rec.curve_key.len = 31;
    cr_assert_lt(brk_principals_put(p, &rec), 0);
    brk_principals_destroy(&p);
    cr_assert_null(p);
}
