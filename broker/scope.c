/* SPDX-License-Identifier: MIT */
/* What a principal may reach beyond its role's operations (see scope.h). */
#include <stdbool.h>
#include <string.h>
#include "scope.h"

int
brk_check_scope(brk_request_t *r, const char *provider)
{
    if (strcmp(r->who.provider, provider) == 0)
        return 0;
    return brk_reply_error(r, HAVEN__STATUS__STATUS_FORBIDDEN,
                           "this agent key belongs to provider %s, not %s",
                           r->who.provider, provider);
}

uint32_t
brk_hidden_kinds(int role)
{
    return role == HAVEN__ROLE__ROLE_ONCALL ? 0 : 1u << HAVEN__KIND__KIND_EMERGENCY;
}

int
brk_check_kind(brk_request_t *r, int kind)
{
    bool hidden = kind >= 0 && kind < 32 && (brk_hidden_kinds(r->who.role) & 1u << kind);
    return hidden ? brk_reply_error(r, HAVEN__STATUS__STATUS_FORBIDDEN, "emergency units are for on-call officers")
                  : 0;
}

int
brk_check_need_kinds(brk_request_t *r, const Haven__Need *need)
{
    for (size_t i = 0; i < need->n_kinds; i++)
        if (brk_check_kind(r, need->kinds[i]))
            return 1;
    return 0;
}
