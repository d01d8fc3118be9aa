/* SPDX-License-Identifier: MIT */
/* Standing searches ("watches") and the inbox their alerts land in. An
 * on-call officer also sees the watches of its region. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../proto/names.h"
#include "log.h"
#include "match.h"
#include "deadline.h"
#include "handle_watch.h"
#include "scope.h"

typedef struct {
    const brk_principal_t *who;
    bool region_too;
    bool collect;                /* false: count only */
    size_t own;
    brk_store_list_t list;
} s_scan_t;

static int
s_scan(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void) key;
    (void) klen;
    s_scan_t *s = arg;
    Haven__Watch *w = haven__watch__unpack(NULL, vlen, val);
    if (!w)
        return -EBADMSG;
    bool own = w->principal_key.len == 32 && memcmp(w->principal_key.data, s->who->curve, 32) == 0;
    bool region = s->region_too && s->who->region[0] && w->region && strcmp(w->region, s->who->region) == 0;
    s->own += own;
    if ((own || region) && s->collect)
        return brk_store_list_add(&s->list, &w->base);
    haven__watch__free_unpacked(w, NULL);
    return 0;
}

int
brk_handle_watch_create(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    const Haven__WatchCreate *c = r->req->watch_create;
    brk_need_t *need = NULL;
    char err[256], id[17];
    uint8_t raw[8];
    if (brk_check_need_kinds(r, c->need))
        return 1;
    int rc = brk_need_compile(c->need, ctx->districts, ctx->now, &need, err, sizeof err);
    if (rc == -ENOENT)
        return brk_reply_error(r, HAVEN__STATUS__STATUS_BAD_REQUEST, "%s", err);
    if (rc < 0)
        return rc;
    int ref = brk_need_reference(need);
    free(need);
    s_scan_t s = { .who = &r->who };
    if ((rc = brk_store_each(ctx->store, txn, BRK_DB_WATCHES, NULL, 0, s_scan, &s)) < 0)
        return rc;
    if ((int64_t) s.own >= ctx->cfg->max_watches)
        return brk_reply_error(r, HAVEN__STATUS__STATUS_LIMIT,
                               "you have %zu watches, the most allowed (limits.max_watches_per_principal); "
                               "cancel one with haven watch --cancel", s.own);
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(id, sizeof id, raw, sizeof raw);
    Haven__Watch w = HAVEN__WATCH__INIT;
    w.id = id;
    w.need = c->need;
    w.has_created_at = w.has_expires_at = 1;
    w.created_at = ctx->now;
    w.expires_at = ctx->now + c->for_s;
    w.principal = r->who.name;
    w.has_principal_key = 1;
    w.principal_key = (ProtobufCBinaryData) { 32, r->who.curve };
    w.region = (char *) brk_districts_region_of(ctx->districts, ref);
    if ((rc = brk_store_put_msg(ctx->store, txn, BRK_DB_WATCHES, id, 16, &w.base)) < 0
        || (rc = brk_deadline_add(ctx->store, txn, w.expires_at, BRK_DEADLINE_WATCH, id)) < 0
        || (rc = brk_ctx_dirty(ctx, BRK_DIRTY_WATCH, NULL, id, NULL)) < 0)
        return rc;
    snprintf(r->audit.detail, sizeof r->audit.detail, "watch %s for %us", id, c->for_s);
    w.has_principal_key = 0;
    Haven__Reply reply = HAVEN__REPLY__INIT;
    reply.body_case = HAVEN__REPLY__BODY_WATCH;
    reply.watch = &w;
    return brk_reply_ok(r, &reply);
}

/* What one person sees of another's standing search never says where:
 * excluded and home districts point at the perpetrator and the survivor
 * (design.md section 6, item 10). The owner sees their own in full. */
