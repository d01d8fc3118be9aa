/* SPDX-License-Identifier: MIT */
/* The broker's event loop.
 *
 * Each poll cycle takes up to batch_max requests. Reads (search, lists,
 * status) are answered at once from the index or a read transaction.
 * Writes are applied in one write transaction, each inside its own nested
 * transaction so a refused request leaves nothing behind; the batch is
 * committed (fsync'd) once, and only then are the writers acknowledged and
 * the in-memory caches refreshed: group commit. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>
#include "../common/keys.h"
#include "../proto/names.h"
#include "../common/conn.h"
#include "alerts.h"
#include "audit.h"
#include "commit.h"
#include "backup.h"
#include "guard.h"
#include "outq.h"
#include "push.h"
#include "refresh.h"
#include "replay.h"
#include "watch.h"
#include "broker.h"
#include "log.h"
#include "match.h"
#include "offer.h"
#include "deadline.h"
#include "dispatch.h"
#include "handle_admin.h"
#include "handle_agent.h"
#include "handle_backup.h"
#include "handle_hold.h"
#include "handle_search.h"
#include "handle_watch.h"
#include "request.h"
#include "scope.h"
#include "zap.h"

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
    brk_ctx_t ctx;
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

static int64_t
s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
s_now(void)
{
    return (int64_t) time(NULL);
}

static void
s_send_reply(brk_broker_t *self, brk_request_t *r)
{
    if (!r->reply)
        brk_reply_error(r, HAVEN__STATUS__STATUS_INTERNAL, "the broker failed to handle the request");
    if (!r->reply) {
        brk_log(BRK_LOG_ERROR, "no reply could be made for %s (out of memory); the client will retry",
                r->who.name[0] ? r->who.name : "an unknown key");
        return;
    }
    /* ROUTER_MANDATORY and DONTWAIT: a vanished or stuck peer costs us an
     * error here (or a bounded wait in the outq), never a blocked loop. */
    int rc = brk_outq_send(self->outq, zmq_msg_data(&r->routing), zmq_msg_size(&r->routing), r->who.curve_z85,
                           r->reply, r->reply_len, s_now_ms());
    if (rc < 0)
        brk_log(BRK_LOG_DEBUG, "reply to %s dropped: %s", r->who.name[0] ? r->who.name : "an unknown key",
                rc == -ENOBUFS ? "too many replies wait for it (limits.queued_reply_mb)" : zmq_strerror(-rc));
}


static void
s_serve_batch(brk_broker_t *self)
{
    bool write[self->cfg->batch_max];
    size_t n = 0;
    MDB_txn *rtxn = NULL;
    /* Stop taking requests once the batch's decode budget is spent or one
     * key has its requests_in_flight: the rest wait in their connections'
     * queues (bounded by the HWMs), for the next cycle. */
    for (; n < (size_t) self->cfg->batch_max && !brk_guard_batch_full(self->guard); n++) {
        brk_request_t *r = &self->batch[n];
        int rc = brk_receive(&self->ctx, self->router, r, &rtxn);
        if (rc <= 0) {
            if (rc < 0)
                brk_log(BRK_LOG_ERROR, "receive failed: %s", zmq_strerror(-rc));
            break;
        }
        write[n] = rc == 2;
    }
    if (rtxn)
        brk_store_abort(rtxn);   /* end reads before the write: no long readers */
    /* Reads are answered now; their audit records go into this cycle's
     * commit with the writes, whose replies wait for it (group commit). */
    for (size_t i = 0; i < n; i++)
        if (!write[i])
            s_send_reply(self, &self->batch[i]);
    bool store = false;          /* a write, or an audit record to keep */
    for (size_t i = 0; i < n && !store; i++)
        store = write[i] || brk_commit_audited(&self->batch[i]);
    if (store && brk_commit_batch(&self->ctx, self->batch, write, n) == 1)
        self->unsynced = true;
    for (size_t i = 0; i < n; i++) {
        if (write[i])
            s_send_reply(self, &self->batch[i]);
        brk_request_clear(&self->batch[i]);
    }
    /* An ack waits only for its commit: the alerts' own commit, pushes and
     * hook runs follow the acks (design.md section 7). */
    brk_alerts_deliver(self->alerts);
    brk_guard_batch_end(self->guard);
}

