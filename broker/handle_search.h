/* SPDX-License-Identifier: MIT */
/* Search (handle_search.c): the index answers, offers are sealed tokens,
 * and nothing is written but the audit record. Handler as request.h says;
 * it reads the index only (txn NULL). */
#ifndef BRK_HANDLE_SEARCH_H
#define BRK_HANDLE_SEARCH_H

#include "request.h"

int brk_handle_search(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);

#endif
