/* SPDX-License-Identifier: MIT */
/* The memory caches after a commit (see refresh.h): principals, the search
 * index and the compiled watches follow the store; a unit that newly
 * matches a watch raises an alert (design.md section 7). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "alerts.h"
#include "clock.h"
#include "guard.h"
#include "log.h"
#include "push.h"
#include "refresh.h"
#include "scope.h"
#include "watch.h"

static int
s_index_unit(brk_ctx_t *ctx, const Haven__Unit *u)
{
    const char *code = u->spec->district && *u->spec->district ? u->spec->district : NULL;
    int prov = brk_index_find_provider(ctx->index, u->provider);
    if (prov < 0)
        return prov;
    int district = code ? brk_districts_find(ctx->districts, code)
                        : brk_index_provider(ctx->index, (uint32_t) prov)->district;
    if (district < 0)
        brk_log(BRK_LOG_WARN, "unit %s/%s: district %s is not in the districts table; "
                "it will not be offered", u->provider, u->spec->name, code ? code : "?");
    return brk_index_put_unit(ctx->index, u, district);
}

static int
s_index_unit_record(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void) key;
    (void) klen;
    Haven__Unit *u = haven__unit__unpack(NULL, vlen, val);
    if (!u)
        return -EBADMSG;
    int rc = s_index_unit(arg, u);
    haven__unit__free_unpacked(u, NULL);
    return rc;
}

static int
s_index_provider(brk_ctx_t *ctx, const Haven__Provider *p)
{
    int district = brk_districts_find(ctx->districts, p->district);
    if (district < 0)
        brk_log(BRK_LOG_WARN, "provider %s: district %s is not in the districts table",
                p->id, p->district);
    int rc = brk_index_put_provider(ctx->index, p, district);
    return rc < 0 ? rc : 0;
}

static int
s_index_provider_record(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void) key;
    (void) klen;
    Haven__Provider *p = haven__provider__unpack(NULL, vlen, val);
    if (!p)
        return -EBADMSG;
    int rc = s_index_provider(arg, p);
    haven__provider__free_unpacked(p, NULL);
    return rc;
}

static int
s_principal_record(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void) key;
    (void) klen;
    Haven__Principal *p = haven__principal__unpack(NULL, vlen, val);
    if (!p)
        return -EBADMSG;
    int rc = brk_principals_put(arg, p);
    haven__principal__free_unpacked(p, NULL);
    return rc;
}

static int
s_watch_record(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void) key;
    (void) klen;
    brk_ctx_t *ctx = arg;
    Haven__Watch *w = haven__watch__unpack(NULL, vlen, val);
    if (!w)
        return -EBADMSG;
    const brk_principal_t *p = w->principal_key.len == 32
        ? brk_principals_find(ctx->principals, w->principal_key.data) : NULL;
    int rc = brk_watches_put(ctx->watches, w, ctx->districts, brk_hidden_kinds(p ? p->role : 0));
    if (rc < 0)
        brk_log(BRK_LOG_WARN, "watch %s cannot be compiled (%s); it is ignored", w->id, strerror(-rc));
    haven__watch__free_unpacked(w, NULL);
    return 0;
}

/* What the index had for a unit before a refresh, to tell which watches
 * it newly matches after (design.md section 7). */
typedef struct {
    char unit[HV_ID_MAX + 1];
    bool had;                    /* it was offered (available) */
    brk_avail_t before;
} s_snap_t;

static void
s_snap(brk_ctx_t *ctx, const char *provider, const char *unit, s_snap_t *snap)
{
    snprintf(snap->unit, sizeof snap->unit, "%s", unit);
    snap->had = false;
    int idx = brk_index_find_unit(ctx->index, provider, unit);
    if (idx < 0)
        return;
    const brk_unit_t *u = brk_index_unit(ctx->index, (uint32_t) idx);
    if (u->avail_pos == UINT32_MAX)
        return;
    size_t n;
    snap->before = brk_index_available(ctx->index, &n)[u->avail_pos];
    snap->had = true;
}

/* Would every watch read these two entries alike at now? Only what
 * matching reads counts: a confirmation of a fresh unit changes its
 * dates but nothing a watch decides on. */