/* Lapse holds and purge closed ones that are due, in their own commit. */
static void
s_expire(brk_broker_t *self)
{
    bool more = true;
    for (int round = 0; more && round < 16; round++) {
        MDB_txn *txn = NULL;
        self->ctx.n_dirty = 0;
        self->ctx.now = s_now();
        int rc = brk_store_begin(self->store, NULL, true, &txn);
        int n = rc < 0 ? rc : brk_deadlines_run(&self->ctx, txn, &more);
        if (n > 0) {
            rc = brk_store_commit(txn);
            txn = NULL;
        } else if (n < 0) {
            rc = n;
        }
        if (txn)
            brk_store_abort(txn);
        if (rc == -ENOSPC && brk_store_grow(self->store) == 0)
            continue;
        if (rc < 0) {
            brk_log(BRK_LOG_ERROR, "expiring holds failed: %s", strerror(-rc));
            self->ctx.n_dirty = 0;
            return;
        }
        brk_refresh(&self->ctx);
        brk_alerts_deliver(self->alerts);
        if (n == 0)
            break;
    }
}

/* The server socket's monitor: which connections exist, by descriptor. */
static void
s_connection_events(brk_broker_t *self)
{
    for (int k = 0; k < 4096; k++) {
        zmq_msg_t ev, addr;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, self->monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            return;
        }
        zmq_msg_init(&addr);
        /* the second frame (the address) is not used; an event without
         * it is still an event */
        if (zmq_msg_more(&ev) && zmq_msg_recv(&addr, self->monitor, 0) < 0)
            brk_log(BRK_LOG_WARN, "a connection event came without its address: %s", zmq_strerror(errno));
        if (zmq_msg_size(&ev) >= 6) {
            uint16_t event;
            int32_t value;
            memcpy(&event, zmq_msg_data(&ev), 2);
            memcpy(&value, (const uint8_t *) zmq_msg_data(&ev) + 2, 4);
            if (event == ZMQ_EVENT_ACCEPTED)
                brk_guard_conn_open(self->guard, value, s_now_ms());
            else if (event == ZMQ_EVENT_DISCONNECTED)
                brk_guard_conn_close(self->guard, value);
        }
        zmq_msg_close(&ev);
        zmq_msg_close(&addr);
    }
}

static void
s_drop_silent(void *arg, int fd)
{
    brk_broker_t *self = arg;
    brk_guard_refused(self->guard, NULL, BRK_REFUSE_SILENT);
    brk_log(BRK_LOG_DEBUG, "closing connection %d: no request after %llds", fd,
            (long long) self->cfg->silent_connection_s);
    brk_guard_conn_drop(NULL, fd);
}

typedef struct {
    brk_broker_t *self;
    MDB_txn *txn;
    int rc;
} s_refusal_audit_t;

static void
s_refusal_record(void *arg, const char *name, const uint32_t *counts)
{
    s_refusal_audit_t *a = arg;
    if (a->rc < 0)
        return;
    Haven__AuditRecord rec = HAVEN__AUDIT_RECORD__INIT;
    char detail[256];
    size_t used = 0;
    uint32_t total = 0;
    for (int i = 0; i < BRK_REFUSE__COUNT; i++) {
        if (!counts[i])
            continue;
        total += counts[i];
        int w = snprintf(detail + used, sizeof detail - used, "%s%s %u", used ? ", " : "",
                         brk_refusal_name((brk_refusal_t) i), counts[i]);
        if (w > 0 && (size_t) w < sizeof detail - used)
            used += (size_t) w;
    }
    const brk_principal_t *p = NULL;
    rec.has_at = rec.has_outcome = 1;
    rec.at = s_now();
    rec.principal = (char *) (name ? name : "(unknown keys)");
    if (name && (p = brk_principals_find_by_name(a->self->principals, name))) {
        rec.has_role = 1;
        rec.role = p->role;
    }
    rec.action = "refused";
    rec.outcome = HAVEN__STATUS__STATUS_FORBIDDEN;
    rec.detail = detail;
    rec.has_matching = 1;
    rec.matching = total;        /* how many, for a reader of audit show */
    a->rc = brk_audit_append(a->self->audit_key, a->self->store, a->txn, &rec);
    brk_log(BRK_LOG_INFO, "refused %u requests or connections from %s in the last minute: %s", total,
            rec.principal, detail);
}

