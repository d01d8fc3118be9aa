/* SPDX-License-Identifier: MIT */
/* Pushes: a principal that subscribes is told of what concerns it (a
 * referral or a withdrawal for its provider, an alert for its watch) on
 * the connection it subscribed on, without polling. Best effort: a
 * principal that is not connected finds it by asking. */
#ifndef BRK_PUSH_H
#define BRK_PUSH_H

#include "outq.h"
#include "request.h"

typedef struct brk_push brk_push_t;

/* Pushes go out through outq (which must outlive the result). Returns
 * NULL if out of memory. Caller owns the result. */
brk_push_t *brk_push_new(brk_outq_t *outq);
void brk_push_destroy(brk_push_t **self_p);

/* Subscribe: remember the connection this request came on (ctx->push); a
 * new subscription replaces the old one. Any role. Handler as request.h
 * says. */
int brk_handle_subscribe(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);

/* Tell the principal with curve key z85 of event (id: the hold or alert),
 * if it is subscribed. A connection that is gone is forgotten: it asks
 * when it comes back. */
void brk_push_send(brk_push_t *self, const char *z85, const char *event, const char *id);
/* brk_push_send as the alerts' push callback (alerts.h); arg is the
 * brk_push_t. */
void brk_push_alert(void *arg, const char *z85, const char *event, const char *id);
/* Tell every agent of provider (a referral or a withdrawal of hold). */
void brk_push_agents(brk_push_t *self, const brk_principals_t *principals, const char *provider,
                     const char *event, const char *hold);
/* Forget the subscription of z85 (its key was revoked). */
void brk_push_forget(brk_push_t *self, const char *z85);

#endif
