/* SPDX-License-Identifier: MIT */
/* What a principal may reach beyond its role's operations (see scope.h). */
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