/* Refused requests and connections go to the audit log once a minute, one
 * record per key, so a flood costs one record a minute, not one a request. */
static void
s_audit_refusals(brk_broker_t *self)
{
    for (int attempt = 0; attempt < 4; attempt++) {
        s_refusal_audit_t a = { self, NULL, 0 };
        if ((a.rc = brk_store_begin(self->store, NULL, true, &a.txn)) < 0)
            break;
        brk_guard_refusals_take(self->guard, s_refusal_record, &a);
        if (a.rc == 0) {
            if ((a.rc = brk_store_commit(a.txn)) == 0)
                return;          /* a failed commit ended the transaction too */
        } else {
            brk_store_abort(a.txn);
        }
        /* The counts were taken from the guard: what this minute refused
         * is in the log lines above (debug) but not in the audit log. */
        brk_log(BRK_LOG_ERROR, "recording this minute's refusals in the audit log failed: %s; they are "
                "not in it", strerror(-a.rc));
        if (a.rc != -ENOSPC || brk_store_grow(self->store) < 0)
            return;
    }
}

/* Once a minute and at start: summarise and prune audit records past
 * [audit] retention (a few ms of small batches at a time), and every hour
 * log a signed head for administrators to keep elsewhere. */
static void
s_audit_upkeep(brk_broker_t *self)
{
    int64_t now = s_now();
    brk_audit_pruned_t pr;
    int rc = brk_audit_maintain(self->audit_key, self->store,
                                brk_audit_cutoff(now, (int) self->cfg->audit_retention_months), now, 50, &pr);
    if (pr.keyed_now)
        brk_log(BRK_LOG_WARN, "the audit log's head carries no MAC: this is a store from before keyed audit, or "
                "someone without broker.key rewrote the log and stripped its MACs; nothing here can tell which. "
                "The chain is keyed from record %llu on; the records before it are never pruned: check them "
                "against a head kept elsewhere (haven-admin audit verify --head FILE)",
                (unsigned long long) pr.keyed_seq);
    if (rc == -EILSEQ)
        brk_log(BRK_LOG_ERROR, "the audit log fails its check, so nothing is pruned: run haven-admin audit "
                "verify to see where");
    else if (rc < 0)
        brk_log(BRK_LOG_ERROR, "pruning the audit log failed: %s", strerror(-rc));
    else if (pr.pruned)
        brk_log(BRK_LOG_INFO, "counted %zu audit records older than %lld months into monthly totals and removed "
                "them", pr.pruned, (long long) self->cfg->audit_retention_months);
    if (now < self->next_head)
        return;
    if (rc == 0 && pr.held)      /* at start and hourly, with the head */
        brk_log(BRK_LOG_WARN, "audit record %llu is older than [audit] retention but carries no MAC, so neither "
                "it nor any after it is pruned: the key cannot vouch for it (from before keyed audit, or its "
                "MAC stripped)", (unsigned long long) pr.held);
    MDB_txn *txn = NULL;
    Haven__AuditHead head;
    uint8_t hash[32], sig[64];
    char line[320];
    if ((rc = brk_store_begin(self->store, NULL, false, &txn)) == 0) {
        rc = brk_audit_head(self->audit_key, self->store, txn, now, &head, hash, sig);
        brk_store_abort(txn);
    }
    if (rc == 0) {
        brk_audit_head_format(&head, line, sizeof line);
        brk_log(BRK_LOG_INFO, "audit head, signed (keep copies away from this machine; haven-admin audit "
                "verify --head FILE checks the log against one): %s", line);
    }
    self->next_head = now + 3600;
}

/* Forget replies to writes older than [timers] replay_window: a few
 * hundred a second in one small commit, so the loop never waits on it
 * long, and pruning keeps ahead of any rate the write limits allow. */
static void
s_replay_upkeep(brk_broker_t *self)
{
    bool more = false;
    MDB_txn *txn = NULL;
    int rc = brk_store_begin(self->store, NULL, true, &txn);
    int n = rc < 0 ? rc : brk_replay_prune(self->store, txn, s_now() - self->cfg->replay_window_s, 500, &more);
    rc = n;
    if (n > 0) {
        rc = brk_store_commit(txn);
        txn = NULL;
    }
    brk_store_abort(txn);
    if (rc == -ENOSPC && brk_store_grow(self->store) == 0)
        return;                  /* again in a second */
    if (rc < 0)
        brk_log(BRK_LOG_ERROR, "forgetting old replies to writes failed: %s", strerror(-rc));
}

