/* SPDX-License-Identifier: MIT */
/* Group commit: a batch's writes are applied in one write transaction,
 * each inside its own nested transaction where its operation says so (a
 * refused request leaves nothing behind), with every request's audit
 * record; the batch is committed (fsync'd) once, and only then are the
 * writers acknowledged and the caches refreshed (refresh.h). A write is
 * checked again here for what the batch itself changed: its sender
 * revoked earlier in the batch, or a retry of one done before. */
#ifndef BRK_COMMIT_H
#define BRK_COMMIT_H

#include <stdbool.h>
#include <stddef.h>
#include "request.h"

/* Does r get an audit record of its own? Not a refusal (counted, and
 * audited once a minute per key), a retry (nothing was done), or a ping,
 * subscription or backup chunk. */
bool brk_commit_audited(const brk_request_t *r);

/* Apply the writes of batch (write[i]: batch[i] is a write; each has its
 * reply set here) and record every audited request, in one transaction,
 * growing the map when it is full; then refresh the caches. Returns 0 once
 * committed; 1 once committed without waiting for the disk (only audit
 * records: the caller syncs within a second); or -errno if nothing could
 * be stored, every write's reply then saying so. */
int brk_commit_batch(brk_ctx_t *ctx, brk_request_t *batch, const bool *write, size_t n);

#endif