static bool
s_same_for_watches(const brk_avail_t *a, const brk_avail_t *b, int64_t now)
{
    return a->cls == b->cls && a->district == b->district && a->features == b->features
           && a->max_occupants == b->max_occupants && a->specialist == b->specialist
           && a->available_from == b->available_from && (a->stale_at < now) == (b->stale_at < now);
}

/* A watch fires when a unit newly matches it: it became available, a
 * confirmation made it fresh, or its rules or catalog entry changed to
 * fit. Units whose entry reads the same are not matched at all, so a
 * confirmation of fresh units costs no matching. */
static void
s_watches_after(brk_ctx_t *ctx, const char *provider, const s_snap_t *snap)
{
    int idx = brk_index_find_unit(ctx->index, provider, snap->unit);
    if (idx < 0)
        return;
    const brk_unit_t *u = brk_index_unit(ctx->index, (uint32_t) idx);
    if (u->avail_pos == UINT32_MAX)
        return;
    size_t n;
    const brk_avail_t *after = &brk_index_available(ctx->index, &n)[u->avail_pos];
    int64_t now = brk_now();
    if (snap->had && s_same_for_watches(&snap->before, after, now))
        return;
    brk_alerts_begin_unit(ctx->alerts, provider, snap->unit);
    brk_watches_match_new(ctx->watches, ctx->index, snap->had ? &snap->before : NULL, after, now,
                          brk_alerts_on_match, ctx->alerts);
}

/* A provider's units as the index had them before its refresh. */
typedef struct {
    brk_ctx_t *ctx;
    const char *provider;
    s_snap_t *snaps;
    size_t n, cap;
} s_provider_snap_t;

static int
s_provider_unit_snap(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void) val;
    (void) vlen;
    s_provider_snap_t *ps = arg;
    size_t plen = strlen(ps->provider) + 1;
    if (klen <= plen || klen - plen > HV_ID_MAX)
        return 0;
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 16;
        void *p = realloc(ps->snaps, cap * sizeof *ps->snaps);
        if (!p)
            return -ENOMEM;
        ps->snaps = p;
        ps->cap = cap;
    }
    char unit[HV_ID_MAX + 1];
    snprintf(unit, sizeof unit, "%.*s", (int) (klen - plen), (const char *) key + plen);
    s_snap(ps->ctx, ps->provider, unit, &ps->snaps[ps->n++]);
    return 0;
}

/* A principal's record changed: reload it. Revocation ends everything the
 * key had: no more pushes, and its connections are closed now, not at its
 * next request. */
static int
s_refresh_principal(brk_ctx_t *ctx, MDB_txn *txn, const brk_dirty_t *d)
{
    const void *val;
    size_t vlen;
    int rc = brk_store_get(ctx->store, txn, BRK_DB_PRINCIPALS, d->key, 32, &val, &vlen);
    if (rc == 0)
        rc = s_principal_record(ctx->principals, NULL, 0, val, vlen);
    const brk_principal_t *p = rc == 0 ? brk_principals_find(ctx->principals, d->key) : NULL;
    if (p && p->revoked) {
        brk_push_forget(ctx->push, p->curve_z85);
        brk_guard_conn_each_to_drop(ctx->guard, 0, 0, p->curve_z85, brk_guard_conn_drop, NULL);
    }
    return rc;
}

/* A provider changed, with all its units. A confirmation or a resync makes
 * stale units fresh, and a catalog may change what they fit: watches they
 * now match fire. */
static int
s_refresh_provider(brk_ctx_t *ctx, MDB_txn *txn, const brk_dirty_t *d)
{
    const void *val;
    size_t vlen;
    int rc = 0;
    s_provider_snap_t ps = { ctx, d->provider, NULL, 0, 0 };
    bool watching = brk_watches_count(ctx->watches) > 0;
    if (watching)
        rc = brk_store_each(ctx->store, txn, BRK_DB_UNITS, d->provider, strlen(d->provider) + 1,
                            s_provider_unit_snap, &ps);
    if (rc == 0)
        rc = brk_store_get(ctx->store, txn, BRK_DB_PROVIDERS, d->provider, strlen(d->provider), &val, &vlen);
    if (rc == 0)
        rc = s_index_provider_record(ctx, NULL, 0, val, vlen);
    if (rc == 0)
        rc = brk_store_each(ctx->store, txn, BRK_DB_UNITS, d->provider, strlen(d->provider) + 1,
                            s_index_unit_record, ctx);
    for (size_t k = 0; rc == 0 && k < ps.n; k++)
        s_watches_after(ctx, d->provider, &ps.snaps[k]);
    free(ps.snaps);
    return rc;
}

