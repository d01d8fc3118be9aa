/* SPDX-License-Identifier: MIT */
/* One request in flight, and what its handler may touch. The handlers are
 * split by role, as mosquitto gives each packet its handle_*.c:
 * handle_admin.c, handle_agent.c, handle_search.c. */
#ifndef BRK_REQUEST_H
#define BRK_REQUEST_H

#include <stdint.h>
#include <zmq.h>
#include "audit.h"
#include "config.h"
#include "districts.h"
#include "index.h"
#include "principals.h"
#include "store.h"

typedef struct {
    zmq_msg_t routing;           /* the ROUTER's routing id for the reply */
    brk_principal_t who;         /* a copy: the cache may change under us */
    Haven__Request *req;
    uint64_t id;                 /* a request that failed validation: its id, for the reply */
    uint8_t *reply;              /* packed Reply, set by the handler */
    size_t reply_len;
    int status;                  /* the reply's status, for the log */
    bool refused;                /* before its handler: audited in aggregate (guard.h) */
    uint8_t digest[16];          /* a write's: tells a retry from a new request (replay.h) */
    bool replayed;               /* a retry answered with the kept reply: nothing done, not audited */
    /* What the audit log records beyond who, what and the outcome; set by
     * handlers. Flags and ids only. */
    struct {
        char detail[256];
        uint32_t dims;
        char region[HV_TEXT_MAX + 1];
        uint32_t matching, limit;
        const char *relax;
        int reason, kind;
        bool search;
    } audit;
} brk_request_t;

/* What a committed write must refresh in the memory caches. */
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
    brk_dirty_t *dirty;
    size_t n_dirty, cap_dirty;
} brk_ctx_t;

/* Handlers return 0 when the request succeeded (reply packed), 1 when it
 * was refused (error reply packed: nothing it wrote may be kept), or
 * -errno when the store failed (no reply; -ENOSPC means grow and retry). */
typedef int (*brk_handler_t)(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);

/* Pack reply (its id and status are set here) into r. Returns 0 or -ENOMEM. */
int brk_reply_ok(brk_request_t *r, Haven__Reply *reply);
/* Pack an error reply; returns 1 (the "refused" handler result). */
int brk_reply_error(brk_request_t *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Note that a committed write must refresh a cache entry. */
int brk_ctx_dirty(brk_ctx_t *ctx, brk_dirty_kind_t kind, const char *provider,
                  const char *unit, const uint8_t *key);

/* Read-only handlers (txn is a read transaction, or NULL for search). */
int brk_handle_ping(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_provider_list(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_principal_list(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_agent_status(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
/* Is the broker behind the agent (design.md section 7)? Read only. */
int brk_handle_agent_sync(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_search(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);

/* Writing handlers (txn is a nested write transaction of the batch). */
int brk_handle_provider_add(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_principal_add(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_principal_revoke(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_principal_certify(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_publish(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_unit_set(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_confirm(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
/* The agent has sent its record again: the provider is in sync. */
int brk_handle_agent_resynced(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);

/* Referrals (handle_hold.c). */
int brk_handle_hold_prepare(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_hold_list(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_hold_address(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_referrals(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_hold_create(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_hold_cancel(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_accept(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_decline(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);

/* Standing searches and inboxes (handle_watch.c). */
int brk_handle_watch_create(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_watch_list(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_watch_cancel(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_inbox(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);

/* Oversight (handle_admin.c). */
int brk_handle_audit_verify(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_audit_show(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);
int brk_handle_report(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r);

/* The region of a district index ("" if none). */
const char *brk_ctx_region(const brk_ctx_t *ctx, int district);

/* Timers: a key in the store's deadline queue (handled by brk_holds_expire). */
#define BRK_DEADLINE_HOLD 'e'    /* a pending hold lapses */
#define BRK_DEADLINE_PURGE 'p'   /* a closed hold is deleted */
#define BRK_DEADLINE_WATCH 'w'   /* a watch ends */
int brk_deadline(brk_ctx_t *ctx, MDB_txn *txn, int64_t when, char kind, const char *id, bool add);

/* Withdraw every pending hold of the principal with this curve key (its key
 * was revoked): each unit is offered again and its provider told; sealed
 * addresses and messages waiting for it on its closed holds are deleted.
 * Sets *count_out to the holds withdrawn. Returns 0 or -errno. */
int brk_holds_withdraw(brk_ctx_t *ctx, MDB_txn *txn, const uint8_t key[32], size_t *count_out);

/* End every watch of the principal with this curve key, and empty its
 * inbox. Sets *count_out to the watches ended. Returns 0 or -errno. */
int brk_watches_end(brk_ctx_t *ctx, MDB_txn *txn, const uint8_t key[32], size_t *count_out);

/* Lapse pending holds and purge closed ones whose deadline is at or before
 * ctx->now, inside txn. Sets *more if it stopped at its batch size.
 * Returns how many it handled, or -errno. */
int brk_holds_expire(brk_ctx_t *ctx, MDB_txn *txn, bool *more);

/* The store was restored from a backup: the broker may be behind every
 * agent, so mark every provider unsynced (its units stale) until its agent
 * resyncs (handle_agent.c). unsynced_since is ctx->now, or kept if the
 * provider was unsynced already; each provider is marked dirty so the
 * index sees it after the commit. Returns how many, or -errno. */
int brk_providers_mark_unsynced(brk_ctx_t *ctx, MDB_txn *txn);

/* A write carrying version from the agent key `key` was applied (publish,
 * unit_set, accept, decline): raise that key's synced version to it in the
 * same transaction, so AgentSync can tell whether the broker has
 * everything this agent had acknowledged (handle_agent.c). Per key: each
 * of a provider's agents is brought up to date. Returns 0 or -errno. */
int brk_agent_synced(brk_ctx_t *ctx, MDB_txn *txn, const uint8_t key[32], uint64_t version);

/* An agent key no longer has to bring its provider up to date after a
 * restore (it did, or it was revoked). Returns 0 or -errno. */
int brk_agent_resync_forget(brk_ctx_t *ctx, MDB_txn *txn, const char *provider, const uint8_t key[32]);

/* Agent requests name a provider; it must be the key's own. Returns 0, or
 * 1 with a FORBIDDEN reply packed. */
int brk_check_scope(brk_request_t *r, const char *provider);

#endif