static void
s_strip_places(Haven__Need *n)
{
    for (size_t i = 0; i < n->n_exclude; i++)
        free(n->exclude[i]);
    for (size_t i = 0; i < n->n_prefer; i++)
        free(n->prefer[i]);
    free(n->exclude);
    free(n->prefer);
    free(n->home);
    free(n->near);
    n->exclude = n->prefer = NULL;
    n->n_exclude = n->n_prefer = 0;
    n->home = n->near = NULL;
    n->has_out_of_area = n->has_within_km = 0;
}

int
brk_handle_watch_list(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    s_scan_t s = { .who = &r->who, .region_too = r->who.role == HAVEN__ROLE__ROLE_ONCALL, .collect = true };
    int rc = brk_store_each(ctx->store, txn, BRK_DB_WATCHES, NULL, 0, s_scan, &s);
    if (rc == 0) {
        for (size_t i = 0; i < s.list.n; i++) {
            Haven__Watch *w = (Haven__Watch *) s.list.items[i];
            bool own = w->principal_key.len == 32 && memcmp(w->principal_key.data, r->who.curve, 32) == 0;
            w->has_principal_key = 0;
            if (!own && w->need)
                s_strip_places(w->need);
        }
        Haven__WatchListReply body = HAVEN__WATCH_LIST_REPLY__INIT;
        body.n_watches = s.list.n;
        body.watches = (Haven__Watch **) s.list.items;
        Haven__Reply reply = HAVEN__REPLY__INIT;
        reply.body_case = HAVEN__REPLY__BODY_WATCHES;
        reply.watches = &body;
        rc = brk_reply_ok(r, &reply);
    }
    brk_store_list_free(&s.list);
    return rc;
}

int
brk_handle_watch_cancel(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    const char *id = r->req->watch_cancel->watch;
    Haven__Watch *w = NULL;
    int rc = brk_store_get_msg(ctx->store, txn, BRK_DB_WATCHES, id, strlen(id), &haven__watch__descriptor,
                               (ProtobufCMessage **) &w);
    if (rc == -ENOENT || (rc == 0 && (w->principal_key.len != 32
                                      || memcmp(w->principal_key.data, r->who.curve, 32) != 0))) {
        if (w)
            haven__watch__free_unpacked(w, NULL);
        return brk_reply_error(r, HAVEN__STATUS__STATUS_NOT_FOUND, "no watch %s of yours", id);
    }
    if (rc < 0)
        return rc;
    if ((rc = brk_store_del(ctx->store, txn, BRK_DB_WATCHES, id, strlen(id))) == 0
        && (rc = brk_deadline_remove(ctx->store, txn, w->expires_at, BRK_DEADLINE_WATCH, id)) == 0
        && (rc = brk_ctx_dirty(ctx, BRK_DIRTY_WATCH, NULL, id, NULL)) == 0) {
        snprintf(r->audit.detail, sizeof r->audit.detail, "watch %s", id);
        Haven__Reply reply = HAVEN__REPLY__INIT;
        rc = brk_reply_ok(r, &reply);
    }
    haven__watch__free_unpacked(w, NULL);
    return rc;
}

typedef struct {
    brk_store_list_t list;
    uint64_t ack;                /* collecting keys up to this seq, to delete */
    uint8_t (*keys)[40];
    size_t n_keys, cap_keys;
} s_inbox_t;

static uint64_t
s_inbox_seq(const uint8_t *key)
{
    uint64_t seq = 0;
    for (int i = 32; i < 40; i++)
        seq = seq << 8 | key[i];
    return seq;
}

static int
s_inbox_acked(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void) val;
    (void) vlen;
    s_inbox_t *in = arg;
    if (klen != 40)
        return 0;
    if (s_inbox_seq(key) > in->ack)
        return 1;                /* in seq order: the rest are newer */
    if (in->n_keys == in->cap_keys) {
        size_t cap = in->cap_keys ? in->cap_keys * 2 : 64;
        void *p = realloc(in->keys, cap * sizeof *in->keys);
        if (!p)
            return -ENOMEM;
        in->keys = p;
        in->cap_keys = cap;
    }
    memcpy(in->keys[in->n_keys++], key, 40);
    return 0;
}

