/* SPDX-License-Identifier: MIT */
/* Dispatch: what each operation is (its handler, whether it writes, which
 * roles may send it, how big it may be), and the receipt of a request.
 * Everything a request may cost is checked before it is decoded: who sent
 * it, whether their role may send that operation at all, its size against
 * the operation's cap, their requests in this cycle and their rates. */
#ifndef BRK_DISPATCH_H
#define BRK_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "request.h"

typedef struct {
    brk_handler_t fn;
    bool write;
    uint32_t roles;              /* bit per Haven__Role */
    /* Runs in a nested transaction of its own, so a refusal after a
     * partial write leaves nothing behind. The hot, simple updates
     * (unit_set, confirm) refuse before they write and skip it: LMDB's
     * nested transactions allocate megabytes each. */
    bool nested;
    /* Reads the in-memory index only: no read transaction to open. */
    bool index_only;
    /* A write whose reply is not kept for retries: repeating it is
     * harmless by itself (versions, acknowledgements), and it comes at
     * machine rates that would fill the store with replies. */
    bool no_replay;
} brk_op_t;

/* The operation of a Request body case, or NULL if there is none. */
const brk_op_t *brk_op(int body);
/* Its name, as the request's field is named ("unknown" if none). */
const char *brk_op_name(int body);
/* May a principal of role (a Haven__Role) send body? */
bool brk_op_allowed(int body, int role);
/* The most bytes a valid request of body can take: checked before
 * protobuf-c allocates anything for it. */
size_t brk_op_max_bytes(const brk_config_t *cfg, int body);

/* Answer r, a write of operation body, with the reply kept for its first
 * try (replay.h; r takes reply): it is not done again, nor audited. */
void brk_op_replayed(brk_request_t *r, int body, uint8_t *reply, size_t len, int status);

/* Receive one request from router into r and check it. Returns 1 if it
 * is ready to reply to (refused, a retry answered from its kept reply, or
 * a read answered by its handler in *rtxn, begun here if need be), 2 if
 * it is a write to apply (commit.h), 0 if nothing was waiting, -errno on
 * socket failure. A refusal is counted in ctx->guard. */
int brk_receive(brk_ctx_t *ctx, void *router, brk_request_t *r, MDB_txn **rtxn);

#endif
