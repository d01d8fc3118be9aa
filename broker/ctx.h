/* SPDX-License-Identifier: MIT */
/* The broker's context: what a request's handler may touch, and what the
 * modules around the handlers (dispatch, commit, refresh, pushes, upkeep)
 * share. The broker (broker.c) owns every object named here; the context
 * borrows them. There is no global: what needs the broker's state is
 * handed its context. */
#ifndef BRK_CTX_H
#define BRK_CTX_H

#include <stdbool.h>
#include <stdint.h>
#include "audit.h"
#include "config.h"
#include "districts.h"
#include "index.h"
#include "principals.h"
#include "store.h"

/* Each declared in its own header; the context only points at them. */
typedef struct brk_guard brk_guard_t;        /* guard.h */
typedef struct brk_watches brk_watches_t;    /* watch.h */
typedef struct brk_alerts brk_alerts_t;      /* alerts.h */
typedef struct brk_push brk_push_t;          /* push.h */
typedef struct brk_backup brk_backup_t;      /* backup.h */

/* What a committed write must refresh in the memory caches (refresh.h). */
typedef enum {
    BRK_DIRTY_PROVIDER, BRK_DIRTY_UNIT, BRK_DIRTY_PRINCIPAL,
    BRK_DIRTY_REFERRAL,          /* tell the provider's subscribed agents (unit = hold id) */
    BRK_DIRTY_WITHDRAWN,         /* tell them a pending referral was withdrawn (unit = hold id) */
    BRK_DIRTY_WATCH,             /* reload a watch (unit = watch id) */
} brk_dirty_kind_t;
typedef struct {
    brk_dirty_kind_t kind;
    char provider[HV_ID_MAX + 1];    /* PROVIDER (with all its units), UNIT */
    char unit[HV_ID_MAX + 1];        /* UNIT */
    uint8_t key[32];                 /* PRINCIPAL */
} brk_dirty_t;

typedef struct {
    const brk_config_t *cfg;
    brk_store_t *store;
    brk_index_t *index;
    brk_districts_t *districts;      /* not const: it caches distance rows */
    brk_principals_t *principals;
    const uint8_t *token_key;
    const brk_audit_key_t *audit_key;    /* the audit chain's MAC key and the head signing key */
    int64_t now;                 /* the broker's clock for this batch */
    brk_dirty_t *dirty;          /* what this batch's writes touched, for the refresh */
    size_t n_dirty, cap_dirty;
    /* The loop's services. NULL in a context made for a few store
     * operations (a test, or marking a restored store at start). */
    brk_guard_t *guard;          /* what each principal may cost (guard.h) */
    brk_watches_t *watches;      /* standing searches, compiled (watch.h) */
    brk_alerts_t *alerts;        /* alerts a refresh finds, delivered after the acks */
    brk_push_t *push;            /* who is subscribed where (push.h) */
    brk_backup_t *backup;        /* the backup being made or fetched (handle_backup.h) */
} brk_ctx_t;

/* Note that a committed write must refresh a cache entry. provider, unit
 * and key may be NULL where kind does not read them. Returns 0 or -ENOMEM. */
int brk_ctx_dirty(brk_ctx_t *ctx, brk_dirty_kind_t kind, const char *provider,
                  const char *unit, const uint8_t *key);

#endif
