/* SPDX-License-Identifier: MIT */
/* Alerts from standing searches (see alerts.h). */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "../common/keys.h"
#include "../proto/names.h"
#include "alerts.h"
#include "log.h"
#include "offer.h"

typedef struct {
    int64_t last_run;            /* when the hook last ran for this watch */
    uint32_t pending;            /* alerts since, not yet told to the hook */
    uint8_t key[32];             /* the watch's owner, and its latest unit */
    char provider[HV_ID_MAX + 1];
    char unit[HV_ID_MAX + 1];
} s_hooked_t;

/* A unit is named by provider and unit name, not by its index position: a
 * deletion later in the same refresh moves another unit into that slot. */
typedef struct s_alert {
    char watch[17];
    uint8_t key[32];
    char provider[HV_ID_MAX + 1];
    char unit_name[HV_ID_MAX + 1];
    uint32_t unit;               /* index, looked up again when delivered */
} s_alert_t;

struct brk_alerts {
    brk_ctx_t *ctx;              /* the broker's state: config, store, index, principals */
    brk_alerts_push_fn push;
    void *push_arg;
    s_alert_t *items;            /* found by the last refresh, to be delivered */
    size_t n, cap;
    size_t dropped;              /* found, but no room to keep them (each logged) */
    char provider[HV_ID_MAX + 1];    /* the unit the matches being found are for */
    char unit_name[HV_ID_MAX + 1];
    GHashTable *coalesce;        /* "watch/provider/unit" -> time of its last alert */
    GHashTable *hooked;          /* watch id -> s_hooked_t: hook runs per watch */
};

static int64_t
s_now(void)
{
    return (int64_t) time(NULL);
}

brk_alerts_t *
brk_alerts_new(brk_ctx_t *ctx, brk_alerts_push_fn push, void *push_arg)
{
    brk_alerts_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->ctx = ctx;
    self->push = push;
    self->push_arg = push_arg;
    self->coalesce = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    self->hooked = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return self;
}

void
brk_alerts_destroy(brk_alerts_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    brk_alerts_t *self = *self_p;
    g_hash_table_destroy(self->coalesce);
    g_hash_table_destroy(self->hooked);
    free(self->items);
    free(self);
    *self_p = NULL;
}

void
brk_alerts_begin_unit(brk_alerts_t *self, const char *provider, const char *unit)
{
    snprintf(self->provider, sizeof self->provider, "%s", provider);
    snprintf(self->unit_name, sizeof self->unit_name, "%s", unit);
}

void
brk_alerts_forget_watch(brk_alerts_t *self, const char *watch)
{
    g_hash_table_remove(self->hooked, watch);
}

void
brk_alerts_on_match(void *arg, const char *id, const uint8_t key[32])
{
    brk_alerts_t *self = arg;
    const brk_principal_t *who = brk_principals_find(self->ctx->principals, key);
    if (!who || who->revoked)
        return;                  /* its watches are ending in this same commit */
    if (self->n == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 16;
        void *p = realloc(self->items, cap * sizeof *self->items);
        if (!p) {
            /* nobody will be told of this match: say so, and whose it was */
            self->dropped++;
            brk_log(BRK_LOG_ERROR, "out of memory: the alert of watch %s (%s) for %s/%s is dropped, not "
                    "delivered (%zu dropped since the last delivery)", id, who->name, self->provider,
                    self->unit_name, self->dropped);
            return;
        }
        self->items = p;
        self->cap = cap;
    }
    s_alert_t *a = &self->items[self->n++];
    memcpy(a->watch, id, 17);
    memcpy(a->key, key, 32);
    a->unit = UINT32_MAX;
    snprintf(a->provider, sizeof a->provider, "%s", self->provider);
    snprintf(a->unit_name, sizeof a->unit_name, "%s", self->unit_name);
}

/* Run the alert hook with the alert as JSON on its stdin; never waits for
 * it (children are reaped in the loop). The child keeps only stdin,
 * stdout and stderr: not the store, not the sockets. */
static void
s_run_hook(brk_alerts_t *self, const char *json)
{
    int fds[2];
    if (!self->ctx->cfg->hook || pipe2(fds, O_CLOEXEC) < 0)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[0], 0);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 1);
        /* LMDB opens data.mdb without O_CLOEXEC: close everything else
         * (one by one where the kernel has no close_range) */
        if (close_range(3, ~0U, 0) < 0)
            for (long fd = 3, max = sysconf(_SC_OPEN_MAX); fd < max; fd++)
                close((int) fd);
        execl(self->ctx->cfg->hook, self->ctx->cfg->hook, (char *) NULL);
        _exit(127);
    }
    close(fds[0]);
    if (pid < 0) {
        brk_log(BRK_LOG_ERROR, "cannot run the alert hook: %s", strerror(errno));
    } else {
        size_t len = strlen(json);
        if (write(fds[1], json, len) != (ssize_t) len || write(fds[1], "\n", 1) != 1)
            brk_log(BRK_LOG_WARN, "the alert hook did not take its input");
    }
    close(fds[1]);
}