int
brk_broker_run(brk_broker_t *self, int stop_fd)
{
    int64_t next_check = s_now() + self->cfg->reader_check_s;
    s_expire(self);              /* deadlines that passed while we were down */
    for (;;) {
        zmq_pollitem_t items[] = {
            { self->zap, 0, ZMQ_POLLIN, 0 },
            { self->router, 0, ZMQ_POLLIN, 0 },
            { NULL, stop_fd, ZMQ_POLLIN, 0 },
            { self->monitor, 0, ZMQ_POLLIN, 0 },
        };
        /* Wake at least every second: hold deadlines are in whole seconds;
         * every few milliseconds while replies wait for room. */
        int64_t wait = (next_check - s_now()) * 1000;
        if (wait > 1000)
            wait = 1000;
        if (brk_outq_flush(self->outq, s_now_ms()) && wait > 2)
            wait = 2;
        int n = zmq_poll(items, 4, wait > 0 ? (long) wait : 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        /* Connections opened and closed, before the handshakes they make. */
        if (items[3].revents & ZMQ_POLLIN)
            s_connection_events(self);
        /* Handshakes first: a client waiting on ZAP has nothing else to do. */
        for (int k = 0; k < 64 && (items[0].revents & ZMQ_POLLIN); k++) {
            brk_zap_handle(self->zap, self->principals, self->guard);
            int events = 0;
            size_t sz = sizeof events;
            zmq_getsockopt(self->zap, ZMQ_EVENTS, &events, &sz);
            if (!(events & ZMQ_POLLIN))
                break;
        }
        if (items[1].revents & ZMQ_POLLIN)
            s_serve_batch(self);
        if (items[2].revents & ZMQ_POLLIN) {
            brk_log(BRK_LOG_INFO, "stopping");
            s_audit_refusals(self);
            return 0;
        }
        while (self->cfg->hook && waitpid(-1, NULL, WNOHANG) > 0) {
        }
        if (s_now() >= self->next_expiry) {
            if (self->unsynced) {
                brk_store_sync(self->store);
                self->unsynced = false;
            }
            s_expire(self);
            s_replay_upkeep(self);
            brk_backup_mark_clear(&self->ctx);
            brk_guard_conn_each_to_drop(self->guard, s_now_ms(), self->cfg->silent_connection_s * 1000, NULL,
                                        s_drop_silent, self);
            brk_alerts_flush_hook(self->alerts, s_now());
            self->next_expiry = s_now() + 1;
        }
        if (s_now() >= self->next_minute) {
            s_audit_refusals(self);
            brk_alerts_prune(self->alerts);
            s_audit_upkeep(self);
            self->next_minute = s_now() + 60;
        }
        if (s_now() >= next_check) {
            int dead = brk_store_reader_check(self->store);
            if (dead < 0)
                brk_log(BRK_LOG_ERROR, "checking for stale reader slots failed: %s", strerror(-dead));
            else if (dead)
                brk_log(BRK_LOG_INFO, "cleared %d stale reader slots", dead);
            next_check = s_now() + self->cfg->reader_check_s;
        }
    }
}

/* ---------------------------------------------------------------- set-up */

static int
s_path(char *buf, size_t len, const char *dir, const char *name)
{
    return snprintf(buf, len, "%s/%s", dir, name) >= (int) len ? -ENAMETOOLONG : 0;
}

int
brk_broker_init(const brk_config_t *cfg, const char *admin_pub, const char *admin_name,
                char *err, size_t errlen)
{
    char path[4096];
    hv_pubkey_t admin;
    brk_districts_t *districts = NULL;
    brk_store_t *store = NULL;
    MDB_txn *txn = NULL;
    int rc;

    if (!hv_valid_id(admin_name)) {
        snprintf(err, errlen, "admin name '%s' is not valid: use 1-64 of a-z, 0-9, '-', '_', '.'", admin_name);
        return -EINVAL;
    }
    if ((rc = hv_pubkey_load(admin_pub, &admin, err, errlen)) < 0)
        return rc;
    if (!admin.has_sign) {
        snprintf(err, errlen, "%s has no signing key (sign = ...): make it again with `haven-admin keygen "
                 "--public-of KEYFILE`, which adds it", admin_pub);
        return -EINVAL;
    }
    if ((rc = brk_districts_load(cfg->districts, &districts, err, errlen)) < 0)
        return rc;
    brk_districts_destroy(&districts);
    if (mkdir(cfg->data_dir, 0700) < 0 && errno != EEXIST) {
        rc = -errno;
        snprintf(err, errlen, "cannot create %s: %s", cfg->data_dir, strerror(errno));
        return rc;
    }
    s_path(path, sizeof path, cfg->data_dir, "broker");
    if ((rc = hv_keys_generate(path)) < 0) {
        snprintf(err, errlen, rc == -EEXIST ? "%s is already initialised (broker.key exists)"
                                             : "cannot write the broker's keys in %s", cfg->data_dir);
        return rc;
    }
    if ((rc = brk_store_open(cfg->data_dir, (size_t) cfg->map_size_mb << 20, &store)) < 0) {
        snprintf(err, errlen, "cannot open the store in %s: %s", cfg->data_dir, strerror(-rc));
        return rc;
    }
    Haven__Principal p = HAVEN__PRINCIPAL__INIT;
    p.name = (char *) admin_name;
    p.role = HAVEN__ROLE__ROLE_ADMIN;
    p.curve_key.len = 32;
    p.curve_key.data = admin.curve_raw;
    p.has_seal_key = 1;
    p.seal_key.len = 32;
    p.seal_key.data = admin.seal;
    p.has_sign_key = 1;
    p.sign_key = (ProtobufCBinaryData) { 32, admin.sign };
    p.has_revoked = 1;
    p.has_created_at = 1;
    p.created_at = s_now();
    if ((rc = brk_store_begin(store, NULL, true, &txn)) < 0
        || (rc = brk_store_put(store, txn, BRK_DB_META, "schema", 6, "1", 1)) < 0
        || (rc = brk_store_put_msg(store, txn, BRK_DB_PRINCIPALS, admin.curve_raw, 32, &p.base)) < 0
        || (rc = brk_store_put(store, txn, BRK_DB_NAMES, admin_name, strlen(admin_name), admin.curve_raw, 32)) < 0) {
        brk_store_abort(txn);
    } else {
        rc = brk_store_commit(txn);
    }
    brk_store_destroy(&store);
    if (rc < 0)
        snprintf(err, errlen, "cannot initialise the store in %s: %s", cfg->data_dir, strerror(-rc));
    return rc;
}

static int
s_load_state(brk_broker_t *self, char *err, size_t errlen)
{
    MDB_txn *txn;
    const void *val;
    size_t vlen;
    int rc = brk_store_begin(self->store, NULL, false, &txn);
    if (rc < 0)
        goto fail;
    rc = brk_store_get(self->store, txn, BRK_DB_META, "schema", 6, &val, &vlen);
    if (rc < 0) {
        brk_store_abort(txn);
        snprintf(err, errlen, "%s is not an initialised Haven store; run haven-broker init",
                 self->cfg->data_dir);
        return -ENOENT;
    }
    brk_store_abort(txn);
    for (int attempt = 0; (rc = brk_backup_mark_restored(self->cfg, self->store)) == -ENOSPC && attempt < 8; attempt++)
        if (brk_store_grow(self->store) < 0)
            break;
    if (rc < 0) {
        snprintf(err, errlen, "cannot mark the restored store's providers as unsynced: %s", strerror(-rc));
        return rc;
    }
    if ((rc = brk_store_begin(self->store, NULL, false, &txn)) < 0)
        goto fail;
    bool stored_key = brk_store_get(self->store, txn, BRK_DB_META, "token-key", 9, &val, &vlen) == 0;
    if ((rc = brk_refresh_load(&self->ctx, txn)) < 0) {
        brk_store_abort(txn);
        goto fail;
    }
    brk_store_abort(txn);
    if (stored_key) {
        /* Stores made before the key was derived from broker.key kept it
         * here, where every backup carried it: remove it. */
        if ((rc = brk_store_begin(self->store, NULL, true, &txn)) < 0)
            goto fail;
        if ((rc = brk_store_del(self->store, txn, BRK_DB_META, "token-key", 9)) < 0) {
            brk_store_abort(txn);
            goto fail;
        }
        if ((rc = brk_store_commit(txn)) < 0)
            goto fail;           /* LMDB ended the transaction */
        brk_log(BRK_LOG_INFO, "removed the offer-token key from the store: it is derived from broker.key "
                "now, so backups no longer carry it (offers made before this restart are void)");
    }
    /* broker.pub from before keys had a signing pair: clients pin its sign
     * line to check the audit heads the broker signs. */
    char path[4096];
    hv_pubkey_t pub;
    if (s_path(path, sizeof path, self->cfg->data_dir, "broker.pub") == 0
        && hv_pubkey_load(path, &pub, err, errlen) == 0 && !pub.has_sign) {
        if ((rc = hv_keys_write_public(self->keys, path)) < 0)
            brk_log(BRK_LOG_WARN, "cannot add the signing key to %s (%s): clients cannot check audit heads "
                    "until it has its sign line", path, strerror(-rc));
        else
            brk_log(BRK_LOG_INFO, "added the broker's signing key (sign) to %s: give clients the new file", path);
    }
    err[0] = '\0';
    /* A store from before the chain was keyed gets its "keyed" record now;
     * records already past retention go now, a few ms' worth. */
    s_audit_upkeep(self);
    return 0;
fail:
    snprintf(err, errlen, "cannot load the store in %s: %s", self->cfg->data_dir, strerror(-rc));
    return rc;
}

int
brk_broker_new(const brk_config_t *cfg, brk_broker_t **out, char *err, size_t errlen)
{
    char path[4096];
    int rc;
    brk_broker_t *self = calloc(1, sizeof *self);
    if (!self || sodium_init() < 0) {
        free(self);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    self->cfg = cfg;
    self->guard = brk_guard_new(cfg);
    self->next_minute = s_now() + 60;
    brk_log_set_level((brk_log_level_t) cfg->log_level);
    self->index = brk_index_new();
    self->principals = brk_principals_new();
    self->watches = brk_watches_new();
    self->token_key = sodium_malloc(BRK_OFFER_KEY_BYTES);
    self->batch = calloc((size_t) cfg->batch_max, sizeof *self->batch);
    if (!self->index || !self->principals || !self->token_key || !self->batch || !self->guard) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = brk_districts_load(cfg->districts, &self->districts, err, errlen)) < 0)
        goto fail;
    s_path(path, sizeof path, cfg->data_dir, "broker.key");
    if ((rc = hv_keys_load(path, &self->keys, err, errlen)) < 0) {
        if (rc == -ENOENT)
            snprintf(err, errlen, "%s has no broker key; run haven-broker init first", cfg->data_dir);
        goto fail;
    }
    /* Offer tokens are sealed with a key derived from the broker's own
     * secret key, never stored: a stolen backup cannot mint or read them. */
    if (crypto_kdf_derive_from_key(self->token_key, BRK_OFFER_KEY_BYTES, 1, "hvoffer1",
                                   hv_keys_seal_secret(self->keys)) != 0) {
        snprintf(err, errlen, "cannot derive the offer-token key from %s", path);
        rc = -EIO;
        goto fail;
    }
    /* The audit chain's MAC key ("hvaudit1", subkey 2) and the signing key
     * of its heads come from the same file: whoever can write the store
     * but has not got broker.key cannot rewrite the log. */
    if ((rc = brk_audit_key_new(self->keys, &self->audit_key)) < 0) {
        snprintf(err, errlen, "cannot derive the audit keys from %s", path);
        goto fail;
    }
    if ((rc = brk_store_open(cfg->data_dir, (size_t) cfg->map_size_mb << 20, &self->store)) < 0) {
        snprintf(err, errlen, "cannot open the store in %s: %s", cfg->data_dir, strerror(-rc));
        goto fail;
    }
    self->ctx = (brk_ctx_t) {
        .cfg = cfg, .store = self->store, .index = self->index, .districts = self->districts,
        .principals = self->principals, .token_key = self->token_key, .audit_key = self->audit_key,
        .guard = self->guard, .watches = self->watches,
    };
    if ((rc = s_load_state(self, err, errlen)) < 0)
        goto fail;
    if (!(self->ctx.backup = self->backup = brk_backup_new(self->store, cfg->data_dir))) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto fail;
    }

    /* The ZAP handler is bound, and proven to answer, before the server
     * socket exists: libzmq admits every key when no handler is bound. */
    self->zctx = zmq_ctx_new();
    self->zap = self->zctx ? zmq_socket(self->zctx, ZMQ_REP) : NULL;
    if (!self->zap || zmq_bind(self->zap, BRK_ZAP_ENDPOINT) < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot bind the ZAP handler: %s", zmq_strerror(errno));
        goto fail;
    }
    if ((rc = brk_zap_selftest(self->zctx, self->zap, self->principals)) < 0) {
        snprintf(err, errlen, "the ZAP handler does not answer; refusing to serve unauthenticated");
        goto fail;
    }
    self->router = zmq_socket(self->zctx, ZMQ_ROUTER);
    /* HWMs are per connection: replies queued for a reader that does not
     * read (beyond them a reply is dropped, and the client retries), and
     * requests read ahead of the loop (beyond them libzmq stops reading
     * the connection, so the sender waits: nothing is lost). */
    int one = 1, sndhwm = (int) cfg->queued_replies, rcvhwm = 32;
    int64_t maxmsg = cfg->max_message_bytes;
    if (!self->router || (rc = hv_curve_server(self->router, self->keys)) < 0
        || zmq_setsockopt(self->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one) < 0
        || zmq_setsockopt(self->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) < 0
        || zmq_setsockopt(self->router, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm) < 0
        || zmq_setsockopt(self->router, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm) < 0) {
        rc = rc < 0 ? rc : -errno;
        snprintf(err, errlen, "cannot set up the server socket: %s", zmq_strerror(-rc));
        goto fail;
    }
    if (!(self->outq = brk_outq_new(self->router, (size_t) cfg->queued_reply_mb << 20, 10000))
        || !(self->ctx.push = self->push = brk_push_new(self->outq))
        || !(self->ctx.alerts = self->alerts = brk_alerts_new(&self->ctx, brk_push_alert, self->push))) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto fail;
    }
    /* Which connections exist, for the per-key connection limit. */
    if (zmq_socket_monitor(self->router, "inproc://haven-router-monitor",
                           ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) < 0
        || !(self->monitor = zmq_socket(self->zctx, ZMQ_PAIR))
        || zmq_connect(self->monitor, "inproc://haven-router-monitor") < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot monitor the server socket: %s", zmq_strerror(errno));
        goto fail;
    }
    if (zmq_bind(self->router, cfg->bind) < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot bind %s: %s", cfg->bind, zmq_strerror(errno));
        goto fail;
    }
    size_t len = sizeof self->endpoint, available;
    brk_index_available(self->index, &available);
    zmq_getsockopt(self->router, ZMQ_LAST_ENDPOINT, self->endpoint, &len);
    brk_log(BRK_LOG_INFO, "serving on %s: %zu principals, %zu providers, %zu units (%zu available), "
            "%zu districts", self->endpoint, brk_principals_count(self->principals),
            brk_index_provider_count(self->index), brk_index_unit_count(self->index),
            available,
            brk_districts_count(self->districts));
    *out = self;
    return 0;
