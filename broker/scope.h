/* SPDX-License-Identifier: MIT */
/* What a principal may reach beyond the operations its role may send
 * (dispatch.h checks those): an agent acts only for its own provider. */
#ifndef BRK_SCOPE_H
#define BRK_SCOPE_H

#include "request.h"

/* Agent requests name a provider; it must be the key's own. Returns 0, or
 * 1 with a FORBIDDEN reply packed. */
int brk_check_scope(brk_request_t *r, const char *provider);

#endif