/* One alert per unit per watch within [alerts] coalesce: a unit that flaps
 * between available and occupied does not fill an inbox or page someone
 * each time. True if this alert is to be delivered. */
static bool
s_coalesce(brk_alerts_t *self, const s_alert_t *a, int64_t now)
{
    if (self->ctx->cfg->alert_coalesce_s <= 0)
        return true;
    const brk_unit_t *u = brk_index_unit(self->ctx->index, a->unit);
    const brk_prov_t *p = brk_index_provider(self->ctx->index, u->prov);
    char *key = g_strdup_printf("%s/%s/%s", a->watch, p->id, u->name);
    gpointer last;
    if (g_hash_table_lookup_extended(self->coalesce, key, NULL, &last)
        && now - (int64_t) GPOINTER_TO_SIZE(last) < self->ctx->cfg->alert_coalesce_s) {
        g_free(key);
        return false;
    }
    g_hash_table_replace(self->coalesce, key, GSIZE_TO_POINTER((gsize) now));
    return true;
}

static gboolean
s_coalesce_old(gpointer key, gpointer value, gpointer arg)
{
    (void) key;
    const brk_alerts_t *self = arg;
    return s_now() - (int64_t) GPOINTER_TO_SIZE(value) >= self->ctx->cfg->alert_coalesce_s;
}

static gboolean
s_hooked_old(gpointer key, gpointer value, gpointer arg)
{
    (void) key;
    const brk_alerts_t *self = arg;
    const s_hooked_t *h = value;
    return !h->pending && s_now() - h->last_run >= self->ctx->cfg->alert_coalesce_s;
}

/* Forget coalescing windows that have passed, so the tables stay small. */
void
brk_alerts_prune(brk_alerts_t *self)
{
    g_hash_table_foreach_remove(self->coalesce, s_coalesce_old, self);
    g_hash_table_foreach_remove(self->hooked, s_hooked_old, self);
}

typedef struct {
    uint8_t (*keys)[40];
    size_t n, drop;
} s_trim_t;

static int
s_trim_one(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void) val;
    (void) vlen;
    s_trim_t *t = arg;
    if (t->n == t->drop)
        return 1;
    if (klen == 40)
        memcpy(t->keys[t->n++], key, 40);
    return 0;
}

/* Keep at most inbox_max alerts in a principal's inbox: the oldest go. */
static int
s_trim_inbox(brk_alerts_t *self, MDB_txn *txn, const uint8_t key[32])
{
    size_t count = 0;
    int rc = brk_store_count_prefix(self->ctx->store, txn, BRK_DB_INBOX, key, 32, &count);
    if (rc < 0 || (int64_t) count <= self->ctx->cfg->inbox_max)
        return rc;
    s_trim_t t = { NULL, 0, count - (size_t) self->ctx->cfg->inbox_max };
    if (!(t.keys = malloc(t.drop * sizeof *t.keys)))
        return -ENOMEM;
    rc = brk_store_each(self->ctx->store, txn, BRK_DB_INBOX, key, 32, s_trim_one, &t);
    for (size_t i = 0; rc == 0 && i < t.n; i++)
        rc = brk_store_del(self->ctx->store, txn, BRK_DB_INBOX, t.keys[i], 40);
    free(t.keys);
    return rc;
}

/* Run the hook for a watch: its count says how many alerts it had since
 * the hook last ran for it. Unless hook_detail = full, the hook learns only
 * what wakes someone (who then reads `haven inbox`). */
static void
s_hook_run(brk_alerts_t *self, const char *watch, s_hooked_t *h, int64_t now)
{
    char when[32];
    time_t t = (time_t) now;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *j = json_pack("{s:s, s:s, s:s, s:i}", "event", "watch-match", "watch", watch, "at", when,
                          "count", (int) h->pending);
    int idx = self->ctx->cfg->hook_detail_full ? brk_index_find_unit(self->ctx->index, h->provider, h->unit) : -1;
    if (idx >= 0) {
        const brk_unit_t *u = brk_index_unit(self->ctx->index, (uint32_t) idx);
        const brk_prov_t *p = brk_index_provider(self->ctx->index, u->prov);
        const brk_principal_t *who = brk_principals_find(self->ctx->principals, h->key);
        const char *region = brk_districts_region_of(self->ctx->districts, u->district);
        const char *district = u->district >= 0 ? brk_districts_code(self->ctx->districts, u->district) : "";
        json_t *more = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "principal", who ? who->name : "",
                                 "region", region, "provider_id", p->id,
                                 "provider", p->name, "kind", hv_kind_name(p->kind), "unit", u->name,
                                 "district", district);
        json_object_update(j, more);
        json_decref(more);
    }
    char *text = json_dumps(j, JSON_COMPACT);
    if (text)
        s_run_hook(self, text);
    free(text);
    json_decref(j);
    h->last_run = now;
    h->pending = 0;
}

