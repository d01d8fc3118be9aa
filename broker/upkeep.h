/* SPDX-License-Identifier: MIT */
/* What the loop does on its timers, each in small commits of its own so
 * that requests never wait on it long. Failures are logged; each is tried
 * again at its next turn. */
#ifndef BRK_UPKEEP_H
#define BRK_UPKEEP_H

#include <stdint.h>
#include "ctx.h"

/* Each second, and at start for what came due while the broker was down:
 * run the deadlines that are due (deadline.h: holds lapse, closed holds
 * are purged, watches end), refresh the caches and deliver the alerts. */
void brk_upkeep_expire(brk_ctx_t *ctx);

/* Each second: forget replies to writes older than [timers] replay_window
 * (replay.h), a few hundred a second, so that pruning keeps ahead of any
 * rate the write limits allow. */
void brk_upkeep_replies(brk_ctx_t *ctx);

/* Each minute and at stop: refused requests and connections go to the
 * audit log, one record per key, so a flood costs one record a minute,
 * not one a request. */
void brk_upkeep_refusals(brk_ctx_t *ctx);

/* Each minute and at start: summarise and prune audit records past
 * [audit] retention (a few ms of small batches at a time); at *next_head
 * (then an hour on) log a signed head for administrators to keep
 * elsewhere. */
void brk_upkeep_audit(brk_ctx_t *ctx, int64_t *next_head);

#endif
