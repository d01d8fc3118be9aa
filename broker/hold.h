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
 * address_retention (deadline.h, whatever its state) are not events.
 *
 * Here too: the hold's record, which every transition writes, and the
 * transitions no request asks for (a lapse, a purge, the withdrawal of a
 * revoked key's holds). The requests are handle_hold.c's. */
#ifndef BRK_HOLD_H
#define BRK_HOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "ctx.h"
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

/* ---------------------------------------------------------------- the record */

/* Hold id from the store (-ENOENT: none). Caller owns *out. Returns 0 or
 * -errno. */
int brk_hold_get(brk_ctx_t *ctx, MDB_txn *txn, const char *id, Haven__Hold **out);
/* Store h. Returns 0 or -errno. */
int brk_hold_put(brk_ctx_t *ctx, MDB_txn *txn, const Haven__Hold *h);
/* Free h's notes: the referral is over, or the reader may not see them. */
void brk_hold_drop_notes(Haven__Hold *h);
/* Close a hold the table has just taken out of pending (brk_hold_apply):
 * its time, its notes gone, its lapse off the deadline queue and its purge
 * on it, stored. Returns 0 or -errno. */
int brk_hold_close(brk_ctx_t *ctx, MDB_txn *txn, Haven__Hold *h);
/* Set the status of the unit provider/unit to status if it is from_status
 * (0: whatever it is); for an agent's answer (version > 0) lift the unit's
 * version to it and mark it confirmed now. A unit withdrawn meanwhile is
 * no error. Returns 0 or -errno. */
int brk_hold_unit_status(brk_ctx_t *ctx, MDB_txn *txn, const char *provider, const char *unit, int from_status,
                         int status, uint64_t version);

/* Which holds brk_holds_scan counts (and collects into list, if collect):
 * those of the principal idva, or else of provider; also, with region,
 * every pending hold on a unit in that region (an on-call officer's). */
typedef struct {
    const brk_ctx_t *ctx;        /* set by brk_holds_scan */
    const char *region;          /* ...or, for on-call, any hold in this region */
    const uint8_t *idva;         /* count this principal's... */
    const char *provider;        /* ...or this provider's... */
    bool pending_only;           /* ...pending holds only */
    brk_store_list_t list;       /* when collecting */
    bool collect;
    size_t count;
} brk_hold_scan_t;
/* Walk every hold. Returns 0 or -errno; the caller frees s->list. */
int brk_holds_scan(brk_ctx_t *ctx, MDB_txn *txn, brk_hold_scan_t *s);

/* ---------------------------------------------------------------- lapse, purge, withdrawal */

/* A hold's deadline came (deadline.h). A pending hold lapses: it is closed
 * as expired and its unit offered again; a hold already closed stays as
 * it is. Returns 0 (a hold that is gone has nothing to lapse) or -errno. */
int brk_hold_expire(brk_ctx_t *ctx, MDB_txn *txn, const char *id);
/* A closed hold's record is deleted, sealed address and all, after
 * address_retention. Returns 0 (gone already too) or -errno. */
int brk_hold_purge(brk_ctx_t *ctx, MDB_txn *txn, const char *id);
/* Withdraw every pending hold of the principal with this curve key (its key
 * was revoked): each unit is offered again and its provider told; sealed
 * addresses and messages waiting for it on its closed holds are deleted.
 * Sets *count_out to the holds withdrawn. Returns 0 or -errno. */
int brk_holds_withdraw(brk_ctx_t *ctx, MDB_txn *txn, const uint8_t key[32], size_t *count_out);

#endif