/* Count an alert for the hook; run it now unless it ran for this watch
 * within the coalescing window (then s_hook_flush runs it when the window
 * ends, with the count). */
static void
s_hook_alert(brk_alerts_t *self, const s_alert_t *a, int64_t now)
{
    s_hooked_t *h = g_hash_table_lookup(self->hooked, a->watch);
    if (!h) {
        h = g_new0(s_hooked_t, 1);
        h->last_run = INT64_MIN / 2;
        g_hash_table_insert(self->hooked, g_strdup(a->watch), h);
    }
    const brk_unit_t *u = brk_index_unit(self->ctx->index, a->unit);
    memcpy(h->key, a->key, 32);
    snprintf(h->provider, sizeof h->provider, "%s", brk_index_provider(self->ctx->index, u->prov)->id);
    snprintf(h->unit, sizeof h->unit, "%s", u->name);
    h->pending++;
    if (now - h->last_run >= self->ctx->cfg->alert_coalesce_s)
        s_hook_run(self, a->watch, h, now);
}

/* Alerts that came within a window the hook already ran in: tell it once
 * the window has passed. */
void
brk_alerts_flush_hook(brk_alerts_t *self, int64_t now)
{
    GHashTableIter it;
    gpointer key, value;
    if (!self->ctx->cfg->hook)
        return;
    g_hash_table_iter_init(&it, self->hooked);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        s_hooked_t *h = value;
        if (h->pending && now - h->last_run >= self->ctx->cfg->alert_coalesce_s)
            s_hook_run(self, key, h, now);
    }
}

/* Put what the watches found in their owners' inboxes, each with a fresh
 * offer, then tell whoever is connected and run the hook. */
/* The next number in key's inbox: per key, so that the gaps between an
 * IDVA's numbers say nothing of anyone else's alerts, and never reused
 * (an acknowledgement up to N, sent again, must not take newer alerts). */
static int
s_next_seq(brk_alerts_t *self, MDB_txn *txn, const uint8_t key[32], uint64_t legacy, uint64_t *seq_out)
{
    uint8_t k[41] = "inbox-seq";
    const void *val;
    size_t vlen;
    uint64_t seq = legacy;
    memcpy(k + 9, key, 32);
    int rc = brk_store_get(self->ctx->store, txn, BRK_DB_META, k, sizeof k, &val, &vlen);
    if (rc == 0 && vlen == 8)
        memcpy(&seq, val, 8);
    else if (rc < 0 && rc != -ENOENT)
        return rc;
    seq++;
    if ((rc = brk_store_put(self->ctx->store, txn, BRK_DB_META, k, sizeof k, &seq, 8)) < 0)
        return rc;
    *seq_out = seq;
    return 0;
}

/* One alert into its owner's inbox, with a fresh offer (its token in
 * token, which must outlive the commit). Returns 0 or -errno. */
static int
s_store_one(brk_alerts_t *self, MDB_txn *txn, const s_alert_t *a, char *token, uint64_t legacy, int64_t now)
{
    const brk_unit_t *u = brk_index_unit(self->ctx->index, a->unit);
    const brk_prov_t *p = brk_index_provider(self->ctx->index, u->prov);
    brk_offer_t o = { 0 };
    snprintf(o.provider, sizeof o.provider, "%s", p->id);
    snprintf(o.unit, sizeof o.unit, "%s", u->name);
    memcpy(o.principal, a->key, 32);
    o.expires_at = now + self->ctx->cfg->offer_ttl_s;
    o.version = u->version;
    int rc = brk_offer_seal(self->ctx->token_key, &o, token, BRK_OFFER_TOKEN_MAX);
    if (rc < 0)
        return rc;
    Haven__Alert al = HAVEN__ALERT__INIT;
    al.watch = (char *) a->watch;
    al.offer = token;
    al.provider_id = (char *) p->id;
    al.provider = p->name;
    al.unit = (char *) u->name;
    al.district = (char *) (u->district >= 0 ? brk_districts_code(self->ctx->districts, u->district) : "");
    al.district_name = (char *) (u->district >= 0 ? brk_districts_name(self->ctx->districts, u->district) : "");
    al.has_at = al.has_kind = 1;
    al.at = now;
    al.kind = p->kind;
    al.phone = p->phone;
    uint8_t key[40];
    uint64_t seq;
    if ((rc = s_next_seq(self, txn, a->key, legacy, &seq)) < 0)
        return rc;
    memcpy(key, a->key, 32);
    for (int b = 0; b < 8; b++)
        key[32 + b] = (uint8_t) (seq >> (56 - 8 * b));
    rc = brk_store_put_msg(self->ctx->store, txn, BRK_DB_INBOX, key, sizeof key, &al.base);
    if (rc == 0)
        rc = s_trim_inbox(self, txn, a->key);
    return rc;
}

