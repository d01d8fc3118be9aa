/* SPDX-License-Identifier: MIT */
/* What a principal may reach beyond the operations its role may send
 * (dispatch.h checks those): an agent acts only for its own provider, and
 * only on-call officers see, search for, watch or hold emergency units. */
#ifndef BRK_SCOPE_H
#define BRK_SCOPE_H

#include "request.h"

/* Agent requests name a provider; it must be the key's own. Returns 0, or
 * 1 with a FORBIDDEN reply packed. */
int brk_check_scope(brk_request_t *r, const char *provider);

/* The rule for emergency units, written once: they are the on-call
 * service's, so every other role has them hidden. The kinds of unit this
 * role never sees (bit per Haven__Kind): what its searches and watches
 * leave out altogether. */
uint32_t brk_hidden_kinds(int role);

/* A need that names a kind hidden from the sender (a search, a watch):
 * 1 with a FORBIDDEN reply packed; otherwise 0. */
int brk_check_need_kinds(brk_request_t *r, const Haven__Need *need);

/* A unit of this kind (a hold, whatever offer it came with): 1 with a
 * FORBIDDEN reply packed if the kind is hidden from the sender; else 0. */
int brk_check_kind(brk_request_t *r, int kind);

#endif
