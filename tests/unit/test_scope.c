/* SPDX-License-Identifier: MIT */
/* What a principal may reach beyond its role's operations (scope.c): an
 * agent only its own provider; emergency units only on-call officers, in
 * searches, watches and holds alike. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include "../../broker/scope.h"

static brk_request_t
s_from(int role, const char *provider)
{
    brk_request_t r;
    memset(&r, 0, sizeof r);
    r.who.role = role;
    snprintf(r.who.provider, sizeof r.who.provider, "%s", provider);
    return r;
}

static int
s_status(const brk_request_t *r)
{
    Haven__Reply *rep = haven__reply__unpack(NULL, r->reply_len, r->reply);
    cr_assert(rep);
    int status = rep->status;
    haven__reply__free_unpacked(rep, NULL);
    return status;
}

Test(scope, only_on_call_reaches_emergency_units)
{
    static const int roles[] = { HAVEN__ROLE__ROLE_NONE, HAVEN__ROLE__ROLE_AGENT, HAVEN__ROLE__ROLE_IDVA,
                                 HAVEN__ROLE__ROLE_ONCALL, HAVEN__ROLE__ROLE_ADMIN };
    for (size_t i = 0; i < sizeof roles / sizeof *roles; i++) {
        bool oncall = roles[i] == HAVEN__ROLE__ROLE_ONCALL;
        for (int kind = HAVEN__KIND__KIND_NONE; kind <= HAVEN__KIND__KIND_EMERGENCY; kind++) {
            bool hidden = kind == HAVEN__KIND__KIND_EMERGENCY && !oncall;
            cr_assert_eq(!!(brk_hidden_kinds(roles[i]) & 1u << kind), hidden, "role %d kind %d", roles[i], kind);
            brk_request_t r = s_from(roles[i], "");
            cr_assert_eq(brk_check_kind(&r, kind), hidden ? 1 : 0, "role %d kind %d", roles[i], kind);
            if (hidden)
                cr_assert_eq(s_status(&r), HAVEN__STATUS__STATUS_FORBIDDEN);
            else
                cr_assert_null(r.reply);
            free(r.reply);
        }
    }
}

Test(scope, a_need_naming_a_hidden_kind_is_refused)
{
    Haven__Kind kinds[] = { HAVEN__KIND__KIND_REFUGE, HAVEN__KIND__KIND_EMERGENCY };
    Haven__Need need = HAVEN__NEED__INIT;
    need.n_kinds = 2;
    need.kinds = kinds;
    brk_request_t idva = s_from(HAVEN__ROLE__ROLE_IDVA, ""), oncall = s_from(HAVEN__ROLE__ROLE_ONCALL, "");
    cr_assert_eq(brk_check_need_kinds(&idva, &need), 1);
    cr_assert_eq(s_status(&idva), HAVEN__STATUS__STATUS_FORBIDDEN);
    cr_assert_eq(brk_check_need_kinds(&oncall, &need), 0);
    need.n_kinds = 1;            /* refuges only */
    free(idva.reply);
    idva = s_from(HAVEN__ROLE__ROLE_IDVA, "");
    cr_assert_eq(brk_check_need_kinds(&idva, &need), 0);
    free(idva.reply);
}

Test(scope, an_agent_acts_for_its_own_provider_only)
{
    brk_request_t r = s_from(HAVEN__ROLE__ROLE_AGENT, "refuge-1");
    cr_assert_eq(brk_check_scope(&r, "refuge-1"), 0);
    cr_assert_eq(brk_check_scope(&r, "refuge-2"), 1);
    cr_assert_eq(s_status(&r), HAVEN__STATUS__STATUS_FORBIDDEN);
    free(r.reply);
}
