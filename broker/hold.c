/* SPDX-License-Identifier: MIT */
/* The hold life cycle's transition table (see hold.h). */
#include <errno.h>
#include <stdio.h>
#include "../proto/names.h"
#include "hold.h"

#define PENDING HAVEN__HOLD_STATE__HOLD_PENDING
#define ACCEPTED HAVEN__HOLD_STATE__HOLD_ACCEPTED
#define N_STATES (HAVEN__HOLD_STATE__HOLD_WITHDRAWN + 1)

/* (state, event) -> next state; what is not here is refused. */
static const Haven__HoldState s_next[N_STATES][BRK_HOLD_EVENT__COUNT] = {
    [PENDING] = {
        [BRK_HOLD_ACCEPT] = ACCEPTED,
        [BRK_HOLD_DECLINE] = HAVEN__HOLD_STATE__HOLD_DECLINED,
        [BRK_HOLD_LAPSE] = HAVEN__HOLD_STATE__HOLD_EXPIRED,
        [BRK_HOLD_CANCEL] = HAVEN__HOLD_STATE__HOLD_CANCELLED,
        [BRK_HOLD_WITHDRAW] = HAVEN__HOLD_STATE__HOLD_WITHDRAWN,
    },
    [ACCEPTED] = {
        [BRK_HOLD_DISCLOSE] = ACCEPTED,
    },
};

Haven__HoldState
brk_hold_next(Haven__HoldState state, brk_hold_event_t event)
{
    if ((int) state < 0 || (int) state >= N_STATES || (int) event < 0 || event >= BRK_HOLD_EVENT__COUNT)
        return HAVEN__HOLD_STATE__HOLD_NONE;
    return s_next[state][event];
}

/* What the requester is told, by the state the hold is in. */
static void
s_refusal(const Haven__Hold *h, brk_hold_event_t event, brk_hold_refusal_t *why)
{
    why->status = HAVEN__STATUS__STATUS_CONFLICT;
    if (h->state == HAVEN__HOLD_STATE__HOLD_EXPIRED) {
        why->status = HAVEN__STATUS__STATUS_EXPIRED;
        snprintf(why->text, sizeof why->text, "hold %s has expired", h->id);
    } else if (h->state == HAVEN__HOLD_STATE__HOLD_WITHDRAWN) {
        snprintf(why->text, sizeof why->text, "hold %s was withdrawn: the key of %s was revoked, so nothing may "
                 "be sent to it; the unit is offered again", h->id, h->idva ? h->idva : "the IDVA");
    } else if (h->state == PENDING && event == BRK_HOLD_DISCLOSE) {
        snprintf(why->text, sizeof why->text, "hold %s is still pending: the provider has not accepted yet",
                 h->id);
    } else {
        snprintf(why->text, sizeof why->text, "hold %s is already %s", h->id, hv_hold_state_name(h->state));
    }
}

int
brk_hold_apply(Haven__Hold *h, brk_hold_event_t event, brk_hold_refusal_t *why)
{
    Haven__HoldState next = brk_hold_next(h->state, event);
    if (next == HAVEN__HOLD_STATE__HOLD_NONE) {
        if (why)
            s_refusal(h, event, why);
        return -EPERM;
    }
    h->state = next;
    return 0;
}