fail:
    brk_broker_destroy(&self);
    return rc;
}

const char *
brk_broker_endpoint(const brk_broker_t *self)
{
    return self->endpoint;
}

void
brk_broker_destroy(brk_broker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    brk_broker_t *self = *self_p;
    if (self->monitor)
        zmq_close(self->monitor);
    if (self->router)
        zmq_close(self->router);
    if (self->zap)
        zmq_close(self->zap);
    if (self->zctx)
        zmq_ctx_term(self->zctx);
    brk_backup_destroy(&self->backup);   /* before the store it copies */
    self->ctx.backup = NULL;
    brk_backup_mark_clear(&self->ctx);
    brk_watches_destroy(&self->watches);
    brk_alerts_destroy(&self->alerts);
    brk_store_destroy(&self->store);
    brk_districts_destroy(&self->districts);
    brk_index_destroy(&self->index);
    brk_principals_destroy(&self->principals);
    hv_keys_destroy(&self->keys);
    if (self->token_key)
        sodium_free(self->token_key);
    brk_audit_key_destroy(&self->audit_key);
    free(self->ctx.dirty);
    free(self->batch);
    brk_push_destroy(&self->push);
    brk_guard_destroy(&self->guard);
    brk_outq_destroy(&self->outq);
    free(self);
    *self_p = NULL;
}
