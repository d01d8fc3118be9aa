/* SPDX-License-Identifier: MIT */
/* The life of a hold, declared once as a transition table, in the spirit
 * of malamute's declared server state machine (mlm_server.xml):
 *
 *   pending  --accept-->   accepted   --disclose--> accepted
 *            --decline-->  declined
 *            --lapse-->    expired
 *            --cancel-->   cancelled
 *            --withdraw--> withdrawn
 *
 * Every other (state, event) is refused, with the reason its requester is
 * told. Handlers (handle_hold.c) ask the table instead of checking states.
 * Creation (always pending) and the purge of a closed hold after
 * address_retention (deadline.h, whatever its state) are not events. */
#ifndef BRK_HOLD_H
#define BRK_HOLD_H

#include "haven.pb-c.h"

typedef enum {
    BRK_HOLD_ACCEPT,             /* the provider's agent accepts, sealing the address */
    BRK_HOLD_DECLINE,            /* the provider's agent declines, with a reason */
    BRK_HOLD_LAPSE,              /* nobody answered within hold_ttl (deadline.h) */
    BRK_HOLD_CANCEL,             /* the holder cancels */
    BRK_HOLD_WITHDRAW,           /* the holder's key was revoked */
    BRK_HOLD_DISCLOSE,           /* the holder fetches the sealed address: changes nothing */
    BRK_HOLD_EVENT__COUNT
} brk_hold_event_t;

/* Why the table refused an event: the reply's status (EXPIRED or
 * CONFLICT) and one sentence naming the hold. */
typedef struct {
    int status;
    char text[320];
} brk_hold_refusal_t;

/* The state event takes a hold in state to, or HAVEN__HOLD_STATE__HOLD_NONE
 * if the table refuses it. */
Haven__HoldState brk_hold_next(Haven__HoldState state, brk_hold_event_t event);

/* Apply event to h: set h->state to the state it leads to and return 0;
 * or leave h as it is, say why in *why (may be NULL) and return -EPERM. */
int brk_hold_apply(Haven__Hold *h, brk_hold_event_t event, brk_hold_refusal_t *why);

#endif