/* Every alert found into its owner's inbox, in one commit, growing the map
 * when it is full. Returns 0 or -errno (nothing stored). */
static int
s_store(brk_alerts_t *self, char (*tokens)[BRK_OFFER_TOKEN_MAX], int64_t now)
{
    int rc = -ENOSPC;
    for (int attempt = 0; rc == -ENOSPC && attempt < 4; attempt++) {
        MDB_txn *txn = NULL;
        uint64_t legacy = 0;
        const void *val;
        size_t vlen;
        if ((rc = brk_store_begin(self->ctx->store, NULL, true, &txn)) < 0)
            break;
        /* Stores from before per-key numbering had one counter for all:
         * every key's numbers go on from it, so none goes backwards. */
        if (brk_store_get(self->ctx->store, txn, BRK_DB_META, "inbox-seq", 9, &val, &vlen) == 0 && vlen == 8)
            memcpy(&legacy, val, 8);
        for (size_t i = 0; rc == 0 && i < self->n; i++)
            rc = s_store_one(self, txn, &self->items[i], tokens[i], legacy, now);
        if (rc == 0) {
            rc = brk_store_commit(txn);
            txn = NULL;
        }
        if (txn)
            brk_store_abort(txn);
        if (rc == -ENOSPC) {
            int grc = brk_store_grow(self->ctx->store);
            if (grc < 0)
                rc = grc;
        }
    }
    return rc;
}

void
brk_alerts_deliver(brk_alerts_t *self)
{
    if (self->dropped) {
        brk_log(BRK_LOG_ERROR, "%zu watch alerts were dropped for lack of memory (each logged with its "
                "watch); delivering the other %zu", self->dropped, self->n);
        self->dropped = 0;
    }
    if (!self->n)
        return;
    int64_t now = s_now();
    size_t keep = 0;
    for (size_t i = 0; i < self->n; i++) {
        /* the refresh is over: find each unit again by name, and drop the
         * alert if it went, or is no longer available */
        s_alert_t *a = &self->items[i];
        int idx = brk_index_find_unit(self->ctx->index, a->provider, a->unit_name);
        if (idx < 0 || brk_index_unit(self->ctx->index, (uint32_t) idx)->avail_pos == UINT32_MAX)
            continue;
        a->unit = (uint32_t) idx;
        if (s_coalesce(self, a, now))
            self->items[keep++] = *a;
    }
    self->n = keep;
    if (!self->n)
        return;
    char (*tokens)[BRK_OFFER_TOKEN_MAX] = calloc(self->n, sizeof *tokens);
    int rc = tokens ? s_store(self, tokens, now) : -ENOMEM;
    if (rc < 0) {
        brk_log(BRK_LOG_ERROR, "storing %zu watch alerts failed: %s; they are dropped, not delivered",
                self->n, strerror(-rc));
        for (size_t i = 0; i < self->n; i++) {
            const s_alert_t *a = &self->items[i];
            const brk_principal_t *who = brk_principals_find(self->ctx->principals, a->key);
            brk_log(BRK_LOG_ERROR, "dropped: the alert of watch %s (%s) for %s/%s", a->watch,
                    who ? who->name : "?", a->provider, a->unit_name);
        }
    }
    for (size_t i = 0; rc == 0 && i < self->n; i++) {
        const s_alert_t *a = &self->items[i];
        const brk_unit_t *u = brk_index_unit(self->ctx->index, a->unit);
        const brk_prov_t *p = brk_index_provider(self->ctx->index, u->prov);
        const brk_principal_t *who = brk_principals_find(self->ctx->principals, a->key);
        char z85[41];
        hv_z85_encode32(a->key, z85);
        self->push(self->push_arg, z85, "alert", a->watch);
        brk_log(BRK_LOG_INFO, "watch %s of %s matched %s/%s", a->watch, who ? who->name : "?", p->id, u->name);
        if (self->ctx->cfg->hook)
            s_hook_alert(self, a, now);
    }
    free(tokens);
    self->n = 0;
}