static int
s_inbox_alert(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    s_inbox_t *in = arg;
    if (klen != 40)
        return 0;
    Haven__Alert *a = haven__alert__unpack(NULL, vlen, val);
    if (!a)
        return -EBADMSG;
    a->has_seq = 1;
    a->seq = s_inbox_seq(key);
    return brk_store_list_add(&in->list, &a->base);
}

/* The inbox is read without being emptied: a reply lost on the way must
 * lose no alert. Listing is a read; the client then acknowledges up to
 * the last seq it showed (ack, a write), and only those alerts leave. */
int
brk_handle_inbox(brk_ctx_t *ctx, MDB_txn *txn, brk_request_t *r)
{
    const Haven__Inbox *q = r->req->inbox;
    s_inbox_t in = { .list = { .desc = &haven__alert__descriptor } };
    int rc = 0;
    if (q->has_ack && q->ack > 0) {
        in.ack = q->ack;
        rc = brk_store_each(ctx->store, txn, BRK_DB_INBOX, r->who.curve, 32, s_inbox_acked, &in);
        for (size_t i = 0; rc == 0 && i < in.n_keys; i++)
            rc = brk_store_del(ctx->store, txn, BRK_DB_INBOX, in.keys[i], 40);
        if (rc == 0)
            snprintf(r->audit.detail, sizeof r->audit.detail, "acknowledged %zu alerts", in.n_keys);
    }
    /* An acknowledgement answers with nothing but its status: what it
     * says is small enough to keep for its retry (replay.h). */
    if (rc == 0 && !in.ack)
        rc = brk_store_each(ctx->store, txn, BRK_DB_INBOX, r->who.curve, 32, s_inbox_alert, &in);
    if (rc == 0) {
        Haven__InboxReply body = HAVEN__INBOX_REPLY__INIT;
        body.n_alerts = in.list.n;
        body.alerts = (Haven__Alert **) in.list.items;
        Haven__Reply reply = HAVEN__REPLY__INIT;
        reply.body_case = HAVEN__REPLY__BODY_INBOX;
        reply.inbox = &body;
        rc = brk_reply_ok(r, &reply);
    }
    free(in.keys);
    brk_store_list_free(&in.list);
    return rc;
}

int
brk_watches_end(brk_ctx_t *ctx, MDB_txn *txn, const uint8_t key[32], size_t *count_out)
{
    brk_principal_t owner = { 0 };
    memcpy(owner.curve, key, 32);
    s_scan_t s = { .who = &owner, .collect = true };
    s.list.desc = &haven__watch__descriptor;
    int rc = brk_store_each(ctx->store, txn, BRK_DB_WATCHES, NULL, 0, s_scan, &s);
    for (size_t i = 0; rc == 0 && i < s.list.n; i++) {
        const Haven__Watch *w = (const Haven__Watch *) s.list.items[i];
        if (!w->id || strlen(w->id) != 16)
            continue;            /* not a record this broker wrote */
        if ((rc = brk_store_del(ctx->store, txn, BRK_DB_WATCHES, w->id, strlen(w->id))) == 0
            && (rc = brk_deadline_remove(ctx->store, txn, w->expires_at, BRK_DEADLINE_WATCH, w->id)) == 0)
            rc = brk_ctx_dirty(ctx, BRK_DIRTY_WATCH, NULL, w->id, NULL);
    }
    if (rc == 0) {
        int n = brk_store_del_prefix(ctx->store, txn, BRK_DB_INBOX, key, 32);
        rc = n < 0 ? n : 0;
    }
    if (rc == 0)
        *count_out = s.list.n;
    brk_store_list_free(&s.list);
    return rc;
}

int
brk_watch_expire(brk_ctx_t *ctx, MDB_txn *txn, const char *id)
{
    int rc = brk_store_del(ctx->store, txn, BRK_DB_WATCHES, id, strlen(id));
    if (rc == 0 || rc == -ENOENT)
        rc = brk_ctx_dirty(ctx, BRK_DIRTY_WATCH, NULL, id, NULL);
    return rc;
}