/* A watch was made, or ended. */
static int
s_refresh_watch(brk_ctx_t *ctx, MDB_txn *txn, const brk_dirty_t *d)
{
    const void *val;
    size_t vlen;
    int rc = brk_store_get(ctx->store, txn, BRK_DB_WATCHES, d->unit, strlen(d->unit), &val, &vlen);
    if (rc == 0)
        rc = s_watch_record(ctx, NULL, 0, val, vlen);
    else if (rc == -ENOENT) {
        brk_watches_del(ctx->watches, d->unit);
        brk_alerts_forget_watch(ctx->alerts, d->unit);
        rc = 0;
    }
    return rc;
}

/* One unit changed (or went): watches it now matches fire. */
static int
s_refresh_unit(brk_ctx_t *ctx, MDB_txn *txn, const brk_dirty_t *d)
{
    const void *val;
    size_t vlen;
    char key[2 * HV_ID_MAX + 2];
    int klen = brk_unit_key(d->provider, d->unit, key, sizeof key);
    bool watching = brk_watches_count(ctx->watches) > 0;
    s_snap_t snap;
    if (watching)
        s_snap(ctx, d->provider, d->unit, &snap);
    int rc = brk_store_get(ctx->store, txn, BRK_DB_UNITS, key, (size_t) klen, &val, &vlen);
    if (rc == 0)
        rc = s_index_unit_record(ctx, NULL, 0, val, vlen);
    if (rc == 0 && watching)
        s_watches_after(ctx, d->provider, &snap);
    else if (rc == -ENOENT) {
        brk_index_del_unit(ctx->index, d->provider, d->unit);
        rc = 0;
    }
    return rc;
}

void
brk_refresh(brk_ctx_t *ctx)
{
    MDB_txn *txn = NULL;
    if (ctx->n_dirty == 0)
        return;
    int rc = brk_store_begin(ctx->store, NULL, false, &txn);
    for (size_t i = 0; rc == 0 && i < ctx->n_dirty; i++) {
        const brk_dirty_t *d = &ctx->dirty[i];
        switch (d->kind) {
        case BRK_DIRTY_PRINCIPAL: rc = s_refresh_principal(ctx, txn, d); break;
        case BRK_DIRTY_PROVIDER: rc = s_refresh_provider(ctx, txn, d); break;
        case BRK_DIRTY_REFERRAL:
        case BRK_DIRTY_WITHDRAWN:
            brk_push_agents(ctx->push, ctx->principals, d->provider,
                            d->kind == BRK_DIRTY_REFERRAL ? "referral" : "withdrawn", d->unit);
            break;
        case BRK_DIRTY_WATCH: rc = s_refresh_watch(ctx, txn, d); break;
        case BRK_DIRTY_UNIT: rc = s_refresh_unit(ctx, txn, d); break;
        }
    }
    if (txn)
        brk_store_abort(txn);
    if (rc != 0)
        brk_log(BRK_LOG_ERROR, "refreshing the search index failed: %s", strerror(-rc));
    ctx->n_dirty = 0;
}

int
brk_refresh_load(brk_ctx_t *ctx, MDB_txn *txn)
{
    int rc;
    if ((rc = brk_store_each(ctx->store, txn, BRK_DB_PRINCIPALS, NULL, 0, s_principal_record, ctx->principals)) < 0
        || (rc = brk_store_each(ctx->store, txn, BRK_DB_PROVIDERS, NULL, 0, s_index_provider_record, ctx)) < 0
        || (rc = brk_store_each(ctx->store, txn, BRK_DB_UNITS, NULL, 0, s_index_unit_record, ctx)) < 0)
        return rc;
    return brk_store_each(ctx->store, txn, BRK_DB_WATCHES, NULL, 0, s_watch_record, ctx);
}
