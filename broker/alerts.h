/* SPDX-License-Identifier: MIT */
/* Alerts from standing searches. A refresh finds them (a unit that newly
 * matches a watch), naming each unit by provider and name; after the acks
 * they are delivered: one per unit per watch within [alerts] coalesce, put
 * in their owners' inboxes (at most inbox_max each, the oldest go) with a
 * fresh offer each, pushed to whoever is connected, and told to the hook
 * at most once per watch per window. */
#ifndef BRK_ALERTS_H
#define BRK_ALERTS_H

#include <stdint.h>
#include "ctx.h"

typedef struct brk_alerts brk_alerts_t;

/* How an alert reaches a connected owner (the broker's push). */
typedef void (*brk_alerts_push_fn)(void *arg, const char *z85, const char *event, const char *id);

/* ctx is the broker's context, read when alerts are found and delivered.
 * Returns NULL if out of memory. */
brk_alerts_t *brk_alerts_new(brk_ctx_t *ctx, brk_alerts_push_fn push, void *push_arg);
void brk_alerts_destroy(brk_alerts_t **self_p);

/* The unit the next brk_alerts_on_match calls are for. */
void brk_alerts_begin_unit(brk_alerts_t *self, const char *provider, const char *unit);
/* brk_watches_match's callback: the watch id matched (owner key). */
void brk_alerts_on_match(void *arg, const char *watch, const uint8_t key[32]);

/* Deliver what was found (see above); a failure to store them is logged. */
void brk_alerts_deliver(brk_alerts_t *self);
/* Tell the hook of alerts that came within a window it already ran in,
 * once the window has passed. */
void brk_alerts_flush_hook(brk_alerts_t *self, int64_t now);
/* Forget coalescing windows that have passed. */
void brk_alerts_prune(brk_alerts_t *self);
/* A watch ended: nothing more to tell the hook of it. */
void brk_alerts_forget_watch(brk_alerts_t *self, const char *watch);

#endif
