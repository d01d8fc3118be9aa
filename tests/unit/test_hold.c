/* SPDX-License-Identifier: MIT */
/* The hold life cycle (hold.c): every state x every event against the
 * table written out here, and what a refused event tells its requester. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include "../../broker/hold.h"

#define NONE HAVEN__HOLD_STATE__HOLD_NONE
#define PENDING HAVEN__HOLD_STATE__HOLD_PENDING
#define ACCEPTED HAVEN__HOLD_STATE__HOLD_ACCEPTED
#define DECLINED HAVEN__HOLD_STATE__HOLD_DECLINED
#define EXPIRED HAVEN__HOLD_STATE__HOLD_EXPIRED
#define CANCELLED HAVEN__HOLD_STATE__HOLD_CANCELLED
#define WITHDRAWN HAVEN__HOLD_STATE__HOLD_WITHDRAWN

/* (state, event) -> next; NONE: refused. Rows: NONE..WITHDRAWN; columns
 * in brk_hold_event_t order: accept, decline, lapse, cancel, withdraw,
 * disclose. */
static const Haven__HoldState s_expected[WITHDRAWN + 1][BRK_HOLD_EVENT__COUNT] = {
    [NONE] = { NONE, NONE, NONE, NONE, NONE, NONE },
    [PENDING] = { ACCEPTED, DECLINED, EXPIRED, CANCELLED, WITHDRAWN, NONE },
    [ACCEPTED] = { NONE, NONE, NONE, NONE, NONE, ACCEPTED },
    [DECLINED] = { NONE, NONE, NONE, NONE, NONE, NONE },
    [EXPIRED] = { NONE, NONE, NONE, NONE, NONE, NONE },
    [CANCELLED] = { NONE, NONE, NONE, NONE, NONE, NONE },
    [WITHDRAWN] = { NONE, NONE, NONE, NONE, NONE, NONE },
};

Test(hold, every_state_and_event_against_the_table)
{
    for (int s = NONE; s <= WITHDRAWN; s++) {
        for (int e = 0; e < BRK_HOLD_EVENT__COUNT; e++) {
            Haven__HoldState want = s_expected[s][e];
            cr_assert_eq(brk_hold_next((Haven__HoldState) s, (brk_hold_event_t) e), want,
                         "state %d event %d", s, e);
            Haven__Hold h = HAVEN__HOLD__INIT;
            h.id = "0123456789abcdef";
            h.state = (Haven__HoldState) s;
            brk_hold_refusal_t why;
            memset(&why, 0, sizeof why);
            int rc = brk_hold_apply(&h, (brk_hold_event_t) e, &why);
            if (want == NONE) {
                cr_assert_eq(rc, -EPERM, "state %d event %d", s, e);
                cr_assert_eq((int) h.state, s, "a refused event leaves the hold as it was");
                cr_assert(strstr(why.text, "hold 0123456789abcdef"), "the reason names the hold: %s", why.text);
                cr_assert(why.status == HAVEN__STATUS__STATUS_CONFLICT || why.status == HAVEN__STATUS__STATUS_EXPIRED);
            } else {
                cr_assert_eq(rc, 0, "state %d event %d", s, e);
                cr_assert_eq(h.state, want);
            }
        }
    }
}

Test(hold, unknown_states_and_events_are_refused)
{
    cr_assert_eq(brk_hold_next((Haven__HoldState) 99, BRK_HOLD_ACCEPT), NONE);
    cr_assert_eq(brk_hold_next((Haven__HoldState) -1, BRK_HOLD_ACCEPT), NONE);
    cr_assert_eq(brk_hold_next(PENDING, BRK_HOLD_EVENT__COUNT), NONE);
    Haven__Hold h = HAVEN__HOLD__INIT;
    h.id = "0123456789abcdef";
    h.state = PENDING;
    cr_assert_eq(brk_hold_apply(&h, BRK_HOLD_EVENT__COUNT, NULL), -EPERM, "no reason asked for: none given");
}

static brk_hold_refusal_t
s_refusal(Haven__HoldState state, brk_hold_event_t event, const char *idva)
{
    Haven__Hold h = HAVEN__HOLD__INIT;
    h.id = "0123456789abcdef";
    h.state = state;
    h.idva = (char *) idva;
    brk_hold_refusal_t why;
    cr_assert_eq(brk_hold_apply(&h, event, &why), -EPERM);
    return why;
}

Test(hold, what_a_refused_requester_is_told)
{
    brk_hold_refusal_t why = s_refusal(EXPIRED, BRK_HOLD_ACCEPT, NULL);
    cr_assert_eq(why.status, HAVEN__STATUS__STATUS_EXPIRED);
    cr_assert_str_eq(why.text, "hold 0123456789abcdef has expired");
    why = s_refusal(WITHDRAWN, BRK_HOLD_DECLINE, "idva-1");
    cr_assert_eq(why.status, HAVEN__STATUS__STATUS_CONFLICT);
    cr_assert_str_eq(why.text, "hold 0123456789abcdef was withdrawn: the key of idva-1 was revoked, so nothing "
                     "may be sent to it; the unit is offered again");
    why = s_refusal(WITHDRAWN, BRK_HOLD_CANCEL, NULL);
    cr_assert(strstr(why.text, "the key of the IDVA was revoked"), "%s", why.text);
    why = s_refusal(PENDING, BRK_HOLD_DISCLOSE, NULL);
    cr_assert_eq(why.status, HAVEN__STATUS__STATUS_CONFLICT);
    cr_assert_str_eq(why.text, "hold 0123456789abcdef is still pending: the provider has not accepted yet");
    why = s_refusal(ACCEPTED, BRK_HOLD_CANCEL, NULL);
    cr_assert_eq(why.status, HAVEN__STATUS__STATUS_CONFLICT);
    cr_assert_str_eq(why.text, "hold 0123456789abcdef is already accepted");
}
