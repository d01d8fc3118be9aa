/* SPDX-License-Identifier: MIT */
/* The broker's parts: built by broker.c (brk_broker_new), run by loop.c
 * (brk_broker_run). Nothing else includes this: everything the handlers
 * and the modules around them need is in the context (ctx.h). */
#ifndef BRK_BROKER_IMPL_H
#define BRK_BROKER_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include "../common/keys.h"
#include "backup.h"
#include "broker.h"
#include "guard.h"
#include "outq.h"
#include "push.h"
#include "request.h"
#include "watch.h"

struct brk_broker {
    const brk_config_t *cfg;
    brk_store_t *store;
    brk_districts_t *districts;
    brk_index_t *index;
    brk_principals_t *principals;
    hv_keys_t *keys;
    uint8_t *token_key;          /* sodium_malloc'd */
    brk_audit_key_t *audit_key;  /* derived from broker.key, never stored */
    int64_t next_head;           /* when to log the next signed audit head */
    void *zctx;
    void *zap;
    void *router;
    char endpoint[256];
    brk_request_t *batch;        /* batch_max entries */
    brk_ctx_t ctx;               /* what handlers and the modules around them see; borrows from here */
    brk_push_t *push;            /* who is subscribed where, for pushes */
    brk_guard_t *guard;          /* what each principal may cost */
    brk_outq_t *outq;            /* replies waiting for slow readers */
    void *monitor;               /* the server socket's connection events */
    brk_alerts_t *alerts;        /* from standing searches, delivered after the acks */
    int64_t next_minute;         /* refusals go to the audit log once a minute */
    brk_backup_t *backup;
    brk_watches_t *watches;
    bool unsynced;               /* audit records committed without fsync */
    int64_t next_expiry;
};

#endif
