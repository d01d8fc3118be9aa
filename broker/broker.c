/* SPDX-License-Identifier: MIT */
/* The broker's life cycle: initialise a data directory, build a broker
 * from its store (its keys, caches, sockets and the services the context
 * lends the handlers), and take it apart. loop.c runs it. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>
#include "../common/conn.h"
#include "../common/keys.h"
#include "alerts.h"
#include "broker_impl.h"
#include "clock.h"
#include "handle_backup.h"
#include "log.h"
#include "offer.h"
#include "refresh.h"
#include "upkeep.h"
#include "zap.h"

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
    p.created_at = brk_now();
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
    brk_upkeep_audit(&self->ctx, &self->next_head);
    return 0;
fail:
    snprintf(err, errlen, "cannot load the store in %s: %s", self->cfg->data_dir, strerror(-rc));
    return rc;
}

/* broker.key, and the keys derived from it. Returns 0 or -errno with err
 * set. */
static int
s_keys(brk_broker_t *self, char *err, size_t errlen)
{
    char path[4096];
    int rc;
    s_path(path, sizeof path, self->cfg->data_dir, "broker.key");
    if ((rc = hv_keys_load(path, &self->keys, err, errlen)) < 0) {
        if (rc == -ENOENT)
            snprintf(err, errlen, "%s has no broker key; run haven-broker init first", self->cfg->data_dir);
        return rc;
    }
    /* Offer tokens are sealed with a key derived from the broker's own
     * secret key, never stored: a stolen backup cannot mint or read them. */
    if (crypto_kdf_derive_from_key(self->token_key, BRK_OFFER_KEY_BYTES, 1, "hvoffer1",
                                   hv_keys_seal_secret(self->keys)) != 0) {
        snprintf(err, errlen, "cannot derive the offer-token key from %s", path);
        return -EIO;
    }
    /* The audit chain's MAC key ("hvaudit1", subkey 2) and the signing key
     * of its heads come from the same file: whoever can write the store
     * but has not got broker.key cannot rewrite the log. */
    if ((rc = brk_audit_key_new(self->keys, &self->audit_key)) < 0) {
        snprintf(err, errlen, "cannot derive the audit keys from %s", path);
        return rc;
    }
    return 0;
}

/* The ZAP handler, the server socket with its queue of replies, pushes and
 * alerts, and its monitor; bound last. Returns 0 or -errno with err set. */
static int
s_serve(brk_broker_t *self, char *err, size_t errlen)
{
    int rc = 0;
    /* The ZAP handler is bound, and proven to answer, before the server
     * socket exists: libzmq admits every key when no handler is bound. */
    self->zctx = zmq_ctx_new();
    self->zap = self->zctx ? zmq_socket(self->zctx, ZMQ_REP) : NULL;
    if (!self->zap || zmq_bind(self->zap, BRK_ZAP_ENDPOINT) < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot bind the ZAP handler: %s", zmq_strerror(errno));
        return rc;
    }
    if ((rc = brk_zap_selftest(self->zctx, self->zap, self->principals)) < 0) {
        snprintf(err, errlen, "the ZAP handler does not answer; refusing to serve unauthenticated");
        return rc;
    }
    self->router = zmq_socket(self->zctx, ZMQ_ROUTER);
    /* HWMs are per connection: replies queued for a reader that does not
     * read (beyond them a reply is dropped, and the client retries), and
     * requests read ahead of the loop (beyond them libzmq stops reading
     * the connection, so the sender waits: nothing is lost). */
    int one = 1, sndhwm = (int) self->cfg->queued_replies, rcvhwm = 32;
    int64_t maxmsg = self->cfg->max_message_bytes;
    if (!self->router || (rc = hv_curve_server(self->router, self->keys)) < 0
        || zmq_setsockopt(self->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one) < 0
        || zmq_setsockopt(self->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) < 0
        || zmq_setsockopt(self->router, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm) < 0
        || zmq_setsockopt(self->router, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm) < 0) {
        rc = rc < 0 ? rc : -errno;
        snprintf(err, errlen, "cannot set up the server socket: %s", zmq_strerror(-rc));
        return rc;
    }
    if (!(self->outq = brk_outq_new(self->router, (size_t) self->cfg->queued_reply_mb << 20, 10000))
        || !(self->ctx.push = self->push = brk_push_new(self->outq))
        || !(self->ctx.alerts = self->alerts = brk_alerts_new(&self->ctx, brk_push_alert, self->push))) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    /* Which connections exist, for the per-key connection limit. */
    if (zmq_socket_monitor(self->router, "inproc://haven-router-monitor",
                           ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) < 0
        || !(self->monitor = zmq_socket(self->zctx, ZMQ_PAIR))
        || zmq_connect(self->monitor, "inproc://haven-router-monitor") < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot monitor the server socket: %s", zmq_strerror(errno));
        return rc;
    }
    if (zmq_bind(self->router, self->cfg->bind) < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot bind %s: %s", self->cfg->bind, zmq_strerror(errno));
        return rc;
    }
    return 0;
}

int
brk_broker_new(const brk_config_t *cfg, brk_broker_t **out, char *err, size_t errlen)
{
    int rc;
    brk_broker_t *self = calloc(1, sizeof *self);
    if (!self || sodium_init() < 0) {
        free(self);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    self->cfg = cfg;
    self->guard = brk_guard_new(cfg);
    self->next_minute = brk_now() + 60;
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
    if ((rc = s_keys(self, err, errlen)) < 0)
        goto fail;
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
    if ((rc = s_serve(self, err, errlen)) < 0)
        goto fail;
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
